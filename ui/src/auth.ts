// How a host signs in, as the host dialog chooses it.

import type { AuthMethod } from "./api";

/** The host dialog's "Sign in with" choice as the methods saved on the host.
 * An RDP host keeps only "from the gateway" (else it asks for a password). */
export function authOf(choice: string, keyFile: string, keyId: number, rdp: boolean): AuthMethod[] {
  if (rdp) return choice === "from_gateway" ? [{ method: "from_gateway" }] : [];
  switch (choice) {
    case "key_file":
      return [{ method: "key_file", path: keyFile }];
    case "password":
      return [{ method: "password" }];
    case "agent":
      return [{ method: "agent" }];
    case "app_key":
      return Number.isInteger(keyId) && keyId > 0 ? [{ method: "app_key", key_id: keyId }] : [];
    case "gateway_certificate":
      return Number.isInteger(keyId) && keyId > 0 ? [{ method: "gateway_certificate", key_id: keyId }] : [];
    case "from_gateway":
      return [{ method: "from_gateway" }];
    default:
      return [];
  }
}
