//! The terminal screen model of an SSH session, sans-IO: bytes from the server go
//! in, screen updates for the UI and replies for the server come out.
//!
//! alacritty_terminal keeps the grid; this crate turns its damage into compact,
//! serializable updates (rows of styled runs), so the UI redraws only what changed.
//!
//! INVARIANT: no I/O, no clock, no async runtime: the caller decides when to ask
//! for an update (at most once per display frame), where replies go, and when a
//! held synchronized update is due ([`Screen::sync_deadline`]).

pub mod input;

use std::sync::{Arc, Mutex};

use alacritty_terminal::event::{Event, EventListener};
use alacritty_terminal::grid::{Dimensions, Scroll};
use alacritty_terminal::index::{Column, Direction, Line, Point, Side};
use alacritty_terminal::term::cell::{Cell, Flags};
use alacritty_terminal::term::search::RegexSearch;
use alacritty_terminal::term::{Config, Term, TermDamage, TermMode};
use alacritty_terminal::vte::ansi::{Color, CursorShape as VteCursorShape, NamedColor, Processor};

/// Columns and rows of the visible screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScreenSize {
    pub cols: u16,
    pub rows: u16,
}

impl ScreenSize {
    /// At least 2×1, at most 1000×500: a UI can ask for nonsense, the model cannot
    /// take it. Two columns because a wide character needs two: alacritty_terminal
    /// writes its second half out of bounds on a one-column grid and panics.
    pub fn clamped(cols: u16, rows: u16) -> ScreenSize {
        ScreenSize {
            cols: cols.clamp(2, 1000),
            rows: rows.clamp(1, 500),
        }
    }
}

impl Dimensions for ScreenSize {
    fn total_lines(&self) -> usize {
        self.rows as usize
    }

    fn screen_lines(&self) -> usize {
        self.rows as usize
    }

    fn columns(&self) -> usize {
        self.cols as usize
    }
}

/// A colour as the UI needs it: the theme's default, one of the 256 indexed
/// colours (0–15 are the named ones), or truecolor `0xRRGGBB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Colour {
    Default,
    Indexed(u8),
    Rgb(u32),
}

/// Consecutive cells of one style.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Run {
    pub text: String,
    pub fg: Colour,
    pub bg: Colour,
    #[serde(default, skip_serializing_if = "is_false")]
    pub bold: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub italic: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub underline: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub inverse: bool,
    /// Every character of the run takes two columns.
    #[serde(default, skip_serializing_if = "is_false")]
    pub wide: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RowUpdate {
    pub row: u16,
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CursorShape {
    Block,
    Underline,
    Beam,
    Hidden,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    pub row: u16,
    pub col: u16,
    pub shape: CursorShape,
}

/// What changed since the previous update.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScreenUpdate {
    pub size: ScreenSize,
    /// Every row is included (first update, resize, alternate screen switch).
    pub full: bool,
    pub rows: Vec<RowUpdate>,
    pub cursor: Cursor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub bell: bool,
    pub alt_screen: bool,
    pub app_cursor: bool,
    pub bracketed_paste: bool,
    pub mouse_reporting: bool,
    /// How many lines the view is scrolled back (0: following the output).
    pub display_offset: u32,
    /// Lines kept in the scrollback.
    pub history: u32,
}

/// A cell of the grid: `line` 0 is the top row of the live screen, negative
/// lines are in the scrollback (the UI adds its display offset to a viewport row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GridPoint {
    pub line: i32,
    pub col: u16,
}

/// A search hit, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SearchMatch {
    pub start: GridPoint,
    pub end: GridPoint,
}

/// Longest search text taken from a UI field.
pub const MAX_SEARCH_CHARS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    #[error("search for something: the text is empty")]
    Empty,
    #[error("search text longer than {MAX_SEARCH_CHARS} characters")]
    TooLong,
}

#[derive(Default)]
struct Inbox {
    title: Option<Option<String>>,
    bell: bool,
    replies: Vec<u8>,
}

