//! The vendored alacritty_terminal and vte write printable text a run at a time
//! (`vendor/alacritty_terminal/PORTCULLIS.md`). These tests hold that patch to
//! the code it bypasses: alacritty's own `Term::input`, one character at a time.

use alacritty_terminal::event::VoidListener;
use alacritty_terminal::grid::Dimensions;
use alacritty_terminal::index::{Column, Line};
use alacritty_terminal::term::{Config, Term, TermDamage};
use alacritty_terminal::vte::ansi::{
    Attr, CharsetIndex, ClearMode, Color, Handler, Hyperlink, LineClearMode, Mode, NamedColor,
    NamedMode, NamedPrivateMode, PrivateMode, Rgb, StandardCharset,
};
use portcullis_terminal::{Screen, ScreenSize};

mod common;
use common::Random;

/// Text with what makes `input` take its slow turns: wide characters (CJK,
/// emoji), combining marks, DEL, characters the line-drawing charset maps.
fn random_text(random: &mut Random) -> String {
    const PIECES: [&str; 14] = [
        "a", "Z", " ", "~", "q", "x", "hello ", "\u{7f}", "é", "日", "🦀", "e\u{301}", "\u{200d}",
        "ab",
    ];
    let len = 1 + random.below(30);
    (0..len)
        .map(|_| PIECES[random.below(PIECES.len())])
        .collect()
}

fn term(cols: u16, rows: u16) -> Term<VoidListener> {
    let config = Config {
        scrolling_history: 7,
        ..Config::default()
    };
    Term::new(config, &ScreenSize { cols, rows }, VoidListener)
}

/// Everything `input` can change: every cell of the screen and the scrollback,
/// the cursor and its pending wrap, and the damage since the last look.
fn state(term: &mut Term<VoidListener>) -> String {
    let grid = term.grid();
    let mut out = format!(
        "cursor {:?} wrap {} history {}\n",
        grid.cursor.point,
        grid.cursor.input_needs_wrap,
        grid.history_size()
    );
    for line in -(grid.history_size() as i32)..grid.screen_lines() as i32 {
        for column in 0..grid.columns() {
            out.push_str(&format!("{:?}\n", grid[Line(line)][Column(column)]));
        }
    }
    match term.damage() {
        TermDamage::Full => out.push_str("damage: full\n"),
        TermDamage::Partial(lines) => {
            for line in lines {
                out.push_str(&format!(
                    "damage {} {}..{}\n",
                    line.line, line.left, line.right
                ));
            }
        }
    }
    term.reset_damage();
    out
}

/// One random step other than text, applied to both terminals alike.
fn random_step(random: &mut Random, term: &mut Term<VoidListener>, choice: usize) {
    match choice {
        0 => term.goto(random_line(random, term), random.below(term.columns() + 1)),
        1 => term.linefeed(),
        2 => term.carriage_return(),
        3 => term.backspace(),
        4 => term.set_mode(Mode::Named(NamedMode::Insert)),
        5 => term.unset_mode(Mode::Named(NamedMode::Insert)),
        6 => term.unset_private_mode(PrivateMode::Named(NamedPrivateMode::LineWrap)),
        7 => term.set_private_mode(PrivateMode::Named(NamedPrivateMode::LineWrap)),
        8 => term.configure_charset(
            CharsetIndex::G0,
            StandardCharset::SpecialCharacterAndLineDrawing,
        ),
        9 => term.configure_charset(CharsetIndex::G0, StandardCharset::Ascii),
        10 => term.terminal_attribute(Attr::Bold),
        11 => term.terminal_attribute(Attr::Foreground(Color::Indexed(random.below(256) as u8))),
        12 => term.terminal_attribute(Attr::Background(Color::Spec(Rgb { r: 1, g: 2, b: 3 }))),
        // Underline colours and hyperlinks put an `extra` on the cells written.
        13 => term.terminal_attribute(Attr::UnderlineColor(Some(Color::Named(NamedColor::Red)))),
        // With an id: alacritty numbers links without one from a global counter.
        14 => term.set_hyperlink(Some(Hyperlink {
            id: Some("link".into()),
            uri: "https://example.test/".into(),
        })),
        15 => term.set_hyperlink(None),
        // Reflow moves cells between rows; the rest rewrite or move cells in
        // place. The text path trusts each row's count of occupied cells after
        // all of them.
        16 => {
            let cols = 2 + random.below(11) as u16;
            let rows = 1 + random.below(5) as u16;
            term.resize(ScreenSize { cols, rows });
        }
        17 => term.clear_line(match random.below(3) {
            0 => LineClearMode::Right,
            1 => LineClearMode::Left,
            _ => LineClearMode::All,
        }),
        18 => term.delete_chars(1 + random.below(4)),
        19 => term.insert_blank(1 + random.below(4)),
        20 => term.erase_chars(1 + random.below(4)),
        21 => term.scroll_down(1 + random.below(2)),
        22 => term.clear_screen(ClearMode::Below),
        _ => term.terminal_attribute(Attr::Reset),
    }
}

