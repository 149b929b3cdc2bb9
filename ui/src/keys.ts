// Keyboard events to what the backend encodes (portcullis_terminal::input::Key).

import type { Key, Modifiers } from "./api";

const NAMED: Record<string, Key> = {
  Enter: "enter",
  Tab: "tab",
  Backspace: "backspace",
  Escape: "escape",
  ArrowUp: "up",
  ArrowDown: "down",
  ArrowLeft: "left",
  ArrowRight: "right",
  Home: "home",
  End: "end",
  PageUp: "page_up",
  PageDown: "page_down",
  Insert: "insert",
  Delete: "delete",
};

export interface KeyPress {
  key: Key;
  mods: Modifiers;
}

/**
 * The key to send for a keydown, or null when the terminal should not take it
 * (modifier keys alone, the app's own shortcuts, dead keys).
 */
export function keyFromEvent(event: Pick<KeyboardEvent, "key" | "ctrlKey" | "altKey" | "shiftKey" | "metaKey">): KeyPress | null {
  if (event.metaKey) {
    return null;
  }
  const mods: Modifiers = { shift: event.shiftKey, alt: event.altKey, ctrl: event.ctrlKey };
  // Ctrl+Shift+C/V copy and paste, as in most terminals; the app handles them.
  if (event.ctrlKey && event.shiftKey && (event.key === "C" || event.key === "V" || event.key === "c" || event.key === "v")) {
    return null;
  }
  const named = NAMED[event.key];
  if (named !== undefined) {
    return { key: named, mods };
  }
  const f = /^F([1-9]|1[0-2])$/.exec(event.key);
  if (f?.[1]) {
    return { key: { f: Number(f[1]) }, mods };
  }
  // One printable character (a letter, a digit, a symbol, a composed character).
  if ([...event.key].length === 1) {
    // Shift is already in the character itself.
    return { key: { char: event.key }, mods: { ...mods, shift: false } };
  }
  return null;
}
