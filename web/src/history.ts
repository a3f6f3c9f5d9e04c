// The enhancement history page (operators and admins): every job csp
// recorded, newest first, 50 to a page, filtered by tenant, status, dates and
// a search of the ticket id or description. A row opens to its details: the
// context the worker gathered (as text), the note as it was posted (markdown
// rendered through the chat's sanitizer, never raw), the error. A failed job
// can be retried; the filtered rows can be downloaded as CSV (the gateway
// streams every one); a job can be opened in a new chat session bound to its
// tenant. Everything from the server is untrusted text: it is set as text,
// except the note, which only ever reaches the DOM sanitized.

import { ApiError, exportUrl, type HistoryFilters } from './api';
import { pageElements } from './elements';
import { formatCost, formatTimestamp } from './format';
import type { ChatTenantList, Enhancement, EnhancementPage, EnhancementStatus, TenantList } from './protocol';

export const NO_FILTERS: HistoryFilters = { tenantId: '', status: '', from: '', to: '', q: '' };

export const STATUSES: readonly EnhancementStatus[] = ['pending', 'processing', 'completed', 'failed'];

/** Why `filters` cannot be applied, or null. Dates are `YYYY-MM-DD`, so text order is time order. */
export function filterError(filters: HistoryFilters): string | null {
  if (filters.from && filters.to && filters.from > filters.to) return 'The start date is after the end date.';
  if (filters.q.trim().length > 200) return 'Search for at most 200 characters.';
  return null;
}

export type Tone = 'green' | 'red' | 'blue';

/** A status badge's colour: green completed, red failed, blue pending or processing. */
export function statusTone(status: string): Tone {
  if (status === 'completed') return 'green';
  if (status === 'failed') return 'red';
  return 'blue';
}

const STATUS_TEXT: Record<string, string> = { pending: 'Pending', processing: 'Processing', completed: 'Completed', failed: 'Failed' };

export function statusText(status: string): string {
  return STATUS_TEXT[status] ?? status;
}

/** How many pages `total` jobs take (at least one, the empty one). */
export function pageCount(total: number, perPage: number): number {
  if (!Number.isFinite(total) || total <= 0 || !Number.isFinite(perPage) || perPage <= 0) return 1;
  return Math.ceil(total / perPage);
}

/** "1,250 ms" below ten seconds, "12.3 s" above; "—" when not measured. */
export function processingText(ms: number | null): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return '—';
  return ms < 10_000 ? `${Math.round(ms).toLocaleString('en-US')} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** One part of the gathered context, in words: a title and its lines. */
export interface ContextSection {
  title: string;
  lines: string[];
}

type Json = { [key: string]: unknown };

function obj(v: unknown): Json | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : null;
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function text(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return '';
}

/** `parts` that are not empty, joined. */
function joined(parts: string[], sep: string): string {
  return parts.filter((p) => p.trim() !== '').join(sep);
}

const KNOWN_CONTEXT = new Set(['similar_tickets', 'kb_articles', 'systems', 'ips', 'sources']);

/**
 * The gathered context (`context_gathered`, csp-enhance's
 * `GatheredContext`) as sections of text: similar tickets, knowledge-base
 * articles, systems, the addresses in the ticket, and how each source did.
 * Members it does not know are shown as JSON rather than dropped.
 */
export function contextSections(context: unknown): ContextSection[] {
  const ctx = obj(context);
  if (ctx === null) return [];
  const sections: ContextSection[] = [];
  const tickets = list(ctx.similar_tickets).map(obj).filter((t): t is Json => t !== null);
  sections.push({
    title: `Similar resolved tickets (${tickets.length})`,
    lines: tickets.map((t) => {
      const head = joined([`#${text(t.ticket_id)}`, text(t.resolved_date) ? `resolved ${text(t.resolved_date)}` : ''], ', ');
      return joined([`${head}: ${text(t.description)}`, text(t.resolution) ? `Resolution: ${text(t.resolution)}` : ''], ' — ');
    }),
  });
  const articles = list(ctx.kb_articles).map(obj).filter((a): a is Json => a !== null);
  sections.push({
    title: `Knowledge-base articles (${articles.length})`,
    lines: articles.map((a) => joined([joined([text(a.title), text(a.summary)], ': '), text(a.url) ? `(${text(a.url)})` : ''], ' ')),
  });
  const systems = list(ctx.systems).map(obj).filter((s): s is Json => s !== null);
  sections.push({
    title: `Systems (${systems.length})`,
    lines: systems.map((s) => joined([text(s.ip), text(s.hostname), joined([text(s.role), text(s.client), text(s.location)], ' · ')], ' ')),
  });
  const ips = list(ctx.ips).map(text).filter((ip) => ip !== '');
  if (ips.length > 0) sections.push({ title: 'Addresses in the ticket', lines: [ips.join(', ')] });
  const sources = obj(ctx.sources);
  if (sources !== null) {
    sections.push({
      title: 'Sources',
      lines: Object.entries(sources).map(([name, report]) => {
        const r = obj(report) ?? {};
        const elapsed = typeof r.elapsed_ms === 'number' ? `${r.elapsed_ms} ms` : '';
        const error = text(r.error);
        return error ? `${name}: failed after ${elapsed || '?'} — ${error}` : joined([`${name}: answered`, elapsed ? `in ${elapsed}` : ''], ' ');
      }),
    });
  }
  for (const [key, value] of Object.entries(ctx)) {
    if (KNOWN_CONTEXT.has(key)) continue;
    sections.push({ title: key, lines: [JSON.stringify(value, null, 2) ?? ''] });
  }
  return sections;
}

