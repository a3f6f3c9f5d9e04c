// The Dashboard page (operators and admins): whether ticket enhancement is
// healthy, degraded or down and why, four figures (queue depth, the success
// rate and p95 processing time of the last 24 hours, active workers), the
// state of the backends, the helpful rate of each tenant's notes (the
// technicians' votes of 30 days), and the last 10 failed jobs, each opening
// on its error. Refreshed every 30 s by default (`refresh.ts`). Every string from
// the server (reasons, errors, ticket ids) is only ever set as text.

import { ApiError } from './api';
import { pageElements } from './elements';
import { formatTimestamp } from './format';
import type { Dashboard, DashboardDependency, Enhancement, TenantFeedback } from './protocol';
import { Refresher, updatedText } from './refresh';

const HEALTH_TEXT: Record<string, string> = { healthy: 'Healthy', degraded: 'Degraded', down: 'Down' };

/** The badge's word; an unknown status is shown as it is. */
export function healthText(status: string): string {
  return HEALTH_TEXT[status] ?? String(status);
}

/** A share as a percentage with one decimal ("97.5 %"), "—" when there is none. */
export function percentText(share: number | null | undefined): string {
  if (typeof share !== 'number' || !Number.isFinite(share)) return '—';
  return `${(share * 100).toFixed(1)} %`;
}

/** A processing time: milliseconds below a second, then seconds ("1.2 s", "95 s"); "—" when none. */
export function latencyText(ms: number | null | undefined): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  return s < 10 ? `${s.toFixed(1)} s` : `${Math.round(s)} s`;
}

