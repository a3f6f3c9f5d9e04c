// The audit log page (admin): every tool call csp decided, newest first, 100
// to a page. The server pages with a cursor (`before`) that only goes back
// in time, so the page keeps the cursors of the newer pages it came through
// on a stack to walk forward again. Inputs are sanitized by the server but
// still untrusted text: they are only ever set as text.

import { ApiError, type AuditFilters, auditLogUrl } from './api';
import { pageElements } from './elements';
import { formatCost, formatTimestamp } from './format';
import type { AuditEntry, AuditPage, UserList } from './protocol';

/** Where the page stands in the log. */
export interface PagerState {
  /** The cursor the page shown was loaded with; null: the newest page. */
  before: number | null;
  /** Cursors of the newer pages walked through, the nearest last. */
  newer: (number | null)[];
  /** The cursor of the next older page; null: the page shown is the oldest. */
  next: number | null;
}

export const FIRST_PAGE: PagerState = { before: null, newer: [], next: null };

/** The state to load for "Older", or null when the page shown is the oldest. */
export function olderPage(state: PagerState): PagerState | null {
  if (state.next === null) return null;
  return { before: state.next, newer: [...state.newer, state.before], next: null };
}

/** The state to load for "Newer", or null on the newest page. */
export function newerPage(state: PagerState): PagerState | null {
  if (state.newer.length === 0) return null;
  const newer = state.newer.slice(0, -1);
  return { before: state.newer[state.newer.length - 1] ?? null, newer, next: null };
}

/** `state` once its page arrived, which says where the next older page starts. */
export function withNext(state: PagerState, nextBefore: number | null | undefined): PagerState {
  return { ...state, next: typeof nextBefore === 'number' && Number.isFinite(nextBefore) ? nextBefore : null };
}

/** Why `filters` cannot be applied, or null. Dates are `YYYY-MM-DD`, so text order is time order. */
export function filterError(filters: AuditFilters): string | null {
  if (filters.start && filters.end && filters.start > filters.end) return 'The start date is after the end date.';
  return null;
}

export const INPUT_PREVIEW_CHARS = 80;

/**
 * A tool input on one line, cut to `max` characters. `partial`: the preview
 * is not the input as it is (cut, or its line breaks folded), so the full
 * text is offered beside it.
 */
export function inputPreview(input: string, max = INPUT_PREVIEW_CHARS): { text: string; partial: boolean } {
  const full = typeof input === 'string' ? input : '';
  const line = full.replace(/\s+/g, ' ').trim();
  if (line.length <= max) return { text: line, partial: line !== full };
  return { text: `${line.slice(0, max - 1)}…`, partial: true };
}

/** A run time in the log: milliseconds below a second, tenths of seconds above; "—" when not run. */
export function durationText(ms: number | null): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return '—';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export function costText(usd: number | null): string {
  return typeof usd === 'number' && Number.isFinite(usd) ? formatCost(usd) : '—';
}

const STATUS_TEXT: Record<string, string> = { success: 'Success', error: 'Error', denied: 'Denied' };

export function statusText(status: string): string {
  return STATUS_TEXT[status] ?? status;
}

export interface AuditElements {
  form: HTMLFormElement;
  user: HTMLSelectElement;
  start: HTMLInputElement;
  end: HTMLInputElement;
  apply: HTMLButtonElement;
  exportLink: HTMLAnchorElement;
  error: HTMLElement;
  table: HTMLTableElement;
  body: HTMLTableSectionElement;
  older: HTMLButtonElement;
  newer: HTMLButtonElement;
  pageInfo: HTMLElement;
}

