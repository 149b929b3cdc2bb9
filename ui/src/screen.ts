// The terminal view: a model of the screen rebuilt from the backend's updates
// (rows of styled runs), and a DOM renderer that touches only changed rows.

import type { Colour, CursorShape, Run, ScreenUpdate, SearchMatch } from "./api";

/** xterm's 256-colour palette for indexes 16–255 (0–15 come from the theme). */
export function indexedColour(index: number): string {
  if (index >= 232) {
    const level = 8 + (index - 232) * 10;
    return `rgb(${level}, ${level}, ${level})`;
  }
  const cube = index - 16;
  const step = (n: number) => (n === 0 ? 0 : 55 + n * 40);
  const r = step(Math.floor(cube / 36) % 6);
  const g = step(Math.floor(cube / 6) % 6);
  const b = step(cube % 6);
  return `rgb(${r}, ${g}, ${b})`;
}

export interface RunStyle {
  classes: string[];
  color: string | null;
  background: string | null;
}

/**
 * Classes and inline colours for a run. Theme colours (default, 0–15) are
 * classes so dark and light themes decide them; others are computed.
 */
export function runStyle(run: Run): RunStyle {
  let fg: Colour = run.fg;
  let bg: Colour = run.bg;
  const classes: string[] = [];
  if (run.inverse) {
    [fg, bg] = [bg, fg];
    if (fg === "default") {
      classes.push("fg-inverse");
    }
    if (bg === "default") {
      classes.push("bg-inverse");
    }
  }
  let color: string | null = null;
  let background: string | null = null;
  const place = (colour: Colour, role: "fg" | "bg"): string | null => {
    if (colour === "default") {
      return null;
    }
    if ("indexed" in colour) {
      if (colour.indexed < 16) {
        // Bold text in the first eight colours brightens, as xterm does.
        const index = role === "fg" && run.bold && colour.indexed < 8 ? colour.indexed + 8 : colour.indexed;
        classes.push(`${role}-${index}`);
        return null;
      }
      return indexedColour(colour.indexed);
    }
    return `#${colour.rgb.toString(16).padStart(6, "0")}`;
  };
  color = place(fg, "fg");
  background = place(bg, "bg");
  if (run.bold) classes.push("bold");
  if (run.italic) classes.push("italic");
  if (run.underline) classes.push("underline");
  if (run.wide) classes.push("wide");
  return { classes, color, background };
}

/** What the UI knows of one session's screen. */
export class ScreenModel {
  cols = 0;
  rows: Run[][] = [];
  cursor: { row: number; col: number; shape: CursorShape } = { row: 0, col: 0, shape: "block" };
  appCursor = false;
  bracketedPaste = false;
  altScreen = false;
  mouseReporting = false;
  displayOffset = 0;
  history = 0;
  title: string | null = null;

  /** Applies an update; returns the rows to redraw (all of them after a full update). */
  apply(update: ScreenUpdate): number[] {
    const resized = update.size.rows !== this.rows.length || update.size.cols !== this.cols;
    this.cols = update.size.cols;
    if (update.full || resized) {
      this.rows = Array.from({ length: update.size.rows }, () => []);
    }
    const changed: number[] = [];
    for (const row of update.rows) {
      if (row.row < this.rows.length) {
        this.rows[row.row] = row.runs;
        changed.push(row.row);
      }
    }
    this.cursor = update.cursor;
    this.appCursor = update.app_cursor;
    this.bracketedPaste = update.bracketed_paste;
    this.altScreen = update.alt_screen;
    this.mouseReporting = update.mouse_reporting;
    this.displayOffset = update.display_offset;
    this.history = update.history;
    if (update.title !== undefined) {
      this.title = update.title;
    }
    return update.full || resized ? this.rows.map((_, i) => i) : changed;
  }

  /** Each row as plain text, trailing blanks removed. */
  text(): string[] {
    return this.rows.map((runs) => runs.map((r) => r.text).join("").trimEnd());
  }
}

