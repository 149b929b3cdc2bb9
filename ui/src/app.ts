// The window: sidebar (search, favourites, recent, folders, local hosts, and the
// hosts each signed-in gateway grants), tabs of sessions, and the dialogs.

import {
  api,
  asUiError,
  type AppKey,
  type GatewayHost,
  type Host,
  type HostDraft,
  type Overview,
  type Prompt,
  type PromptAnswer,
  type RdpEnd,
  type RouteSpec,
  type SearchMatch,
  type SessionEnd,
  type SessionEvent,
  type Target,
  type UiError,
} from "./api";
import { authOf } from "./auth";
import { DesktopView } from "./desktop";
import { clear, h } from "./dom";
import { keyFromEvent, type KeyPress } from "./keys";
import { allTags, filter, pieces, withTags, type Ranges } from "./search";
import { scrollToShow, TerminalView } from "./screen";

/** How long a tab keeps its size before the remote desktop is resized to it. */
const RESIZE_SETTLE_MS = 400;

interface BaseTab {
  key: number;
  title: string;
  target: Target;
  sessionId: number | null;
  state: "connecting" | "connected" | "closed";
  reason: string;
  panel: HTMLElement;
  status: HTMLElement;
}

/** An SSH terminal. */
interface TermTab extends BaseTab {
  kind: "ssh";
  /** Keys typed while the previous batch was on its way, sent next in order. */
  pending: KeyPress[];
  sending: boolean;
  view: TerminalView;
  find: HTMLElement;
}

/** An RDP desktop. */
interface DesktopTab extends BaseTab {
  kind: "rdp";
  desktop: DesktopView;
  /** The host shares the clipboard; `sharing`: not paused from the toolbar. */
  clipboard: boolean;
  sharing: boolean;
  /** The host fixes a resolution: never asks the server to resize. */
  fixedSize: boolean;
  /** Pending request to fit the server's desktop to the tab. */
  resizeTimer: number | undefined;
  /** Which connection of this tab is current: a replaced one's events are ignored. */
  generation: number;
}

type Tab = TermTab | DesktopTab;

type ListEntry =
  | { kind: "local"; host: Host }
  | { kind: "gateway"; gateway: string; user: string; host: GatewayHost };

export class App {
  private overview: Overview = {
    hosts: [],
    folders: [],
    gateways: [],
    recent: [],
    signed_in: [],
    home: "",
    secrets: { kind: "file", state: "locked", label: "" },
  };
  private gatewayHosts = new Map<string, GatewayHost[]>();
  /** The SSH keys the app keeps (for the host dialog's key choice). */
  private appKeys: AppKey[] = [];
  private gatewayErrors = new Map<string, string>();
  private tabs: Tab[] = [];
  private active: Tab | null = null;
  private nextTab = 1;
  private selected = 0;
  private entries: ListEntry[] = [];

  private readonly search = h("input", {
    id: "search",
    type: "search",
    placeholder: "Search hosts  (Ctrl+K)",
    "aria-label": "Search hosts",
  });
  private readonly list = h("nav", { id: "host-list", "aria-label": "Hosts" });
  private readonly tagBar = h("div", { class: "tag-filter", "aria-label": "Filter by tag" });
  private readonly tagFilter = new Set<string>();
  private readonly tabBar = h("div", { id: "tabs", role: "tablist" });
  private readonly panels = h("div", { id: "panels" });
  private readonly dialog = h("dialog", { id: "dialog" });
  private readonly notice = h("div", { id: "notice", role: "status", "aria-live": "polite" });
  private readonly secretsBar = h("div", { id: "secrets-status", class: "secrets-status" });

  constructor(private readonly root: HTMLElement) {}

