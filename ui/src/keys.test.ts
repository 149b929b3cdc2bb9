import { describe, expect, it } from "vitest";
import { keyFromEvent } from "./keys";

const press = (key: string, mods: Partial<{ ctrlKey: boolean; altKey: boolean; shiftKey: boolean; metaKey: boolean }> = {}) =>
  keyFromEvent({ key, ctrlKey: false, altKey: false, shiftKey: false, metaKey: false, ...mods });

describe("keys", () => {
  it("maps named, function and printable keys", () => {
    expect(press("Enter")).toEqual({ key: "enter", mods: { shift: false, alt: false, ctrl: false } });
    expect(press("ArrowUp", { shiftKey: true })?.key).toBe("up");
    expect(press("F5")).toEqual({ key: { f: 5 }, mods: { shift: false, alt: false, ctrl: false } });
    expect(press("A", { shiftKey: true })).toEqual({ key: { char: "A" }, mods: { shift: false, alt: false, ctrl: false } });
    expect(press("c", { ctrlKey: true })?.mods.ctrl).toBe(true);
    expect(press("é")?.key).toEqual({ char: "é" });
  });

  it("leaves modifiers alone, the app's shortcuts and Meta to the app", () => {
    expect(press("Shift", { shiftKey: true })).toBeNull();
    expect(press("Dead")).toBeNull();
    expect(press("C", { ctrlKey: true, shiftKey: true })).toBeNull();
    expect(press("k", { metaKey: true })).toBeNull();
    expect(press("F13")).toBeNull();
  });
});