#[derive(Clone)]
struct Listener(Arc<Mutex<Inbox>>);

impl EventListener for Listener {
    fn send_event(&self, event: Event) {
        let mut inbox = self.0.lock().expect("inbox lock");
        match event {
            Event::Title(title) => inbox.title = Some(Some(title)),
            Event::ResetTitle => inbox.title = Some(None),
            Event::Bell => inbox.bell = true,
            Event::PtyWrite(text) => inbox.replies.extend_from_slice(text.as_bytes()),
            _ => {}
        }
    }
}

pub struct Screen {
    term: Term<Listener>,
    parser: Processor,
    inbox: Arc<Mutex<Inbox>>,
    size: ScreenSize,
    title: Option<String>,
    needs_full: bool,
    was_alt: bool,
    was_offset: usize,
    /// The runs last sent for each row, so a row the terminal marks damaged
    /// (alacritty always marks the cursor's) is not sent again unchanged.
    sent: Vec<Vec<Run>>,
}

impl Screen {
    pub fn new(size: ScreenSize, scrollback_lines: usize) -> Screen {
        let size = ScreenSize::clamped(size.cols, size.rows);
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let config = Config {
            scrolling_history: scrollback_lines,
            ..Config::default()
        };
        Screen {
            term: Term::new(config, &size, Listener(Arc::clone(&inbox))),
            parser: Processor::new(),
            inbox,
            size,
            title: None,
            needs_full: true,
            was_alt: false,
            was_offset: 0,
            sent: Vec::new(),
        }
    }

