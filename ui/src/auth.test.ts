import { describe, expect, it } from "vitest";

import { authOf } from "./auth";

describe("the host dialog's sign-in choice", () => {
  it("names the app key for a key or a gateway certificate", () => {
    expect(authOf("app_key", "", 3, false)).toEqual([{ method: "app_key", key_id: 3 }]);
    expect(authOf("gateway_certificate", "", 3, false)).toEqual([{ method: "gateway_certificate", key_id: 3 }]);
    // No key chosen (none kept yet): nothing is saved that would fail later.
    expect(authOf("app_key", "", Number(""), false)).toEqual([]);
    expect(authOf("gateway_certificate", "", NaN, false)).toEqual([]);
  });

  it("keeps the other SSH methods and the automatic order", () => {
    expect(authOf("key_file", "~/.ssh/id_rsa", 0, false)).toEqual([{ method: "key_file", path: "~/.ssh/id_rsa" }]);
    expect(authOf("password", "", 0, false)).toEqual([{ method: "password" }]);
    expect(authOf("agent", "", 0, false)).toEqual([{ method: "agent" }]);
    expect(authOf("from_gateway", "", 0, false)).toEqual([{ method: "from_gateway" }]);
    expect(authOf("auto", "", 0, false)).toEqual([]);
  });

  it("gives an RDP host the gateway's password or none", () => {
    expect(authOf("from_gateway", "", 0, true)).toEqual([{ method: "from_gateway" }]);
    expect(authOf("app_key", "", 3, true)).toEqual([]);
    expect(authOf("password", "", 0, true)).toEqual([]);
  });
});
