// An RDP tab's view: a canvas the session's binary frame updates are drawn
// into, and the mouse, wheel and keyboard input taken from it. The frame format
// is the client core's (`rdp::frame`): version, kind, width, height, count, then
// rectangles of RGBA.

import type { RdpInput } from "./api";
import { h } from "./dom";

export interface FrameRect {
  x: number;
  y: number;
  width: number;
  height: number;
  /** Byte offset of the rectangle's pixels in the buffer. */
  offset: number;
}

export interface Frame {
  full: boolean;
  width: number;
  height: number;
  rects: FrameRect[];
}

const FRAME_VERSION = 1;
const HEADER = 8;
const RECT_HEADER = 8;

/** Reads a frame update; throws on anything malformed (never draws half of one). */
export function parseFrame(bytes: Uint8Array): Frame {
  if (bytes.byteLength < HEADER) throw new Error("frame update too short");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint8(0);
  if (version !== FRAME_VERSION) throw new Error(`frame update version ${version} is not understood`);
  const full = view.getUint8(1) === 1;
  const width = view.getUint16(2, true);
  const height = view.getUint16(4, true);
  const count = view.getUint16(6, true);
  const rects: FrameRect[] = [];
  let at = HEADER;
  for (let i = 0; i < count; i++) {
    if (at + RECT_HEADER > bytes.byteLength) throw new Error("frame update cut short");
    const x = view.getUint16(at, true);
    const y = view.getUint16(at + 2, true);
    const w = view.getUint16(at + 4, true);
    const hgt = view.getUint16(at + 6, true);
    at += RECT_HEADER;
    if (x + w > width || y + hgt > height) throw new Error("rectangle outside the desktop");
    const size = w * hgt * 4;
    if (at + size > bytes.byteLength) throw new Error("frame update cut short");
    rects.push({ x, y, width: w, height: hgt, offset: at });
    at += size;
  }
  if (at !== bytes.byteLength) throw new Error("trailing bytes in a frame update");
  return { full, width, height, rects };
}

/** Whatever the IPC layer hands over (ArrayBuffer, a typed array, or numbers) as bytes. */
export function asBytes(data: unknown): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data)) return Uint8Array.from(data as number[]);
  throw new Error("a frame update that is not bytes");
}

/** A point of the shown canvas (CSS pixels) in desktop pixels, clamped to the desktop. */
export function toDesktop(
  offsetX: number,
  offsetY: number,
  shownWidth: number,
  shownHeight: number,
  width: number,
  height: number,
): { x: number; y: number } {
  const sx = shownWidth > 0 ? width / shownWidth : 1;
  const sy = shownHeight > 0 ? height / shownHeight : 1;
  const clamp = (v: number, max: number) => Math.max(0, Math.min(max - 1, Math.floor(v)));
  return { x: clamp(offsetX * sx, width), y: clamp(offsetY * sy, height) };
}

/** Keeps the input of one animation frame, with runs of moves reduced to the last. */
export function coalesce(events: RdpInput[]): RdpInput[] {
  const out: RdpInput[] = [];
  for (const event of events) {
    const last = out[out.length - 1];
    if (event.kind === "mouse_move" && last?.kind === "mouse_move") {
      out[out.length - 1] = event;
    } else {
      out.push(event);
    }
  }
  return out;
}

/** Most input events in one call (the app refuses more). */
export const MAX_INPUT_BATCH = 1024;

/**
 * Sends input in batches, at most one per display frame and one at a time: a
 * batch leaves only once the previous call has returned, so keys arrive in the
 * order they were pressed (concurrent calls may be handled out of order).
 */
export class InputSender {
  private queue: RdpInput[] = [];
  private scheduled = false;
  private sending = false;

  constructor(
    private readonly send: (events: RdpInput[]) => Promise<unknown>,
    private readonly later: (run: () => void) => void = (run) => requestAnimationFrame(() => run()),
  ) {}

  push(...events: RdpInput[]): void {
    this.queue.push(...events);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.sending) return;
    this.scheduled = true;
    this.later(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.sending) return;
    const batch = coalesce(this.queue.splice(0, MAX_INPUT_BATCH));
    if (batch.length === 0) return;
    this.sending = true;
    void this.send(batch)
      .catch(() => undefined)
      .finally(() => {
        this.sending = false;
        if (this.queue.length > 0) this.schedule();
      });
  }
}

export class DesktopView {
  readonly element: HTMLElement;
  readonly canvas: HTMLCanvasElement;
  private readonly context: CanvasRenderingContext2D;
  width = 0;
  height = 0;
  /** Scale the desktop to fit the tab (true) or show it 1:1 with scrollbars. */
  fit = true;
  /** Frame updates applied, for tests and the status line. */
  frames = 0;
  private readonly input: InputSender;