    /// Bytes from the server.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.parser.advance(&mut self.term, bytes);
    }

    /// While the server holds a synchronized update open (`CSI ? 2026 h`, sent
    /// by tmux, neovim and others around a redraw), what it sends is kept back
    /// until it ends the update. This is when a held update must be drawn even
    /// if it never ends (a program killed mid-redraw, or a server that never
    /// sends the end): 150 ms after it began, as alacritty does. `None` when no
    /// update is held. The caller keeps the clock and calls [`Screen::end_sync`].
    pub fn sync_deadline(&self) -> Option<std::time::Instant> {
        self.parser.sync_timeout().sync_timeout()
    }

    /// Draws what a held synchronized update holds, and ends it.
    pub fn end_sync(&mut self) {
        self.parser.stop_sync(&mut self.term);
    }

    pub fn resize(&mut self, size: ScreenSize) {
        let size = ScreenSize::clamped(size.cols, size.rows);
        if size != self.size {
            self.size = size;
            self.term.resize(size);
            self.needs_full = true;
        }
    }

    /// The next update carries every row (a view attached or reloaded).
    pub fn refresh(&mut self) {
        self.needs_full = true;
    }

    pub fn size(&self) -> ScreenSize {
        self.size
    }

    /// Answers the terminal owes the server (cursor reports, device attributes).
    pub fn take_replies(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.inbox.lock().expect("inbox lock").replies)
    }

    pub fn title(&self) -> Option<&str> {
        self.title.as_deref()
    }

    /// The rows that changed since the last call (all of them when `full`).
    pub fn update(&mut self) -> ScreenUpdate {
        let (title_change, bell) = {
            let mut inbox = self.inbox.lock().expect("inbox lock");
            (inbox.title.take(), std::mem::take(&mut inbox.bell))
        };
        if let Some(title) = title_change.clone() {
            self.title = title;
        }
        let mode = *self.term.mode();
        let alt = mode.contains(TermMode::ALT_SCREEN);
        let offset = self.term.grid().display_offset();
        let mut full = self.needs_full || alt != self.was_alt || offset != self.was_offset;
        let mut damaged: Vec<usize> = Vec::new();
        // Always asked, even for a full update: it also records where the cursor
        // was, which the next partial damage is computed against.
        match self.term.damage() {
            TermDamage::Full => full = true,
            TermDamage::Partial(lines) => damaged.extend(lines.map(|d| d.line)),
        }
        // Scrolled back, the view moves under the damage alacritty reports;
        // every row is compared with what was sent instead.
        if full || offset > 0 {
            damaged = (0..self.size.rows as usize).collect();
        }
        damaged.sort_unstable();
        damaged.dedup();
        self.term.reset_damage();
        self.needs_full = false;
        self.was_alt = alt;
        self.was_offset = offset;

        if full {
            self.sent = vec![Vec::new(); self.size.rows as usize];
        }
        let mut rows = Vec::with_capacity(damaged.len());
        for row in damaged {
            if row >= self.size.rows as usize {
                continue;
            }
            let runs = self.row_runs(row);
            if !full && self.sent[row] == runs {
                continue;
            }
            self.sent[row] = runs.clone();
            rows.push(RowUpdate {
                row: row as u16,
                runs,
            });
        }
        let content = self.term.renderable_content();
        let shape = if !mode.contains(TermMode::SHOW_CURSOR) {
            CursorShape::Hidden
        } else {
            match content.cursor.shape {
                VteCursorShape::Underline => CursorShape::Underline,
                VteCursorShape::Beam => CursorShape::Beam,
                VteCursorShape::Hidden => CursorShape::Hidden,
                _ => CursorShape::Block,
            }
        };
        let cursor_row = content.cursor.point.line.0 + offset as i32;
        let cursor = Cursor {
            row: cursor_row.clamp(0, i32::from(self.size.rows) - 1) as u16,
            col: content.cursor.point.column.0 as u16,
            shape: if cursor_row < i32::from(self.size.rows) {
                shape
            } else {
                CursorShape::Hidden
            },
        };
        ScreenUpdate {
            size: self.size,
            full,
            rows,
            cursor,
            title: title_change.flatten(),
            bell,
            alt_screen: alt,
            app_cursor: mode.contains(TermMode::APP_CURSOR),
            bracketed_paste: mode.contains(TermMode::BRACKETED_PASTE),
            mouse_reporting: mode.intersects(TermMode::MOUSE_MODE),
            display_offset: offset as u32,
            history: self.term.grid().history_size() as u32,
        }
    }

    /// Scrolls the view `lines` back into the scrollback (negative: forward).
    pub fn scroll(&mut self, lines: i32) {
        self.term.scroll_display(Scroll::Delta(lines));
    }

    /// Back to following the output.
    pub fn scroll_to_bottom(&mut self) {
        self.term.scroll_display(Scroll::Bottom);
    }

    pub fn display_offset(&self) -> usize {
        self.term.grid().display_offset()
    }

    pub fn history_size(&self) -> usize {
        self.term.grid().history_size()
    }

    fn clamp_point(&self, point: GridPoint) -> Point {
        let top = -(self.history_size() as i32);
        let bottom = i32::from(self.size.rows) - 1;
        Point::new(
            Line(point.line.clamp(top, bottom)),
            Column(usize::from(point.col).min(usize::from(self.size.cols) - 1)),
        )
    }

    /// The text from `start` to `end` (both included, in either order): wide
    /// characters once, wrapped lines joined, hard line ends kept.
    pub fn text_between(&self, start: GridPoint, end: GridPoint) -> String {
        let (mut a, mut b) = (self.clamp_point(start), self.clamp_point(end));
        if b < a {
            std::mem::swap(&mut a, &mut b);
        }
        self.term.bounds_to_string(a, b)
    }

    /// Every place `query` (plain text, not a pattern) occurs in the scrollback
    /// and the screen, oldest first, at most `limit`.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchMatch>, SearchError> {
        if query.is_empty() {
            return Err(SearchError::Empty);
        }
        if query.chars().count() > MAX_SEARCH_CHARS {
            return Err(SearchError::TooLong);
        }
        let mut regex = RegexSearch::new(&escape_regex(query)).map_err(|_| SearchError::TooLong)?;
        let top = Point::new(Line(-(self.history_size() as i32)), Column(0));
        let mut origin = top;
        let mut found: Vec<SearchMatch> = Vec::new();
        while found.len() < limit {
            let Some(hit) =
                self.term
                    .search_next(&mut regex, origin, Direction::Right, Side::Left, None)
            else {
                break;
            };
            let (start, end) = (*hit.start(), *hit.end());
            // The search wraps around at the bottom; a hit before the last one ends it.
            if found.last().is_some_and(|last| {
                Point::new(Line(last.start.line), Column(usize::from(last.start.col))) >= start
            }) {
                break;
            }
            let point = |p: Point| GridPoint {
                line: p.line.0,
                col: p.column.0 as u16,
            };
            found.push(SearchMatch {
                start: point(start),
                end: point(end),
            });
            origin = if end.column.0 + 1 < usize::from(self.size.cols) {
                Point::new(end.line, end.column + 1)
            } else if end.line.0 + 1 < i32::from(self.size.rows) {
                Point::new(end.line + 1, Column(0))
            } else {
                break;
            };
        }
        Ok(found)
    }

    /// The visible text, one string per row, trailing blanks trimmed (for tests and search).
    pub fn text(&self) -> Vec<String> {
        (0..self.size.rows as usize)
            .map(|row| {
                self.row_runs(row)
                    .iter()
                    .map(|r| r.text.as_str())
                    .collect::<String>()
                    .trim_end()
                    .to_owned()
            })
            .collect()
    }

    fn row_runs(&self, row: usize) -> Vec<Run> {
        let grid = self.term.grid();
        let line = &grid[Line(row as i32 - grid.display_offset() as i32)];
        let mut runs: Vec<Run> = Vec::new();
        for col in 0..self.size.cols as usize {
            let cell: &Cell = &line[Column(col)];
            if cell.flags.contains(Flags::WIDE_CHAR_SPACER)
                || cell.flags.contains(Flags::LEADING_WIDE_CHAR_SPACER)
            {
                continue;
            }
            let style = Run {
                text: String::new(),
                fg: colour(cell.fg, true),
                bg: colour(cell.bg, false),
                bold: cell.flags.contains(Flags::BOLD),
                italic: cell.flags.contains(Flags::ITALIC),
                underline: cell.flags.intersects(Flags::ALL_UNDERLINES),
                inverse: cell.flags.contains(Flags::INVERSE),
                wide: cell.flags.contains(Flags::WIDE_CHAR),
            };
            let same = runs.last().is_some_and(|last| {
                (
                    last.fg,
                    last.bg,
                    last.bold,
                    last.italic,
                    last.underline,
                    last.inverse,
                    last.wide,
                ) == (
                    style.fg,
                    style.bg,
                    style.bold,
                    style.italic,
                    style.underline,
                    style.inverse,
                    style.wide,
                )
            });
            if !same {
                runs.push(style);
            }
            let run = runs.last_mut().expect("a run was just pushed");
            run.text.push(cell.c);
            if let Some(marks) = cell.zerowidth() {
                run.text.extend(marks);
            }
        }
        // Trailing blanks that look like the background are not worth sending.
        if let Some(last) = runs.last_mut()
            && last.bg == Colour::Default
            && !last.inverse
            && !last.underline
        {
            let kept = last.text.trim_end_matches(' ').len();
            last.text.truncate(kept);
            if last.text.is_empty() {
                runs.pop();
            }
        }
        runs
    }
}

