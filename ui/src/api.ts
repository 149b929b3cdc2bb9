// Types of what crosses the IPC boundary (mirrors src-tauri and the client core)
// and thin wrappers over `invoke`. The Rust side validates everything again.

import { Channel, invoke } from "@tauri-apps/api/core";

export type Protocol = "ssh" | "rdp";

export type RouteSpec =
  | { via: "direct" }
  | { via: "gateway"; gateway_id: number }
  | { via: "jump"; hops: string[] };

export type AuthMethod =
  | { method: "agent" }
  | { method: "key_file"; path: string }
  | { method: "password" }
  | { method: "keyboard_interactive" }
  | { method: "app_key"; key_id: number }
  | { method: "gateway_certificate"; key_id: number }
  | { method: "from_gateway" };

/** An SSH key the app keeps (its private half only in the secret store). */
export interface AppKey {
  id: number;
  name: string;
  algorithm: string;
  fingerprint: string;
  public_key: string;
  origin: "generated" | "imported";
  created_at: number;
}

export interface AgentKey {
  algorithm: string;
  fingerprint: string;
  comment: string;
}

export interface KeysView {
  keys: AppKey[];
  agent: { socket: string | null; keys: AgentKey[]; error: string | null };
}

export interface HostDraft {
  id: number | null;
  name: string;
  address: string;
  port: number;
  protocol: Protocol;
  route: RouteSpec;
  user: string;
  auth: AuthMethod[];
  credential_ref: string | null;
  folder_id: number | null;
  tags: string[];
  notes: string;
  favourite: boolean;
  rdp: RdpSettings;
}

/** An RDP host's display: a fixed size, or (both null) the tab's size. */
export interface RdpSettings {
  width: number | null;
  height: number | null;
  clipboard: boolean;
  domain: string;
}

export interface Host extends HostDraft {
  id: number;
  created_at: number;
  updated_at: number;
}

export interface Folder {
  id: number;
  name: string;
  parent_id: number | null;
}

export interface Gateway {
  id: number;
  url: string;
  user: string;
  pinned_fingerprint: string | null;
}

export interface HistoryEntry {
  id: number;
  host_name: string;
  gateway_url: string | null;
  started_at: number;
  ended_at: number | null;
  outcome: string | null;
}

export interface SignedIn {
  url: string;
  user: string;
}

export interface StoreStatus {
  kind: "keychain" | "file";
  state: "ready" | "locked" | "not_set_up";
  label: string;
}

export interface Overview {
  hosts: Host[];
  folders: Folder[];
  gateways: Gateway[];
  recent: HistoryEntry[];
  signed_in: SignedIn[];
  home: string;
  secrets: StoreStatus;
}

export interface GatewayHost {
  name: string;
  protocol: Protocol;
  tags: string[];
  /** The gateway releases its own credential for this host to your sessions. */
  gateway_credential?: boolean;
  /** The gateway's SSH CA signs certificates for your key on this host. */
  ssh_certificate?: boolean;
  /** Only sessions with the gateway's credential (help desk). */
  launch_only?: boolean;
}

export interface UiError {
  code: string;
  message: string;
  field?: string;
  fingerprint?: string;
}

export type Colour = "default" | { indexed: number } | { rgb: number };

export interface Run {
  text: string;
  fg: Colour;
  bg: Colour;
  bold?: boolean;
  italic?: boolean;
  underline?: boolean;
  inverse?: boolean;
  wide?: boolean;
}

export interface RowUpdate {
  row: number;
  runs: Run[];
}

export type CursorShape = "block" | "underline" | "beam" | "hidden";

export interface ScreenUpdate {
  size: { cols: number; rows: number };
  full: boolean;
  rows: RowUpdate[];
  cursor: { row: number; col: number; shape: CursorShape };
  title?: string;
  bell?: boolean;
  alt_screen: boolean;
  app_cursor: boolean;
  bracketed_paste: boolean;
  mouse_reporting: boolean;
  display_offset: number;
  history: number;
}

export interface SearchMatch {
  start: { line: number; col: number };
  end: { line: number; col: number };
}

export interface UnknownHostKey {
  host: string;
  port: number;
  key_type: string;
  fingerprint: string;
}

export type Prompt =
  | { kind: "host_key"; id: number; key: UnknownHostKey }
  | { kind: "password"; id: number; user: string; host: string; can_remember: boolean; saved_rejected: boolean }
  | { kind: "passphrase"; id: number; key_file: string; can_remember: boolean; saved_rejected: boolean }
  | {
      kind: "interactive";
      id: number;
      request: { user: string; host: string; name: string; instructions: string; prompts: [string, boolean][] };
    };

export type SessionEnd =
  | { kind: "exited"; status: number | null; signal: string | null }
  | { kind: "closed" }
  | { kind: "lost"; cause: string }
  | { kind: "closed_by_user" };

export type RdpEnd =
  | { kind: "closed" }
  | { kind: "logged_off" }
  | { kind: "server_disconnected"; detail: string }
  | { kind: "connection_lost"; detail: string };

/** Input to an RDP session, in desktop coordinates (mirrors `rdp::RdpInput`). */
export type RdpInput =
  | { kind: "mouse_move"; x: number; y: number }
  | { kind: "mouse_button"; button: number; down: boolean }
  | { kind: "wheel"; vertical: boolean; delta: number }
  | { kind: "key"; code: string; down: boolean; text: string | null }
  | { kind: "text"; text: string }
  | { kind: "release_all" }
  | { kind: "ctrl_alt_del" };