/** `s` cut to `max` characters with an ellipsis. */
function cut(s: string, max: number): string {
  const t = s.trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

/** The most items of each kind the chat's first message names. */
const SUMMARY_ITEMS = 3;

/**
 * A short summary of the gathered context for a chat: at most three of each
 * kind, one line each, and the sources that failed. Empty without a context.
 */
export function contextSummary(context: unknown): string[] {
  const ctx = obj(context);
  if (ctx === null) return [];
  const lines: string[] = [];
  const some = (items: unknown[], line: (o: Json) => string): string => {
    const shown = items.map(obj).filter((o): o is Json => o !== null).slice(0, SUMMARY_ITEMS).map(line);
    const more = items.length > SUMMARY_ITEMS ? `; and ${items.length - SUMMARY_ITEMS} more` : '';
    return `${shown.join('; ')}${more}`;
  };
  const tickets = list(ctx.similar_tickets);
  if (tickets.length > 0) {
    lines.push(`Similar resolved tickets: ${some(tickets, (t) => joined([`#${text(t.ticket_id)} ${cut(text(t.description), 120)}`, text(t.resolution) ? `resolved by: ${cut(text(t.resolution), 160)}` : ''], ', '))}`);
  }
  const articles = list(ctx.kb_articles);
  if (articles.length > 0) lines.push(`Knowledge-base articles: ${some(articles, (a) => joined([cut(text(a.title), 120), text(a.url)], ' '))}`);
  const systems = list(ctx.systems);
  if (systems.length > 0) lines.push(`Systems: ${some(systems, (s) => joined([text(s.ip), text(s.hostname), text(s.role) ? `(${text(s.role)})` : ''], ' '))}`);
  const failed = Object.entries(obj(ctx.sources) ?? {})
    .filter(([, r]) => text(obj(r)?.error) !== '')
    .map(([name, r]) => `${name} (${cut(text(obj(r)?.error), 120)})`);
  if (failed.length > 0) lines.push(`Sources that failed: ${failed.join(', ')}`);
  return lines;
}

/** The longest description the chat's first message carries. */
export const CHAT_DESCRIPTION_CHARS = 4000;

/**
 * The first message of a chat about `job`, sent for the operator in a new
 * session bound to the job's tenant: the ticket (id, subject, priority,
 * description), a short summary of the gathered context and how the job
 * ended, and the ask. Bounded (the description is cut), so it always fits a
 * frame.
 */
export function chatFirstMessage(job: Pick<Enhancement, 'job_id' | 'tenant_id' | 'ticket_id' | 'subject' | 'description' | 'priority' | 'status' | 'error_message' | 'context_gathered'>): string {
  const lines = [`Please help me with ticket ${job.ticket_id} of tenant ${job.tenant_id}.`, ''];
  if (job.subject.trim()) lines.push(`Subject: ${cut(job.subject, 300)}`);
  if (job.priority.trim()) lines.push(`Priority: ${cut(job.priority, 50)}`);
  lines.push('Description:', cut(job.description, CHAT_DESCRIPTION_CHARS) || '(none)', '');
  const summary = contextSummary(job.context_gathered);
  if (summary.length > 0) {
    lines.push('Context csp gathered for it:', ...summary.map((l) => `- ${l}`), '');
  }
  const ended = job.status === 'failed' && job.error_message ? `failed: ${cut(job.error_message, 300)}` : job.status;
  lines.push(`Enhancement job ${job.job_id}: ${ended}.`, '');
  lines.push('Look the ticket up with your ticket tools, tell me what is most likely going on, and suggest the next steps.');
  return lines.join('\n');
}

/** The tenant choices: every tenant an admin sees, else the chat tenants, plus any seen in rows. */
export function tenantChoices(lists: (TenantList | ChatTenantList | null)[], seen: Iterable<string>): string[] {
  const ids = new Set<string>();
  for (const l of lists) {
    for (const t of Array.isArray(l?.tenants) ? l.tenants : []) {
      if (typeof t?.tenant_id === 'string' && t.tenant_id) ids.add(t.tenant_id);
    }
  }
  for (const id of seen) if (id) ids.add(id);
  return [...ids].sort();
}

export interface HistoryElements {
  form: HTMLFormElement;
  tenant: HTMLSelectElement;
  status: HTMLSelectElement;
  from: HTMLInputElement;
  to: HTMLInputElement;
  q: HTMLInputElement;
  apply: HTMLButtonElement;
  exportLink: HTMLAnchorElement;
  error: HTMLElement;
  notice: HTMLElement;
  table: HTMLTableElement;
  body: HTMLTableSectionElement;
  prev: HTMLButtonElement;
  next: HTMLButtonElement;
  pageInfo: HTMLElement;
}

export function historyElements(doc: Document): HistoryElements {
  const { get, table: tableOf } = pageElements(doc, 'history page');
  const { table, body } = tableOf('history-table');
  return {
    form: get<HTMLFormElement>('history-filters'),
    tenant: get<HTMLSelectElement>('history-tenant'),
    status: get<HTMLSelectElement>('history-status'),
    from: get<HTMLInputElement>('history-from'),
    to: get<HTMLInputElement>('history-to'),
    q: get<HTMLInputElement>('history-q'),
    apply: get<HTMLButtonElement>('history-apply'),
    exportLink: get<HTMLAnchorElement>('history-export'),
    error: get('history-error'),
    notice: get('history-notice'),
    table,
    body,
    prev: get<HTMLButtonElement>('history-prev'),
    next: get<HTMLButtonElement>('history-next'),
    pageInfo: get('history-page-info'),
  };
}

export interface HistoryOptions {
  load(filters: HistoryFilters, page: number): Promise<EnhancementPage>;
  retry(jobId: string): Promise<Enhancement>;
  /** The tenant filter's choices; each may fail (an operator may not list tenants). */
  loadTenants(): Promise<(TenantList | ChatTenantList | null)[]>;
  /** Markdown to sanitized HTML (the chat's renderer). */
  renderNote(markdown: string): string;
  /** Asks the user; true to go on (window.confirm). */
  confirm(message: string): boolean;
  /** Opens a new chat session bound to `tenantId` and sends `message` first. */
  openInChat(tenantId: string, message: string): void;
  /** The session cookie is gone: show the sign-in form. */
  onSignedOut(): void;
}

const COLUMNS = 7;

export class HistoryPage {
  /** The filters of the page shown (the form may hold edits not applied yet). */
  private filters: HistoryFilters = NO_FILTERS;
  private page = 1;
  private pages = 1;
  private jobs: Enhancement[] = [];
  private readonly open = new Set<string>();
  private readonly seenTenants = new Set<string>();
  private tenantLists: (TenantList | ChatTenantList | null)[] = [];
  /** Bumped by every load (and `clear`) so only the latest answer is shown. */
  private request = 0;

  constructor(
    private readonly el: HistoryElements,
    private readonly opts: HistoryOptions,
  ) {
    const doc = el.status.ownerDocument;
    el.status.replaceChildren(
      option(doc, '', 'All statuses'),
      ...STATUSES.map((s) => option(doc, s, statusText(s))),
    );
    el.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.apply();
    });
    // The export follows the form, so what is typed is what is downloaded, applied or not.
    for (const input of [el.tenant, el.status, el.from, el.to, el.q]) {
      input.addEventListener('input', () => this.updateExport());
      input.addEventListener('change', () => this.updateExport());
    }
    el.prev.addEventListener('click', () => {
      if (this.page > 1) void this.load(this.filters, this.page - 1);
    });
    el.next.addEventListener('click', () => {
      if (this.page < this.pages) void this.load(this.filters, this.page + 1);
    });
    // One listener for every row's buttons, which come and go with the page.
    el.body.addEventListener('click', (ev) => {
      const button = (ev.target as Element | null)?.closest?.<HTMLButtonElement>('button[data-action]');
      const jobId = button?.dataset.jobId;
      if (!button || !jobId) return;
      if (button.dataset.action === 'toggle') this.toggle(jobId);
      if (button.dataset.action === 'retry') void this.retry(jobId, button);
      if (button.dataset.action === 'chat') this.openInChat(jobId);
    });
    this.updateExport();
    this.updatePaging();
  }

  /** Opens the page: the tenant choices, then the page shown before (the newest at first). */
  async show(): Promise<void> {
    void this.loadTenants();
    await this.load(this.filters, this.page);
  }

  /** Forgets filters and rows, e.g. on sign-out. */
  clear(): void {
    this.request++;
    this.filters = NO_FILTERS;
    this.page = 1;
    this.pages = 1;
    this.jobs = [];
    this.open.clear();
    this.seenTenants.clear();
    this.tenantLists = [];
    this.el.form.reset();
    this.el.tenant.replaceChildren(option(this.el.tenant.ownerDocument, '', 'All tenants'));
    this.el.body.replaceChildren();
    this.showError(null);
    this.showNotice(null);
    this.updateExport();
    this.updatePaging();
  }

  private formFilters(): HistoryFilters {
    const status = this.el.status.value;
    return {
      tenantId: this.el.tenant.value,
      status: (STATUSES as readonly string[]).includes(status) ? (status as EnhancementStatus) : '',
      from: this.el.from.value,
      to: this.el.to.value,
      q: this.el.q.value,
    };
  }

  private apply(): void {
    const filters = this.formFilters();
    const invalid = filterError(filters);
    if (invalid) {
      this.showError(invalid);
      return;
    }
    void this.load(filters, 1);
  }

  private async load(filters: HistoryFilters, page: number): Promise<void> {
    const request = ++this.request;
    this.el.table.setAttribute('aria-busy', 'true');
    this.el.apply.disabled = true;
    this.el.prev.disabled = true;
    this.el.next.disabled = true;
    try {
      const answer = await this.opts.load(filters, page);
      if (request !== this.request) return;
      this.filters = filters;
      this.page = typeof answer.page === 'number' && answer.page >= 1 ? answer.page : page;
      this.pages = pageCount(answer.total, answer.per_page);
      this.jobs = Array.isArray(answer.enhancements) ? answer.enhancements : [];
      this.el.pageInfo.textContent = `Page ${this.page} of ${this.pages} · ${Number(answer.total).toLocaleString('en-US')} jobs`;
      for (const job of this.jobs) this.seenTenants.add(job.tenant_id);
      this.fillTenants();
      this.render();
      this.showError(null);
    } catch (err) {
      if (request !== this.request) return;
      if (err instanceof ApiError && err.status === 401) {
        this.opts.onSignedOut();
        return;
      }
      // The page shown stays as it was: the user can retry.
      this.showError(err instanceof ApiError ? err.message : 'The history could not be loaded.');
    } finally {
      if (request === this.request) {
        this.el.table.removeAttribute('aria-busy');
        this.el.apply.disabled = false;
        this.updatePaging();
      }
    }
  }

  private async loadTenants(): Promise<void> {
    try {
      this.tenantLists = await this.opts.loadTenants();
    } catch {
      // Filtering by tenant is a convenience: the tenants seen in rows still fill it.
      this.tenantLists = [];
    }
    this.fillTenants();
  }

  private fillTenants(): void {
    const doc = this.el.tenant.ownerDocument;
    const selected = this.el.tenant.value || this.filters.tenantId;
    const ids = tenantChoices(this.tenantLists, [...this.seenTenants, selected]);
    this.el.tenant.replaceChildren(option(doc, '', 'All tenants'), ...ids.map((id) => option(doc, id, id)));
    this.el.tenant.value = ids.includes(selected) ? selected : '';
  }

  private render(): void {
    const doc = this.el.body.ownerDocument;
    if (this.jobs.length === 0) {
      const td = doc.createElement('td');
      td.colSpan = COLUMNS;
      td.textContent = 'No jobs match these filters.';
      const tr = doc.createElement('tr');
      tr.className = 'history-empty';
      tr.append(td);
      this.el.body.replaceChildren(tr);
      return;
    }
    const rows: HTMLTableRowElement[] = [];
    for (const job of this.jobs) {
      const expanded = this.open.has(job.job_id);
      rows.push(historyRow(doc, job, expanded));
      if (expanded) rows.push(this.detailsRow(doc, job));
    }
    this.el.body.replaceChildren(...rows);
  }

  private detailsRow(doc: Document, job: Enhancement): HTMLTableRowElement {
    const tr = doc.createElement('tr');
    tr.className = 'history-details-row';
    tr.dataset.jobId = job.job_id;
    const td = doc.createElement('td');
    td.colSpan = COLUMNS;
    td.append(historyDetails(doc, job, this.opts.renderNote));
    tr.append(td);
    return tr;
  }

  private toggle(jobId: string): void {
    if (this.open.has(jobId)) this.open.delete(jobId);
    else this.open.add(jobId);
    this.render();
  }

  private async retry(jobId: string, button: HTMLButtonElement): Promise<void> {
    const job = this.jobs.find((j) => j.job_id === jobId);
    if (!job) return;
    if (!this.opts.confirm(`Retry the enhancement of ticket ${job.ticket_id} (${job.tenant_id})? It is queued again and its note posted if it succeeds.`)) return;
    const request = this.request;
    button.disabled = true;
    try {
      await this.opts.retry(jobId);
      if (request !== this.request) return;
      this.showError(null);
      this.showNotice(`Ticket ${job.ticket_id} is queued again.`);
      await this.load(this.filters, this.page);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        this.opts.onSignedOut();
        return;
      }
      button.disabled = false;
      this.showError(err instanceof ApiError ? err.message : 'The job could not be retried.');
    }
  }

  private openInChat(jobId: string): void {
    const job = this.jobs.find((j) => j.job_id === jobId);
    if (job) this.opts.openInChat(job.tenant_id, chatFirstMessage(job));
  }

  private updatePaging(): void {
    this.el.prev.disabled = this.page <= 1;
    this.el.next.disabled = this.page >= this.pages;
  }

  private updateExport(): void {
    this.el.exportLink.href = exportUrl(this.formFilters());
  }

  private showError(message: string | null): void {
    this.el.error.hidden = message === null;
    this.el.error.textContent = message ?? '';
  }

  private showNotice(message: string | null): void {
    this.el.notice.textContent = message ?? '';
  }
}

