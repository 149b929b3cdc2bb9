//! What a hostile or broken server can print: every control function the
//! model implements, with parameters at their extremes (0, huge, missing,
//! inverted ranges), OSC and DCS strings, wide and combining characters,
//! interleaved with what the UI does (resizes, scrolling back, updates,
//! selections, searches). The model answers each with a screen, never a
//! panic, and stays usable.

use std::panic::{AssertUnwindSafe, catch_unwind};

use portcullis_terminal::{GridPoint, Screen, ScreenSize};

mod common;
use common::Random;

/// A parameter as a server might send one: usual, zero, or far too big.
fn parameter(random: &mut Random) -> String {
    match random.below(8) {
        0 => String::new(),
        1 => "0".into(),
        2 => "1".into(),
        3 => (random.below(300)).to_string(),
        4 => "65535".into(),
        5 => "99999999".into(),
        6 => "4294967296".into(),
        _ => (random.below(40)).to_string(),
    }
}

fn parameters(random: &mut Random) -> String {
    let count = random.below(5);
    (0..count)
        .map(|_| parameter(random))
        .collect::<Vec<_>>()
        .join(if random.below(6) == 0 { ":" } else { ";" })
}

/// One piece of hostile output.
fn piece(random: &mut Random) -> String {
    const CSI_FINALS: &[&str] = &[
        "@", "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "P", "S", "T", "X",
        "Z", "`", "a", "b", "c", "d", "e", "f", "g", "h", "l", "m", "n", "q", "r", "s", "t", "u",
        "x", " q", "$p", "!p", "\"q",
    ];
    const TEXT: &[&str] = &[
        "text ",
        "é",
        "日本",
        "🦀",
        "e\u{301}",
        "\u{200b}",
        "\u{fe0f}",
        "a\u{0308}\u{0301}",
        "\t",
        "\r",
        "\n",
        "\x08",
        "\x07",
        "\x0e",
        "\x0f",
        "\u{7f}",
        "\u{85}",
        "\u{9b}",
    ];
    match random.below(10) {
        0..=3 => {
            let private = random.pick(&["", "?", ">", "<", "="]);
            let params = parameters(random);
            let last = random.pick(CSI_FINALS);
            format!("\x1b[{private}{params}{last}")
        }
        4 => {
            let ps = random.pick(&[
                "0", "1", "2", "4", "8", "10", "11", "12", "52", "104", "110", "112", "133", "777",
            ]);
            let payload: String = match random.below(4) {
                0 => String::new(),
                1 => "c;".to_owned() + &"QUJD".repeat(random.below(50)),
                2 => format!("{};rgb:ff/00/{:02x}", random.below(300), random.below(256)),
                _ => "x".repeat(random.below(5000)),
            };
            let end = random.pick(&["\x07", "\x1b\\", ""]);
            format!("\x1b]{ps};{payload}{end}")
        }
        5 => {
            let body = "q#0;2;0;0;0#0~~@@vv".repeat(random.below(20));
            format!("\x1bP{}{body}\x1b\\", parameters(random))
        }
        6 => random
            .pick(&[
                "\x1b7", "\x1b8", "\x1b#8", "\x1bc", "\x1bD", "\x1bE", "\x1bH", "\x1bM", "\x1bZ",
                "\x1b=", "\x1b>", "\x1b(0", "\x1b(B", "\x1b)0", "\x1b*A", "\x1bN", "\x1bO",
                "\x1b\\", "\x1b", "\x1b[", "\x1b]",
            ])
            .to_owned(),
        _ => {
            let text = random.pick(TEXT);
            text.repeat(1 + random.below(200))
        }
    }
}

fn point(random: &mut Random) -> GridPoint {
    GridPoint {
        line: random.below(200) as i32 - 120,
        col: random.below(300) as u16,
    }
}

