// The operations page (admins): pause or resume the workers, clear the
// queue, reload the tenant configurations of every replica — each only after
// the admin typed YES in its dialog (`confirm.ts`, whose `data-operation`
// names the operation while it is open) — and the last 20 such operations,
// from the audit log (every one is audited with its user by the tickets
// service). Entries are untrusted text: they are only ever set as text.

import { ApiError } from './api';
import type { ConfirmElements, ConfirmSpec, TypedConfirm } from './confirm';
import { pageElements } from './elements';
import { formatTimestamp } from './format';
import type { AuditEntry, AuditPage, ConfigsReloaded, Processing, QueueCleared } from './protocol';

export { OPERATION_ACTIONS, operationsUrl } from './api';

/** How many operations the page lists. */
export const SHOWN_OPERATIONS = 20;

export type OperationKind = 'pause' | 'resume' | 'clear' | 'reload';

/** What each dialog says and what its button does. */
export const OPERATIONS: Record<OperationKind, ConfirmSpec> = {
  pause: {
    title: 'Pause processing',
    body: 'Workers stop taking new jobs (jobs in progress finish). Webhooks are still accepted and queued.',
    button: 'Pause',
  },
  resume: {
    title: 'Resume processing',
    body: 'Workers take jobs from the queue again, oldest first.',
    button: 'Resume',
  },
  clear: {
    title: 'Clear the queue',
    body: "Every pending job (not yet taken by a worker) becomes failed with the reason 'cleared'. Nothing is deleted: they stay in the history and can be retried one by one.",
    button: 'Clear queue',
  },
  reload: {
    title: 'Reload tenant configurations',
    body: 'Every replica drops the tenant configurations it cached and reads them again at their next use.',
    button: 'Reload',
  },
};

function isOperationKind(value: string | undefined): value is OperationKind {
  return value !== undefined && Object.hasOwn(OPERATIONS, value);
}

const ACTION_TEXT: Record<string, string> = {
  'tickets.pause': 'Paused processing',
  'tickets.resume': 'Resumed processing',
  'tickets.clear_queue': 'Cleared the queue',
  'tickets.reload_configs': 'Reloaded tenant configurations',
  'tickets.retry': 'Retried a job',
  'tickets.restart_worker': 'Restarted a worker',
};

export function actionText(action: string): string {
  return ACTION_TEXT[action] ?? action;
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** An operation's details in words, from its audited input; the input itself when it does not read. */
export function operationDetails(entry: Pick<AuditEntry, 'tool_name' | 'sanitized_input' | 'result_status'>): string {
  let input: Record<string, unknown> | null = null;
  try {
    const parsed: unknown = JSON.parse(entry.sanitized_input);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) input = parsed as Record<string, unknown>;
  } catch {
    input = null;
  }
  const num = (k: string): number | null => (typeof input?.[k] === 'number' ? (input[k] as number) : null);
  const str = (k: string): string => (typeof input?.[k] === 'string' ? (input[k] as string) : '');
  let text: string | null = null;
  switch (entry.tool_name) {
    case 'tickets.pause':
    case 'tickets.resume':
      text = '';
      break;
    case 'tickets.clear_queue': {
      const n = num('cleared');
      text = n === null ? null : `${plural(n, 'pending job', 'pending jobs')} failed as 'cleared'`;
      break;
    }
    case 'tickets.reload_configs': {
      const n = num('tenants');
      const missed = num('not_announced') ?? 0;
      text = n === null ? null : `${plural(n, 'tenant', 'tenants')}${missed > 0 ? `, ${missed} not announced to other replicas` : ''}`;
      break;
    }
    case 'tickets.retry': {
      const job = str('job_id');
      text = job ? `ticket ${str('ticket_id') || '?'} of ${str('tenant_id') || '?'} (job ${job})` : null;
      break;
    }
    case 'tickets.restart_worker': {
      const worker = str('worker_id');
      text = worker ? `${str('hostname') || '?'} (worker ${worker}), drained and started again` : null;
      break;
    }
  }
  const failed = entry.result_status !== 'success' ? ` (${entry.result_status})` : '';
  return `${text ?? entry.sanitized_input}${failed}`;
}