  async start(): Promise<void> {
    const theme = localStorage.getItem("theme") === "light" ? "light" : "dark";
    document.documentElement.dataset["theme"] = theme;
    const themeButton = h("button", { id: "theme", type: "button", title: "Switch between dark and light" }, "◐");
    themeButton.addEventListener("click", () => {
      const next = document.documentElement.dataset["theme"] === "light" ? "dark" : "light";
      document.documentElement.dataset["theme"] = next;
      localStorage.setItem("theme", next);
    });
    const addHost = h("button", { id: "add-host", type: "button" }, "Add host");
    addHost.addEventListener("click", () => this.editHost(null));
    const signIn = h("button", { id: "sign-in", type: "button" }, "Sign in to gateway");
    signIn.addEventListener("click", () => this.signInDialog());
    const addFolder = h("button", { id: "add-folder", type: "button", title: "New folder" }, "New folder");
    addFolder.addEventListener("click", () => void this.newFolder(null));
    const keys = h("button", { id: "keys-button", type: "button", title: "Your SSH keys: generate, import, copy the public key" }, "SSH keys");
    keys.addEventListener("click", () => void this.keysDialog());
    const sidebar = h(
      "aside",
      { class: "sidebar" },
      h("div", { class: "brand" }, h("span", { class: "logo" }, "▥"), "Portcullis", themeButton),
      this.search,
      h("div", { class: "actions" }, addHost, signIn, addFolder, keys),
      this.tagBar,
      this.list,
      this.secretsBar,
    );
    const main = h("main", {}, this.tabBar, this.panels);
    this.root.append(h("div", { class: "app" }, sidebar, main), this.dialog, this.notice);

    this.search.addEventListener("input", () => {
      this.selected = 0;
      this.renderList();
    });
    this.search.addEventListener("keydown", (e) => this.listKeys(e));
    this.list.addEventListener("keydown", (e) => this.listKeys(e));
    document.addEventListener("keydown", (e) => {
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "k") {
        e.preventDefault();
        this.search.focus();
        this.search.select();
      }
    });
    window.addEventListener("resize", () => this.fitActive());
    await this.refresh();
    this.search.focus();
    // For tests and the start-up benchmark: the host list is interactive.
    document.body.dataset["ready"] = "1";
  }

  private say(message: string): void {
    this.notice.textContent = message;
    this.notice.classList.add("shown");
    window.setTimeout(() => this.notice.classList.remove("shown"), 6000);
  }

  async refresh(): Promise<void> {
    try {
      this.overview = await api.overview();
    } catch (e) {
      this.say(asUiError(e).message);
    }
    try {
      this.appKeys = (await api.keysList()).keys;
    } catch (e) {
      this.say(asUiError(e).message);
    }
    await Promise.all(
      this.overview.signed_in.map(async (g) => {
        try {
          this.gatewayHosts.set(g.url, await api.gatewayHosts(g.url));
          this.gatewayErrors.delete(g.url);
        } catch (e) {
          this.gatewayErrors.set(g.url, asUiError(e).message);
        }
      }),
    );
    this.renderList();
    this.renderSecrets();
    if (this.tabs.length === 0) {
      this.renderEmpty();
    }
  }

  /** Which store keeps saved passwords, and the way to open or close it. */
  private renderSecrets(): void {
    clear(this.secretsBar);
    const store = this.overview.secrets;
    const where = store.kind === "keychain" ? "OS keychain" : "Encrypted file";
    const state = store.kind === "keychain" ? "" : { ready: "unlocked", locked: "locked", not_set_up: "not set up" }[store.state];
    this.secretsBar.dataset["kind"] = store.kind;
    this.secretsBar.dataset["state"] = store.state;
    this.secretsBar.title = `Saved passwords and passphrases live in: ${store.label}`;
    this.secretsBar.append(h("span", { class: "secrets-label" }, `Passwords: ${where}${state ? ` (${state})` : ""}`));
    if (store.kind === "file") {
      const label = { ready: "Lock", locked: "Unlock", not_set_up: "Set up" }[store.state];
      const button = h("button", { type: "button", id: "secrets-action", class: "link" }, label);
      button.addEventListener("click", () => {
        if (store.state === "ready") {
          void api
            .secretsLock()
            .then(() => this.refresh())
            .catch((e: unknown) => this.say(asUiError(e).message));
        } else {
          this.unlockDialog(store.state === "not_set_up");
        }
      });
      this.secretsBar.append(button);
    }
  }

  private unlockDialog(create: boolean): void {
    const master = h("input", { name: "master", type: "password" });
    const again = h("input", { name: "master_again", type: "password" });
    const error = h("p", { class: "form-error", role: "alert" });
    const field = (label: string, name: string, input: HTMLElement) =>
      h("label", { "data-field": name }, label, input, h("span", { class: "field-error", "data-error-for": name }));
    const fields = [field("Master password", "master", master)];
    if (create) fields.push(field("Repeat it", "master_again", again));
    const intro = create
      ? "No OS keychain is running, so saved passwords go into an encrypted file. Choose a master password (at least 8 characters); it is asked once per start of the app and cannot be recovered."
      : "Saved passwords are in an encrypted file. Give its master password to use them.";
    const submit = h("button", { type: "submit", class: "primary", id: "secrets-submit" }, create ? "Create" : "Unlock");
    const cancel = h("button", { type: "button" }, "Cancel");
    cancel.addEventListener("click", () => this.closeDialog());
    const form = h("form", { class: "unlock" }, h("p", {}, intro), ...fields, error);
    const go = async () => {
      this.dialog.querySelectorAll(".field-error").forEach((el) => (el.textContent = ""));
      error.textContent = "";
      if (create && master.value !== again.value) {
        markField(this.dialog, { code: "invalid", field: "master_again", message: "the two entries differ" });
        return;
      }
      submit.disabled = true;
      try {
        await api.secretsUnlock(master.value);
        master.value = "";
        again.value = "";
        this.closeDialog();
        this.say(create ? "The encrypted password store is ready." : "Saved passwords unlocked.");
        await this.refresh();
      } catch (e) {
        const err = asUiError(e);
        if (!markField(this.dialog, err)) error.textContent = err.message;
      } finally {
        submit.disabled = false;
      }
    };
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void go();
    });
    submit.addEventListener("click", (e) => {
      e.preventDefault();
      form.requestSubmit();
    });
    this.showDialog(create ? "Set up the password store" : "Unlock saved passwords", [form], [cancel, submit], "unlock-dialog");
    master.focus();
  }

  // ---- the host list ----

  private renderTags(): void {
    clear(this.tagBar);
    const granted = [...this.gatewayHosts.values()].flat();
    const tags = allTags([...this.overview.hosts, ...granted]);
    for (const tag of [...this.tagFilter]) {
      if (!tags.includes(tag)) this.tagFilter.delete(tag);
    }
    for (const tag of tags) {
      const on = this.tagFilter.has(tag);
      const chip = h("button", { type: "button", class: on ? "tag on" : "tag", "data-tag": tag, "aria-pressed": on ? "true" : "false" }, tag);
      chip.addEventListener("click", () => {
        if (this.tagFilter.has(tag)) this.tagFilter.delete(tag);
        else this.tagFilter.add(tag);
        this.selected = 0;
        this.renderList();
      });
      this.tagBar.append(chip);
    }
  }

  private renderList(): void {
    this.renderTags();
    clear(this.list);
    this.entries = [];
    const query = this.search.value;
    const searching = query.trim().length > 0 || this.tagFilter.size > 0;
    const hosts = filter(withTags(this.overview.hosts, this.tagFilter), query);
    const section = (title: string, id: string) => {
      const el = h("section", { class: "list-section", "data-section": id }, h("h2", {}, title));
      this.list.append(el);
      return el;
    };
    const add = (parent: HTMLElement, entry: ListEntry, ranges: { name: Ranges; address: Ranges; tags: Ranges[] }) => {
      const index = this.entries.length;
      this.entries.push(entry);
      parent.append(this.hostButton(entry, ranges, index));
    };
    if (!searching) {
      const favourites = hosts.filter((r) => r.item.favourite);
      if (favourites.length > 0) {
        const el = section("Favourites", "favourites");
        favourites.forEach((r) => add(el, { kind: "local", host: r.item }, r.hit));
      }
      const recentNames = [...new Set(this.overview.recent.map((r) => r.host_name))].slice(0, 5);
      const recent = recentNames
        .map((name) => this.overview.hosts.find((host) => host.name === name))
        .filter((host): host is Host => host !== undefined);
      if (recent.length > 0) {
        const el = section("Recent", "recent");
        recent.forEach((host) => add(el, { kind: "local", host }, { name: [], address: [], tags: host.tags.map(() => []) }));
      }
    }
    if (hosts.length > 0) {
      const el = section(searching ? "Matching hosts" : "Hosts", "local");
      // Folders as nested groups; unfiled hosts first.
      const byFolder = new Map<number | null, typeof hosts>();
      for (const r of hosts) {
        const key = searching ? null : r.item.folder_id;
        byFolder.set(key, [...(byFolder.get(key) ?? []), r]);
      }
      (byFolder.get(null) ?? []).forEach((r) => add(el, { kind: "local", host: r.item }, r.hit));
      const renderFolder = (parentId: number | null, depth: number, into: HTMLElement) => {
        for (const folder of this.overview.folders.filter((f) => f.parent_id === parentId)) {
          const sub = h("button", { type: "button", class: "folder-action", title: `New folder in ${folder.name}`, "data-folder-add": folder.name }, "+");
          sub.addEventListener("click", (e) => {
            e.preventDefault();
            void this.newFolder(folder.id);
          });
          const del = h("button", { type: "button", class: "folder-action", title: `Delete ${folder.name}`, "data-folder-delete": folder.name }, "×");
          del.addEventListener("click", (e) => {
            e.preventDefault();
            void this.deleteFolder(folder.id, folder.name);
          });
          const group = h("details", { class: "folder", "data-folder": folder.name }, h("summary", {}, folder.name, sub, del));
          group.open = true;
          group.style.setProperty("--depth", String(depth));
          (byFolder.get(folder.id) ?? []).forEach((r) => add(group, { kind: "local", host: r.item }, r.hit));
          renderFolder(folder.id, depth + 1, group);
          into.append(group);
        }
      };
      if (!searching) renderFolder(null, 0, el);
    }
    // Every gateway of the inventory, signed in or not, and any signed-in one
    // the inventory does not hold (signed in from the CLI).
    const urls = [...new Set([...this.overview.gateways.map((g) => g.url), ...this.overview.signed_in.map((g) => g.url)])];
    for (const url of urls) {
      const signedIn = this.overview.signed_in.find((g) => g.url === url);
      const el = section(`${url.replace(/^https:\/\//, "")} (gateway)`, `gateway:${url}`);
      const manage = h("button", { type: "button", class: "gateway-manage", "data-gateway": url, title: `Manage ${url}` }, "⋯");
      manage.addEventListener("click", () => this.gatewayDialog(url));
      el.querySelector("h2")?.append(manage);
      if (!signedIn) {
        const again = h("button", { type: "button", class: "link" }, "Sign in");
        again.addEventListener("click", () => this.signInDialog({ url, user: this.overview.gateways.find((g) => g.url === url)?.user ?? "" }));
        el.append(h("p", { class: "muted" }, "Signed out. ", again));
        continue;
      }
      const error = this.gatewayErrors.get(url);
      if (error) {
        el.append(h("p", { class: "list-error" }, error));
        continue;
      }
      const granted = filter(withTags(this.gatewayHosts.get(url) ?? [], this.tagFilter), query);
      if (granted.length === 0) {
        el.append(h("p", { class: "muted" }, searching ? "No match." : "No hosts are granted to you here."));
      }
      granted.forEach((r) => add(el, { kind: "gateway", gateway: url, user: signedIn.user, host: r.item }, r.hit));
    }
    if (this.overview.hosts.length === 0 && this.overview.signed_in.length === 0) {
      this.list.append(
        h("p", { class: "muted empty-list" }, "No hosts yet. Add one, or sign in to a gateway to see the hosts it grants you."),
      );
    } else if (this.entries.length === 0) {
      this.list.append(h("p", { class: "muted" }, "Nothing matches."));
    }
    this.highlightSelection();
  }

  private async newFolder(parentId: number | null): Promise<void> {
    const parent = this.overview.folders.find((f) => f.id === parentId);
    const name = await this.askText(parent ? `New folder in ${parent.name}` : "New folder", "Folder name", "");
    if (name === null) return;
    try {
      await api.folderAdd(name.trim(), parentId);
      await this.refresh();
    } catch (e) {
      this.say(asUiError(e).message);
    }
  }

  private async deleteFolder(id: number, name: string): Promise<void> {
    const sure = await this.choose(`Delete the folder ${name}?`, ["Its hosts stay in the inventory, outside any folder; folders inside it are deleted too."], [
      ["delete", "Delete"],
      ["reject", "Keep it"],
    ]);
    if (sure !== "delete") return;
    try {
      await api.folderDelete(id);
      await this.refresh();
    } catch (e) {
      this.say(asUiError(e).message);
    }
  }

  private hostButton(entry: ListEntry, ranges: { name: Ranges; address: Ranges; tags: Ranges[] }, index: number): HTMLElement {
    const marked = (text: string, r: Ranges) =>
      pieces(text, r).map((p) => (p.marked ? h("mark", {}, p.text) : document.createTextNode(p.text)));
    const name = entry.kind === "local" ? entry.host.name : entry.host.name;
    const address = entry.kind === "local" ? `${entry.host.address}:${entry.host.port}` : entry.host.protocol.toUpperCase();
    const tags = entry.host.tags;
    const button = h(
      "button",
      {
        class: `host ${entry.kind}`,
        type: "button",
        "data-host": name,
        "data-index": String(index),
        title: entry.kind === "gateway" ? "Granted by the gateway (read-only)" : "Enter or double-click to connect",
      },
      h("span", { class: "host-name" }, ...marked(name, ranges.name)),
      h("span", { class: "host-address" }, ...marked(address, entry.kind === "local" ? ranges.address : [])),
      h(
        "span",
        { class: "host-tags" },
        ...tags.map((tag, i) => h("span", { class: "tag" }, ...marked(tag, ranges.tags[i] ?? []))),
        ...(entry.kind === "gateway" && entry.host.gateway_credential
          ? [h("span", { class: "badge gateway-credential", title: "The gateway signs you in; you never see the credential" }, "signed in by the gateway")]
          : []),
      ),
    );
    button.addEventListener("click", () => {
      this.selected = index;
      this.highlightSelection();
    });
    button.addEventListener("dblclick", () => void this.connect(entry));
    button.addEventListener("contextmenu", (e) => {
      if (entry.kind === "local") {
        e.preventDefault();
        this.editHost(entry.host);
      }
    });
    if (entry.kind === "local") {
      const edit = h("span", { class: "host-edit", role: "button", title: "Edit", "data-edit": name }, "✎");
      edit.addEventListener("click", (e) => {
        e.stopPropagation();
        this.editHost(entry.host);
      });
      button.append(edit);
    }
    return button;
  }

  private highlightSelection(): void {
    this.list.querySelectorAll(".host").forEach((el) => {
      const on = Number((el as HTMLElement).dataset["index"]) === this.selected;
      el.classList.toggle("selected", on);
      el.setAttribute("aria-selected", on ? "true" : "false");
      if (on) (el as HTMLElement).scrollIntoView({ block: "nearest" });
    });
  }

  private listKeys(e: KeyboardEvent): void {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const step = e.key === "ArrowDown" ? 1 : -1;
      this.selected = Math.min(Math.max(this.selected + step, 0), Math.max(this.entries.length - 1, 0));
      this.highlightSelection();
    } else if (e.key === "Enter") {
      const entry = this.entries[this.selected];
      if (entry) {
        e.preventDefault();
        void this.connect(entry);
      }
    } else if (e.key === "Escape") {
      this.search.value = "";
      this.renderList();
    }
  }

  // ---- sessions ----

  private async connect(entry: ListEntry): Promise<void> {
    if (entry.kind === "local") {
      if (entry.host.protocol === "rdp") {
        this.openDesktopTab(entry.host.name, { kind: "inventory", id: entry.host.id });
      } else {
        this.openTab(entry.host.name, { kind: "inventory", id: entry.host.id });
      }
      return;
    }
    // The gateway's own credential: nothing to ask, nothing shown.
    const fromGateway = entry.host.gateway_credential === true;
    const user = fromGateway ? "" : await this.askText(`Log in to ${entry.host.name} as`, "User name", entry.user);
    if (user === null) return;
    const target: Target = { kind: "gateway", gateway: entry.gateway, host: entry.host.name, user, protocol: entry.host.protocol, from_gateway: fromGateway };
    if (entry.host.protocol === "rdp") {
      this.openDesktopTab(entry.host.name, target);
    } else {
      this.openTab(entry.host.name, target);
    }
  }

  private openDesktopTab(title: string, target: Target): void {
    const key = this.nextTab++;
    const panel = h("section", { class: "panel desktop-panel", role: "tabpanel", "data-tab": String(key) });
    const status = h("div", { class: "session-status" });
    const tab: DesktopTab = {
      kind: "rdp",
      key,
      title,
      target,
      sessionId: null,
      state: "connecting",
      reason: "",
      panel,
      status,
      desktop: new DesktopView((events) => (tab.sessionId !== null ? api.rdpInput(tab.sessionId, events) : Promise.resolve(null))),
      clipboard: false,
      sharing: false,
      fixedSize: true,
      resizeTimer: undefined,
      generation: 0,
    };
    // Coming back to the desktop (after copying elsewhere): offer the OS
    // clipboard's text to the server, so a paste there has it.
    tab.desktop.canvas.addEventListener("focus", () => {
      if (tab.sessionId !== null && tab.state === "connected" && tab.sharing) {
        void api.rdpSyncClipboard(tab.sessionId).catch(() => undefined);
      }
    });
    panel.append(status, tab.desktop.element);
    this.tabs.push(tab);
    this.panels.append(panel);
    this.activate(tab);
    this.startSession(tab);
  }

  private startDesktop(tab: DesktopTab): void {
    const { width, height } = tab.desktop.available();
    const generation = ++tab.generation;
    const current = () => tab.generation === generation;
    api
      .rdpOpen(
        tab.target,
        width,
        height,
        (event) => {
          if (current()) this.onEvent(tab, event);
        },
        (frame) => {
          if (!current()) return;
          try {
            tab.desktop.apply(frame);
          } catch (e) {
            // A broken update: ask for a whole frame rather than show garbage.
            console.error(e);
            if (tab.sessionId !== null) void api.rdpRefresh(tab.sessionId).catch(() => undefined);
          }
        },
      )
      .then((id) => {
        if (current()) {
          tab.sessionId = id;
        } else {
          void api.sessionClose(id).catch(() => undefined);
        }
      })
      .catch((e: unknown) => {
        if (current()) this.closed(tab, asUiError(e).message);
      });
  }

  /** Drops the tab's connection and opens a new one (a stuck or changed desktop). */
  private reconnectDesktop(tab: DesktopTab): void {
    const old = tab.sessionId;
    tab.sessionId = null;
    if (old !== null) void api.sessionClose(old).catch(() => undefined);
    this.startSession(tab);
  }

  private openTab(title: string, target: Target): void {
    const key = this.nextTab++;
    const panel = h("section", { class: "panel", role: "tabpanel", "data-tab": String(key) });
    const status = h("div", { class: "session-status" });
    const screen = h("div", { class: "screen", tabindex: "0", "aria-label": `Terminal of ${title}` });
    const find = h("div", { class: "find-bar hidden", role: "search" });
    panel.append(status, find, screen);
    const tab: TermTab = {
      kind: "ssh",
      key,
      pending: [],
      sending: false,
      title,
      target,
      sessionId: null,
      state: "connecting",
      reason: "",
      view: new TerminalView(screen),
      panel,
      status,
      find,
    };
    this.wireTerminal(tab, screen);
    this.wireFind(tab);
    this.tabs.push(tab);
    this.panels.append(panel);
    this.activate(tab);
    this.startSession(tab);
  }

  private startSession(tab: Tab): void {
    tab.state = "connecting";
    tab.reason = "";
    this.renderTabs();
    if (tab.kind === "rdp") {
      this.startDesktop(tab);
      return;
    }
    const { cols, rows } = this.measure(tab);
    api
      .sessionOpen(tab.target, cols, rows, (event) => this.onEvent(tab, event))
      .then((id) => {
        tab.sessionId = id;
      })
      .catch((e: unknown) => this.closed(tab, asUiError(e).message));
  }

  private onEvent(tab: Tab, event: SessionEvent): void {
    switch (event.kind) {
      case "state":
        tab.state = event.state === "connected" ? "connected" : "connecting";
        tab.reason = event.route ? `via ${event.route}` : "";
        this.renderTabs();
        if (event.state === "connected" && this.active === tab) {
          this.focusTab(tab);
          this.fitActive();
        }
        // Recent connections and a just-saved password show in the sidebar.
        if (event.state === "connected") void this.refresh();
        break;
      case "screen":
        if (tab.kind !== "ssh") break;
        tab.view.apply(event.update);
        if (event.update.title) {
          tab.reason = event.update.title;
          this.renderTabs();
        }
        break;
      case "prompt":
        void this.answerPrompt(event.prompt);
        break;
      case "failed":
        this.closed(tab, event.error.message, event.error.code);
        break;
      case "ended":
        this.closed(tab, describeEnd(event.end));
        break;
      case "desktop_ready":
        if (tab.kind === "rdp") {
          tab.clipboard = event.clipboard;
          tab.sharing = event.clipboard;
          tab.fixedSize = event.fixed_size;
          this.renderTabs();
          // The tab may have changed size while connecting.
          this.fitDesktop(tab);
          if (this.active === tab && tab.sharing && tab.sessionId !== null) {
            void api.rdpSyncClipboard(tab.sessionId).catch(() => undefined);
          }
        }
        break;
      case "desktop_ended":
        this.closed(tab, describeDesktopEnd(event.end));
        break;
    }
  }

  private focusTab(tab: Tab): void {
    if (tab.kind === "ssh") {
      tab.view.element.focus();
    } else {
      tab.desktop.canvas.focus();
    }
  }

  private closed(tab: Tab, reason: string, code = ""): void {
    tab.state = "closed";
    tab.reason = reason;
    tab.sessionId = null;
    tab.panel.classList.toggle("host-key-changed", code === "host_key_changed");
    this.renderTabs();
  }

  private wireTerminal(tab: TermTab, screen: HTMLElement): void {
    screen.addEventListener("keydown", (e) => {
      if (tab.sessionId === null) return;
      if (e.ctrlKey && e.shiftKey && e.key.toLowerCase() === "c") {
        e.preventDefault();
        const text = window.getSelection()?.toString() ?? "";
        if (text) void navigator.clipboard.writeText(text);
        return;
      }
      if (e.ctrlKey && e.shiftKey && e.key.toLowerCase() === "f") {
        e.preventDefault();
        this.openFind(tab);
        return;
      }
      const press = keyFromEvent(e);
      if (!press) return;
      e.preventDefault();
      tab.pending.push(press);
      void this.flushKeys(tab);
    });
    screen.addEventListener("paste", (e) => {
      e.preventDefault();
      const text = e.clipboardData?.getData("text/plain") ?? "";
      if (tab.sessionId !== null && text) {
        void api.sessionPaste(tab.sessionId, text, tab.view.model.bracketedPaste).catch((err: unknown) =>
          this.say(asUiError(err).message),
        );
      }
    });
    screen.addEventListener(
      "wheel",
      (e) => {
        if (tab.sessionId === null || tab.view.model.altScreen) return;
        e.preventDefault();
        void api.sessionScroll(tab.sessionId, Math.round(-e.deltaY / 20) || (e.deltaY > 0 ? -1 : 1)).catch(() => undefined);
      },
      { passive: false },
    );
  }

  /** The find bar: literal search through the scrollback, Enter for the next hit. */
  private wireFind(tab: TermTab): void {
    const input = h("input", { type: "search", name: "find", placeholder: "Find in scrollback", "aria-label": "Find in scrollback" });
    const count = h("span", { class: "find-count", "aria-live": "polite" });
    const prev = h("button", { type: "button", title: "Older (Enter)", "data-find": "prev" }, "↑");
    const next = h("button", { type: "button", title: "Newer (Shift+Enter)", "data-find": "next" }, "↓");
    const close = h("button", { type: "button", title: "Close (Escape)", "data-find": "close" }, "×");
    tab.find.append(input, count, prev, next, close);
    let hits: SearchMatch[] = [];
    let at = -1;
    let searched = "";
    const show = (step: number) => {
      if (hits.length === 0) return;
      // Hits come top to bottom; the newest (bottom) one is the first shown.
      at = at < 0 ? hits.length - 1 : (at + step + hits.length) % hits.length;
      const hit = hits[at];
      if (!hit || tab.sessionId === null) return;
      count.textContent = `${at + 1} of ${hits.length}`;
      tab.view.highlight(hit);
      const model = tab.view.model;
      const lines = scrollToShow(hit.start.line, model.displayOffset, model.rows.length, model.history);
      if (lines !== 0) void api.sessionScroll(tab.sessionId, lines).catch(() => undefined);
    };
    const run = async (step: number) => {
      const query = input.value;
      if (tab.sessionId === null || query === "") {
        count.textContent = "";
        tab.view.highlight(null);
        return;
      }
      if (query !== searched) {
        try {
          hits = await api.sessionSearch(tab.sessionId, query);
        } catch (e) {
          count.textContent = asUiError(e).message;
          return;
        }
        searched = query;
        at = -1;
        if (hits.length === 0) {
          count.textContent = "No match";
          tab.view.highlight(null);
          return;
        }
        show(0);
        return;
      }
      show(step);
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        void run(e.shiftKey ? 1 : -1);
      } else if (e.key === "Escape") {
        e.preventDefault();
        this.closeFind(tab);
      }
    });
    prev.addEventListener("click", () => void run(-1));
    next.addEventListener("click", () => void run(1));
    close.addEventListener("click", () => this.closeFind(tab));
  }

  private openFind(tab: TermTab): void {
    tab.find.classList.remove("hidden");
    // The bar takes a line of the panel: the terminal gets the new size.
    this.fitActive();
    const input = tab.find.querySelector("input");
    input?.focus();
    input?.select();
  }

  private closeFind(tab: TermTab): void {
    tab.find.classList.add("hidden");
    this.fitActive();
    tab.view.highlight(null);
    if (tab.sessionId !== null && tab.view.model.displayOffset > 0) {
      void api.sessionScroll(tab.sessionId, -tab.view.model.displayOffset).catch(() => undefined);
    }
    tab.view.element.focus();
  }

  /** Sends queued keys one batch at a time, so the server sees them in order. */
  private async flushKeys(tab: TermTab): Promise<void> {
    if (tab.sending) return;
    tab.sending = true;
    try {
      while (tab.pending.length > 0 && tab.sessionId !== null) {
        const batch = tab.pending.splice(0, tab.pending.length);
        await api.sessionKeys(tab.sessionId, batch, tab.view.model.appCursor).catch(() => undefined);
      }
    } finally {
      tab.pending = [];
      tab.sending = false;
    }
  }

  private measure(tab: TermTab): { cols: number; rows: number } {
    const probe = h("span", { class: "term-probe" }, "MMMMMMMMMM");
    tab.view.element.append(probe);
    const cell = probe.getBoundingClientRect();
    probe.remove();
    const width = cell.width / 10 || 8;
    const height = cell.height || 17;
    const box = tab.view.element.getBoundingClientRect();
    tab.view.element.style.setProperty("--cell-width", `${width}px`);
    tab.view.element.style.setProperty("--cell-height", `${height}px`);
    return {
      cols: Math.max(20, Math.floor((box.width - 16) / width)),
      rows: Math.max(5, Math.floor((box.height - 16) / height)),
    };
  }

  /**
   * In fit mode, asks the server for a desktop the size of the tab once the
   * tab stops changing size; a server that cannot resize (or a fixed
   * resolution) leaves the view scaling the desktop instead.
   */
  private fitDesktop(tab: DesktopTab): void {
    if (tab.fixedSize || !tab.desktop.fit || tab.state !== "connected") return;
    window.clearTimeout(tab.resizeTimer);
    tab.resizeTimer = window.setTimeout(() => {
      const { width, height } = tab.desktop.available();
      if (tab.sessionId === null || width < 200 || height < 200) return;
      if (Math.abs(width - tab.desktop.width) <= 1 && height === tab.desktop.height) return;
      void api.rdpResize(tab.sessionId, width, height).catch(() => undefined);
    }, RESIZE_SETTLE_MS);
  }

  private fitActive(): void {
    const tab = this.active;
    if (!tab || tab.sessionId === null) return;
    if (tab.kind === "rdp") {
      tab.desktop.layout();
      this.fitDesktop(tab);
      return;
    }
    const { cols, rows } = this.measure(tab);
    if (cols !== tab.view.model.cols || rows !== tab.view.model.rows.length) {
      void api.sessionResize(tab.sessionId, cols, rows).catch(() => undefined);
    }
  }

  private activate(tab: Tab): void {
    this.active = tab;
    for (const t of this.tabs) {
      t.panel.classList.toggle("active", t === tab);
    }
    this.panels.querySelector(".empty-state")?.remove();
    this.renderTabs();
    this.focusTab(tab);
    this.fitActive();
  }

  private closeTab(tab: Tab): void {
    if (tab.sessionId !== null) {
      void api.sessionClose(tab.sessionId).catch(() => undefined);
    }
    tab.panel.remove();
    this.tabs = this.tabs.filter((t) => t !== tab);
    const next = this.tabs[this.tabs.length - 1];
    if (next) {
      this.activate(next);
    } else {
      this.active = null;
      this.renderTabs();
      this.renderEmpty();
    }
  }

  private renderTabs(): void {
    clear(this.tabBar);
    let activeTab: HTMLElement | null = null;
    for (const tab of this.tabs) {
      const close = h("span", { class: "tab-close", role: "button", title: "Close", "aria-label": `Close ${tab.title}` }, "×");
      close.addEventListener("click", (e) => {
        e.stopPropagation();
        this.closeTab(tab);
      });
      const el = h(
        "button",
        {
          class: `tab ${tab.state}${tab === this.active ? " active" : ""}`,
          type: "button",
          role: "tab",
          "aria-selected": tab === this.active ? "true" : "false",
          "data-state": tab.state,
          "data-title": tab.title,
          title: tab.reason,
        },
        h("span", { class: "dot" }),
        tab.title,
        close,
      );
      el.addEventListener("click", () => this.activate(tab));
      this.tabBar.append(el);
      if (tab === this.active) {
        activeTab = el;
      }
      clear(tab.status);
      const label = { connecting: "Connecting…", connected: "Connected", closed: "Closed" }[tab.state];
      tab.status.append(h("strong", {}, label), tab.reason ? ` ${tab.reason}` : "");
      if (tab.state === "connected" && tab.kind === "ssh") {
        const find = h("button", { type: "button", class: "find-open", title: "Find in scrollback (Ctrl+Shift+F)" }, "Find");
        find.addEventListener("click", () => this.openFind(tab));
        tab.status.append(find);
      }
      if (tab.state === "connected" && tab.kind === "rdp") {
        const desktop = tab.desktop;
        const cad = h("button", { type: "button", class: "send-cad", title: "Send Ctrl+Alt+Del to the remote desktop" }, "Ctrl+Alt+Del");
        cad.addEventListener("click", () => {
          desktop.push({ kind: "ctrl_alt_del" });
          desktop.canvas.focus();
        });
        const scale = h("button", { type: "button", class: "toggle-fit", title: "Fit the desktop to the tab, or show it 1:1" }, desktop.fit ? "1:1" : "Fit");
        scale.addEventListener("click", () => {
          desktop.setFit(!desktop.fit);
          this.renderTabs();
          this.fitDesktop(tab);
          desktop.canvas.focus();
        });
        const clip = h(
          "button",
          {
            type: "button",
            class: "toggle-clipboard",
            "aria-pressed": String(tab.sharing),
            title: tab.clipboard ? "Share clipboard text with the remote desktop, or pause sharing" : "This host does not share the clipboard (see its settings)",
          },
          tab.sharing ? "Clipboard: shared" : "Clipboard: off",
        );
        clip.toggleAttribute("disabled", !tab.clipboard);
        clip.addEventListener("click", () => {
          if (tab.sessionId === null) return;
          api
            .rdpClipboard(tab.sessionId, !tab.sharing)
            .then((sharing) => {
              tab.sharing = sharing;
              this.renderTabs();
              desktop.canvas.focus();
            })
            .catch((e: unknown) => this.say(asUiError(e).message));
        });
        const again = h("button", { type: "button", class: "reconnect-now", title: "Disconnect and connect again" }, "Reconnect");
        again.addEventListener("click", () => this.reconnectDesktop(tab));
        tab.status.append(cad, scale, clip, again);
      }
      if (tab.state === "closed") {
        const again = h("button", { type: "button", class: "reconnect" }, "Reconnect");
        again.addEventListener("click", () => this.startSession(tab));
        tab.status.append(again);
      }
      tab.status.dataset["state"] = tab.state;
    }
    // With more tabs than the bar shows, the active one (a session just opened,
    // say) is scrolled into sight.
    activeTab?.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  private renderEmpty(): void {
    if (this.panels.querySelector(".empty-state")) {
      this.panels.querySelector(".empty-state")?.remove();
    }
    const add = h("button", { type: "button" }, "Add a host");
    add.addEventListener("click", () => this.editHost(null));
    const signIn = h("button", { type: "button" }, "Sign in to a gateway");
    signIn.addEventListener("click", () => this.signInDialog());
    const empty = this.overview.hosts.length === 0 && this.overview.signed_in.length === 0;
    this.panels.append(
      h(
        "div",
        { class: "empty-state" },
        h("h1", {}, empty ? "Nothing here yet" : "Pick a host"),
        h(
          "p",
          {},
          empty
            ? "Add the hosts you manage, or sign in to your organisation's gateway to see the hosts it grants you. Importing from other tools is not available yet."
            : "Search with Ctrl+K, move with the arrow keys, press Enter to connect.",
        ),
        empty ? h("div", { class: "actions" }, add, signIn) : null,
      ),
    );
  }

  // ---- prompts and dialogs ----

  private async answerPrompt(prompt: Prompt): Promise<void> {
    let answer: PromptAnswer;
    switch (prompt.kind) {
      case "host_key": {
        const certificate = prompt.key.key_type.includes("certificate");
        const decision = await this.choose(
          certificate ? "Unknown server certificate" : "Unknown host key",
          [
            `The authenticity of host ${prompt.key.host} can't be established.`,
            certificate
              ? `Its ${prompt.key.key_type} has the SHA-256 fingerprint ${prompt.key.fingerprint}, and no authority this computer trusts vouches for it.`
              : `${prompt.key.key_type} key fingerprint is ${prompt.key.fingerprint}.`,
            "Compare it with the fingerprint the host's administrator gave you.",
          ],
          [
            ["accept_once", "Accept once"],
            ["accept_and_remember", "Always trust"],
            ["reject", "Cancel"],
          ],
        );
        answer = {
          kind: "host_key",
          decision: decision === "accept_once" || decision === "accept_and_remember" ? decision : "reject",
        };
        break;
      }
      case "password":
      case "passphrase": {
        const [title, label] =
          prompt.kind === "password" ? [`Password for ${prompt.user}@${prompt.host}`, "Password"] : [`Passphrase for ${prompt.key_file}`, "Passphrase"];
        const got = await this.askSecret(title, label, prompt.can_remember, prompt.saved_rejected);
        answer = { kind: "secret", value: got?.value ?? null, remember: got?.remember ?? false };
        break;
      }
      case "interactive": {
        const values: string[] = [];
        for (const [text, echo] of prompt.request.prompts) {
          const value = await this.askText(prompt.request.instructions || `${prompt.request.user}@${prompt.request.host}`, text, "", !echo);
          if (value === null) {
            answer = { kind: "answers", values: null };
            await api.promptAnswer(prompt.id, answer).catch(() => undefined);
            return;
          }
          values.push(value);
        }
        answer = { kind: "answers", values };
        break;
      }
    }
    await api.promptAnswer(prompt.id, answer).catch((e: unknown) => this.say(asUiError(e).message));
  }

  private showDialog(title: string, body: Node[], buttons: HTMLElement[], className = ""): void {
    clear(this.dialog);
    this.dialog.className = className;
    this.dialog.append(h("h2", {}, title), ...body, h("div", { class: "dialog-buttons" }, ...buttons));
    if (!this.dialog.open) this.dialog.showModal();
  }

  private closeDialog(): void {
    if (this.dialog.open) this.dialog.close();
  }

  private choose(title: string, lines: string[], options: [string, string][]): Promise<string> {
    return new Promise((resolve) => {
      const buttons = options.map(([value, label]) => {
        const b = h("button", { type: "button", "data-choice": value }, label);
        b.addEventListener("click", () => {
          this.closeDialog();
          resolve(value);
        });
        return b;
      });
      this.dialog.addEventListener("cancel", () => resolve("reject"), { once: true });
      this.showDialog(title, lines.map((l) => h("p", { class: "mono-wrap" }, l)), buttons, "prompt-dialog");
      buttons[0]?.focus();
    });
  }

  private async askText(title: string, label: string, initial: string, secret = false): Promise<string | null> {
    return (await this.ask(title, label, initial, secret, []))?.value ?? null;
  }

  /** A password or passphrase, with "remember" when the store can keep it. */
  private async askSecret(title: string, label: string, canRemember: boolean, savedRejected: boolean): Promise<{ value: string; remember: boolean } | null> {
    const extras: HTMLElement[] = [];
    if (savedRejected) {
      extras.push(h("p", { class: "form-error", role: "alert" }, `The saved ${label.toLowerCase()} was not accepted.`));
    }
    const remember = h("input", { type: "checkbox", name: "remember" });
    if (canRemember) {
      const where = this.overview.secrets.kind === "keychain" ? "the OS keychain" : "the encrypted file";
      extras.push(h("label", { class: "check" }, remember, `Remember in ${where}`));
    } else if (this.overview.secrets.kind === "file" && this.overview.secrets.state !== "ready") {
      extras.push(h("p", { class: "hint" }, "Unlock the password store (bottom of the sidebar) to have this remembered."));
    }
    const got = await this.ask(title, label, "", true, extras);
    return got && { value: got.value, remember: canRemember && remember.checked };
  }

  private ask(title: string, label: string, initial: string, secret: boolean, extras: HTMLElement[]): Promise<{ value: string } | null> {
    return new Promise((resolve) => {
      const input = h("input", { type: secret ? "password" : "text", value: initial, "aria-label": label, name: "answer" });
      const ok = h("button", { type: "submit", class: "primary" }, "OK");
      const cancel = h("button", { type: "button" }, "Cancel");
      const form = h("form", { class: "ask" }, h("label", {}, label, input), ...extras);
      let done = false;
      const finish = (value: string | null) => {
        if (done) return;
        done = true;
        this.closeDialog();
        resolve(value === null ? null : { value });
      };
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        const value = input.value;
        input.value = "";
        finish(value);
      });
      ok.addEventListener("click", (e) => {
        e.preventDefault();
        form.requestSubmit();
      });
      cancel.addEventListener("click", () => finish(null));
      this.dialog.addEventListener("cancel", () => finish(null), { once: true });
      this.showDialog(title, [form], [cancel, ok], "ask-dialog");
      input.focus();
    });
  }

  /** The app's SSH keys (fingerprints, public halves to copy), the running
   * agent's keys, and forms to generate and import keys. */
  private async keysDialog(): Promise<void> {
    let view;
    try {
      view = await api.keysList();
    } catch (e) {
      this.say(asUiError(e).message);
      return;
    }
    this.appKeys = view.keys;
    const field = (label: string, name: string, input: HTMLElement) =>
      h("label", { "data-field": name }, label, input, h("span", { class: "field-error", "data-error-for": name }));
    const error = h("p", { class: "form-error", role: "alert" });
    const rows = view.keys.map((key) => {
      const copy = h("button", { type: "button", class: "copy-public" }, "Copy public key");
      copy.addEventListener("click", () => {
        void api
          .keyCopyPublic(key.id)
          .then(() => this.say(`The public key of ${key.name} is on the clipboard: add it to the host's authorized_keys.`))
          .catch((e: unknown) => (error.textContent = asUiError(e).message));
      });
      const remove = h("button", { type: "button", class: "link delete-key" }, "Delete");
      remove.addEventListener("click", () => {
        void (async () => {
          const sure = await this.choose(`Delete the key ${key.name}?`, ["Its private key is removed from the password store; hosts that trust it keep its public key until you remove it there."], [["delete", "Delete"], ["reject", "Keep it"]]);
          if (sure === "delete") {
            try {
              await api.keyDelete(key.id);
            } catch (e) {
              this.say(asUiError(e).message);
            }
          }
          await this.refresh();
          await this.keysDialog();
        })();
      });
      return h(
        "li",
        { class: "key-row", "data-key": key.name },
        h("div", { class: "key-head" }, h("strong", {}, key.name), h("span", { class: "key-kind" }, `${key.algorithm} · ${key.origin}`)),
        h("code", { class: "key-fingerprint" }, key.fingerprint),
        h("code", { class: "public-key mono-wrap" }, key.public_key),
        h("div", { class: "key-actions" }, copy, remove),
      );
    });
    const list = rows.length > 0 ? h("ul", { class: "key-list" }, ...rows) : h("p", { class: "hint" }, "The app keeps no key yet: generate one, or import one you have.");
    const agent = view.agent.socket
      ? view.agent.error
        ? h("p", { class: "hint" }, `The SSH agent at ${view.agent.socket} did not answer: ${view.agent.error}`)
        : h(
            "ul",
            { class: "key-list agent-keys" },
            ...(view.agent.keys.length > 0
              ? view.agent.keys.map((k) => h("li", { class: "key-row" }, h("div", { class: "key-head" }, h("strong", {}, k.comment || "(no comment)"), h("span", { class: "key-kind" }, k.algorithm)), h("code", { class: "key-fingerprint" }, k.fingerprint)))
              : [h("li", { class: "hint" }, "The agent holds no key.")]),
          )
      : h("p", { class: "hint" }, "No SSH agent is running for this session (SSH_AUTH_SOCK is not set).");

    const store = this.overview.secrets;
    const storeNote =
      store.state === "ready"
        ? h("p", { class: "hint" }, `Private keys are kept in ${store.kind === "keychain" ? "the OS keychain" : "the encrypted file"}, never in the inventory.`)
        : h("p", { class: "hint form-error" }, "Unlock the password store (bottom of the sidebar) first: private keys are kept there.");
    const newName = h("input", { name: "name", id: "key-name", placeholder: "e.g. laptop-2026" });
    const generate = h("button", { type: "button", id: "key-generate", class: "primary" }, "Generate ed25519 key");
    const importName = h("input", { name: "import_name", id: "import-name", placeholder: "e.g. work" });
    const importPath = h("input", { name: "path", id: "import-path", placeholder: "~/.ssh/id_ed25519" });
    const passphrase = h("input", { name: "passphrase", id: "import-passphrase", type: "password", placeholder: "if the key has one" });
    const importButton = h("button", { type: "button", id: "key-import" }, "Import key");
    const busy = async (work: () => Promise<AppKey>) => {
      this.dialog.querySelectorAll(".field-error").forEach((el) => (el.textContent = ""));
      error.textContent = "";
      try {
        const key = await work();
        passphrase.value = "";
        this.say(`${key.name}: ${key.fingerprint}`);
        await this.refresh();
        await this.keysDialog();
      } catch (e) {
        const err = asUiError(e);
        if (err.field === "name" && work === importWork) err.field = "import_name";
        if (!markField(this.dialog, err)) error.textContent = err.message;
      }
    };
    const generateWork = () => api.keyGenerate(newName.value);
    const importWork = () => api.keyImport(importName.value, importPath.value, passphrase.value === "" ? null : passphrase.value);
    generate.addEventListener("click", () => void busy(generateWork));
    importButton.addEventListener("click", () => void busy(importWork));
    const close = h("button", { type: "button", id: "keys-close" }, "Close");
    close.addEventListener("click", () => this.closeDialog());
    this.showDialog(
      "SSH keys",
      [
        storeNote,
        list,
        h("h3", {}, "New key"),
        h("div", { class: "row" }, field("Name", "name", newName), h("div", { class: "button-cell" }, generate)),
        h("h3", {}, "Import an OpenSSH key"),
        h("div", { class: "row" }, field("Name", "import_name", importName), field("Private key file", "path", importPath)),
        h("div", { class: "row" }, field("Passphrase", "passphrase", passphrase), h("div", { class: "button-cell" }, importButton)),
        h("h3", {}, "SSH agent"),
        agent,
        error,
      ],
      [close],
      "keys-dialog",
    );
  }

  private signInDialog(prefill?: { url: string; user: string; fingerprint?: string }): void {
    const fingerprintToConfirm = prefill?.fingerprint !== undefined ? { ...prefill, fingerprint: prefill.fingerprint } : undefined;
    const url = h("input", { name: "url", type: "url", placeholder: "https://gateway.example.com", value: prefill?.url ?? "" });
    const user = h("input", { name: "user", type: "text", value: prefill?.user ?? "" });
    const password = h("input", { name: "password", type: "password" });
    const error = h("p", { class: "form-error", role: "alert" });
    const fields: HTMLElement[] = [
      h("label", {}, "Gateway URL", url),
      h("label", {}, "User name", user),
      h("label", {}, "Password", password),
    ];
    if (fingerprintToConfirm) {
      fields.push(
        h(
          "div",
          { class: "fingerprint-confirm" },
          h("p", {}, "This gateway's certificate is not vouched for by a system authority. Compare its SHA-256 fingerprint with the one your administrator gave you:"),
          h("code", { class: "fingerprint" }, fingerprintToConfirm.fingerprint),
        ),
      );
    }
    const cancel = h("button", { type: "button" }, "Cancel");
    cancel.addEventListener("click", () => this.closeDialog());
    const submit = h("button", { type: "button", class: "primary", id: "sign-in-submit" }, fingerprintToConfirm ? "Trust and sign in" : "Sign in");
    const go = async () => {
      error.textContent = "";
      submit.disabled = true;
      try {
        const done = await api.gatewaySignIn(url.value.trim(), user.value.trim(), password.value, fingerprintToConfirm?.fingerprint ?? null);
        password.value = "";
        this.closeDialog();
        this.say(`Signed in to ${done.url} as ${done.user}.`);
        await this.refresh();
      } catch (e) {
        const err = asUiError(e);
        if (err.code === "certificate_unconfirmed" && err.fingerprint) {
          const pending = { url: url.value.trim(), user: user.value.trim(), fingerprint: err.fingerprint };
          const keep = password.value;
          this.signInDialog(pending);
          const again = this.dialog.querySelector<HTMLInputElement>("input[name=password]");
          if (again) again.value = keep;
          return;
        }
        error.textContent = err.message;
        markField(this.dialog, err);
      } finally {
        submit.disabled = false;
      }
    };
    submit.addEventListener("click", () => void go());
    const form = h("form", { class: "sign-in" }, ...fields, error);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void go();
    });
    this.showDialog(fingerprintToConfirm ? "Confirm the gateway's certificate" : "Sign in to a gateway", [form], [cancel, submit]);
    (fingerprintToConfirm ? submit : prefill ? password : url).focus();
  }

  /** A gateway of the inventory: its user name, its pinned certificate, sign out, remove. */
  private gatewayDialog(url: string): void {
    const gateway = this.overview.gateways.find((g) => g.url === url);
    const signedIn = this.overview.signed_in.find((g) => g.url === url);
    const user = h("input", { name: "user", value: gateway?.user ?? signedIn?.user ?? "" });
    const error = h("p", { class: "form-error", role: "alert" });
    const field = (label: string, name: string, input: HTMLElement) =>
      h("label", { "data-field": name }, label, input, h("span", { class: "field-error", "data-error-for": name }));
    const users = this.overview.hosts.filter((host) => host.route.via === "gateway" && host.route.gateway_id === gateway?.id).map((host) => host.name);
    const form = h(
      "form",
      { class: "gateway-form" },
      h("p", {}, h("strong", {}, url)),
      h("p", { class: "hint" }, signedIn ? `Signed in as ${signedIn.user}.` : "Signed out."),
      gateway?.pinned_fingerprint
        ? h("div", { class: "fingerprint-confirm" }, h("p", {}, "Pinned certificate (SHA-256):"), h("code", { class: "fingerprint" }, gateway.pinned_fingerprint))
        : h("p", { class: "hint" }, "Its certificate is checked against the system's authorities."),
      field("User name", "user", user),
      users.length > 0 ? h("p", { class: "hint" }, `Hosts routed through it: ${users.join(", ")}.`) : null,
      error,
    );
    const run = (action: () => Promise<unknown>, done: string) => {
      void (async () => {
        error.textContent = "";
        try {
          await action();
          this.closeDialog();
          this.say(done);
          this.gatewayHosts.delete(url);
          await this.refresh();
        } catch (e) {
          const err = asUiError(e);
          if (!markField(this.dialog, err)) error.textContent = err.message;
        }
      })();
    };
    const buttons: HTMLElement[] = [];
    if (gateway) {
      const remove = h("button", { type: "button", class: "danger", id: "gateway-delete" }, "Remove");
      remove.addEventListener("click", () => run(() => api.gatewayDelete(gateway.id), `Removed ${url}.`));
      buttons.push(remove);
    }
    if (signedIn) {
      const out = h("button", { type: "button", id: "gateway-sign-out" }, "Sign out");
      out.addEventListener("click", () => run(() => api.gatewaySignOut(url), `Signed out of ${url}.`));
      buttons.push(out);
    }
    const cancel = h("button", { type: "button" }, "Cancel");
    cancel.addEventListener("click", () => this.closeDialog());
    buttons.push(cancel);
    if (gateway) {
      const save = h("button", { type: "button", class: "primary", id: "gateway-save" }, "Save");
      save.addEventListener("click", () => run(() => api.gatewaySave(url, user.value.trim()), `Saved ${url}.`));
      buttons.push(save);
    }
    form.addEventListener("submit", (e) => e.preventDefault());
    this.showDialog("Gateway", [form], buttons, "gateway-dialog");
    user.focus();
  }

  private editHost(host: Host | null): void {
    const draft: HostDraft = host
      ? { ...host }
      : {
          id: null,
          name: "",
          address: "",
          port: 22,
          protocol: "ssh",
          route: { via: "direct" },
          user: "",
          auth: [],
          credential_ref: null,
          folder_id: null,
          tags: [],
          notes: "",
          favourite: false,
          rdp: { width: null, height: null, clipboard: true, domain: "" },
        };
    const field = (label: string, name: string, input: HTMLElement) =>
      h("label", { "data-field": name }, label, input, h("span", { class: "field-error", "data-error-for": name }));
    const name = h("input", { name: "name", value: draft.name });
    const address = h("input", { name: "address", value: draft.address, placeholder: "host name or address" });
    const port = h("input", { name: "port", type: "number", value: String(draft.port) });
    const protocol = h("select", { name: "protocol" }, h("option", { value: "ssh" }, "SSH"), h("option", { value: "rdp" }, "RDP"));
    protocol.value = draft.protocol;
    const via = h(
      "select",
      { name: "via" },
      h("option", { value: "direct" }, "Direct"),
      ...this.overview.gateways.map((g) => h("option", { value: `gateway:${g.id}` }, `Gateway ${g.url}`)),
      h("option", { value: "jump" }, "Jump hosts"),
    );
    via.value = draft.route.via === "gateway" ? `gateway:${draft.route.gateway_id}` : draft.route.via;
    const hops = h("input", {
      name: "hops",
      value: draft.route.via === "jump" ? draft.route.hops.join(", ") : "",
      placeholder: "names of jump hosts, first to last",
    });
    const user = h("input", { name: "user", value: draft.user });
    const resolution = h(
      "select",
      { name: "resolution" },
      h("option", { value: "fit" }, "Fit to the tab"),
      ...["1024x768", "1280x720", "1280x1024", "1600x900", "1920x1080", "2560x1440"].map((r) => h("option", { value: r }, r.replace("x", " × "))),
    );
    const current = draft.rdp.width && draft.rdp.height ? `${draft.rdp.width}x${draft.rdp.height}` : "fit";
    if (current !== "fit" && ![...resolution.options].some((o) => o.value === current)) {
      resolution.append(h("option", { value: current }, current.replace("x", " × ")));
    }
    resolution.value = current;
    const domain = h("input", { name: "domain", value: draft.rdp.domain, placeholder: "optional, or DOMAIN\\user as the user" });
    const shareClipboard = h("input", { name: "clipboard", type: "checkbox" });
    shareClipboard.checked = draft.rdp.clipboard;
    const method = h(
      "select",
      { name: "auth" },
      h("option", { value: "auto" }, "Automatic: agent, app keys, default keys, then password"),
      h("option", { value: "password" }, "Password"),
      h("option", { value: "key_file" }, "Key file"),
      h("option", { value: "agent" }, "SSH agent"),
      h("option", { value: "app_key" }, "A key kept by the app"),
      h("option", { value: "gateway_certificate" }, "Certificate from the gateway (for an app key)"),
      h("option", { value: "from_gateway" }, "From the gateway (its vault)"),
    );
    method.value = draft.auth[0]?.method && draft.auth[0].method !== "keyboard_interactive" ? draft.auth[0].method : "auto";
    const keyFile = h("input", { name: "key_file", value: keyPath(draft), placeholder: "~/.ssh/id_ed25519" });
    const appKey = h(
      "select",
      { name: "app_key" },
      ...this.appKeys.map((k) => h("option", { value: String(k.id) }, `${k.name} (${k.fingerprint.slice(0, 19)}…)`)),
    );
    const chosenKey = draft.auth.find((a) => a.method === "app_key" || a.method === "gateway_certificate");
    if (chosenKey && "key_id" in chosenKey) appKey.value = String(chosenKey.key_id);
    const showKeyFile = () => {
      const rdp = protocol.value === "rdp";
      keyFile.closest("label")?.classList.toggle("hidden", rdp || method.value !== "key_file");
      appKey.closest("label")?.classList.toggle("hidden", rdp || (method.value !== "app_key" && method.value !== "gateway_certificate"));
    };
    method.addEventListener("change", showKeyFile);
    const rdpRow = h(
      "div",
      { class: "row rdp-only" },
      field("Resolution", "resolution", resolution),
      field("Domain", "domain", domain),
      h("label", { class: "check" }, shareClipboard, "Share clipboard"),
    );
    const showProtocol = () => {
      const rdp = protocol.value === "rdp";
      rdpRow.classList.toggle("hidden", !rdp);
      // RDP asks for (or reads the saved) password, or takes the gateway's.
      for (const option of method.options) {
        option.hidden = rdp && option.value !== "auto" && option.value !== "from_gateway";
      }
      if (rdp && method.value !== "from_gateway") method.value = "auto";
      const auto = method.options[0];
      if (auto) auto.textContent = rdp ? "Password (asked, or remembered)" : "Automatic: agent, app keys, default keys, then password";
      showKeyFile();
    };
    protocol.addEventListener("change", () => {
      // The usual port follows the protocol unless one was typed.
      if (protocol.value === "rdp" && port.value === "22") port.value = "3389";
      if (protocol.value === "ssh" && port.value === "3389") port.value = "22";
      showProtocol();
    });
    const saved: HTMLElement[] = [];
    if (host?.credential_ref) {
      const where = this.overview.secrets.kind === "keychain" ? "the OS keychain" : "the encrypted file";
      const forget = h("button", { type: "button", class: "link", id: "forget-password" }, "Forget it");
      const line = h("p", { class: "hint saved-password" }, `A password for this host is saved in ${where}. `, forget);
      forget.addEventListener("click", () => {
        void api
          .hostForgetPassword(host.id)
          .then(async (updated) => {
            draft.credential_ref = updated.credential_ref;
            line.textContent = "The saved password is forgotten.";
            await this.refresh();
          })
          .catch((e: unknown) => this.say(asUiError(e).message));
      });
      saved.push(line);
    }
    const folder = h("select", { name: "folder" }, h("option", { value: "" }, "(none)"), ...this.overview.folders.map((f) => h("option", { value: String(f.id) }, f.name)));
    folder.value = draft.folder_id === null ? "" : String(draft.folder_id);
    const tags = h("input", { name: "tags", value: draft.tags.join(", "), placeholder: "prod, web" });
    const notes = h("textarea", { name: "notes" });
    notes.value = draft.notes;
    const favourite = h("input", { name: "favourite", type: "checkbox" });
    favourite.checked = draft.favourite;
    const error = h("p", { class: "form-error", role: "alert" });

    const form = h(
      "form",
      { class: "host-form" },
      field("Name", "name", name),
      field("Address", "address", address),
      h("div", { class: "row" }, field("Port", "port", port), field("Protocol", "protocol", protocol)),
      h("div", { class: "row" }, field("Route", "route", via), field("Jump hosts", "hops", hops)),
      h("div", { class: "row" }, field("User", "user", user), field("Sign in with", "auth", method)),
      field("Key file", "key_file", keyFile),
      field("Key", "app_key", appKey),
      rdpRow,
      ...saved,
      h("div", { class: "row" }, field("Folder", "folder", folder), field("Tags", "tags", tags)),
      field("Notes", "notes", notes),
      h("label", { class: "check" }, favourite, "Favourite"),
      error,
    );
    const collect = (): HostDraft | string => {
      const portNumber = Number(port.value);
      if (!Number.isInteger(portNumber) || portNumber < 1 || portNumber > 65535) {
        return "port";
      }
      const [width, height] = resolution.value === "fit" ? [null, null] : resolution.value.split("x").map(Number);
      let route: RouteSpec = { via: "direct" };
      if (via.value.startsWith("gateway:")) {
        route = { via: "gateway", gateway_id: Number(via.value.slice("gateway:".length)) };
      } else if (via.value === "jump") {
        route = { via: "jump", hops: hops.value.split(",").map((s) => s.trim()).filter((s) => s) };
      }
      return {
        id: draft.id,
        name: name.value,
        address: address.value,
        port: portNumber,
        protocol: protocol.value === "rdp" ? "rdp" : "ssh",
        route,
        user: user.value,
        auth: authOf(method.value, keyFile.value.trim(), Number(appKey.value), protocol.value === "rdp"),
        credential_ref: draft.credential_ref,
        folder_id: folder.value ? Number(folder.value) : null,
        tags: tags.value.split(",").map((s) => s.trim()).filter((s) => s),
        notes: notes.value,
        favourite: favourite.checked,
        rdp: { width: width ?? null, height: height ?? null, clipboard: shareClipboard.checked, domain: domain.value },
      };
    };
    const save = h("button", { type: "button", class: "primary", id: "host-save" }, "Save");
    save.addEventListener("click", () => {
      void (async () => {
        this.dialog.querySelectorAll(".field-error").forEach((el) => (el.textContent = ""));
        error.textContent = "";
        const collected = collect();
        if (typeof collected === "string") {
          markField(this.dialog, { code: "invalid", field: collected, message: "must be between 1 and 65535" });
          return;
        }
        try {
          await api.hostSave(collected);
          this.closeDialog();
          await this.refresh();
        } catch (e) {
          const err = asUiError(e);
          if (!markField(this.dialog, err)) error.textContent = err.message;
        }
      })();
    });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      save.click();
    });
    const cancel = h("button", { type: "button", id: "host-cancel" }, "Cancel");
    cancel.addEventListener("click", () => this.closeDialog());
    const buttons: HTMLElement[] = [];
    if (host) {
      const del = h("button", { type: "button", class: "danger", id: "host-delete" }, "Delete");
      del.addEventListener("click", () => {
        void (async () => {
          const sure = await this.choose(`Delete ${host.name}?`, ["The host is removed from this inventory. Its sessions stay open."], [
            ["delete", "Delete"],
            ["reject", "Keep it"],
          ]);
          if (sure !== "delete") {
            this.editHost(host);
            return;
          }
          try {
            await api.hostDelete(host.id);
            await this.refresh();
          } catch (e) {
            this.say(asUiError(e).message);
          }
        })();
      });
      const dup = h("button", { type: "button", id: "host-duplicate" }, "Duplicate");
      dup.addEventListener("click", () => {
        void (async () => {
          try {
            const copy = await api.hostDuplicate(host.id);
            await this.refresh();
            this.editHost(copy);
          } catch (e) {
            error.textContent = asUiError(e).message;
          }
        })();
      });
      buttons.push(del, dup);
    }
    buttons.push(cancel, save);
    this.showDialog(host ? `Edit ${host.name}` : "Add a host", [form], buttons, "host-dialog");
    showKeyFile();
    showProtocol();
    name.focus();
  }
}