export function auditElements(doc: Document): AuditElements {
  const { get, table: tableOf } = pageElements(doc, 'audit page');
  const { table, body } = tableOf('audit-table');
  return {
    form: get<HTMLFormElement>('audit-filters'),
    user: get<HTMLSelectElement>('audit-user'),
    start: get<HTMLInputElement>('audit-start'),
    end: get<HTMLInputElement>('audit-end'),
    apply: get<HTMLButtonElement>('audit-apply'),
    exportLink: get<HTMLAnchorElement>('audit-export'),
    error: get('audit-error'),
    table,
    body,
    older: get<HTMLButtonElement>('audit-older'),
    newer: get<HTMLButtonElement>('audit-newer'),
    pageInfo: get('audit-page-info'),
  };
}

export interface AuditOptions {
  loadPage(filters: AuditFilters, before: number | null): Promise<AuditPage>;
  loadUsers(): Promise<UserList>;
  /** The session cookie is gone: show the sign-in form. */
  onSignedOut(): void;
}

const NO_FILTERS: AuditFilters = { userId: '', start: '', end: '' };

export class AuditLogPage {
  /** The filters of the page shown (the form may hold edits not applied yet). */
  private filters: AuditFilters = NO_FILTERS;
  private pager: PagerState = FIRST_PAGE;
  /** Bumped by every load so only the latest answer is shown. */
  private request = 0;

  constructor(
    private readonly el: AuditElements,
    private readonly opts: AuditOptions,
  ) {
    el.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.apply();
    });
    // The export follows the form, so what is typed is what is downloaded, applied or not.
    for (const input of [el.user, el.start, el.end]) {
      input.addEventListener('input', () => this.updateExport());
      input.addEventListener('change', () => this.updateExport());
    }
    el.older.addEventListener('click', () => {
      const target = olderPage(this.pager);
      if (target) void this.load(this.filters, target);
    });
    el.newer.addEventListener('click', () => {
      const target = newerPage(this.pager);
      if (target) void this.load(this.filters, target);
    });
    this.updateExport();
    this.updatePaging();
  }

  /** Opens the page: the user filter's choices, then the page shown before (the newest at first). */
  async show(): Promise<void> {
    void this.loadUsers();
    await this.load(this.filters, { ...this.pager, next: null });
  }

  /** Forgets filters and rows, e.g. on sign-out. */
  clear(): void {
    this.request++;
    this.filters = NO_FILTERS;
    this.pager = FIRST_PAGE;
    this.el.user.value = '';
    this.el.start.value = '';
    this.el.end.value = '';
    this.el.body.replaceChildren();
    this.showError(null);
    this.updateExport();
    this.updatePaging();
  }

  private formFilters(): AuditFilters {
    return { userId: this.el.user.value, start: this.el.start.value, end: this.el.end.value };
  }

  private apply(): void {
    const filters = this.formFilters();
    const invalid = filterError(filters);
    if (invalid) {
      this.showError(invalid);
      return;
    }
    void this.load(filters, FIRST_PAGE);
  }

  private async load(filters: AuditFilters, target: PagerState): Promise<void> {
    const request = ++this.request;
    this.el.table.setAttribute('aria-busy', 'true');
    this.el.apply.disabled = true;
    this.el.older.disabled = true;
    this.el.newer.disabled = true;
    try {
      const page = await this.opts.loadPage(filters, target.before);
      if (request !== this.request) return;
      this.filters = filters;
      this.pager = withNext(target, page.next_before);
      this.renderRows(Array.isArray(page.entries) ? page.entries : []);
      this.showError(null);
    } catch (err) {
      if (request !== this.request) return;
      if (err instanceof ApiError && err.status === 401) {
        this.opts.onSignedOut();
        return;
      }
      // The page shown and its cursors stay as they were: the user can retry.
      this.showError(err instanceof ApiError ? err.message : 'The audit log could not be loaded.');
    } finally {
      if (request === this.request) {
        this.el.table.removeAttribute('aria-busy');
        this.el.apply.disabled = false;
        this.updatePaging();
      }
    }
  }

  private async loadUsers(): Promise<void> {
    let list: UserList;
    try {
      list = await this.opts.loadUsers();
    } catch {
      // Filtering by user is a convenience: the log still loads and reports its own errors.
      return;
    }
    const doc = this.el.user.ownerDocument;
    const selected = this.el.user.value;
    const users = Array.isArray(list.users) ? [...list.users] : [];
    users.sort((a, b) => a.username.localeCompare(b.username));
    const all = doc.createElement('option');
    all.value = '';
    all.textContent = 'All users';
    const options = users.map((u) => {
      const option = doc.createElement('option');
      option.value = u.user_id;
      option.textContent = u.username;
      return option;
    });
    this.el.user.replaceChildren(all, ...options);
    this.el.user.value = users.some((u) => u.user_id === selected) ? selected : '';
    this.updateExport();
  }

  private renderRows(entries: AuditEntry[]): void {
    const doc = this.el.body.ownerDocument;
    if (entries.length === 0) {
      const td = doc.createElement('td');
      td.colSpan = 8;
      td.textContent = 'No entries match these filters.';
      const tr = doc.createElement('tr');
      tr.className = 'audit-empty';
      tr.append(td);
      this.el.body.replaceChildren(tr);
      return;
    }
    this.el.body.replaceChildren(...entries.map((entry) => auditRow(doc, entry)));
  }

  private updatePaging(): void {
    this.el.older.disabled = this.pager.next === null;
    this.el.newer.disabled = this.pager.newer.length === 0;
    this.el.pageInfo.textContent = `Page ${this.pager.newer.length + 1}`;
  }

  private updateExport(): void {
    this.el.exportLink.href = auditLogUrl(this.formFilters(), { format: 'csv' });
  }

  private showError(message: string | null): void {
    this.el.error.hidden = message === null;
    this.el.error.textContent = message ?? '';
  }
}

