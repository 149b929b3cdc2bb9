//! Reference streams: byte streams recorded from real programs on a real PTY
//! (`tests/streams/record.py`: vim, htop, `ls --color`, CJK/emoji/combining
//! marks, 256 colours and truecolor, a resize in the middle) replayed into the
//! screen model and compared with snapshot files.
//!
//! Each replay also checks the damage path: a mirror built only from the
//! incremental updates (as the UI builds its view) must equal the final screen.
//!
//! `PORTCULLIS_BLESS=1 cargo test -p portcullis-terminal --test reference`
//! rewrites the snapshots; review the diff before committing it.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use portcullis_terminal::{Colour, Run, Screen, ScreenSize, ScreenUpdate};

enum Event {
    Size(ScreenSize),
    Data(Vec<u8>),
}

fn load(path: &Path) -> Vec<Event> {
    let text = std::fs::read_to_string(path).expect("read recording");
    text.lines()
        .map(|line| {
            let (kind, rest) = line.split_once(' ').expect("event line");
            match kind {
                "size" => {
                    let (cols, rows) = rest.split_once(' ').expect("size COLS ROWS");
                    Event::Size(ScreenSize::clamped(
                        cols.parse().expect("cols"),
                        rows.parse().expect("rows"),
                    ))
                }
                "data" => Event::Data(
                    base64::engine::general_purpose::STANDARD
                        .decode(rest)
                        .expect("base64 data"),
                ),
                other => panic!("unknown event {other:?} in {}", path.display()),
            }
        })
        .collect()
}

/// What the UI keeps: rows of runs, replaced as updates arrive.
#[derive(Default)]
struct Mirror {
    rows: Vec<Vec<Run>>,
}

impl Mirror {
    fn apply(&mut self, update: &ScreenUpdate) {
        if update.full {
            self.rows = vec![Vec::new(); update.size.rows as usize];
        }
        self.rows.resize(update.size.rows as usize, Vec::new());
        for row in &update.rows {
            self.rows[row.row as usize] = row.runs.clone();
        }
    }
}

fn style(run: &Run) -> Option<String> {
    let mut parts = Vec::new();
    let colour = |c: Colour| match c {
        Colour::Default => None,
        Colour::Indexed(i) => Some(format!("{i}")),
        Colour::Rgb(rgb) => Some(format!("#{rgb:06x}")),
    };
    if let Some(fg) = colour(run.fg) {
        parts.push(format!("fg={fg}"));
    }
    if let Some(bg) = colour(run.bg) {
        parts.push(format!("bg={bg}"));
    }
    for (on, name) in [
        (run.bold, "bold"),
        (run.italic, "italic"),
        (run.underline, "underline"),
        (run.inverse, "inverse"),
        (run.wide, "wide"),
    ] {
        if on {
            parts.push(name.into());
        }
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// A reviewable picture of the screen: text rows, then the styled runs.
fn render(last: &ScreenUpdate, rows: &[Vec<Run>]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "size {}x{} cursor {},{} {:?} alt={} app_cursor={} title={:?}",
        last.size.cols,
        last.size.rows,
        last.cursor.row,
        last.cursor.col,
        last.cursor.shape,
        last.alt_screen,
        last.app_cursor,
        last.title
    );
    for (index, runs) in rows.iter().enumerate() {
        let text: String = runs.iter().map(|r| r.text.as_str()).collect();
        let _ = writeln!(out, "{index:>3}|{}", text.trim_end());
    }
    let _ = writeln!(out, "styles:");
    for (index, runs) in rows.iter().enumerate() {
        let mut col = 0usize;
        for run in runs {
            let width: usize = run.text.chars().filter(|c| !is_combining(*c)).count()
                * if run.wide { 2 } else { 1 };
            if let Some(style) = style(run) {
                let _ = writeln!(out, "{index:>3} {col}+{width} {style} {:?}", run.text);
            }
            col += width;
        }
    }
    out
}

fn is_combining(c: char) -> bool {
    ('\u{300}'..='\u{36f}').contains(&c) || c == '\u{fe0f}' || c == '\u{200d}'
}

/// Replays a recording; the snapshot text, after checking that the rows built
/// from incremental updates equal a full render of the final state.
fn replay(path: &Path) -> String {
    let mut screen: Option<Screen> = None;
    let mut mirror = Mirror::default();
    for event in load(path) {
        match event {
            Event::Size(size) => match screen.as_mut() {
                Some(screen) => screen.resize(size),
                None => screen = Some(Screen::new(size, 1000)),
            },
            Event::Data(bytes) => {
                let screen = screen.as_mut().expect("size before data");
                screen.feed(&bytes);
                mirror.apply(&screen.update());
            }
        }
    }
    let screen = screen.as_mut().expect("a recording has a size");
    mirror.apply(&screen.update());
    screen.refresh();
    let full = screen.update();
    assert!(full.full);
    let mut rows = vec![Vec::new(); full.size.rows as usize];
    for row in &full.rows {
        rows[row.row as usize] = row.runs.clone();
    }
    assert_eq!(
        mirror.rows,
        rows,
        "{}: the incremental updates drifted from the screen",
        path.display()
    );
    render(&full, &rows)
}

fn streams() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/streams")
}

#[test]
fn recorded_streams_match_their_snapshots() {
    let bless = std::env::var_os("PORTCULLIS_BLESS").is_some();
    let mut names: Vec<PathBuf> = std::fs::read_dir(streams())
        .expect("streams folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rec"))
        .collect();
    names.sort();
    assert!(names.len() >= 6, "recordings are missing: {names:?}");
    let mut failures = Vec::new();
    for path in names {
        let from_updates = replay(&path);
        let snapshot = path.with_extension("snap");
        if bless {
            std::fs::write(&snapshot, &from_updates).expect("write snapshot");
            continue;
        }
        let expected = std::fs::read_to_string(&snapshot).unwrap_or_else(|_| {
            panic!(
                "{} has no snapshot; run with PORTCULLIS_BLESS=1 and review it",
                path.display()
            )
        });
        if expected != from_updates {
            failures.push(format!(
                "{}:\n--- expected\n{expected}\n--- got\n{from_updates}",
                path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
