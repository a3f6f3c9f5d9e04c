// The Workers page (operators and admins): every tickets worker that sent a
// heartbeat in the last hour, with its host, status (active, idle, or
// unresponsive after three missed heartbeats), uptime, jobs and load; CPU and
// memory turn yellow above 80 % and red above 95 %. Refreshed like the
// dashboard (`refresh.ts`). Hostnames and ids are only ever set as text.
// Not here yet: a worker's log lines, the 7-day throughput chart and the
// admin's Restart.

import { ApiError } from './api';
import { formatTimestamp } from './format';
import type { WorkerList, WorkerSummary } from './protocol';
import { Refresher, updatedText } from './refresh';

export type LoadTone = 'ok' | 'warn' | 'error';

/** Above 80 % yellow, above 95 % red. */
export function loadTone(percent: number): LoadTone {
  if (!Number.isFinite(percent)) return 'ok';
  if (percent > 95) return 'error';
  if (percent > 80) return 'warn';
  return 'ok';
}

/** "42.5 %"; "—" for nonsense. */
export function loadText(percent: number): string {
  return Number.isFinite(percent) ? `${percent.toFixed(1)} %` : '—';
}

/** How long since `startedAt`: "45 s", "12 min", "3 h 20 min", "2 d 4 h". */
export function uptimeText(startedAt: string, now: number): string {
  const since = Date.parse(startedAt);
  if (!Number.isFinite(since)) return '—';
  const seconds = Math.max(0, Math.floor((now - since) / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

const STATUS_TEXT: Record<string, string> = { active: 'Active', idle: 'Idle', unresponsive: 'Unresponsive' };

export function workerStatusText(status: string): string {
  return STATUS_TEXT[status] ?? String(status);
}

/** Jobs per minute with at most one decimal. */
export function rateText(perMinute: number): string {
  if (!Number.isFinite(perMinute)) return '—';
  return Number.isInteger(perMinute) ? String(perMinute) : perMinute.toFixed(1);
}

export interface WorkersElements {
  updated: HTMLElement;
  refresh: HTMLSelectElement;
  error: HTMLElement;
  empty: HTMLElement;
  table: HTMLTableElement;
  body: HTMLTableSectionElement;
}

export function workersElements(doc: Document): WorkersElements {
  const get = <T extends HTMLElement>(id: string): T => {
    const found = doc.getElementById(id);
    if (!found) throw new Error(`workers page: missing #${id}`);
    return found as T;
  };
  const table = get<HTMLTableElement>('workers-table');
  const body = table.tBodies[0];
  if (!body) throw new Error('workers page: #workers-table has no tbody');
  return {
    updated: get('workers-updated'),
    refresh: get<HTMLSelectElement>('workers-refresh'),
    error: get('workers-error'),
    empty: get('workers-empty'),
    table,
    body,
  };
}

export interface WorkersOptions {
  load(): Promise<WorkerList>;
  onSignedOut(): void;
  storage: Storage | null;
  now?: () => Date;
}

export class WorkersPage {
  private readonly refresher: Refresher;
  private request = 0;

  constructor(
    private readonly el: WorkersElements,
    private readonly opts: WorkersOptions,
  ) {
    this.refresher = new Refresher({
      select: el.refresh,
      storageKey: 'csp.refresh.workers',
      storage: opts.storage,
      load: () => this.load(),
    });
  }

  show(): Promise<void> {
    return this.refresher.start();
  }

  hide(): void {
    this.refresher.stop();
  }

  clear(): void {
    this.refresher.stop();
    this.request++;
    this.el.updated.textContent = '';
    this.el.body.replaceChildren();
    this.el.empty.hidden = true;
    this.showError(null);
  }

  private async load(): Promise<void> {
    const request = ++this.request;
    try {
      const list = await this.opts.load();
      if (request !== this.request) return;
      const now = this.opts.now?.() ?? new Date();
      const workers = Array.isArray(list.workers) ? list.workers : [];
      const doc = this.el.body.ownerDocument;
      this.el.body.replaceChildren(...workers.map((w) => workerRow(doc, w, now.getTime())));
      this.el.empty.hidden = workers.length > 0;
      this.showError(null);
      this.el.updated.textContent = updatedText(now);
    } catch (err) {
      if (request !== this.request) return;
      if (err instanceof ApiError && err.status === 401) {
        this.refresher.stop();
        this.opts.onSignedOut();
        return;
      }
      const why = err instanceof ApiError ? err.message : 'The workers could not be loaded.';
      this.showError(`Refresh failed: ${why}`);
    }
  }

  private showError(message: string | null): void {
    this.el.error.hidden = message === null;
    this.el.error.textContent = message ?? '';
  }
}

/** One worker as a table row; every field from the server is set as text. */
export function workerRow(doc: Document, w: WorkerSummary, now: number): HTMLTableRowElement {
  const tr = doc.createElement('tr');
  tr.className = 'worker-row';
  tr.dataset.workerId = w.worker_id;
  tr.dataset.status = String(w.status);
  const cell = (cls: string, ...children: (Node | string)[]): HTMLTableCellElement => {
    const td = doc.createElement('td');
    td.className = cls;
    td.append(...children);
    return td;
  };
  const host = doc.createElement('span');
  host.textContent = w.hostname;
  host.title = `Worker ${w.worker_id}`;
  const status = doc.createElement('span');
  status.className = 'worker-status';
  status.dataset.status = String(w.status);
  status.textContent = workerStatusText(w.status);
  const load = (cls: string, percent: number): HTMLTableCellElement => {
    const td = cell(`${cls} num`, loadText(percent));
    td.dataset.tone = loadTone(percent);
    return td;
  };
  const seen = doc.createElement('time');
  seen.textContent = formatTimestamp(w.last_seen_at);
  if (typeof w.last_seen_at === 'string') seen.dateTime = w.last_seen_at;
  const uptime = cell('worker-uptime num', uptimeText(w.started_at, now));
  uptime.title = `Started ${formatTimestamp(w.started_at)}`;
  tr.append(
    cell('worker-host', host),
    cell('worker-status-cell', status),
    uptime,
    cell('worker-active num', String(w.active_jobs)),
    cell('worker-completed num', String(w.completed_jobs)),
    cell('worker-failed num', String(w.failed_jobs)),
    cell('worker-rate num', rateText(w.jobs_per_minute)),
    load('worker-cpu', w.cpu_percent),
    load('worker-memory', w.memory_percent),
    cell('worker-seen', seen),
  );
  return tr;
}