function option(doc: Document, value: string, label: string): HTMLOptionElement {
  const o = doc.createElement('option');
  o.value = value;
  o.textContent = label;
  return o;
}

function button(doc: Document, action: string, jobId: string, label: string, cls: string): HTMLButtonElement {
  const b = doc.createElement('button');
  b.type = 'button';
  b.className = cls;
  b.dataset.action = action;
  b.dataset.jobId = jobId;
  b.textContent = label;
  return b;
}

function time(doc: Document, iso: string | null): HTMLElement {
  if (!iso) {
    const none = doc.createElement('span');
    none.textContent = '—';
    return none;
  }
  const t = doc.createElement('time');
  t.textContent = formatTimestamp(iso);
  t.dateTime = iso;
  t.title = iso;
  return t;
}

/** A status as its coloured badge. */
export function statusBadge(doc: Document, status: string): HTMLElement {
  const badge = doc.createElement('span');
  badge.className = 'status-badge';
  badge.dataset.tone = statusTone(status);
  badge.dataset.status = status;
  badge.textContent = statusText(status);
  return badge;
}

/** One job as a table row; every field from the server is set as text. */
export function historyRow(doc: Document, job: Enhancement, expanded = false): HTMLTableRowElement {
  const tr = doc.createElement('tr');
  tr.className = 'history-row';
  tr.dataset.jobId = job.job_id;
  tr.dataset.status = job.status;
  const cell = (cls: string, ...children: (Node | string)[]): HTMLTableCellElement => {
    const td = doc.createElement('td');
    td.className = cls;
    td.append(...children);
    return td;
  };
  const toggle = button(doc, 'toggle', job.job_id, job.ticket_id || '(no id)', 'link history-toggle');
  toggle.setAttribute('aria-expanded', String(expanded));
  toggle.title = 'Show the context, the note and the error';
  const actions = cell('history-actions');
  if (job.status === 'failed') actions.append(button(doc, 'retry', job.job_id, 'Retry', 'secondary history-retry'));
  tr.append(
    cell('history-ticket', toggle),
    cell('history-tenant', job.tenant_id),
    cell('history-status', statusBadge(doc, job.status)),
    cell('history-time num', processingText(job.processing_time_ms)),
    cell('history-created', time(doc, job.created_at)),
    cell('history-completed', time(doc, job.completed_at)),
    actions,
  );
  return tr;
}

