// The users page (admin): every account with its role, monthly cap and this
// month's spend; a form to create one; per row, change the role and cap or
// (de)activate. The gateway validates everything and its message is shown as
// it is; the page only parses the cap, because "empty" has to become null.

import { ApiError } from './api';
import { budgetPercent, budgetTone } from './budget';
import { pageElements } from './elements';
import { formatMoney, formatTimestamp } from './format';
import { ROLES } from './nav';
import type { AdminUser, NewUser, UserList, UserPatch } from './protocol';

export type CapInput = { ok: true; value: number | null } | { ok: false; message: string };

export const CAP_INVALID = 'Enter the monthly cap in dollars (e.g. 100 or 12.50), or leave it empty for no cap.';

/** The cap field's text: empty is "no cap"; a "$" and thousands commas are tolerated. */
export function parseCap(text: string): CapInput {
  const cleaned = text.trim().replace(/^\$/, '').replace(/,/g, '').trim();
  if (cleaned === '') return { ok: true, value: null };
  if (!/^\d+(\.\d+)?$|^\.\d+$/.test(cleaned)) return { ok: false, message: CAP_INVALID };
  const value = Number(cleaned);
  if (!Number.isFinite(value)) return { ok: false, message: CAP_INVALID };
  return { ok: true, value };
}

/** The cap as the field shows it: "" for no cap, "100", "12.50". */
export function capText(cap: number | null): string {
  if (typeof cap !== 'number' || !Number.isFinite(cap)) return '';
  return Number.isInteger(cap) ? String(cap) : cap.toFixed(2);
}

/**
 * The PATCH body for a row's edits: only what differs from `user`, so saving
 * a cap never re-sends a role (or the reverse). An empty body: nothing to save.
 */
export function rowPatch(user: AdminUser, role: string, capField: string): { ok: true; patch: UserPatch } | { ok: false; message: string } {
  const cap = parseCap(capField);
  if (!cap.ok) return cap;
  const patch: UserPatch = {};
  if (role !== user.role) patch.role = role;
  if (cap.value !== (user.monthly_cost_cap_usd ?? null)) patch.monthly_cost_cap_usd = cap.value;
  return { ok: true, patch };
}

/** This month's spend, with the share of the cap when there is one: "$81.00 (81%)". */
export function spendText(user: Pick<AdminUser, 'current_month_spend_usd' | 'monthly_cost_cap_usd'>): string {
  const spent = formatMoney(user.current_month_spend_usd);
  const percent = budgetPercent({ spent_usd: user.current_month_spend_usd, cap_usd: user.monthly_cost_cap_usd, percent: null });
  return percent === null ? spent : `${spent} (${percent}%)`;
}

/** By name, case-insensitively, so a new user lands where the admin expects. */
export function sortUsers(users: readonly AdminUser[]): AdminUser[] {
  return [...users].sort((a, b) => a.username.localeCompare(b.username, undefined, { sensitivity: 'base' }) || (a.user_id < b.user_id ? -1 : 1));
}

export interface UsersElements {
  table: HTMLTableElement;
  body: HTMLTableSectionElement;
  error: HTMLElement;
  /** Confirms what was done ("Saved alice."), as a polite live region. */
  notice: HTMLElement;
  form: HTMLFormElement;
  username: HTMLInputElement;
  password: HTMLInputElement;
  role: HTMLSelectElement;
  cap: HTMLInputElement;
  submit: HTMLButtonElement;
}

export function usersElements(doc: Document): UsersElements {
  const { get, table: tableOf } = pageElements(doc, 'users page');
  const { table, body } = tableOf('users-table');
  return {
    table,
    body,
    error: get('users-error'),
    notice: get('users-notice'),
    form: get<HTMLFormElement>('new-user-form'),
    username: get<HTMLInputElement>('new-user-username'),
    password: get<HTMLInputElement>('new-user-password'),
    role: get<HTMLSelectElement>('new-user-role'),
    cap: get<HTMLInputElement>('new-user-cap'),
    submit: get<HTMLButtonElement>('new-user-submit'),
  };
}

export interface UsersOptions {
  list(): Promise<UserList>;
  create(user: NewUser): Promise<AdminUser>;
  update(userId: string, patch: UserPatch): Promise<AdminUser>;
  /** The session cookie is gone: show the sign-in form. */
  onSignedOut(): void;
  /** The signed-in admin changed their own account (their role may be gone). */
  onSelfChanged?(): void;
  /** The signed-in user's id, to notice changes to their own account. */
  currentUserId?(): string | null;
}

interface Row {
  tr: HTMLTableRowElement;
  name: HTMLElement;
  role: HTMLSelectElement;
  active: HTMLElement;
  cap: HTMLInputElement;
  spend: HTMLElement;
  created: HTMLTimeElement;
  lastLogin: HTMLTimeElement;
  save: HTMLButtonElement;
  toggle: HTMLButtonElement;
  /** The user as the fields were last filled from, to keep unsaved edits across a re-render. */
  shown: AdminUser | null;
}