/** The first line of an error, shortened, for a failure's summary. */
export function errorSummary(error: string | null | undefined, max = 100): string {
  const line = (typeof error === 'string' ? error : '').split('\n').find((l) => l.trim())?.trim() ?? '';
  if (!line) return 'No error recorded';
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

export interface DashboardElements {
  updated: HTMLElement;
  refresh: HTMLSelectElement;
  error: HTMLElement;
  health: HTMLElement;
  status: HTMLElement;
  reason: HTMLElement;
  queue: HTMLElement;
  queueNote: HTMLElement;
  success: HTMLElement;
  successNote: HTMLElement;
  latency: HTMLElement;
  workers: HTMLElement;
  dependencies: HTMLElement;
  feedback: HTMLElement;
  noFeedback: HTMLElement;
  failures: HTMLElement;
  noFailures: HTMLElement;
}

export function dashboardElements(doc: Document): DashboardElements {
  const { get } = pageElements(doc, 'dashboard');
  return {
    updated: get('dashboard-updated'),
    refresh: get<HTMLSelectElement>('dashboard-refresh'),
    error: get('dashboard-error'),
    health: get('dashboard-health'),
    status: get('dashboard-status'),
    reason: get('dashboard-reason'),
    queue: get('dashboard-queue'),
    queueNote: get('dashboard-queue-note'),
    success: get('dashboard-success'),
    successNote: get('dashboard-success-note'),
    latency: get('dashboard-latency'),
    workers: get('dashboard-workers'),
    dependencies: get('dashboard-dependencies'),
    feedback: get('dashboard-feedback'),
    noFeedback: get('dashboard-no-feedback'),
    failures: get('dashboard-failures'),
    noFailures: get('dashboard-no-failures'),
  };
}

export interface DashboardOptions {
  load(): Promise<Dashboard>;
  onSignedOut(): void;
  /** Where the refresh interval is remembered (`window.localStorage`). */
  storage: Storage | null;
  now?: () => Date;
}

export class DashboardPage {
  private readonly refresher: Refresher;
  /** Bumped by every load and by clear, so only the latest answer is shown. */
  private request = 0;

  constructor(
    private readonly el: DashboardElements,
    private readonly opts: DashboardOptions,
  ) {
    this.refresher = new Refresher({
      select: el.refresh,
      storageKey: 'csp.refresh.dashboard',
      storage: opts.storage,
      load: () => this.load(),
    });
  }

  /** Opens the page: loads now and keeps refreshing until hidden. */
  show(): Promise<void> {
    return this.refresher.start();
  }

  /** Stops refreshing (another page shows); what is shown stays. */
  hide(): void {
    this.refresher.stop();
  }

  /** Stops and forgets everything, e.g. on sign-out. */
  clear(): void {
    this.refresher.stop();
    this.request++;
    this.el.updated.textContent = '';
    this.showError(null);
    this.el.health.removeAttribute('data-health');
    for (const field of [this.el.status, this.el.reason, this.el.queue, this.el.queueNote, this.el.success, this.el.successNote, this.el.latency, this.el.workers]) {
      field.textContent = '';
    }
    this.el.dependencies.replaceChildren();
    this.el.feedback.replaceChildren();
    this.el.failures.replaceChildren();
    this.el.noFailures.hidden = true;
  }

  private async load(): Promise<void> {
    const request = ++this.request;
    try {
      const dashboard = await this.opts.load();
      if (request !== this.request) return;
      this.render(dashboard);
      this.showError(null);
      this.el.updated.textContent = updatedText(this.opts.now?.() ?? new Date());
    } catch (err) {
      if (request !== this.request) return;
      if (err instanceof ApiError && err.status === 401) {
        this.refresher.stop();
        this.opts.onSignedOut();
        return;
      }
      // The last figures stay, with the time they are from.
      const why = err instanceof ApiError ? err.message : 'The dashboard could not be loaded.';
      this.showError(`Refresh failed: ${why}`);
    }
  }

  private render(d: Dashboard): void {
    const doc = this.el.health.ownerDocument;
    this.el.health.dataset.health = String(d.status);
    this.el.status.textContent = healthText(d.status);
    this.el.reason.textContent = typeof d.reason === 'string' ? d.reason : '';
    this.el.queue.textContent = String(d.queue_depth);
    this.el.queueNote.textContent = d.paused ? 'Processing is paused' : 'pending and processing';
    this.el.success.textContent = percentText(d.success_rate_24h);
    this.el.successNote.textContent = `${d.completed_24h} completed · ${d.failed_24h} failed`;
    this.el.latency.textContent = latencyText(d.p95_latency_ms_24h);
    this.el.workers.textContent = String(d.active_workers);
    const deps = Array.isArray(d.dependencies) ? d.dependencies : [];
    this.el.dependencies.replaceChildren(...deps.map((dep) => dependencyItem(doc, dep)));
    const votes = Array.isArray(d.feedback) ? d.feedback : [];
    this.el.feedback.replaceChildren(...votes.map((t) => feedbackItem(doc, t)));
    this.el.noFeedback.hidden = votes.length > 0;
    const failures = Array.isArray(d.recent_failures) ? d.recent_failures : [];
    this.el.failures.replaceChildren(...failures.map((job) => failureItem(doc, job)));
    this.el.noFailures.hidden = failures.length > 0;
  }

  private showError(message: string | null): void {
    this.el.error.hidden = message === null;
    this.el.error.textContent = message ?? '';
  }
}

/** One tenant's helpful rate: "acme — 75 % helpful (3 👍 · 1 👎)". */
export function feedbackText(t: TenantFeedback): string {
  return `${t.tenant_id} — ${percentText(t.helpful_rate)} helpful (${t.helpful} 👍 · ${t.not_helpful} 👎)`;
}

function feedbackItem(doc: Document, t: TenantFeedback): HTMLLIElement {
  const li = doc.createElement('li');
  li.textContent = feedbackText(t);
  return li;
}

/** A backend with its dot: green when it answered, red when not. */
export function dependencyItem(doc: Document, dep: DashboardDependency): HTMLLIElement {
  const li = doc.createElement('li');
  li.className = 'dependency';
  li.dataset.ok = String(dep.ok === true);
  const dot = doc.createElement('span');
  dot.className = 'dependency-dot';
  dot.setAttribute('aria-hidden', 'true');
  const name = doc.createElement('span');
  name.className = 'dependency-name';
  name.textContent = dep.name;
  const detail = doc.createElement('span');
  detail.className = 'dependency-detail';
  detail.textContent = dep.ok === true ? dep.detail : `down: ${dep.detail}`;
  li.append(dot, name, detail);
  return li;
}

/** A failed job: a summary line that opens on its whole error, as text. */
export function failureItem(doc: Document, job: Enhancement): HTMLLIElement {
  const li = doc.createElement('li');
  li.className = 'failure';
  li.dataset.jobId = job.job_id;
  const details = doc.createElement('details');
  const summary = doc.createElement('summary');
  const when = doc.createElement('time');
  const at = job.completed_at ?? job.created_at;
  when.textContent = formatTimestamp(at);
  if (typeof at === 'string') when.dateTime = at;
  const where = doc.createElement('span');
  where.className = 'failure-ticket';
  where.textContent = `${job.tenant_id} · ticket ${job.ticket_id}`;
  const what = doc.createElement('span');
  what.className = 'failure-summary';
  what.textContent = errorSummary(job.error_message);
  summary.append(when, where, what);
  const full = doc.createElement('pre');
  full.className = 'failure-error';
  full.textContent = job.error_message ?? 'No error recorded.';
  const meta = doc.createElement('p');
  meta.className = 'failure-meta';
  meta.textContent = `Job ${job.job_id} · ${job.attempts} attempt${job.attempts === 1 ? '' : 's'} · correlation ${job.correlation_id}`;
  details.append(summary, full, meta);
  li.append(details);
  return li;
}
