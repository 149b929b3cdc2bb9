// Search as you type across name, address, tags and notes: every word of the
// query must occur somewhere (case-insensitive); the matches are kept so the
// list can highlight them.

export interface Searchable {
  name: string;
  address?: string;
  tags: string[];
  notes?: string;
}

/** Half-open [start, end) character ranges to highlight in one field. */
export type Ranges = [number, number][];

export interface SearchHit {
  score: number;
  name: Ranges;
  address: Ranges;
  tags: Ranges[];
  notes: Ranges;
}

/** Longest query taken from the search box. */
export const MAX_QUERY = 200;

export function words(query: string): string[] {
  return query
    .slice(0, MAX_QUERY)
    .toLowerCase()
    .split(/\s+/)
    .filter((w) => w.length > 0);
}

function occurrences(text: string, word: string): Ranges {
  const found: Ranges = [];
  const lower = text.toLowerCase();
  let from = 0;
  for (;;) {
    const at = lower.indexOf(word, from);
    if (at < 0) {
      return found;
    }
    found.push([at, at + word.length]);
    from = at + word.length;
  }
}

/** Merges overlapping ranges (sorted), so highlighting never nests. */
export function merge(ranges: Ranges): Ranges {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const merged: Ranges = [];
  for (const range of sorted) {
    const last = merged[merged.length - 1];
    if (last && range[0] <= last[1]) {
      last[1] = Math.max(last[1], range[1]);
    } else {
      merged.push([range[0], range[1]]);
    }
  }
  return merged;
}

/** `null` when some word matches nowhere; otherwise where each field matched. */
export function match(item: Searchable, query: string): SearchHit | null {
  const hit: SearchHit = { score: 0, name: [], address: [], tags: item.tags.map(() => []), notes: [] };
  for (const word of words(query)) {
    const inName = occurrences(item.name, word);
    const inAddress = occurrences(item.address ?? "", word);
    const inTags = item.tags.map((tag) => occurrences(tag, word));
    const inNotes = occurrences(item.notes ?? "", word);
    const anywhere =
      inName.length + inAddress.length + inNotes.length + inTags.reduce((n, t) => n + t.length, 0);
    if (anywhere === 0) {
      return null;
    }
    hit.name.push(...inName);
    hit.address.push(...inAddress);
    inTags.forEach((ranges, i) => hit.tags[i]?.push(...ranges));
    hit.notes.push(...inNotes);
    // Name matches count most, a match at the start of the name most of all.
    hit.score += inName.length * 10 + (inName[0]?.[0] === 0 ? 20 : 0);
    hit.score += inTags.some((t) => t.length > 0) ? 5 : 0;
    hit.score += inAddress.length * 3 + inNotes.length;
  }
  hit.name = merge(hit.name);
  hit.address = merge(hit.address);
  hit.tags = hit.tags.map(merge);
  hit.notes = merge(hit.notes);
  return hit;
}

/** The items matching `query`, best first (all of them, in order, for an empty query). */
export function filter<T extends Searchable>(items: T[], query: string): { item: T; hit: SearchHit }[] {
  const results: { item: T; hit: SearchHit }[] = [];
  for (const item of items) {
    const hit = match(item, query);
    if (hit) {
      results.push({ item, hit });
    }
  }
  if (words(query).length > 0) {
    results.sort((a, b) => b.hit.score - a.hit.score || a.item.name.localeCompare(b.item.name));
  }
  return results;
}

/** Splits `text` into plain and highlighted pieces. */
export function pieces(text: string, ranges: Ranges): { text: string; marked: boolean }[] {
  const out: { text: string; marked: boolean }[] = [];
  let at = 0;
  for (const [start, end] of merge(ranges)) {
    if (start > at) {
      out.push({ text: text.slice(at, start), marked: false });
    }
    out.push({ text: text.slice(start, end), marked: true });
    at = end;
  }
  if (at < text.length) {
    out.push({ text: text.slice(at), marked: false });
  }
  return out;
}

/** Every tag of `items`, sorted, once. */
export function allTags(items: Searchable[]): string[] {
  return [...new Set(items.flatMap((item) => item.tags))].sort((a, b) => a.localeCompare(b));
}

/** The items carrying every tag of `selected` (all items when none is selected). */
export function withTags<T extends Searchable>(items: T[], selected: ReadonlySet<string>): T[] {
  if (selected.size === 0) {
    return items;
  }
  return items.filter((item) => [...selected].every((tag) => item.tags.includes(tag)));
}