/** One entry as a table row; every field from the server is set as text. */
export function auditRow(doc: Document, entry: AuditEntry): HTMLTableRowElement {
  const tr = doc.createElement('tr');
  tr.className = 'audit-row';
  tr.dataset.status = String(entry.result_status);
  tr.dataset.auditId = String(entry.audit_id);
  const cell = (cls: string, ...children: (Node | string)[]): HTMLTableCellElement => {
    const td = doc.createElement('td');
    td.className = cls;
    td.append(...children);
    return td;
  };

  const time = doc.createElement('time');
  time.textContent = formatTimestamp(entry.timestamp);
  if (typeof entry.timestamp === 'string') {
    time.dateTime = entry.timestamp;
    time.title = entry.timestamp;
  }

  const user = doc.createElement('span');
  user.textContent = entry.username || entry.user_id;
  user.title = entry.user_id;

  const session = doc.createElement('code');
  const sessionId = typeof entry.session_id === 'string' ? entry.session_id : '';
  session.textContent = sessionId.slice(0, 8);
  session.title = sessionId;

  const status = doc.createElement('span');
  status.className = 'audit-status';
  status.dataset.status = String(entry.result_status);
  status.textContent = statusText(entry.result_status);

  tr.append(
    cell('audit-time', time),
    cell('audit-user', user),
    cell('audit-session', session),
    cell('audit-tool', entry.tool_name),
    cell('audit-input-cell', inputCell(doc, entry.sanitized_input)),
    cell('audit-status-cell', status),
    cell('audit-duration num', durationText(entry.execution_duration_ms)),
    cell('audit-cost num', costText(entry.cost_usd)),
  );
  return tr;
}

/** A short input as it is; a long one as a one-line preview that expands to the full text. */
function inputCell(doc: Document, input: string): HTMLElement {
  const full = typeof input === 'string' ? input : '';
  const preview = inputPreview(full);
  const code = doc.createElement('code');
  code.className = 'audit-input';
  code.textContent = preview.text;
  code.title = full;
  if (!preview.partial) return code;
  const summary = doc.createElement('summary');
  summary.append(code);
  const pre = doc.createElement('pre');
  pre.className = 'audit-input-full';
  pre.textContent = full;
  const details = doc.createElement('details');
  details.className = 'audit-input-more';
  details.append(summary, pre);
  return details;
}