/** The result line after an operation. */
export function resultText(kind: OperationKind, answer: Processing | QueueCleared | ConfigsReloaded): string {
  switch (kind) {
    case 'pause':
      return 'Processing is paused: workers take no new job (each notices within 2 seconds; jobs running finish).';
    case 'resume':
      return 'Processing resumed.';
    case 'clear': {
      const n = (answer as QueueCleared).cleared;
      return `Queue cleared: ${plural(n, 'pending job', 'pending jobs')} failed as 'cleared'.`;
    }
    case 'reload':
      return 'Tenant configurations reloaded on every replica.';
  }
}

export interface OperationsElements {
  state: HTMLElement;
  pause: HTMLButtonElement;
  resume: HTMLButtonElement;
  clear: HTMLButtonElement;
  reload: HTMLButtonElement;
  error: HTMLElement;
  notice: HTMLElement;
  dialog: ConfirmElements;
  table: HTMLTableElement;
  body: HTMLTableSectionElement;
}

export function operationsElements(doc: Document): OperationsElements {
  const { get, table: tableOf } = pageElements(doc, 'operations page');
  const { table, body } = tableOf('operations-table');
  return {
    state: get('operations-state'),
    pause: get<HTMLButtonElement>('operations-pause'),
    resume: get<HTMLButtonElement>('operations-resume'),
    clear: get<HTMLButtonElement>('operations-clear'),
    reload: get<HTMLButtonElement>('operations-reload'),
    error: get('operations-error'),
    notice: get('operations-notice'),
    dialog: {
      dialog: get('operations-dialog'),
      title: get('operations-dialog-title'),
      body: get('operations-dialog-body'),
      input: get<HTMLInputElement>('operations-dialog-input'),
      confirm: get<HTMLButtonElement>('operations-dialog-confirm'),
      cancel: get<HTMLButtonElement>('operations-dialog-cancel'),
    },
    table,
    body,
  };
}

export interface OperationsOptions {
  processing(): Promise<Processing>;
  setProcessing(paused: boolean): Promise<Processing>;
  clearQueue(): Promise<QueueCleared>;
  reloadConfigs(): Promise<ConfigsReloaded>;
  /** The audit log's operations, newest first. */
  loadOperations(): Promise<AuditPage>;
  /** The typed-YES dialog of `el.dialog` (main.ts builds it; tests too). */
  confirm: TypedConfirm;
  /** The session cookie is gone: show the sign-in form. */
  onSignedOut(): void;
}

export class OperationsPage {
  private state: Processing | null = null;
  private generation = 0;

  constructor(
    private readonly el: OperationsElements,
    private readonly opts: OperationsOptions,
  ) {
    el.pause.addEventListener('click', () => this.ask('pause'));
    el.resume.addEventListener('click', () => this.ask('resume'));
    el.clear.addEventListener('click', () => this.ask('clear'));
    el.reload.addEventListener('click', () => this.ask('reload'));
    this.renderState();
  }

  /** Opens the page: the processing state and the last operations. */
  async show(): Promise<void> {
    await Promise.all([this.loadState(), this.loadOperations()]);
  }

  /** Forgets everything, e.g. on sign-out. */
  clear(): void {
    this.generation++;
    this.state = null;
    this.opts.confirm.close();
    this.el.body.replaceChildren();
    this.showError(null);
    this.showNotice(null);
    this.renderState();
  }

  /** Which operation the dialog is open for (tests read it; the e2e its `data-operation`). */
  get asking(): OperationKind | null {
    const kind = this.el.dialog.dialog.dataset.operation;
    return this.opts.confirm.isOpen && isOperationKind(kind) ? kind : null;
  }

  private ask(kind: OperationKind): void {
    this.opts.confirm.ask({ ...OPERATIONS[kind], data: { operation: kind } }, () => this.operate(kind));
  }

