// The Workers page (operators and admins): every tickets worker that sent a
// heartbeat in the last hour, with its host, status (active, idle, or
// unresponsive after three missed heartbeats), uptime, jobs and load; CPU and
// memory turn yellow above 80 % and red above 95 %. Refreshed like the
// dashboard (`refresh.ts`). Hostnames, ids and log lines are only ever set
// as text.
//
// Each worker's Details open below its row: its last 100 log lines, of at
// least the chosen level (reloaded with every refresh), and the jobs it
// ended per hour over 7 days as a chart with a table of daily totals. Admins
// also get Restart, behind the typed YES of the operations pages
// (`confirm.ts`): the worker drains (takes no new job, its jobs in flight
// finish) and its supervisor starts it again, with a new id.

import { ApiError } from './api';
import { type ChartData, type ChartSpec, type ChartView, TimeChart } from './chart';
import type { ConfirmElements, TypedConfirm } from './confirm';
import { pageElements } from './elements';
import { formatTimestamp } from './format';
import type { LogLevel, ThroughputHour, WorkerList, WorkerLogs, WorkerRestart, WorkerSummary, WorkerThroughput } from './protocol';
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

const STATUS_TEXT: Record<string, string> = { active: 'Active', idle: 'Idle', draining: 'Draining', unresponsive: 'Unresponsive' };

export function workerStatusText(status: string): string {
  return STATUS_TEXT[status] ?? String(status);
}

/** Jobs per minute with at most one decimal. */
export function rateText(perMinute: number): string {
  if (!Number.isFinite(perMinute)) return '—';
  return Number.isInteger(perMinute) ? String(perMinute) : perMinute.toFixed(1);
}

/** The levels a reader may ask for, most severe first. */
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];
/** What the level select starts at. */
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';
const LEVEL_TEXT: Record<LogLevel, string> = {
  error: 'Errors',
  warn: 'Warnings and errors',
  info: 'Info and above',
  debug: 'Everything (debug)',
};

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** Jobs ended per UTC day, oldest first: the table beside the chart. */
export function dailyTotals(hours: readonly ThroughputHour[]): { day: string; completed: number; failed: number }[] {
  const days = new Map<string, { completed: number; failed: number }>();
  for (const h of hours) {
    if (typeof h.start !== 'string' || h.start.length < 10) continue;
    const day = h.start.slice(0, 10);
    const total = days.get(day) ?? { completed: 0, failed: 0 };
    total.completed += Number(h.completed) || 0;
    total.failed += Number(h.failed) || 0;
    days.set(day, total);
  }
  return [...days.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([day, t]) => ({ day, ...t }));
}

const THROUGHPUT_COLORS = { completed: '#16a34a', failed: '#dc2626' };

export const THROUGHPUT_SPEC: ChartSpec = {
  title: 'Jobs ended per hour, last 7 days',
  format: (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1)),
  integer: true,
};

/** The chart's two lines, completed and failed, one point an hour. */
export function throughputChartData(hours: readonly ThroughputHour[]): ChartData {
  const kept = hours.filter((h) => Number.isFinite(Date.parse(h.start)));
  return {
    timestamps: kept.map((h) => Date.parse(h.start) / 1000),
    series: [
      { label: 'Completed', values: kept.map((h) => Number(h.completed)), color: THROUGHPUT_COLORS.completed },
      { label: 'Failed', values: kept.map((h) => Number(h.failed)), color: THROUGHPUT_COLORS.failed },
    ],
  };
}

export interface WorkersElements {
  updated: HTMLElement;
  refresh: HTMLSelectElement;
  error: HTMLElement;
  empty: HTMLElement;
  /** What the last restart did (role=status). */
  notice: HTMLElement;
  table: HTMLTableElement;
  body: HTMLTableSectionElement;
  /** The restart's typed-YES dialog. */
  dialog: ConfirmElements;
}