export type SessionEvent =
  | { kind: "state"; state: "connecting" | "connected"; route: string | null }
  | { kind: "screen"; update: ScreenUpdate }
  | { kind: "prompt"; prompt: Prompt }
  | { kind: "failed"; error: UiError }
  | { kind: "ended"; end: SessionEnd }
  | { kind: "desktop_ready"; clipboard: boolean; fixed_size: boolean }
  | { kind: "desktop_ended"; end: RdpEnd };

export type Key =
  | { char: string }
  | { f: number }
  | "enter"
  | "tab"
  | "backspace"
  | "escape"
  | "up"
  | "down"
  | "left"
  | "right"
  | "home"
  | "end"
  | "page_up"
  | "page_down"
  | "insert"
  | "delete";

export interface Modifiers {
  shift: boolean;
  alt: boolean;
  ctrl: boolean;
}

export type Target =
  | { kind: "inventory"; id: number }
  | { kind: "gateway"; gateway: string; host: string; user: string; protocol: Protocol; from_gateway?: boolean };

export type PromptAnswer =
  | { kind: "host_key"; decision: "reject" | "accept_once" | "accept_and_remember" }
  | { kind: "secret"; value: string | null; remember: boolean }
  | { kind: "answers"; values: string[] | null };

export function isUiError(value: unknown): value is UiError {
  return typeof value === "object" && value !== null && "code" in value && "message" in value;
}

/** Any rejection as a UiError (the Rust side always sends one; anything else is a bug). */
export function asUiError(value: unknown): UiError {
  if (isUiError(value)) {
    return value;
  }
  return { code: "internal", message: String(value) };
}

export const api = {
  overview: () => invoke<Overview>("overview"),
  hostSave: (draft: HostDraft) => invoke<Host>("host_save", { draft }),
  hostDuplicate: (id: number) => invoke<Host>("host_duplicate", { id }),
  hostDelete: (id: number) => invoke<null>("host_delete", { id }),
  hostForgetPassword: (id: number) => invoke<Host>("host_forget_password", { id }),
  secretsUnlock: (master: string) => invoke<StoreStatus>("secrets_unlock", { master }),
  secretsLock: () => invoke<StoreStatus>("secrets_lock"),
  folderAdd: (name: string, parentId: number | null) => invoke<Folder>("folder_add", { name, parentId }),
  folderDelete: (id: number) => invoke<null>("folder_delete", { id }),
  gatewaySignIn: (url: string, user: string, password: string, fingerprint: string | null) =>
    invoke<SignedIn>("gateway_sign_in", { url, user, password, fingerprint }),
  gatewayHosts: (url: string) => invoke<GatewayHost[]>("gateway_hosts", { url }),
  gatewaySignOut: (url: string) => invoke<null>("gateway_sign_out", { url }),
  gatewaySave: (url: string, user: string) => invoke<Gateway>("gateway_save", { url, user }),
  gatewayDelete: (id: number) => invoke<null>("gateway_delete", { id }),
  keysList: () => invoke<KeysView>("keys_list"),
  keyGenerate: (name: string) => invoke<AppKey>("key_generate", { name }),
  keyImport: (name: string, path: string, passphrase: string | null) => invoke<AppKey>("key_import", { name, path, passphrase }),
  keyDelete: (id: number) => invoke<null>("key_delete", { id }),
  keyCopyPublic: (id: number) => invoke<string>("key_copy_public", { id }),
  sessionOpen: (target: Target, cols: number, rows: number, onEvent: (event: SessionEvent) => void) => {
    const channel = new Channel<SessionEvent>();
    channel.onmessage = onEvent;
    return invoke<number>("session_open", { target, cols, rows, channel });
  },
  sessionKeys: (id: number, keys: { key: Key; mods: Modifiers }[], appCursor: boolean) =>
    invoke<null>("session_keys", { id, keys, appCursor }),
  sessionPaste: (id: number, text: string, bracketed: boolean) =>
    invoke<null>("session_paste", { id, text, bracketed }),
  sessionResize: (id: number, cols: number, rows: number) => invoke<null>("session_resize", { id, cols, rows }),
  sessionScroll: (id: number, lines: number) => invoke<null>("session_scroll", { id, lines }),
  sessionCopy: (id: number, start: { line: number; col: number }, end: { line: number; col: number }) =>
    invoke<string>("session_copy", { id, start, end }),
  sessionSearch: (id: number, query: string) => invoke<SearchMatch[]>("session_search", { id, query }),
  sessionClose: (id: number) => invoke<null>("session_close", { id }),
  rdpOpen: (
    target: Target,
    width: number,
    height: number,
    onEvent: (event: SessionEvent) => void,
    onFrame: (frame: ArrayBuffer) => void,
  ) => {
    const channel = new Channel<SessionEvent>();
    channel.onmessage = onEvent;
    const frames = new Channel<ArrayBuffer>();
    frames.onmessage = onFrame;
    return invoke<number>("rdp_open", { target, width, height, channel, frames });
  },
  rdpInput: (id: number, events: RdpInput[]) => invoke<null>("rdp_input", { id, events }),
  rdpRefresh: (id: number) => invoke<null>("rdp_refresh", { id }),
  /** `true`: the server resizes its desktop; `false`: the view scales. */
  rdpResize: (id: number, width: number, height: number) => invoke<boolean>("rdp_resize", { id, width, height }),
  rdpClipboard: (id: number, share: boolean) => invoke<boolean>("rdp_clipboard", { id, share }),
  rdpSyncClipboard: (id: number) => invoke<boolean>("rdp_sync_clipboard", { id }),
  promptAnswer: (id: number, answer: PromptAnswer) => invoke<null>("prompt_answer", { id, answer }),
};