function keyPath(draft: HostDraft): string {
  for (const a of draft.auth) {
    if (a.method === "key_file") return a.path;
  }
  return "";
}

/** Shows an error beside its field; false when the error names no field on the form. */
function markField(dialog: HTMLElement, error: UiError): boolean {
  if (!error.field) return false;
  const target = dialog.querySelector(`[data-error-for="${CSS.escape(error.field)}"]`);
  if (!target) return false;
  target.textContent = error.message;
  dialog.querySelector<HTMLElement>(`[data-field="${CSS.escape(error.field)}"] input, [data-field="${CSS.escape(error.field)}"] select`)?.focus();
  return true;
}

export function describeDesktopEnd(end: RdpEnd): string {
  switch (end.kind) {
    case "closed":
      return "Disconnected.";
    case "logged_off":
      return "You logged off the remote desktop.";
    case "server_disconnected":
      return `The server ended the session: ${end.detail}`;
    case "connection_lost":
      return `Connection lost: ${end.detail}`;
  }
}

export function describeEnd(end: SessionEnd): string {
  switch (end.kind) {
    case "exited":
      return end.status !== null ? `exited with status ${end.status}` : `killed by signal ${end.signal ?? "?"}`;
    case "closed":
      return "the server closed the session";
    case "lost":
      return `connection lost: ${end.cause}`;
    case "closed_by_user":
      return "closed";
  }
}
