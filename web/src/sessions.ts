// The session list: a sidebar on wide screens, a panel behind the "Sessions"
// button on narrow ones. It lists `GET /api/v1/sessions` and opens one in
// place through the chat controller; next to "New session", a "Tenant" select
// offers the tenants a new session may be bound to (`GET /api/v1/chat/tenants`)
// when there are any. Titles and tenant names are untrusted and only ever set
// as text.

import { isPlainClick } from './action';
import { formatRelativeTime } from './format';
import type { ChatTenant, ChatTenantList, SessionList, SessionStatus, SessionSummary } from './protocol';

export const UNTITLED = 'Untitled session';

export const STATUS_LABEL: Record<SessionStatus, string> = {
  preparing: 'Starting',
  ready: 'Active',
  idle: 'Paused',
  failed: 'Stopped',
  ended: 'Ended',
};

const LOAD_FAILED = 'Your sessions could not be loaded.';

/** A status this page knows; the gateway sends `unknown` for one it does not. */
function isSessionStatus(status: string): status is SessionStatus {
  return Object.hasOwn(STATUS_LABEL, status);
}

/** Tolerates a missing title (`null`), though the gateway sends "" for none. */
export function sessionTitle(session: { title: string | null }): string {
  const title = typeof session.title === 'string' ? session.title.trim() : '';
  return title || UNTITLED;
}

export function messageCountText(count: number): string {
  const n = Number.isFinite(count) && count > 0 ? Math.floor(count) : 0;
  return n === 1 ? '1 message' : `${n} messages`;
}

/** The link that opens a session: a query on the app's own path. */
export function sessionHref(sessionId: string): string {
  return `?session=${encodeURIComponent(sessionId)}`;
}

/**
 * Most recently active first, whatever order the server sent; ties by
 * creation, then by id, so a refresh never shuffles equal rows.
 */
export function sortSessions(sessions: readonly SessionSummary[]): SessionSummary[] {
  return [...sessions].sort(
    (a, b) =>
      time(b.last_active_at) - time(a.last_active_at) ||
      time(b.created_at) - time(a.created_at) ||
      (a.session_id < b.session_id ? -1 : a.session_id > b.session_id ? 1 : 0),
  );
}

/** Unparseable times sort last instead of breaking the comparison (NaN). */
function time(iso: string): number {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? t : 0;
}

interface Row {
  li: HTMLElement;
  link: HTMLAnchorElement;
  title: HTMLElement;
  badge: HTMLElement;
  count: HTMLElement;
  time: HTMLTimeElement;
}

/** The list as DOM, one row per session kept across renders so focus survives a refresh. */
export class SessionListView {
  private readonly rows = new Map<string, Row>();
  private readonly empty: HTMLElement;

  constructor(private readonly root: HTMLElement) {
    this.empty = root.ownerDocument.createElement('li');
    this.empty.className = 'session-empty';
    this.empty.textContent = 'No sessions yet.';
  }

  render(sessions: readonly SessionSummary[], currentId: string | null, now: number): void {
    this.empty.remove();
    const keep = new Set<string>();
    let cursor: Element | null = this.root.firstElementChild;
    for (const session of sortSessions(sessions)) {
      if (typeof session.session_id !== 'string' || keep.has(session.session_id)) continue;
      keep.add(session.session_id);
      let row = this.rows.get(session.session_id);
      if (!row) {
        row = createRow(this.root.ownerDocument, session.session_id);
        this.rows.set(session.session_id, row);
      }
      updateRow(row, session, session.session_id === currentId, now);
      if (row.li === cursor) {
        cursor = cursor.nextElementSibling;
      } else {
        this.root.insertBefore(row.li, cursor);
      }
    }
    for (const [id, row] of this.rows) {
      if (!keep.has(id)) {
        row.li.remove();
        this.rows.delete(id);
      }
    }
    if (keep.size === 0) this.root.append(this.empty);
  }
}

function createRow(doc: Document, sessionId: string): Row {
  const el = <K extends keyof HTMLElementTagNameMap>(tag: K, cls: string): HTMLElementTagNameMap[K] => {
    const node = doc.createElement(tag);
    node.className = cls;
    return node;
  };
  const title = el('span', 'session-title');
  const badge = el('span', 'session-badge');
  const count = el('span', 'session-count');
  const time = el('time', 'session-time');
  const meta = el('span', 'session-meta');
  meta.append(badge, count, time);
  const link = el('a', 'session-item');
  link.setAttribute('href', sessionHref(sessionId));
  link.dataset.sessionId = sessionId;
  link.append(title, meta);
  const li = el('li', 'session-row');
  li.append(link);
  return { li, link, title, badge, count, time };
}