export function workersElements(doc: Document): WorkersElements {
  const { get, table: tableOf } = pageElements(doc, 'workers page');
  const { table, body } = tableOf('workers-table');
  return {
    updated: get('workers-updated'),
    refresh: get<HTMLSelectElement>('workers-refresh'),
    error: get('workers-error'),
    empty: get('workers-empty'),
    notice: get('workers-notice'),
    table,
    body,
    dialog: {
      dialog: get('workers-dialog'),
      title: get('workers-dialog-title'),
      body: get('workers-dialog-body'),
      input: get<HTMLInputElement>('workers-dialog-input'),
      confirm: get<HTMLButtonElement>('workers-dialog-confirm'),
      cancel: get<HTMLButtonElement>('workers-dialog-cancel'),
    },
  };
}

export interface WorkersOptions {
  load(): Promise<WorkerList>;
  logs(workerId: string, level: LogLevel): Promise<WorkerLogs>;
  throughput(workerId: string): Promise<WorkerThroughput>;
  restart(workerId: string): Promise<WorkerRestart>;
  /** Whether the signed-in user may restart workers (admins); the API refuses others anyway. */
  canRestart(): boolean;
  /** The typed-YES dialog of `el.dialog` (main.ts builds it; tests too). */
  confirm: TypedConfirm;
  onSignedOut(): void;
  storage: Storage | null;
  now?: () => Date;
  /** The throughput chart (uPlot); tests give their own. */
  createChart?: (container: HTMLElement, spec: ChartSpec) => ChartView;
}

