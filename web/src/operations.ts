// The operations page (admins): pause or resume the workers, clear the
// queue, reload the tenant configurations of every replica — each only after
// the admin typed YES in its dialog — and the last 20 such operations, from
// the audit log (every one is audited with its user by the tickets service).
// Entries are untrusted text: they are only ever set as text.

import { ApiError } from './api';
import { formatTimestamp } from './format';
import type { AuditEntry, AuditPage, ConfigsReloaded, Processing, QueueCleared } from './protocol';

export { OPERATION_ACTIONS, operationsUrl } from './api';

/** How many operations the page lists. */
export const SHOWN_OPERATIONS = 20;

/** The word the dialogs ask for, exactly (not "yes", not " YES"). */
export const CONFIRM_WORD = 'YES';

/** Whether what was typed lets the action go: exactly YES. */
export function isConfirmed(typed: string): boolean {
  return typed === CONFIRM_WORD;
}

export type OperationKind = 'pause' | 'resume' | 'clear' | 'reload';

/** What each dialog says and what its button does. */
export const OPERATIONS: Record<OperationKind, { title: string; body: string; button: string }> = {
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

const ACTION_TEXT: Record<string, string> = {
  'tickets.pause': 'Paused processing',
  'tickets.resume': 'Resumed processing',
  'tickets.clear_queue': 'Cleared the queue',
  'tickets.reload_configs': 'Reloaded tenant configurations',
  'tickets.retry': 'Retried a job',
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
  }
  const failed = entry.result_status !== 'success' ? ` (${entry.result_status})` : '';
  return `${text ?? entry.sanitized_input}${failed}`;
}

/** The result line after an operation. */
export function resultText(kind: OperationKind, answer: Processing | QueueCleared | ConfigsReloaded): string {
  switch (kind) {
    case 'pause':
      return 'Processing is paused: workers take no new job.';
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
  dialog: HTMLElement;
  dialogTitle: HTMLElement;
  dialogBody: HTMLElement;
  dialogInput: HTMLInputElement;
  dialogConfirm: HTMLButtonElement;
  dialogCancel: HTMLButtonElement;
  table: HTMLTableElement;
  body: HTMLTableSectionElement;
}

export function operationsElements(doc: Document): OperationsElements {
  const get = <T extends HTMLElement>(id: string): T => {
    const found = doc.getElementById(id);
    if (!found) throw new Error(`operations page: missing #${id}`);
    return found as T;
  };
  const table = get<HTMLTableElement>('operations-table');
  const body = table.tBodies[0];
  if (!body) throw new Error('operations page: #operations-table has no tbody');
  return {
    state: get('operations-state'),
    pause: get<HTMLButtonElement>('operations-pause'),
    resume: get<HTMLButtonElement>('operations-resume'),
    clear: get<HTMLButtonElement>('operations-clear'),
    reload: get<HTMLButtonElement>('operations-reload'),
    error: get('operations-error'),
    notice: get('operations-notice'),
    dialog: get('operations-dialog'),
    dialogTitle: get('operations-dialog-title'),
    dialogBody: get('operations-dialog-body'),
    dialogInput: get<HTMLInputElement>('operations-dialog-input'),
    dialogConfirm: get<HTMLButtonElement>('operations-dialog-confirm'),
    dialogCancel: get<HTMLButtonElement>('operations-dialog-cancel'),
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
  /** The session cookie is gone: show the sign-in form. */
  onSignedOut(): void;
}

export class OperationsPage {
  /** The dialog's operation; null while it is closed. */
  private pending: OperationKind | null = null;
  private state: Processing | null = null;
  private generation = 0;
  private busy = false;

  constructor(
    private readonly el: OperationsElements,
    private readonly opts: OperationsOptions,
  ) {
    el.pause.addEventListener('click', () => this.ask('pause'));
    el.resume.addEventListener('click', () => this.ask('resume'));
    el.clear.addEventListener('click', () => this.ask('clear'));
    el.reload.addEventListener('click', () => this.ask('reload'));
    el.dialogInput.addEventListener('input', () => this.updateGate());
    el.dialogInput.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        void this.confirm();
      } else if (ev.key === 'Escape') {
        this.close();
      }
    });
    el.dialogConfirm.addEventListener('click', () => void this.confirm());
    el.dialogCancel.addEventListener('click', () => this.close());
    this.close();
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
    this.close();
    this.el.body.replaceChildren();
    this.showError(null);
    this.showNotice(null);
    this.renderState();
  }

  /** Which operation the dialog is open for (tests and the e2e read it). */
  get asking(): OperationKind | null {
    return this.pending;
  }

  private ask(kind: OperationKind): void {
    const op = OPERATIONS[kind];
    this.pending = kind;
    this.el.dialog.dataset.operation = kind;
    this.el.dialogTitle.textContent = op.title;
    this.el.dialogBody.textContent = op.body;
    this.el.dialogConfirm.textContent = op.button;
    this.el.dialogInput.value = '';
    this.el.dialog.hidden = false;
    this.updateGate();
    this.el.dialogInput.focus();
  }

  private close(): void {
    this.pending = null;
    this.el.dialog.hidden = true;
    this.el.dialogInput.value = '';
    delete this.el.dialog.dataset.operation;
    this.updateGate();
  }

  private updateGate(): void {
    this.el.dialogConfirm.disabled = this.busy || this.pending === null || !isConfirmed(this.el.dialogInput.value);
  }

  private async confirm(): Promise<void> {
    const kind = this.pending;
    // The gate is the button's state and checked again here: Enter in the
    // field goes through this too.
    if (kind === null || this.busy || !isConfirmed(this.el.dialogInput.value)) return;
    const generation = this.generation;
    this.busy = true;
    this.updateGate();
    try {
      const answer = await this.run(kind);
      if (generation !== this.generation) return;
      if (kind === 'pause' || kind === 'resume') this.state = answer as Processing;
      this.close();
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
      this.close();
      this.showNotice(null);
      this.showError(err instanceof ApiError ? err.message : 'The operation could not be done.');
    } finally {
      this.busy = false;
      this.updateGate();
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
