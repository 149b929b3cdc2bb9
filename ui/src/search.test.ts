import { describe, expect, it } from "vitest";
import { allTags, filter, match, merge, pieces, withTags } from "./search";

const hosts = [
  { name: "web1", address: "10.0.0.5", tags: ["prod", "web"], notes: "rack 4" },
  { name: "db-primary", address: "10.0.1.9", tags: ["prod", "db"], notes: "postgres 16, web backend" },
  { name: "staging-web", address: "10.9.0.2", tags: ["staging"], notes: "" },
];

describe("search", () => {
  it("matches every word somewhere, case-insensitively", () => {
    expect(filter(hosts, "PROD web").map((r) => r.item.name)).toEqual(["web1", "db-primary"]);
    expect(filter(hosts, "postgres").map((r) => r.item.name)).toEqual(["db-primary"]);
    expect(filter(hosts, "10.9").map((r) => r.item.name)).toEqual(["staging-web"]);
    expect(filter(hosts, "nothing-like-this")).toEqual([]);
  });

  it("keeps the inventory order for an empty query and ranks name matches first", () => {
    expect(filter(hosts, "   ").map((r) => r.item.name)).toEqual(["web1", "db-primary", "staging-web"]);
    // "web" is in two names and one note: names first, the name starting with it on top.
    expect(filter(hosts, "web").map((r) => r.item.name)).toEqual(["web1", "staging-web", "db-primary"]);
  });

  it("reports where each field matched, for highlighting", () => {
    const db = hosts[1];
    if (!db) throw new Error("fixture");
    const hit = match(db, "db pri");
    expect(hit?.name).toEqual([[0, 2], [3, 6]]);
    expect(hit?.tags).toEqual([[], [[0, 2]]]);
    expect(pieces("db-primary", hit?.name ?? [])).toEqual([
      { text: "db", marked: true },
      { text: "-", marked: false },
      { text: "pri", marked: true },
      { text: "mary", marked: false },
    ]);
  });

  it("merges overlapping ranges", () => {
    expect(merge([[4, 6], [0, 2], [1, 3], [6, 7]])).toEqual([[0, 3], [4, 7]]);
  });

  it("bounds the query", () => {
    expect(filter(hosts, "w".repeat(10_000))).toEqual([]);
  });
});

describe("tag filter", () => {
  it("lists every tag once and keeps hosts carrying all selected tags", () => {
    expect(allTags(hosts)).toEqual(["db", "prod", "staging", "web"]);
    expect(withTags(hosts, new Set()).length).toBe(3);
    expect(withTags(hosts, new Set(["prod"])).map((h) => h.name)).toEqual(["web1", "db-primary"]);
    expect(withTags(hosts, new Set(["prod", "web"])).map((h) => h.name)).toEqual(["web1"]);
    expect(withTags(hosts, new Set(["prod", "staging"]))).toEqual([]);
  });
});