export class UsersPage {
  private users: AdminUser[] = [];
  private readonly rows = new Map<string, Row>();
  /** Bumped by `clear()` so answers for the previous user are dropped. */
  private generation = 0;

  constructor(
    private readonly el: UsersElements,
    private readonly opts: UsersOptions,
  ) {
    fillRoles(el.role, 'user');
    el.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.create();
    });
    // One listener for every row's buttons, which come and go with the list.
    el.body.addEventListener('click', (ev) => {
      const button = (ev.target as Element | null)?.closest?.<HTMLButtonElement>('button');
      const userId = button?.closest<HTMLElement>('tr[data-user-id]')?.dataset.userId;
      if (!button || !userId) return;
      if (button.classList.contains('user-save')) void this.save(userId);
      if (button.classList.contains('user-toggle-active')) void this.toggleActive(userId);
    });
  }

  /** Opens the page: loads the list afresh (spend moves all the time). */
  async show(): Promise<void> {
    const generation = this.generation;
    try {
      const list = await this.opts.list();
      if (generation !== this.generation) return;
      this.users = Array.isArray(list.users) ? list.users : [];
      this.render();
      this.showError(null);
    } catch (err) {
      if (generation !== this.generation) return;
      this.fail(err, 'The users could not be loaded.');
    }
  }

  /** Forgets every row and message, e.g. on sign-out. */
  clear(): void {
    this.generation++;
    this.users = [];
    this.render();
    this.showError(null);
    this.showNotice(null);
    this.el.form.reset();
    this.el.role.value = 'user';
  }

  private async create(): Promise<void> {
    const cap = parseCap(this.el.cap.value);
    if (!cap.ok) {
      this.showError(cap.message);
      this.el.cap.focus();
      return;
    }
    const generation = this.generation;
    this.el.submit.disabled = true;
    this.showNotice(null);
    try {
      const user = await this.opts.create({
        username: this.el.username.value.trim(),
        password: this.el.password.value,
        role: this.el.role.value,
        monthly_cost_cap_usd: cap.value,
      });
      if (generation !== this.generation) return;
      this.upsert(user);
      this.el.form.reset();
      this.el.role.value = 'user';
      this.showError(null);
      this.showNotice(`Created ${user.username}.`);
    } catch (err) {
      if (generation !== this.generation) return;
      this.fail(err, 'The user could not be created.');
    } finally {
      this.el.submit.disabled = false;
    }
  }

  private async save(userId: string): Promise<void> {
    const user = this.users.find((u) => u.user_id === userId);
    const row = this.rows.get(userId);
    if (!user || !row) return;
    const edit = rowPatch(user, row.role.value, row.cap.value);
    if (!edit.ok) {
      this.showError(edit.message);
      row.cap.focus();
      return;
    }
    if (Object.keys(edit.patch).length === 0) {
      this.showError(null);
      this.showNotice(`No changes to save for ${user.username}.`);
      return;
    }
    await this.update(row, user, edit.patch, `Saved ${user.username}.`);
  }

  private async toggleActive(userId: string): Promise<void> {
    const user = this.users.find((u) => u.user_id === userId);
    const row = this.rows.get(userId);
    if (!user || !row) return;
    const active = !user.is_active;
    await this.update(row, user, { is_active: active }, `${active ? 'Activated' : 'Deactivated'} ${user.username}.`);
  }

  private async update(row: Row, user: AdminUser, patch: UserPatch, done: string): Promise<void> {
    const generation = this.generation;
    row.save.disabled = true;
    row.toggle.disabled = true;
    this.showNotice(null);
    try {
      const updated = await this.opts.update(user.user_id, patch);
      if (generation !== this.generation) return;
      // What was saved is now the row's truth; edits to fields not sent stay in place.
      this.upsert(updated, Object.keys(patch));
      this.showError(null);
      this.showNotice(done);
      if (updated.user_id === this.opts.currentUserId?.()) this.opts.onSelfChanged?.();
    } catch (err) {
      if (generation !== this.generation) return;
      this.fail(err, 'The change could not be saved.');
    } finally {
      row.save.disabled = false;
      row.toggle.disabled = false;
    }
  }

  /**
   * Puts the server's copy of a user in the list. `saved` names the fields
   * just written, whose inputs take the server's value even if the row's
   * other edits are kept.
   */
  private upsert(user: AdminUser, saved: string[] = []): void {
    const at = this.users.findIndex((u) => u.user_id === user.user_id);
    if (at >= 0) {
      this.users[at] = user;
    } else {
      this.users.push(user);
    }
    const row = this.rows.get(user.user_id);
    if (row?.shown) {
      if (saved.includes('role')) row.role.value = user.role;
      if (saved.includes('monthly_cost_cap_usd')) row.cap.value = capText(user.monthly_cost_cap_usd);
    }
    this.render();
  }

  private render(): void {
    const doc = this.el.body.ownerDocument;
    const keep = new Set<string>();
    let cursor: Element | null = this.el.body.firstElementChild;
    for (const user of sortUsers(this.users)) {
      if (typeof user.user_id !== 'string' || keep.has(user.user_id)) continue;
      keep.add(user.user_id);
      let row = this.rows.get(user.user_id);
      if (!row) {
        row = createRow(doc, user.user_id);
        this.rows.set(user.user_id, row);
      }
      updateRow(row, user);
      if (row.tr === cursor) {
        cursor = cursor.nextElementSibling;
      } else {
        this.el.body.insertBefore(row.tr, cursor);
      }
    }
    for (const [id, row] of this.rows) {
      if (!keep.has(id)) {
        row.tr.remove();
        this.rows.delete(id);
      }
    }
  }

  private fail(err: unknown, fallback: string): void {
    if (err instanceof ApiError && err.status === 401) {
      this.opts.onSignedOut();
      return;
    }
    this.showError(err instanceof ApiError ? err.message : fallback);
  }

  private showError(message: string | null): void {
    this.el.error.hidden = message === null;
    this.el.error.textContent = message ?? '';
  }

  private showNotice(message: string | null): void {
    this.el.notice.textContent = message ?? '';
  }
}