  /** Runs `kind` once YES was typed; the dialog closes when it ends. */
  private async operate(kind: OperationKind): Promise<void> {
    const generation = this.generation;
    try {
      const answer = await this.run(kind);
      if (generation !== this.generation) return;
      if (kind === 'pause' || kind === 'resume') this.state = answer as Processing;
      this.showError(null);
      this.showNotice(resultText(kind, answer));
      this.renderState();
      void this.loadOperations();
      if (kind === 'clear') void this.loadState();
    } catch (err) {
      if (generation !== this.generation) return;
      if (err instanceof ApiError && err.status === 401) {
        this.opts.onSignedOut();
        return;
      }
      this.showNotice(null);
      this.showError(err instanceof ApiError ? err.message : 'The operation could not be done.');
    }
  }

  private run(kind: OperationKind): Promise<Processing | QueueCleared | ConfigsReloaded> {
    switch (kind) {
      case 'pause':
        return this.opts.setProcessing(true);
      case 'resume':
        return this.opts.setProcessing(false);
      case 'clear':
        return this.opts.clearQueue();
      case 'reload':
        return this.opts.reloadConfigs();
    }
  }

  private async loadState(): Promise<void> {
    const generation = this.generation;
    try {
      const state = await this.opts.processing();
      if (generation !== this.generation) return;
      this.state = state;
      this.renderState();
    } catch (err) {
      if (generation !== this.generation) return;
      if (err instanceof ApiError && err.status === 401) {
        this.opts.onSignedOut();
        return;
      }
      this.showError(err instanceof ApiError ? err.message : 'The processing state could not be loaded.');
    }
  }

  private async loadOperations(): Promise<void> {
    const generation = this.generation;
    try {
      const page = await this.opts.loadOperations();
      if (generation !== this.generation) return;
      const entries = (Array.isArray(page.entries) ? page.entries : []).slice(0, SHOWN_OPERATIONS);
      this.renderOperations(entries);
    } catch (err) {
      if (generation !== this.generation) return;
      if (err instanceof ApiError && err.status === 401) {
        this.opts.onSignedOut();
        return;
      }
      this.showError(err instanceof ApiError ? err.message : 'The last operations could not be loaded.');
    }
  }

  private renderState(): void {
    const s = this.state;
    this.el.state.dataset.paused = s === null ? '' : String(s.paused);
    this.el.state.textContent =
      s === null
        ? 'Loading the processing state…'
        : `${s.paused ? 'Paused: workers take no new job.' : 'Running.'} Queue depth ${s.queue_depth}, ${plural(s.active_workers, 'job', 'jobs')} in progress.`;
    // Pause while running, resume while paused; both while unknown.
    this.el.pause.hidden = s !== null && s.paused;
    this.el.resume.hidden = s !== null && !s.paused;
  }

  private renderOperations(entries: AuditEntry[]): void {
    const doc = this.el.body.ownerDocument;
    if (entries.length === 0) {
      const td = doc.createElement('td');
      td.colSpan = 4;
      td.textContent = 'No operation yet.';
      const tr = doc.createElement('tr');
      tr.className = 'operations-empty';
      tr.append(td);
      this.el.body.replaceChildren(tr);
      return;
    }
    this.el.body.replaceChildren(...entries.map((e) => operationRow(doc, e)));
  }

  private showError(message: string | null): void {
    this.el.error.hidden = message === null;
    this.el.error.textContent = message ?? '';
  }

  private showNotice(message: string | null): void {
    this.el.notice.textContent = message ?? '';
  }
}

/** One operation as a row: time, user, action, details; all as text. */
export function operationRow(doc: Document, entry: AuditEntry): HTMLTableRowElement {
  const tr = doc.createElement('tr');
  tr.className = 'operation-row';
  tr.dataset.action = entry.tool_name;
  const cell = (cls: string, ...children: (Node | string)[]): HTMLTableCellElement => {
    const td = doc.createElement('td');
    td.className = cls;
    td.append(...children);
    return td;
  };
  const time = doc.createElement('time');
  time.textContent = formatTimestamp(entry.timestamp);
  time.dateTime = entry.timestamp;
  time.title = entry.timestamp;
  const user = doc.createElement('span');
  user.textContent = entry.username || entry.user_id || '—';
  user.title = entry.user_id;
  tr.append(
    cell('operation-time', time),
    cell('operation-user', user),
    cell('operation-action', actionText(entry.tool_name)),
    cell('operation-details', operationDetails(entry)),
  );
  return tr;
}