function updateRow(row: Row, session: SessionSummary, current: boolean, now: number): void {
  row.title.textContent = sessionTitle(session);
  const status = isSessionStatus(session.status) ? session.status : 'ended';
  row.link.dataset.status = status;
  row.link.dataset.resumable = String(session.is_resumable === true);
  row.badge.dataset.status = status;
  row.badge.textContent = STATUS_LABEL[status];
  row.count.textContent = messageCountText(session.message_count);
  const at = Date.parse(session.last_active_at);
  row.time.textContent = formatRelativeTime(at, now);
  if (Number.isFinite(at)) {
    row.time.dateTime = new Date(at).toISOString();
    row.time.title = new Date(at).toLocaleString();
  }
  if (current) {
    row.link.setAttribute('aria-current', 'page');
  } else {
    row.link.removeAttribute('aria-current');
  }
}

/** What the "Tenant" select shows for one tenant. */
export function tenantLabel(tenant: ChatTenant): string {
  const name = typeof tenant.name === 'string' ? tenant.name.trim() : '';
  return name && name !== tenant.tenant_id ? `${name} (${tenant.tenant_id})` : tenant.tenant_id;
}

export interface TenantPickerElements {
  /** Holds the select and its label; hidden while there is nothing to pick. */
  picker: HTMLElement;
  /** Its first option is "No tenant" (value ""). */
  select: HTMLSelectElement;
}

/**
 * The tenant a new session is bound to: "No tenant" or one of the caller's
 * chat tenants. Shown only when there is at least one.
 */
export class TenantPicker {
  constructor(private readonly el: TenantPickerElements) {
    this.show(null);
  }

  /** Offers `tenants` (null: unknown, nothing is offered); a choice still offered stays chosen. */
  show(tenants: readonly ChatTenant[] | null): void {
    const doc = this.el.select.ownerDocument;
    const chosen = this.el.select.value;
    const seen = new Set<string>();
    const options = [option(doc, '', 'No tenant')];
    for (const t of tenants ?? []) {
      if (typeof t?.tenant_id !== 'string' || t.tenant_id === '' || seen.has(t.tenant_id)) continue;
      seen.add(t.tenant_id);
      options.push(option(doc, t.tenant_id, tenantLabel(t)));
    }
    this.el.select.replaceChildren(...options);
    this.el.select.value = seen.has(chosen) ? chosen : '';
    this.el.picker.hidden = seen.size === 0;
  }

  /** The chosen tenant's id; null for "No tenant" or while nothing is offered. */
  selected(): string | null {
    if (this.el.picker.hidden) return null;
    return this.el.select.value || null;
  }
}

function option(doc: Document, value: string, text: string): HTMLOptionElement {
  const el = doc.createElement('option');
  el.value = value;
  el.textContent = text;
  return el;
}

export interface SidebarElements {
  panel: HTMLElement;
  list: HTMLElement;
  error: HTMLElement;
  /** Opens and closes the panel on narrow screens (hidden by CSS on wide ones). */
  toggle: HTMLButtonElement;
  newSession: HTMLButtonElement;
  /** The "Tenant" select next to "New session". */
  tenant?: TenantPickerElements;
}

export interface SidebarOptions {
  load(): Promise<SessionList>;
  /** The tenants the user may bind a new session to; without it, none is offered. */
  loadTenants?(): Promise<ChatTenantList>;
  /** Open `sessionId` in place. */
  open(sessionId: string): void;
  /** Start a new session, bound to `tenantId` unless null. */
  create(tenantId: string | null): void;
  /** The list was loaded again (what `tenantOf` answers may have changed). */
  changed?(): void;
  now?(): number;
}

/** The list's data and behaviour: loading, refreshing, opening, the narrow-screen panel. */
export class Sidebar {
  private sessions: SessionSummary[] = [];
  private current: string | null = null;
  private loading: Promise<void> | null = null;
  /** A refresh was asked for while one was in flight: fetch once more after it. */
  private stale = false;
  /** Bumped by `clear()` so a response for the previous user is dropped. */
  private generation = 0;
  private readonly view: SessionListView;
  private readonly picker: TenantPicker | null;
  /** The chat tenants were asked for since the last `clear()` (asked again after a failure). */
  private tenantsAsked = false;

