import { describe, expect, it } from "vitest";

import { asBytes, coalesce, InputSender, MAX_INPUT_BATCH, parseFrame, toDesktop } from "./desktop";
import type { RdpInput } from "./api";

/** A frame as the client core encodes it (rdp::frame::encode). */
function frame(width: number, height: number, rects: [number, number, number, number, number][], full = false): Uint8Array {
  const size = 8 + rects.reduce((n, [, , w, h]) => n + 8 + w * h * 4, 0);
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, 1);
  view.setUint8(1, full ? 1 : 0);
  view.setUint16(2, width, true);
  view.setUint16(4, height, true);
  view.setUint16(6, rects.length, true);
  let at = 8;
  for (const [x, y, w, h, fill] of rects) {
    view.setUint16(at, x, true);
    view.setUint16(at + 2, y, true);
    view.setUint16(at + 4, w, true);
    view.setUint16(at + 6, h, true);
    at += 8;
    bytes.fill(fill, at, at + w * h * 4);
    at += w * h * 4;
  }
  return bytes;
}

describe("frame updates", () => {
  it("reads the rectangles and where their pixels are", () => {
    const parsed = parseFrame(frame(100, 50, [[0, 0, 2, 1, 7], [10, 20, 3, 2, 9]], true));
    expect(parsed.full).toBe(true);
    expect([parsed.width, parsed.height]).toEqual([100, 50]);
    expect(parsed.rects).toEqual([
      { x: 0, y: 0, width: 2, height: 1, offset: 16 },
      { x: 10, y: 20, width: 3, height: 2, offset: 16 + 8 + 8 },
    ]);
  });

  it("refuses cut, oversized, trailing and unknown updates", () => {
    const good = frame(4, 4, [[0, 0, 4, 4, 1]]);
    for (const cut of [0, 7, 8, 15, good.length - 1]) {
      expect(() => parseFrame(good.subarray(0, cut))).toThrow();
    }
    expect(() => parseFrame(frame(4, 4, [[1, 0, 4, 4, 1]]))).toThrow(/outside/);
    const trailing = new Uint8Array(good.length + 1);
    trailing.set(good);
    expect(() => parseFrame(trailing)).toThrow(/trailing/);
    const version = good.slice();
    version[0] = 2;
    expect(() => parseFrame(version)).toThrow(/version 2/);
  });

  it("accepts what the IPC layer hands over", () => {
    const bytes = frame(1, 1, []);
    expect(asBytes(bytes.buffer).length).toBe(8);
    expect(asBytes(Array.from(bytes)).length).toBe(8);
    expect(() => asBytes("no")).toThrow();
  });
});

describe("input", () => {
  it("maps the shown canvas onto the desktop and clamps", () => {
    expect(toDesktop(50, 25, 100, 50, 1920, 1080)).toEqual({ x: 960, y: 540 });
    expect(toDesktop(-5, 9999, 100, 50, 1920, 1080)).toEqual({ x: 0, y: 1079 });
    expect(toDesktop(10, 10, 0, 0, 1024, 768)).toEqual({ x: 10, y: 10 });
  });

  it("keeps the last of a run of moves and everything else in order", () => {
    expect(
      coalesce([
        { kind: "mouse_move", x: 1, y: 1 },
        { kind: "mouse_move", x: 2, y: 2 },
        { kind: "mouse_button", button: 0, down: true },
        { kind: "mouse_move", x: 3, y: 3 },
      ]),
    ).toEqual([
      { kind: "mouse_move", x: 2, y: 2 },
      { kind: "mouse_button", button: 0, down: true },
      { kind: "mouse_move", x: 3, y: 3 },
    ]);
  });
});

describe("input sender", () => {
  const key = (code: string, down: boolean): RdpInput => ({ kind: "key", code, down, text: null });

  it("sends one batch at a time, in order, the next when the last returned", async () => {
    const sent: RdpInput[][] = [];
    const replies: (() => void)[] = [];
    const sender = new InputSender(
      (events) => {
        sent.push(events);
        return new Promise<void>((done) => replies.push(done));
      },
      (run) => queueMicrotask(run),
    );
    sender.push(key("KeyT", true), key("KeyT", false));
    await Promise.resolve();
    expect(sent).toHaveLength(1);
    // Typed while the first batch is on its way: held back, not sent beside it.
    sender.push(key("KeyY", true), key("KeyY", false));
    sender.push(key("KeyP", true));
    await Promise.resolve();
    expect(sent).toHaveLength(1);
    replies[0]?.();
    await new Promise((r) => setTimeout(r, 0));
    expect(sent).toHaveLength(2);
    expect(sent.flat().map((e) => (e.kind === "key" ? `${e.code}${e.down ? "↓" : "↑"}` : e.kind))).toEqual(["KeyT↓", "KeyT↑", "KeyY↓", "KeyY↑", "KeyP↓"]);
  });

  it("keeps going after a failed call and never sends more than a batch holds", async () => {
    const sent: RdpInput[][] = [];
    const sender = new InputSender(
      (events) => {
        sent.push(events);
        return Promise.reject(new Error("session ended"));
      },
      (run) => queueMicrotask(run),
    );
    sender.push(...Array.from({ length: MAX_INPUT_BATCH + 10 }, (_, i) => key(i % 2 ? "KeyA" : "KeyB", true)));
    await new Promise((r) => setTimeout(r, 0));
    expect(sent.map((b) => b.length)).toEqual([MAX_INPUT_BATCH, 10]);
  });
});