#[test]
fn hostile_output_gives_a_screen_never_a_panic() {
    let mut random = Random(0x0bad_c0de_5eed_0001);
    for case in 0..60 {
        let mut screen = Screen::new(
            ScreenSize::clamped(random.below(130) as u16, random.below(50) as u16),
            random.below(300),
        );
        for step in 0..120 {
            let mut bytes = Vec::new();
            for _ in 0..1 + random.below(6) {
                bytes.extend_from_slice(piece(&mut random).as_bytes());
            }
            // Cut anywhere, as the network cuts.
            let cut = random.below(bytes.len() + 1);
            let action = random.below(12);
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                screen.feed(&bytes[..cut]);
                screen.feed(&bytes[cut..]);
                match action {
                    0 => screen.resize(ScreenSize::clamped(
                        random.below(300) as u16,
                        random.below(120) as u16,
                    )),
                    1 => screen.scroll(random.below(400) as i32 - 200),
                    2 => {
                        let _ = screen.text_between(point(&mut random), point(&mut random));
                    }
                    3 => {
                        let query =
                            random.pick(&["text", "日本", "🦀", "e\u{301}", "(", "\\", " "]);
                        let _ = screen.search(query, 1 + random.below(20));
                    }
                    4 => screen.scroll_to_bottom(),
                    // The session draws a held synchronized update when it is due.
                    5 | 6 if screen.sync_deadline().is_some() => screen.end_sync(),
                    _ => {}
                }
                let _ = screen.take_replies();
                let _ = screen.update();
                let _ = screen.text();
            }));
            assert!(
                outcome.is_ok(),
                "case {case}, step {step}: a panic on {:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
        // Still usable: after a reset, plain text shows up (on a screen wide
        // enough for it, the view at the bottom, a held update drawn as the
        // session draws it when due).
        screen.resize(ScreenSize::clamped(80, 24));
        screen.scroll_to_bottom();
        screen.feed(b"\x1bc\x1b[?1049l\x1b[0m\r\nportcullis-after");
        if screen.sync_deadline().is_some() {
            screen.end_sync();
        }
        assert!(
            screen
                .text()
                .iter()
                .any(|row| row.contains("portcullis-after")),
            "case {case}: the screen works on"
        );
    }
}

/// The cells a row shows, as the UI lays them out: a wide character's run
/// takes two cells per character.
fn cells_shown(screen: &mut Screen, row: u16) -> usize {
    let update = screen.update();
    update
        .rows
        .iter()
        .filter(|r| r.row == row)
        .flat_map(|r| &r.runs)
        .map(|run| run.text.chars().count() * if run.wide { 2 } else { 1 })
        .sum()
}

/// Found by the test above. Deleting, inserting or erasing cells split a wide
/// character from its spacer: `日`, CR, DCH left a spacer in the first column,
/// which panicked the cursor's rendering, and any half left behind shifted the
/// rest of the row by a cell in the UI. The broken half is now blanked.
#[test]
fn cutting_a_wide_character_in_half_blanks_it_and_keeps_the_row_aligned() {
    for (bytes, what) in [
        ("日x\r\x1b[P", "DCH on the character"),
        ("ab日x\x1b[3G\x1b[P", "DCH on its spacer"),
        ("ab日x\x1b[4G\x1b[@", "ICH on its spacer"),
        ("ab日x\x1b[3G\x1b[X", "ECH on the character"),
        (
            "ab日x\x1b[4G\x1b[1K",
            "EL to the left, ending on its spacer",
        ),
        (
            "abcdefg日\x1b[1G\x1b[2@",
            "ICH pushing its spacer off the line",
        ),
    ] {
        let mut screen = Screen::new(ScreenSize::clamped(10, 3), 10);
        screen.feed(bytes.as_bytes());
        let shown = cells_shown(&mut screen, 0);
        assert!(shown <= 10, "{what}: {shown} cells shown on a 10-cell row");
        let text = screen.text().concat();
        assert!(
            !text.contains('日'),
            "{what}: the cut character is blanked: {text:?}"
        );
        assert!(
            text.contains('x') || what.contains("off the line"),
            "{what}: {text:?}"
        );
    }
}

/// Found by the test above: selecting to the end of a line whose last cell
/// is a leading spacer (the wide character wrapped to the next line) read
/// the line above, out of the grid for the topmost line. It takes the
/// character from the next line now.
#[test]
fn a_selection_ending_where_a_wide_character_wrapped_takes_it_from_the_next_line() {
    let mut screen = Screen::new(ScreenSize::clamped(5, 3), 0);
    screen.feed("abcd日".as_bytes());
    let start = GridPoint { line: 0, col: 0 };
    let end = GridPoint { line: 0, col: 4 };
    assert_eq!(screen.text_between(start, end), "abcd日");
}

/// Found by the test above: deleting lines (`CSI M`) while the view was
/// scrolled back moved the view up although no line went into the history,
/// until it pointed above the oldest line (a panic when drawing it).
#[test]
fn deleting_lines_while_scrolled_back_keeps_the_view_inside_the_history() {
    let mut screen = Screen::new(ScreenSize::clamped(10, 4), 100);
    for i in 0..8 {
        screen.feed(format!("line {i}\r\n").as_bytes());
    }
    let history = screen.history_size();
    screen.scroll(history as i32);
    assert_eq!(screen.display_offset(), history);
    for _ in 0..5 {
        screen.feed(b"\x1b[2;1H\x1b[M");
        assert!(screen.display_offset() <= screen.history_size());
        let _ = screen.update();
    }
    // Lines that do go into the history still keep the view where it was.
    screen.feed(b"\x1b[4;1H\r\nmore\r\n");
    assert!(screen.display_offset() <= screen.history_size());
    assert!(
        screen.text()[0].starts_with("line 0"),
        "{:?}",
        screen.text()
    );
}