/**
 * A job's details: the ticket, the context as sections of text (and the raw
 * JSON on demand), the note rendered through `renderNote` (the sanitizer:
 * the only HTML that reaches the page), the error, and "Open in chat".
 */
export function historyDetails(doc: Document, job: Enhancement, renderNote: (markdown: string) => string): HTMLElement {
  const box = doc.createElement('div');
  box.className = 'history-details';
  const part = (title: string, ...children: Node[]): HTMLElement => {
    const section = doc.createElement('section');
    section.className = 'history-part';
    const h = doc.createElement('h3');
    h.textContent = title;
    section.append(h, ...children);
    return section;
  };
  const para = (value: string, cls = ''): HTMLElement => {
    const p = doc.createElement('p');
    if (cls) p.className = cls;
    p.textContent = value;
    return p;
  };

  const ticket = doc.createElement('dl');
  ticket.className = 'history-ticket-facts';
  for (const [label, value] of [
    ['Subject', job.subject],
    ['Priority', job.priority],
    ['Attempts', String(job.attempts)],
    ['Cost', formatCost(job.cost_usd)],
    ['Job', job.job_id],
    ['Correlation id', job.correlation_id],
  ] as const) {
    const dt = doc.createElement('dt');
    dt.textContent = label;
    const dd = doc.createElement('dd');
    dd.textContent = value || '—';
    ticket.append(dt, dd);
  }
  const description = doc.createElement('pre');
  description.className = 'history-description';
  description.textContent = job.description;
  box.append(part('Ticket', ticket, description));

  const sections = contextSections(job.context_gathered);
  if (sections.length === 0) {
    box.append(part('Gathered context', para('Not gathered yet.', 'history-none')));
  } else {
    const parts: Node[] = [];
    for (const s of sections) {
      const h = doc.createElement('h4');
      h.textContent = s.title;
      parts.push(h);
      if (s.lines.length === 0) {
        parts.push(para('None.', 'history-none'));
        continue;
      }
      const ul = doc.createElement('ul');
      for (const line of s.lines) {
        const li = doc.createElement('li');
        li.textContent = line;
        ul.append(li);
      }
      parts.push(ul);
    }
    const raw = doc.createElement('details');
    raw.className = 'history-raw';
    const summary = doc.createElement('summary');
    summary.textContent = 'As JSON';
    const pre = doc.createElement('pre');
    pre.textContent = JSON.stringify(job.context_gathered, null, 2);
    raw.append(summary, pre);
    parts.push(raw);
    box.append(part('Gathered context', ...parts));
  }

  if (job.llm_output) {
    const note = doc.createElement('div');
    note.className = 'history-note markdown';
    // The model's text, through the chat's sanitizer (marked with raw HTML
    // escaped, then DOMPurify): never assigned unsanitized.
    note.innerHTML = renderNote(job.llm_output);
    box.append(part('Note as posted', note));
  } else {
    box.append(part('Note as posted', para('No note.', 'history-none')));
  }
  if (job.error_message) box.append(part('Error', para(job.error_message, 'history-error-text')));

  const actions = doc.createElement('div');
  actions.className = 'history-detail-actions';
  actions.append(button(doc, 'chat', job.job_id, 'Open in chat', 'primary history-chat'));
  if (job.status === 'failed') actions.append(button(doc, 'retry', job.job_id, 'Retry', 'secondary history-retry'));
  box.append(actions);
  return box;
}