export class WorkersPage {
  private readonly refresher: Refresher;
  private request = 0;
  /** The open Details, by worker id; kept across refreshes. */
  private readonly details = new Map<string, WorkerDetails>();

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
    this.opts.confirm.close();
    for (const d of this.details.values()) d.destroy();
    this.details.clear();
    this.el.updated.textContent = '';
    this.el.body.replaceChildren();
    this.el.empty.hidden = true;
    this.showError(null);
    this.showNotice(null);
  }

  /** The open Details of a worker (tests and the e2e read it). */
  detailsOf(workerId: string): WorkerDetails | undefined {
    return this.details.get(workerId);
  }

  private toggle(w: WorkerSummary, button: HTMLButtonElement): void {
    const open = this.details.get(w.worker_id);
    if (open) {
      open.destroy();
      open.row.remove();
      this.details.delete(w.worker_id);
      button.setAttribute('aria-expanded', 'false');
      return;
    }
    const d = new WorkerDetails(this.el.body.ownerDocument, w.worker_id, this.opts);
    this.details.set(w.worker_id, d);
    button.setAttribute('aria-expanded', 'true');
    button.closest('tr')?.after(d.row);
    void d.load();
  }

  private askRestart(w: WorkerSummary): void {
    this.opts.confirm.ask(
      {
        title: `Restart worker ${w.hostname}`,
        body:
          'The worker takes no new job, lets the jobs it is working on finish (or hands them back to the queue if its process is stopped first) and exits; its supervisor starts it again, with a new id. Jobs wait in the queue meanwhile.',
        button: 'Restart',
        data: { operation: 'restart', workerId: w.worker_id },
      },
      () => this.restart(w),
    );
  }

  private async restart(w: WorkerSummary): Promise<void> {
    try {
      const r = await this.opts.restart(w.worker_id);
      this.showError(null);
      this.showNotice(
        `Restart requested for ${w.hostname} (${workerStatusText(String(r.status)).toLowerCase()} then): it drains within 5 seconds and is started again with a new id.`,
      );
      void this.load();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        this.refresher.stop();
        this.opts.onSignedOut();
        return;
      }
      this.showNotice(null);
      this.showError(err instanceof ApiError ? err.message : 'The worker could not be restarted.');
    }
  }

  private async load(): Promise<void> {
    const request = ++this.request;
    try {
      const list = await this.opts.load();
      if (request !== this.request) return;
      const now = this.opts.now?.() ?? new Date();
      const workers = Array.isArray(list.workers) ? list.workers : [];
      const doc = this.el.body.ownerDocument;
      const canRestart = this.opts.canRestart();
      const rows: HTMLTableRowElement[] = [];
      for (const w of workers) {
        const open = this.details.get(w.worker_id);
        rows.push(
          workerRow(doc, w, now.getTime(), {
            expanded: open !== undefined,
            onDetails: (button) => this.toggle(w, button),
            onRestart: canRestart ? () => this.askRestart(w) : null,
          }),
        );
        if (open) {
          rows.push(open.row);
          void open.loadLogs();
        }
      }
      // Details of a worker that left the list go with it.
      const listed = new Set(workers.map((w) => w.worker_id));
      for (const [id, d] of this.details) {
        if (!listed.has(id)) {
          d.destroy();
          this.details.delete(id);
        }
      }
      this.el.body.replaceChildren(...rows);
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

  private showNotice(message: string | null): void {
    this.el.notice.textContent = message ?? '';
  }
}

/** The columns of a worker row, for the Details row's span. */
const COLUMNS = 11;

/**
 * One worker's Details: its log lines (`#worker-logs-<id>`, a list whose
 * items carry their `data-level`) at the level of its select
 * (`data-log-level`), and its
 * throughput: a chart, a table of daily totals and the hourly series in
 * `data-hours` (JSON) for scripts and tests.
 */
export class WorkerDetails {
  readonly row: HTMLTableRowElement;
  readonly levelSelect: HTMLSelectElement;
  readonly logList: HTMLElement;
  readonly throughput: HTMLElement;
  private readonly logError: HTMLElement;
  private readonly chartArea: HTMLElement;
  private readonly totals: HTMLTableSectionElement;
  private chart: ChartView | null = null;
  private logRequest = 0;
  private gone = false;

  constructor(
    doc: Document,
    readonly workerId: string,
    private readonly opts: Pick<WorkersOptions, 'logs' | 'throughput' | 'createChart'>,
  ) {
    this.row = doc.createElement('tr');
    this.row.className = 'worker-details';
    this.row.dataset.workerId = workerId;
    const td = doc.createElement('td');
    td.colSpan = COLUMNS;

    const logs = doc.createElement('section');
    logs.className = 'worker-logs';
    const logsHead = doc.createElement('div');
    logsHead.className = 'worker-logs-head';
    const heading = doc.createElement('h3');
    heading.textContent = 'Last 100 log lines';
    const label = doc.createElement('label');
    label.textContent = 'Level ';
    this.levelSelect = doc.createElement('select');
    this.levelSelect.dataset.logLevel = DEFAULT_LOG_LEVEL;
    for (const level of LOG_LEVELS) {
      const option = doc.createElement('option');
      option.value = level;
      option.textContent = LEVEL_TEXT[level];
      this.levelSelect.append(option);
    }
    this.levelSelect.value = DEFAULT_LOG_LEVEL;
    this.levelSelect.addEventListener('change', () => {
      this.levelSelect.dataset.logLevel = this.levelSelect.value;
      void this.loadLogs();
    });
    label.append(this.levelSelect);
    logsHead.append(heading, label);
    this.logError = doc.createElement('p');
    this.logError.className = 'form-error';
    this.logError.setAttribute('role', 'alert');
    this.logError.hidden = true;
    this.logList = doc.createElement('ol');
    this.logList.className = 'worker-log-lines';
    this.logList.id = `worker-logs-${workerId}`;
    this.logList.dataset.workerLogs = workerId;
    this.logList.setAttribute('role', 'log');
    this.logList.setAttribute('aria-label', 'Log lines');
    this.logList.tabIndex = 0;
    logs.append(logsHead, this.logError, this.logList);

    this.throughput = doc.createElement('section');
    this.throughput.className = 'worker-throughput';
    this.throughput.dataset.workerThroughput = workerId;
    const tHeading = doc.createElement('h3');
    tHeading.textContent = 'Jobs ended per hour, last 7 days';
    this.chartArea = doc.createElement('div');
    this.chartArea.className = 'chart worker-chart';
    const table = doc.createElement('table');
    table.className = 'admin-table worker-daily';
    const caption = doc.createElement('caption');
    caption.textContent = 'Jobs ended per day (UTC)';
    const head = doc.createElement('thead');
    const headRow = doc.createElement('tr');
    for (const [text, num] of [['Day', false], ['Completed', true], ['Failed', true]] as const) {
      const th = doc.createElement('th');
      th.scope = 'col';
      th.textContent = text;
      if (num) th.className = 'num';
      headRow.append(th);
    }
    head.append(headRow);
    this.totals = doc.createElement('tbody');
    table.append(caption, head, this.totals);
    this.throughput.append(tHeading, this.chartArea, table);

    td.append(logs, this.throughput);
    this.row.append(td);
  }

  /** Loads the lines and the throughput. */
  async load(): Promise<void> {
    await Promise.all([this.loadLogs(), this.loadThroughput()]);
  }

  /** The lines at the select's level; a failure says so in place. */
  async loadLogs(): Promise<void> {
    const request = ++this.logRequest;
    const level = isLogLevel(this.levelSelect.value) ? this.levelSelect.value : DEFAULT_LOG_LEVEL;
    try {
      const answer = await this.opts.logs(this.workerId, level);
      if (request !== this.logRequest || this.gone) return;
      const doc = this.logList.ownerDocument;
      const lines = Array.isArray(answer.lines) ? answer.lines : [];
      if (lines.length === 0) {
        const empty = doc.createElement('li');
        empty.className = 'worker-log-empty';
        empty.textContent = level === 'debug' ? 'No log line yet.' : `No line at this level among the last 100.`;
        this.logList.replaceChildren(empty);
      } else {
        this.logList.replaceChildren(
          ...lines.map((l) => {
            const line = doc.createElement('li');
            line.className = 'worker-log-line';
            line.dataset.level = String(l.level);
            line.textContent = l.text;
            return line;
          }),
        );
      }
      this.logError.hidden = true;
      this.logError.textContent = '';
    } catch (err) {
      if (request !== this.logRequest || this.gone) return;
      this.logError.hidden = false;
      this.logError.textContent = err instanceof ApiError ? err.message : 'The log lines could not be loaded.';
    }
  }

  async loadThroughput(): Promise<void> {
    try {
      const t = await this.opts.throughput(this.workerId);
      if (this.gone) return;
      const hours = Array.isArray(t.hours) ? t.hours : [];
      this.throughput.dataset.hours = JSON.stringify(hours.map((h) => [h.start, h.completed, h.failed]));
      const doc = this.totals.ownerDocument;
      this.totals.replaceChildren(
        ...dailyTotals(hours).map((d) => {
          const tr = doc.createElement('tr');
          for (const [text, num] of [[d.day, false], [String(d.completed), true], [String(d.failed), true]] as const) {
            const cell = doc.createElement('td');
            cell.textContent = text;
            if (num) cell.className = 'num';
            tr.append(cell);
          }
          return tr;
        }),
      );
      const create = this.opts.createChart ?? ((container, spec) => new TimeChart(container, spec));
      this.chart ??= create(this.chartArea, THROUGHPUT_SPEC);
      this.chart.setData(throughputChartData(hours));
    } catch (err) {
      if (this.gone) return;
      this.chartArea.textContent = err instanceof ApiError ? err.message : 'The throughput could not be loaded.';
    }
  }

  destroy(): void {
    this.gone = true;
    this.chart?.destroy();
    this.chart = null;
  }
}

/** What a row's buttons do; without `onRestart` (not an admin) there is no Restart. */
export interface RowActions {
  expanded: boolean;
  onDetails(button: HTMLButtonElement): void;
  onRestart: (() => void) | null;
}

/** One worker as a table row; every field from the server is set as text. */
export function workerRow(doc: Document, w: WorkerSummary, now: number, actions?: RowActions): HTMLTableRowElement {
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
  const buttons = cell('worker-actions');
  if (actions) {
    const details = doc.createElement('button');
    details.type = 'button';
    details.className = 'secondary worker-details-toggle';
    details.dataset.action = 'logs';
    details.textContent = 'Details';
    details.setAttribute('aria-expanded', String(actions.expanded));
    details.setAttribute('aria-label', `Logs and throughput of ${w.hostname}`);
    details.addEventListener('click', () => actions.onDetails(details));
    buttons.append(details);
    const onRestart = actions.onRestart;
    if (onRestart) {
      const restart = doc.createElement('button');
      restart.type = 'button';
      restart.className = 'danger worker-restart';
      restart.dataset.action = 'restart';
      restart.textContent = 'Restart';
      restart.setAttribute('aria-label', `Restart ${w.hostname}`);
      // An unresponsive worker cannot read the command; one draining already restarts.
      restart.disabled = w.status === 'unresponsive' || w.status === 'draining';
      restart.addEventListener('click', () => onRestart());
      buttons.append(restart);
    }
  }
  tr.append(buttons);
  return tr;
}