/** The role choices; an unknown current role is kept as an option so it is shown, not silently changed. */
function fillRoles(select: HTMLSelectElement, current: string): void {
  const doc = select.ownerDocument;
  const roles: string[] = ROLES.includes(current as (typeof ROLES)[number]) ? [...ROLES] : [current, ...ROLES];
  select.replaceChildren(
    ...roles.map((role) => {
      const option = doc.createElement('option');
      option.value = role;
      option.textContent = role;
      return option;
    }),
  );
  select.value = current;
}

function createRow(doc: Document, userId: string): Row {
  const el = <K extends keyof HTMLElementTagNameMap>(tag: K, cls = ''): HTMLElementTagNameMap[K] => {
    const node = doc.createElement(tag);
    if (cls) node.className = cls;
    return node;
  };
  const td = (cls: string, ...children: Node[]): HTMLTableCellElement => {
    const cell = el('td', cls);
    cell.append(...children);
    return cell;
  };
  const role = el('select', 'user-role');
  const cap = el('input', 'user-cap');
  cap.type = 'text';
  cap.inputMode = 'decimal';
  cap.placeholder = 'No cap';
  cap.autocomplete = 'off';
  const save = el('button', 'user-save secondary');
  save.type = 'button';
  save.textContent = 'Save';
  const toggle = el('button', 'user-toggle-active secondary');
  toggle.type = 'button';
  const name = el('span', 'user-name');
  const active = el('span', 'user-active');
  const spend = el('span', 'user-spend');
  const created = el('time', 'user-created');
  const lastLogin = el('time', 'user-last-login');
  const actions = el('div', 'user-actions');
  actions.append(save, toggle);
  const tr = el('tr', 'user-row');
  tr.dataset.userId = userId;
  tr.append(
    td('user-name-cell', name),
    td('user-role-cell', role),
    td('user-active-cell', active),
    td('user-cap-cell', cap),
    td('user-spend-cell num', spend),
    td('user-created-cell', created),
    td('user-last-login-cell', lastLogin),
    td('user-actions-cell', actions),
  );
  return { tr, name, role, active, cap, spend, created, lastLogin, save, toggle, shown: null };
}

function updateRow(row: Row, user: AdminUser): void {
  const prev = row.shown;
  row.tr.dataset.username = user.username;
  row.tr.dataset.active = String(user.is_active === true);
  row.name.textContent = user.username;
  // Inputs are filled when the row appears or the value changed on the server, so an
  // edit in progress survives refreshes caused by other rows.
  if (!prev || prev.role !== user.role) fillRoles(row.role, user.role);
  if (!prev || prev.monthly_cost_cap_usd !== user.monthly_cost_cap_usd) row.cap.value = capText(user.monthly_cost_cap_usd);
  row.role.setAttribute('aria-label', `Role of ${user.username}`);
  row.cap.setAttribute('aria-label', `Monthly cap in dollars for ${user.username}`);
  row.active.textContent = user.is_active ? 'Active' : 'Inactive';
  row.active.dataset.active = String(user.is_active === true);
  row.spend.textContent = spendText(user);
  const percent = budgetPercent({ spent_usd: user.current_month_spend_usd, cap_usd: user.monthly_cost_cap_usd, percent: null });
  row.spend.dataset.tone = budgetTone(percent);
  setTime(row.created, user.created_at, '');
  setTime(row.lastLogin, user.last_login_at, 'Never');
  row.toggle.textContent = user.is_active ? 'Deactivate' : 'Activate';
  row.toggle.setAttribute('aria-label', `${user.is_active ? 'Deactivate' : 'Activate'} ${user.username}`);
  row.save.setAttribute('aria-label', `Save role and cap of ${user.username}`);
  row.shown = user;
}

function setTime(el: HTMLTimeElement, iso: string, empty: string): void {
  const text = formatTimestamp(iso);
  el.textContent = text || empty;
  if (text) {
    el.dateTime = iso;
    el.title = iso;
  } else {
    el.removeAttribute('datetime');
    el.removeAttribute('title');
  }
}