/// A literal as a pattern for alacritty's regex search.
fn escape_regex(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn colour(colour: Color, foreground: bool) -> Colour {
    match colour {
        Color::Spec(rgb) => {
            Colour::Rgb((u32::from(rgb.r) << 16) | (u32::from(rgb.g) << 8) | u32::from(rgb.b))
        }
        Color::Indexed(i) => Colour::Indexed(i),
        Color::Named(named) => match named {
            NamedColor::Foreground | NamedColor::Background => Colour::Default,
            NamedColor::BrightForeground | NamedColor::DimForeground if foreground => {
                Colour::Default
            }
            other if (other as usize) < 16 => Colour::Indexed(other as u8),
            // Dim variants and the cursor colour: the theme decides.
            _ => Colour::Default,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(cols: u16, rows: u16) -> Screen {
        Screen::new(ScreenSize::clamped(cols, rows), 1000)
    }

    #[test]
    fn text_colours_and_styles_become_runs() {
        let mut s = screen(20, 3);
        s.feed(b"ok \x1b[1;31mred\x1b[0m \x1b[38;2;1;2;3mrgb\x1b[0m \x1b[38;5;200mx");
        let update = s.update();
        assert!(update.full);
        let runs = &update.rows[0].runs;
        assert_eq!(runs[0].text, "ok ");
        assert_eq!(
            (runs[1].text.as_str(), runs[1].fg, runs[1].bold),
            ("red", Colour::Indexed(1), true)
        );
        assert_eq!(
            (runs[3].text.as_str(), runs[3].fg),
            ("rgb", Colour::Rgb(0x010203))
        );
        assert_eq!(
            (runs[5].text.as_str(), runs[5].fg),
            ("x", Colour::Indexed(200))
        );
        assert_eq!(
            update.cursor,
            Cursor {
                row: 0,
                col: 12,
                shape: CursorShape::Block
            }
        );
    }

    #[test]
    fn only_damaged_rows_are_sent_again() {
        let mut s = screen(10, 5);
        s.feed(b"a\r\nb\r\nc");
        let _ = s.update();
        s.feed(b"\x1b[4;1Hchanged");
        let update = s.update();
        assert!(!update.full);
        assert_eq!(
            update.rows.iter().map(|r| r.row).collect::<Vec<_>>(),
            vec![3],
            "only the row that changed, not the row the cursor left"
        );
        let idle = s.update();
        assert!(idle.rows.is_empty(), "{idle:?}");
    }

    #[test]
    fn a_synchronized_update_is_held_until_it_ends_or_the_caller_ends_it() {
        let mut s = screen(20, 3);
        s.feed(b"before\r\n");
        let _ = s.update();
        assert_eq!(s.sync_deadline(), None);
        // Begun and ended: drawn as a whole when it ends.
        s.feed(b"\x1b[?2026hheld");
        assert!(s.sync_deadline().is_some());
        assert!(!s.text().concat().contains("held"), "kept back while open");
        s.feed(b" whole\x1b[?2026l");
        assert_eq!(s.sync_deadline(), None);
        assert!(s.text().concat().contains("held whole"));
        // Begun and never ended (the program died mid-redraw): held until the
        // caller, past the deadline, ends it.
        s.feed(b"\r\n\x1b[?2026hprompt$ ");
        let deadline = s.sync_deadline().expect("a held update");
        assert!(deadline > std::time::Instant::now());
        assert!(!s.text().concat().contains("prompt$"));
        s.end_sync();
        assert_eq!(s.sync_deadline(), None);
        assert!(s.text().concat().contains("prompt$"));
        assert!(!s.update().rows.is_empty(), "the held text is sent");
    }

    #[test]
    fn title_bell_alt_screen_and_replies() {
        let mut s = screen(10, 3);
        s.feed(b"\x1b]0;build log\x07\x07");
        let update = s.update();
        assert_eq!(update.title.as_deref(), Some("build log"));
        assert!(update.bell);
        assert_eq!(s.title(), Some("build log"));
        s.feed(b"\x1b[?1049h\x1b[2;3H\x1b[6n");
        let update = s.update();
        assert!(update.alt_screen && update.full);
        assert_eq!(s.take_replies(), b"\x1b[2;3R");
        s.feed(b"\x1b[?1049l\x1b[?1h\x1b[?2004h");
        let update = s.update();
        assert!(!update.alt_screen && update.full && update.app_cursor && update.bracketed_paste);
    }

    #[test]
    fn wide_and_combining_characters() {
        let mut s = screen(10, 2);
        s.feed("日本e\u{301}".as_bytes());
        let runs = s.update().rows.remove(0).runs;
        assert_eq!((runs[0].text.as_str(), runs[0].wide), ("日本", true));
        assert!(runs[1].text.starts_with("e\u{301}"));
        assert_eq!(s.text()[0], "日本e\u{301}");
    }

    #[test]
    fn the_narrowest_screen_still_takes_wide_characters() {
        // alacritty_terminal writes a wide character's spacer one column to the
        // right of it, even on a one-column grid (an index out of bounds).
        let mut s = Screen::new(ScreenSize::clamped(0, 0), 10);
        s.feed("日本".as_bytes());
        s.resize(ScreenSize { cols: 1, rows: 1 });
        s.feed("語".as_bytes());
        assert_eq!(s.size(), ScreenSize { cols: 2, rows: 1 });
        assert_eq!(s.text(), ["語"]);
        assert_eq!(s.history_size(), 2);
    }

    #[test]
    fn resize_sends_everything_and_serializes_compactly() {
        let mut s = screen(10, 2);
        s.feed(b"hi");
        let _ = s.update();
        s.resize(ScreenSize::clamped(20, 9999));
        let update = s.update();
        assert!(update.full);
        assert_eq!(
            update.size,
            ScreenSize {
                cols: 20,
                rows: 500
            }
        );
        assert_eq!(update.rows.len(), 500);
        let json = serde_json::to_string(&update.rows[0]).unwrap();
        assert_eq!(
            json,
            r#"{"row":0,"runs":[{"text":"hi","fg":"default","bg":"default"}]}"#
        );
        assert_eq!(
            serde_json::to_string(&update.rows[1]).unwrap(),
            r#"{"row":1,"runs":[]}"#
        );
        assert_eq!(ScreenSize::clamped(0, 0), ScreenSize { cols: 2, rows: 1 });
    }

    #[test]
    fn scrollback_view_selection_and_search() {
        let mut s = screen(10, 3);
        for n in 0..8 {
            s.feed(format!("line {n}\r\n").as_bytes());
        }
        s.feed("wrapped-long-text".as_bytes());
        let _ = s.update();
        assert_eq!(s.text(), ["line 7", "wrapped-lo", "ng-text"]);
        assert_eq!(s.history_size(), 7);

        // Scrolled back two lines: older rows come into view and are sent.
        s.scroll(2);
        let update = s.update();
        assert_eq!(update.display_offset, 2);
        assert_eq!(update.history, 7);
        assert!(update.full);
        assert_eq!(s.text(), ["line 5", "line 6", "line 7"]);
        assert_eq!(
            update.cursor.shape,
            CursorShape::Hidden,
            "the cursor is below the view"
        );
        s.scroll_to_bottom();
        assert!(s.update().full);

        // A selection across the wrap is one line; across a hard line end keeps it.
        let wrap = s.text_between(GridPoint { line: 1, col: 0 }, GridPoint { line: 2, col: 6 });
        assert_eq!(wrap, "wrapped-long-text");
        let hard = s.text_between(
            GridPoint { line: 0, col: 5 },
            GridPoint { line: -1, col: 0 },
        );
        assert_eq!(hard, "line 6\nline 7");

        let hits = s.search("line", 100).unwrap();
        assert_eq!(hits.len(), 8, "{hits:?}");
        assert_eq!(hits[0].start, GridPoint { line: -7, col: 0 });
        assert_eq!(hits[7].end, GridPoint { line: 0, col: 3 });
        let across_wrap = s.search("long-t", 10).unwrap();
        assert_eq!(
            across_wrap,
            [SearchMatch {
                start: GridPoint { line: 1, col: 8 },
                end: GridPoint { line: 2, col: 3 }
            }]
        );
        assert_eq!(s.search("a.c(", 10).unwrap(), []);
        assert_eq!(s.search("", 10), Err(SearchError::Empty));
        assert_eq!(s.search(&"x".repeat(300), 10), Err(SearchError::TooLong));
    }

    #[test]
    fn wide_characters_are_selected_once() {
        let mut s = screen(10, 2);
        s.feed("a中b".as_bytes());
        assert_eq!(
            s.text_between(GridPoint { line: 0, col: 0 }, GridPoint { line: 0, col: 3 }),
            "a中b"
        );
    }
}