export function renderRow(doc: Document, runs: Run[]): HTMLElement {
  const row = doc.createElement("div");
  row.className = "term-row";
  for (const run of runs) {
    const span = doc.createElement("span");
    const style = runStyle(run);
    if (style.classes.length > 0) {
      span.className = style.classes.join(" ");
    }
    if (style.color) span.style.color = style.color;
    if (style.background) span.style.backgroundColor = style.background;
    span.textContent = run.text;
    row.append(span);
  }
  // An empty row keeps its height.
  if (runs.length === 0) {
    row.textContent = " ";
  }
  return row;
}

/** Draws a ScreenModel into a container; only changed rows are replaced. */
/** Where a search hit sits in the viewport, or null when it is scrolled away. */
export function hitInView(hit: SearchMatch, displayOffset: number, rows: number, cols: number): { row: number; col: number; width: number } | null {
  const row = hit.start.line + displayOffset;
  if (row < 0 || row >= rows) return null;
  const end = hit.end.line === hit.start.line ? hit.end.col : cols - 1;
  return { row, col: hit.start.col, width: Math.max(1, end - hit.start.col + 1) };
}

/**
 * Lines to scroll (positive: back into the scrollback) so that grid line `line`
 * shows a third of the way down; none when it is in view already.
 */
export function scrollToShow(line: number, displayOffset: number, rows: number, history: number): number {
  const row = line + displayOffset;
  if (row >= 0 && row < rows) return 0;
  const target = Math.min(Math.max(Math.floor(rows / 3) - line, 0), history);
  return target - displayOffset;
}

export class TerminalView {
  readonly model = new ScreenModel();
  private readonly rowsEl: HTMLElement;
  private readonly cursorEl: HTMLElement;
  private readonly hitEl: HTMLElement;
  private hit: SearchMatch | null = null;

  constructor(readonly element: HTMLElement) {
    const doc = element.ownerDocument;
    element.classList.add("terminal");
    this.rowsEl = doc.createElement("div");
    this.rowsEl.className = "term-rows";
    this.cursorEl = doc.createElement("div");
    this.cursorEl.className = "term-cursor";
    this.hitEl = doc.createElement("div");
    this.hitEl.className = "term-hit";
    this.hitEl.hidden = true;
    element.append(this.rowsEl, this.cursorEl, this.hitEl);
  }

  /** Marks a search hit (or none); it follows scrolling. */
  highlight(hit: SearchMatch | null): void {
    this.hit = hit;
    this.placeHit();
  }

  private placeHit(): void {
    const at = this.hit && hitInView(this.hit, this.model.displayOffset, this.model.rows.length, this.model.cols);
    this.hitEl.hidden = !at;
    if (at) {
      this.hitEl.style.setProperty("--hit-row", String(at.row));
      this.hitEl.style.setProperty("--hit-col", String(at.col));
      this.hitEl.style.setProperty("--hit-width", String(at.width));
    }
  }

  apply(update: ScreenUpdate): void {
    const doc = this.element.ownerDocument;
    const changed = this.model.apply(update);
    while (this.rowsEl.children.length > this.model.rows.length) {
      this.rowsEl.lastElementChild?.remove();
    }
    while (this.rowsEl.children.length < this.model.rows.length) {
      this.rowsEl.append(renderRow(doc, []));
    }
    for (const index of changed) {
      const old = this.rowsEl.children[index];
      const runs = this.model.rows[index];
      if (old && runs) {
        old.replaceWith(renderRow(doc, runs));
      }
    }
    const { row, col, shape } = this.model.cursor;
    this.cursorEl.className = `term-cursor cursor-${shape}`;
    this.cursorEl.style.setProperty("--cursor-row", String(row));
    this.cursorEl.style.setProperty("--cursor-col", String(col));
    this.placeHit();
  }

  /** The visible text (what a person reads). */
  text(): string {
    return this.model.text().join("\n");
  }
}
