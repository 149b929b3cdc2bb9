import { describe, expect, it } from "vitest";
import type { ScreenUpdate } from "./api";
import { hitInView, indexedColour, runStyle, ScreenModel, scrollToShow, TerminalView } from "./screen";

function update(partial: Partial<ScreenUpdate>): ScreenUpdate {
  return {
    size: { cols: 10, rows: 3 },
    full: false,
    rows: [],
    cursor: { row: 0, col: 0, shape: "block" },
    alt_screen: false,
    app_cursor: false,
    bracketed_paste: false,
    mouse_reporting: false,
    display_offset: 0,
    history: 0,
    ...partial,
  };
}

describe("screen model", () => {
  it("applies full and partial updates and reports the rows to redraw", () => {
    const model = new ScreenModel();
    const plain = { fg: "default", bg: "default" } as const;
    expect(
      model.apply(update({ full: true, rows: [{ row: 0, runs: [{ text: "hello", ...plain }] }] })),
    ).toEqual([0, 1, 2]);
    expect(model.text()).toEqual(["hello", "", ""]);
    expect(model.apply(update({ rows: [{ row: 2, runs: [{ text: "$ ", ...plain }] }], app_cursor: true }))).toEqual([2]);
    expect(model.text()).toEqual(["hello", "", "$"]);
    expect(model.appCursor).toBe(true);
    // A resize starts over even without the full flag.
    expect(model.apply(update({ size: { cols: 20, rows: 2 } }))).toEqual([0, 1]);
    expect(model.text()).toEqual(["", ""]);
    // Rows beyond the screen are ignored, not grown into.
    expect(model.apply(update({ size: { cols: 20, rows: 2 }, rows: [{ row: 9, runs: [] }] }))).toEqual([]);
  });

  it("maps colours: theme classes for 0-15, computed for the rest, inverse swaps", () => {
    expect(runStyle({ text: "x", fg: { indexed: 1 }, bg: "default", bold: true })).toEqual({
      classes: ["fg-9", "bold"],
      color: null,
      background: null,
    });
    expect(runStyle({ text: "x", fg: { indexed: 196 }, bg: { rgb: 0x0a0b0c } })).toEqual({
      classes: [],
      color: "rgb(255, 0, 0)",
      background: "#0a0b0c",
    });
    expect(runStyle({ text: "x", fg: "default", bg: { indexed: 4 }, inverse: true }).classes).toEqual([
      "bg-inverse",
      "fg-4",
    ]);
    expect(indexedColour(232)).toBe("rgb(8, 8, 8)");
    expect(indexedColour(255)).toBe("rgb(238, 238, 238)");
    expect(indexedColour(16)).toBe("rgb(0, 0, 0)");
  });

  it("renders only changed rows into the DOM", () => {
    const element = document.createElement("div");
    const view = new TerminalView(element);
    const plain = { fg: "default", bg: "default" } as const;
    view.apply(update({ full: true, rows: [{ row: 0, runs: [{ text: "a", ...plain }] }] }));
    const rows = element.querySelector(".term-rows");
    if (!rows) throw new Error("no rows element");
    const first = rows.children[0];
    const second = rows.children[1];
    view.apply(update({ rows: [{ row: 1, runs: [{ text: "b", ...plain, fg: { indexed: 2 } }] }] }));
    expect(rows.children[0]).toBe(first);
    expect(rows.children[1]).not.toBe(second);
    expect(rows.children[1]?.querySelector("span")?.className).toBe("fg-2");
    expect(view.text()).toBe("a\nb\n");
  });

  it("never interprets server text as markup", () => {
    const element = document.createElement("div");
    const view = new TerminalView(element);
    view.apply(update({ full: true, rows: [{ row: 0, runs: [{ text: "<img src=x onerror=alert(1)>", fg: "default", bg: "default" }] }] }));
    expect(element.querySelector("img")).toBeNull();
    expect(view.text().split("\n")[0]).toBe("<img src=x onerror=alert(1)>");
  });
});

describe("search hits in the viewport", () => {
  const hit = (line: number, start: number, end: number, endLine = line) => ({
    start: { line, col: start },
    end: { line: endLine, col: end },
  });

  it("places a hit by the display offset and hides it when scrolled away", () => {
    expect(hitInView(hit(-5, 2, 4), 0, 24, 80)).toBeNull();
    expect(hitInView(hit(-5, 2, 4), 10, 24, 80)).toEqual({ row: 5, col: 2, width: 3 });
    expect(hitInView(hit(3, 0, 0), 0, 24, 80)).toEqual({ row: 3, col: 0, width: 1 });
    // A hit wrapped onto the next line is marked to the end of its first row.
    expect(hitInView(hit(3, 70, 5, 4), 0, 24, 80)).toEqual({ row: 3, col: 70, width: 10 });
    expect(hitInView(hit(30, 0, 1), 0, 24, 80)).toBeNull();
  });

  it("scrolls only as far as needed and never past the scrollback", () => {
    expect(scrollToShow(5, 0, 24, 100)).toBe(0);
    // Line -50 at a third of 24 rows: offset 58, from 0.
    expect(scrollToShow(-50, 0, 24, 100)).toBe(58);
    // Already scrolled back 70: come forward 12.
    expect(scrollToShow(-50, 70, 24, 100)).toBe(0);
    expect(scrollToShow(-50, 80, 24, 100)).toBe(-22);
    expect(scrollToShow(-99, 0, 24, 100)).toBe(100);
  });
});
