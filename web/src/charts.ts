// The Charts page (operators and admins): queue depth, success rate and
// the p50/p95/p99 processing time of ticket enhancement over the last hour,
// 6 hours, day (the default) or week, from Prometheus when the platform has
// CSP_PROMETHEUS_URL, else from its own history; which one is said beside
// the charts, and a warning says when the data is not fresh (Prometheus
// unreachable: its last answer, or the history). Refreshed every 60 s by
// default (`refresh.ts`); a loading indicator shows while a load runs. Every
// string from the server (the warning) is only ever set as text.

import { ApiError } from './api';
import { type ChartData, type ChartSpec, type ChartView, TimeChart } from './chart';
import { pageElements } from './elements';
import { formatTimestamp } from './format';
import type { ChartRange, Charts } from './protocol';
import { Refresher, updatedText } from './refresh';

export const CHART_RANGES: readonly ChartRange[] = ['1h', '6h', '24h', '7d'];
export const DEFAULT_RANGE: ChartRange = '24h';
/** The Charts page refreshes less often than the Dashboard: a point is a step of 5 s to 15 min. */
export const CHARTS_REFRESH = 60;

const RANGE_TEXT: Record<ChartRange, string> = { '1h': '1 hour', '6h': '6 hours', '24h': '24 hours', '7d': '7 days' };

export function isChartRange(text: string | undefined): text is ChartRange {
  return typeof text === 'string' && (CHART_RANGES as readonly string[]).includes(text);
}

/** "Source: Prometheus" or "Source: platform history", with the period and step. */
export function sourceText(c: Pick<Charts, 'source' | 'range' | 'step_seconds' | 'window_seconds'>): string {
  const source = c.source === 'prometheus' ? 'Prometheus' : 'platform history';
  const range = RANGE_TEXT[c.range] ?? String(c.range);
  return `Source: ${source} · last ${range} · a point every ${durationText(c.step_seconds)}, rates over ${durationText(c.window_seconds)}`;
}