  constructor(send: (events: RdpInput[]) => Promise<unknown>) {
    this.input = new InputSender(send);
    this.canvas = h("canvas", { class: "desktop-canvas", tabindex: "0", "aria-label": "Remote desktop" });
    this.element = h("div", { class: "desktop fit" }, this.canvas);
    const context = this.canvas.getContext("2d", { alpha: false });
    if (!context) throw new Error("no 2D canvas");
    this.context = context;
    this.wire();
  }

  /** Draws one frame update; a malformed one is reported, not half drawn. */
  apply(data: unknown): void {
    const bytes = asBytes(data);
    const frame = parseFrame(bytes);
    if (frame.width !== this.width || frame.height !== this.height) {
      this.width = frame.width;
      this.height = frame.height;
      this.canvas.width = frame.width;
      this.canvas.height = frame.height;
      this.layout();
    }
    for (const rect of frame.rects) {
      if (rect.width === 0 || rect.height === 0) continue;
      const pixels = new Uint8ClampedArray(bytes.buffer as ArrayBuffer, bytes.byteOffset + rect.offset, rect.width * rect.height * 4);
      this.context.putImageData(new ImageData(pixels, rect.width, rect.height), rect.x, rect.y);
    }
    this.frames++;
    this.canvas.dataset["frames"] = String(this.frames);
  }

  setFit(fit: boolean): void {
    this.fit = fit;
    this.element.classList.toggle("fit", fit);
    this.layout();
  }

  /** Sizes the canvas on screen: scaled into the tab, or at its own size. */
  layout(): void {
    if (!this.width || !this.height) return;
    if (!this.fit) {
      this.canvas.style.width = `${this.width}px`;
      this.canvas.style.height = `${this.height}px`;
      return;
    }
    const box = this.element.getBoundingClientRect();
    const scale = Math.min(box.width / this.width, box.height / this.height) || 1;
    this.canvas.style.width = `${Math.floor(this.width * scale)}px`;
    this.canvas.style.height = `${Math.floor(this.height * scale)}px`;
  }

  /** The tab's size in CSS pixels, for a desktop that fits it. */
  available(): { width: number; height: number } {
    const box = this.element.getBoundingClientRect();
    return { width: Math.floor(box.width), height: Math.floor(box.height) };
  }

  push(...events: RdpInput[]): void {
    this.input.push(...events);
  }

  private point(e: MouseEvent): { x: number; y: number } {
    const shown = this.canvas.getBoundingClientRect();
    return toDesktop(e.clientX - shown.left, e.clientY - shown.top, shown.width, shown.height, this.width, this.height);
  }

  private wire(): void {
    const canvas = this.canvas;
    canvas.addEventListener("mousemove", (e) => {
      if (!this.width) return;
      this.push({ kind: "mouse_move", ...this.point(e) });
    });
    canvas.addEventListener("mousedown", (e) => {
      if (!this.width) return;
      e.preventDefault();
      canvas.focus();
      this.push({ kind: "mouse_move", ...this.point(e) }, { kind: "mouse_button", button: e.button, down: true });
    });
    canvas.addEventListener("mouseup", (e) => {
      if (!this.width) return;
      e.preventDefault();
      this.push({ kind: "mouse_move", ...this.point(e) }, { kind: "mouse_button", button: e.button, down: false });
    });
    canvas.addEventListener("contextmenu", (e) => e.preventDefault());
    canvas.addEventListener(
      "wheel",
      (e) => {
        if (!this.width) return;
        e.preventDefault();
        // One notch is 120 units in RDP; browsers report about 100 pixels per notch.
        const units = (delta: number) => Math.max(-32768, Math.min(32767, Math.round((-delta / 100) * 120)));
        if (e.deltaY !== 0) this.push({ kind: "wheel", vertical: true, delta: units(e.deltaY) });
        if (e.deltaX !== 0) this.push({ kind: "wheel", vertical: false, delta: -units(e.deltaX) });
      },
      { passive: false },
    );
    canvas.addEventListener("keydown", (e) => {
      e.preventDefault();
      this.push({ kind: "key", code: e.code, down: true, text: e.key.length === 1 ? e.key : null });
    });
    canvas.addEventListener("keyup", (e) => {
      e.preventDefault();
      this.push({ kind: "key", code: e.code, down: false, text: null });
    });
    // Keys held when focus leaves would stay down on the server.
    canvas.addEventListener("blur", () => this.push({ kind: "release_all" }));
    new ResizeObserver(() => this.layout()).observe(this.element);
  }
}