  constructor(
    private readonly el: SidebarElements,
    private readonly opts: SidebarOptions,
  ) {
    this.view = new SessionListView(el.list);
    this.picker = el.tenant ? new TenantPicker(el.tenant) : null;
    el.list.addEventListener('click', (ev) => {
      const link = (ev.target as Element | null)?.closest?.<HTMLElement>('a[data-session-id]');
      const id = link?.dataset.sessionId;
      // Modified clicks open the row's real href in a new tab or window.
      if (!id || !isPlainClick(ev)) return;
      ev.preventDefault();
      this.setOpen(false);
      opts.open(id);
    });
    el.newSession.addEventListener('click', () => {
      this.setOpen(false);
      opts.create(this.selectedTenant());
    });
    el.toggle.addEventListener('click', () => this.setOpen(!this.isOpen()));
    el.panel.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Escape' || !this.isOpen()) return;
      this.setOpen(false);
      el.toggle.focus();
    });
    el.panel.ownerDocument.addEventListener('click', (ev) => {
      const target = ev.target as Node | null;
      if (!this.isOpen() || !target || el.panel.contains(target) || el.toggle.contains(target)) return;
      this.setOpen(false);
    });
    this.setOpen(false);
  }

  /** Marks the session shown in the chat (null: a new one the server has not named yet). */
  setCurrent(sessionId: string | null): void {
    if (sessionId === this.current) return;
    this.current = sessionId;
    this.render();
  }

  /** The tenant chosen for the next new session; null for none. */
  selectedTenant(): string | null {
    return this.picker?.selected() ?? null;
  }

  /** The tenant a listed session is bound to; null for none, or a session not (yet) listed. */
  tenantOf(sessionId: string): string | null {
    const tenant = this.sessions.find((s) => s.session_id === sessionId)?.tenant_id;
    return typeof tenant === 'string' && tenant !== '' ? tenant : null;
  }

  /** Loads the list again. Calls during a load fold into one more load after it. */
  refresh(): Promise<void> {
    if (this.loading) {
      this.stale = true;
      return this.loading;
    }
    this.loading = this.load().finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  /** Forgets the list, e.g. on sign-out. */
  clear(): void {
    this.generation++;
    this.sessions = [];
    this.current = null;
    this.tenantsAsked = false;
    this.picker?.show(null);
    this.showError(null);
    this.render();
  }

  /** Asks once per sign-in which tenants a new session may be bound to. */
  private async loadTenants(): Promise<void> {
    const load = this.opts.loadTenants;
    if (!this.picker || !load || this.tenantsAsked) return;
    this.tenantsAsked = true;
    const generation = this.generation;
    let list: ChatTenantList | null;
    try {
      list = await load();
    } catch {
      list = null;
    }
    if (generation !== this.generation) return;
    // Not offered rather than half-known; the next refresh asks again.
    if (list === null) this.tenantsAsked = false;
    this.picker.show(list !== null && Array.isArray(list.tenants) ? list.tenants : null);
  }

  private async load(): Promise<void> {
    void this.loadTenants();
    do {
      this.stale = false;
      const generation = this.generation;
      let list: SessionList | null = null;
      try {
        list = await this.opts.load();
      } catch {
        list = null;
      }
      if (generation !== this.generation) continue;
      if (list === null) {
        // Keep what was shown: an old list is more use than none.
        this.showError(LOAD_FAILED);
      } else {
        this.sessions = Array.isArray(list.sessions) ? list.sessions : [];
        this.showError(null);
      }
      this.render();
      this.opts.changed?.();
    } while (this.stale);
  }

  private render(): void {
    this.view.render(this.sessions, this.current, this.opts.now?.() ?? Date.now());
  }

  private isOpen(): boolean {
    return this.el.panel.dataset.open === 'true';
  }

  private setOpen(open: boolean): void {
    const was = this.isOpen();
    this.el.panel.dataset.open = String(open);
    this.el.toggle.setAttribute('aria-expanded', String(open));
    if (open && !was) {
      const target = this.el.list.querySelector<HTMLElement>('a[aria-current]') ?? this.el.newSession;
      target.focus();
    }
  }

  private showError(message: string | null): void {
    this.el.error.hidden = message === null;
    this.el.error.textContent = message ?? '';
  }
}