/** "5 s", "100 s", "15 min", "1 h 40 min", for steps and windows (never rounded). */
export function durationText(seconds: number): string {
  if (!Number.isInteger(seconds) || seconds < 0) return '—';
  if (seconds < 60 || seconds % 60 !== 0) return `${seconds} s`;
  const minutes = seconds / 60;
  if (minutes < 60) return `${minutes} min`;
  return minutes % 60 === 0 ? `${minutes / 60} h` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** A queue depth: whole jobs. */
export function depthText(v: number): string {
  return String(Math.round(v));
}

/** A share already in percent: "97.5 %". */
export function shareText(v: number): string {
  return `${v.toFixed(1)} %`;
}

/** A processing time in seconds: "850 ms", "1.5 s", "95 s". */
export function secondsText(v: number): string {
  if (v < 1) return `${Math.round(v * 1000)} ms`;
  return v < 10 ? `${v.toFixed(1)} s` : `${Math.round(v)} s`;
}

const COLORS = { depth: '#2563eb', success: '#16a34a', p50: '#0891b2', p95: '#d97706', p99: '#dc2626' };

export const CHART_SPECS = {
  queueDepth: { title: 'Queue depth (jobs pending or processing)', format: depthText, integer: true } satisfies ChartSpec,
  successRate: { title: 'Success rate (completed of ended jobs)', format: shareText, yRange: [0, 100] } satisfies ChartSpec,
  latency: { title: 'Processing time p50, p95, p99', format: secondsText } satisfies ChartSpec,
};

/** The three charts' data from the answer; the success rate in percent. */
export function chartData(c: Charts): { queueDepth: ChartData; successRate: ChartData; latency: ChartData } {
  const percent = c.success_rate.map((v) => (typeof v === 'number' ? v * 100 : null));
  return {
    queueDepth: { timestamps: c.timestamps, series: [{ label: 'Queue depth', values: c.queue_depth, color: COLORS.depth }] },
    successRate: { timestamps: c.timestamps, series: [{ label: 'Success rate', values: percent, color: COLORS.success }] },
    latency: {
      timestamps: c.timestamps,
      series: [
        { label: 'p50', values: c.latency_p50_seconds, color: COLORS.p50 },
        { label: 'p95', values: c.latency_p95_seconds, color: COLORS.p95 },
        { label: 'p99', values: c.latency_p99_seconds, color: COLORS.p99 },
      ],
    },
  };
}

export interface ChartsElements {
  updated: HTMLElement;
  refresh: HTMLSelectElement;
  ranges: HTMLButtonElement[];
  loading: HTMLElement;
  error: HTMLElement;
  warning: HTMLElement;
  source: HTMLElement;
  queueDepth: HTMLElement;
  successRate: HTMLElement;
  latency: HTMLElement;
}

export function chartsElements(doc: Document): ChartsElements {
  const { get } = pageElements(doc, 'charts');
  const page = get('charts-page');
  return {
    updated: get('charts-updated'),
    refresh: get<HTMLSelectElement>('charts-refresh'),
    ranges: Array.from(page.querySelectorAll<HTMLButtonElement>('button[data-range]')),
    loading: get('charts-loading'),
    error: get('charts-error'),
    warning: get('charts-warning'),
    source: get('charts-source'),
    queueDepth: get('chart-queue-depth'),
    successRate: get('chart-success-rate'),
    latency: get('chart-latency'),
  };
}

export interface ChartsOptions {
  load(range: ChartRange): Promise<Charts>;
  onSignedOut(): void;
  /** Where the refresh interval is remembered (`window.localStorage`). */
  storage: Storage | null;
  now?: () => Date;
  /** Builds a chart in its container (uPlot's `TimeChart`; tests pass their own). */
  createChart?: (container: HTMLElement, spec: ChartSpec) => ChartView;
}

export class ChartsPage {
  private readonly refresher: Refresher;
  private range: ChartRange = DEFAULT_RANGE;
  /** Bumped by every load and by clear, so only the latest answer is shown. */
  private request = 0;
  private charts: { queueDepth: ChartView; successRate: ChartView; latency: ChartView } | null = null;
  /** Set when the range changed: the next answer gets new charts (no zoom of the old period). */
  private rebuild = false;

  constructor(
    private readonly el: ChartsElements,
    private readonly opts: ChartsOptions,
  ) {
    this.refresher = new Refresher({
      select: el.refresh,
      storageKey: 'csp.refresh.charts',
      storage: opts.storage,
      defaultSeconds: CHARTS_REFRESH,
      load: () => this.load(),
    });
    for (const button of el.ranges) {
      button.addEventListener('click', () => {
        const range = button.dataset.range;
        if (!isChartRange(range) || range === this.range) return;
        this.range = range;
        this.rebuild = true;
        this.showRange();
        // Loads now and restarts the interval from here.
        void this.refresher.start();
      });
    }
    this.showRange();
  }

  /** The range shown. */
  currentRange(): ChartRange {
    return this.range;
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
    this.range = DEFAULT_RANGE;
    this.showRange();
    this.el.updated.textContent = '';
    this.el.loading.hidden = true;
    this.showText(this.el.error, null);
    this.showText(this.el.warning, null);
    this.el.source.textContent = '';
    this.el.source.removeAttribute('data-source');
    if (this.charts) {
      for (const chart of Object.values(this.charts)) chart.destroy();
    }
    this.charts = null;
    for (const container of [this.el.queueDepth, this.el.successRate, this.el.latency]) {
      container.replaceChildren();
      delete container.dataset.renderMs;
      delete container.dataset.points;
    }
  }

  private showRange(): void {
    for (const button of this.el.ranges) button.setAttribute('aria-pressed', String(button.dataset.range === this.range));
  }

  private async load(): Promise<void> {
    const request = ++this.request;
    const range = this.range;
    this.el.loading.hidden = false;
    try {
      const c = await this.opts.load(range);
      if (request !== this.request) return;
      this.render(c);
      this.showText(this.el.error, null);
      this.el.updated.textContent = updatedText(this.opts.now?.() ?? new Date());
    } catch (err) {
      if (request !== this.request) return;
      if (err instanceof ApiError && err.status === 401) {
        this.refresher.stop();
        this.opts.onSignedOut();
        return;
      }
      // The last charts stay, with the time they are from.
      const why = err instanceof ApiError ? err.message : 'The charts could not be loaded.';
      this.showText(this.el.error, `Refresh failed: ${why}`);
    } finally {
      if (request === this.request) this.el.loading.hidden = true;
    }
  }

  private render(c: Charts): void {
    this.el.source.dataset.source = String(c.source);
    this.el.source.textContent = `${sourceText(c)} · data from ${formatTimestamp(c.generated_at)}`;
    this.showText(this.el.warning, typeof c.warning === 'string' && c.warning !== '' ? c.warning : null);
    const create = this.opts.createChart ?? ((container, spec) => new TimeChart(container, spec));
    if (this.rebuild && this.charts) {
      for (const chart of Object.values(this.charts)) chart.destroy();
      this.charts = null;
    }
    this.rebuild = false;
    this.charts ??= {
      queueDepth: create(this.el.queueDepth, CHART_SPECS.queueDepth),
      successRate: create(this.el.successRate, CHART_SPECS.successRate),
      latency: create(this.el.latency, CHART_SPECS.latency),
    };
    const data = chartData(c);
    this.charts.queueDepth.setData(data.queueDepth);
    this.charts.successRate.setData(data.successRate);
    this.charts.latency.setData(data.latency);
  }

  private showText(el: HTMLElement, message: string | null): void {
    el.hidden = message === null;
    el.textContent = message ?? '';
  }
}
