// A tiny DOM builder: text is always text (textContent), never markup.

type Child = Node | string | null | undefined | false;

export interface Attrs {
  class?: string;
  id?: string;
  type?: string;
  title?: string;
  placeholder?: string;
  value?: string;
  name?: string;
  for?: string;
  tabindex?: string;
  role?: string;
  "aria-label"?: string;
  "aria-live"?: string;
  "aria-selected"?: string;
  "aria-pressed"?: string;
  [data: `data-${string}`]: string;
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined) {
      element.setAttribute(name, value);
    }
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child);
  }
  return element;
}

export function clear(element: Element): void {
  element.replaceChildren();
}