fn random_line(random: &mut Random, term: &Term<VoidListener>) -> i32 {
    random.below(term.screen_lines()) as i32
}

#[test]
fn text_runs_change_the_terminal_exactly_as_input_one_character_at_a_time_does() {
    let mut random = Random(0x7e57_a11c_e5ee_d001);
    for case in 0..300 {
        // Narrow screens so that text wraps, wide characters meet the last
        // column and lines scroll into (and out of) the short scrollback.
        // (At least two columns: see `ScreenSize::clamped`.)
        let cols = 2 + random.below(11) as u16;
        let rows = 1 + random.below(5) as u16;
        let mut runs = term(cols, rows);
        let mut chars = term(cols, rows);
        let mut log = Vec::new();
        for step in 0..60 {
            if random.below(2) == 0 {
                let text = random_text(&mut random);
                runs.input_str(&text);
                for c in text.chars() {
                    chars.input(c);
                }
                log.push(format!("text {text:?}"));
            } else {
                let choice = random.below(24);
                // The same random numbers for both.
                let saved = random.0;
                random_step(&mut random, &mut runs, choice);
                random.0 = saved;
                random_step(&mut random, &mut chars, choice);
                log.push(format!("step {choice}"));
            }
            assert_eq!(
                state(&mut runs),
                state(&mut chars),
                "case {case} ({cols}×{rows}), step {step}; steps so far: {log:?}"
            );
        }
    }
}

/// Bytes that exercise the parser's ground state: ASCII, C0 and C1 controls,
/// multi-byte UTF-8, invalid and truncated sequences, escape sequences.
fn random_bytes(random: &mut Random, len: usize) -> Vec<u8> {
    const PIECES: [&[u8]; 16] = [
        b"plain text ",
        b"\r\n",
        b"\t",
        b"\x08",
        "é日🦀".as_bytes(),
        b"\xc2\x85",
        b"\xc2\x9b1m",
        b"\xff",
        b"\xe6\x97",
        b"\x1b[31m",
        b"\x1b[2K",
        b"\x1b[3;5H",
        b"\x1b]0;title\x07",
        b"\x1b(0qqq\x1b(B",
        b"\x1b[4h",
        b"\x1b[4l",
    ];
    let mut bytes = Vec::with_capacity(len + 16);
    while bytes.len() < len {
        bytes.extend_from_slice(PIECES[random.below(PIECES.len())]);
    }
    bytes
}

#[test]
fn a_stream_gives_the_same_screen_however_it_is_cut() {
    let mut random = Random(0x0dd_b17e_5eed);
    for case in 0..50 {
        let bytes = random_bytes(&mut random, 2000);
        let mut whole = Screen::new(ScreenSize::clamped(17, 6), 20);
        whole.feed(&bytes);
        // One byte at a time: every UTF-8 sequence is cut, and text arrives in
        // runs of one character.
        let mut bytewise = Screen::new(ScreenSize::clamped(17, 6), 20);
        for byte in &bytes {
            bytewise.feed(std::slice::from_ref(byte));
        }
        let mut pieces = Screen::new(ScreenSize::clamped(17, 6), 20);
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let (piece, next) = rest.split_at(random.below(rest.len()).max(1));
            pieces.feed(piece);
            rest = next;
        }
        let expected = (whole.text(), whole.update());
        assert_eq!(
            (bytewise.text(), bytewise.update()),
            expected,
            "case {case}, byte by byte"
        );
        assert_eq!(
            (pieces.text(), pieces.update()),
            expected,
            "case {case}, in pieces"
        );
    }
}

#[test]
fn the_printable_ascii_scan_stops_at_the_first_other_byte() {
    use alacritty_terminal::vte::printable_ascii_prefix;
    for len in 0..40 {
        let mut bytes = vec![b'a'; len];
        assert_eq!(printable_ascii_prefix(&bytes), len);
        for at in 0..len {
            for byte in 0..=255u8 {
                bytes[at] = byte;
                let printable = (0x20..=0x7e).contains(&byte);
                let expected = if printable { len } else { at };
                assert_eq!(
                    printable_ascii_prefix(&bytes),
                    expected,
                    "{byte:#04x} at {at} of {len}"
                );
            }
            bytes[at] = b'a';
        }
    }
}
