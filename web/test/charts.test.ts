import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type uPlot from 'uplot';
import { ApiError } from '../src/api';
import { type ChartData, type ChartSpec, type ChartView, type PlotLike, TimeChart, alignedData, isolatedPoints, panned, yRangeOf } from '../src/chart';
import {
  CHART_RANGES,
  ChartsPage,
  chartData,
  chartsElements,
  durationText,
  secondsText,
  shareText,
  sourceText,
} from '../src/charts';
import type { ChartRange, Charts } from '../src/protocol';
import { appDocument, settle } from './page';

function charts(more: Partial<Charts> = {}): Charts {
  return {
    range: '24h',
    source: 'history',
    warning: null,
    generated_at: '2026-11-03T09:15:00Z',
    step_seconds: 100,
    window_seconds: 300,
    timestamps: [1000, 1100, 1200],
    queue_depth: [0, 2, 3],
    success_rate: [null, 1, 0.75],
    latency_p50_seconds: [null, 1.5, 2],
    latency_p95_seconds: [null, 4, 5],
    latency_p99_seconds: [null, 6, null],
    ...more,
  };
}

describe('chart data', () => {
  it('gives each chart its series, the success rate in percent, gaps kept', () => {
    const d = chartData(charts());
    assert.deepEqual(d.queueDepth.series.map((s) => [s.label, s.values]), [['Queue depth', [0, 2, 3]]]);
    assert.deepEqual(d.successRate.series[0]?.values, [null, 100, 75]);
    assert.deepEqual(
      d.latency.series.map((s) => [s.label, s.values]),
      [
        ['p50', [null, 1.5, 2]],
        ['p95', [null, 4, 5]],
        ['p99', [null, 6, null]],
      ],
    );
    for (const chart of [d.queueDepth, d.successRate, d.latency]) assert.deepEqual(chart.timestamps, [1000, 1100, 1200]);
  });

  it('aligns series to the timestamps for uPlot: short ones padded, NaN a gap', () => {
    const data: ChartData = {
      timestamps: [1, 2, 3],
      series: [
        { label: 'a', values: [1, Number.NaN], color: 'red' },
        { label: 'b', values: [1, 2, 3, 4], color: 'blue' },
      ],
    };
    assert.deepEqual(alignedData(data), [
      [1, 2, 3],
      [1, null, null],
      [1, 2, 3],
    ]);
  });

  it('says where the data is from, over what period and step', () => {
    assert.equal(sourceText(charts()), 'Source: platform history · last 24 hours · a point every 100 s, rates over 5 min');
    assert.equal(
      sourceText(charts({ source: 'prometheus', range: '7d', step_seconds: 900, window_seconds: 900 })),
      'Source: Prometheus · last 7 days · a point every 15 min, rates over 15 min',
    );
    assert.deepEqual([5, 90, 120, 3600, 6000].map(durationText), ['5 s', '90 s', '2 min', '1 h', '1 h 40 min']);
    assert.deepEqual([0.85, 1.5, 95.4].map(secondsText), ['850 ms', '1.5 s', '95 s']);
    assert.equal(shareText(97.54), '97.5 %');
  });

  it('pans within the data and zooms out to it at most', () => {
    assert.deepEqual(panned(100, 200, 0.25, 0, 1000), { min: 125, max: 225 });
    assert.deepEqual(panned(100, 200, -0.25, 0, 1000), { min: 75, max: 175 });
    assert.deepEqual(panned(50, 150, -1, 0, 1000), { min: 0, max: 100 }, 'not before the first point');
    assert.deepEqual(panned(850, 950, 1, 0, 1000), { min: 900, max: 1000 }, 'not after the last');
    assert.deepEqual(panned(0, 1000, 0.25, 0, 1000), { min: 0, max: 1000 }, 'nothing to pan');
    assert.deepEqual(yRangeOf([0, 100], 42), [0, 100]);
    assert.deepEqual(yRangeOf(undefined, 10), [0, 11]);
    assert.deepEqual(yRangeOf(undefined, null), [0, 1]);
    assert.deepEqual(yRangeOf(undefined, 0), [0, 1]);
  });
});

/** Stands in for uPlot (jsdom has no canvas): keeps what the chart asks of it. */
class FakePlot implements PlotLike {
  scales: { [key: string]: { min?: number | null; max?: number | null } } = { x: {} };
  readonly over: HTMLElement;
  data: uPlot.AlignedData;
  calls: string[] = [];
  constructor(
    readonly opts: uPlot.Options,
    data: uPlot.AlignedData,
    readonly target: HTMLElement,
  ) {
    this.data = data;
    this.over = target.ownerDocument.createElement('div');
    target.append(this.over);
    this.scales.x = { min: data[0][0] ?? null, max: data[0][data[0].length - 1] ?? null };
  }
  hook(name: 'draw' | 'setScale'): void {
    const hooks = (this.opts.hooks?.[name] ?? []) as ((u: unknown, key?: string) => void)[];
    for (const h of hooks) h(this, 'x');
  }
  setData(data: uPlot.AlignedData, resetScales = true): void {
    this.calls.push(`setData(${resetScales})`);
    this.data = data;
    if (resetScales) this.setScale('x', { min: data[0][0] as number, max: data[0][data[0].length - 1] as number });
  }
  setScale(key: string, limits: { min: number; max: number }): void {
    this.calls.push(`setScale(${key}, ${limits.min}, ${limits.max})`);
    this.scales[key] = { ...limits };
    this.hook('setScale');
  }
  setSize(): void {
    this.calls.push('setSize');
  }
  destroy(): void {
    this.calls.push('destroy');
  }
}

function line(n: number, from = 0): ChartData {
  const timestamps = Array.from({ length: n }, (_, i) => from + i * 10);
  return { timestamps, series: [{ label: 'Queue depth', values: timestamps.map((_, i) => i % 7), color: 'blue' }] };
}

describe('TimeChart', () => {
  const spec: ChartSpec = { title: 'Queue depth', format: (v) => `${v} jobs` };

  function chart() {
    const { doc } = appDocument();
    const container = doc.createElement('div');
    doc.body.append(container);
    const plots: FakePlot[] = [];
    const debug: string[] = [];
    let clock = 0;
    const c = new TimeChart(container, spec, {
      factory: (opts, data, target) => {
        const p = new FakePlot(opts, data, target);
        plots.push(p);
        return p;
      },
      now: () => (clock += 12.5),
      debug: (m) => debug.push(m),
    });
    return { c, container, plots, debug };
  }

  it('builds one plot with a time axis, x-only drag zoom and legend values, and times its first draw', () => {
    const { c, container, plots, debug } = chart();
    c.setData(line(1000));
    assert.equal(plots.length, 1);
    const opts = plots[0]!.opts;
    assert.equal(opts.scales?.x?.time, true);
    assert.deepEqual(opts.cursor?.drag, { x: true, y: false, setScale: true });
    assert.equal(opts.legend?.live, true);
    const series = opts.series[1]!;
    assert.equal(series.label, 'Queue depth');
    const value = series.value as (u: unknown, v: number | null) => string;
    assert.equal(value(null, 3), '3 jobs');
    assert.equal(value(null, null), '—', 'a gap in the legend');
    assert.equal(container.dataset.renderMs, undefined, 'not drawn yet');
    plots[0]!.hook('draw');
    plots[0]!.hook('draw');
    assert.equal(container.dataset.renderMs, '12.5');
    assert.equal(container.dataset.points, '1000');
    assert.deepEqual(debug, ['chart "Queue depth": 1000 points drawn in 12.5 ms']);
    assert.equal(container.querySelector('.chart-plot')?.getAttribute('aria-label'), 'Queue depth');
  });

  it('keeps the reader’s zoom across refreshes, pans with the buttons and resets', () => {
    const { c, container, plots } = chart();
    c.setData(line(100));
    const plot = plots[0]!;
    // A refresh without zoom: uPlot rescales to the new data.
    c.setData(line(100, 10));
    assert.deepEqual(plot.calls.slice(-2), ['setData(true)', 'setScale(x, 10, 1000)']);
    // The reader drags over 200..400: a refresh keeps that period.
    plot.setScale('x', { min: 200, max: 400 });
    plot.calls = [];
    c.setData(line(100, 20));
    assert.deepEqual(plot.calls, ['setData(false)', 'setScale(x, 200, 400)']);
    const [back, forward, reset] = Array.from(container.querySelectorAll<HTMLButtonElement>('.chart-tool'));
    plot.calls = [];
    forward!.click();
    back!.click();
    assert.deepEqual(plot.calls, ['setScale(x, 250, 450)', 'setScale(x, 200, 400)']);
    plot.calls = [];
    reset!.click();
    assert.deepEqual(plot.calls, ['setScale(x, 20, 1010)']);
    c.setData(line(100, 30));
    assert.equal(plot.calls.at(-2), 'setData(true)', 'no zoom left to keep');
    assert.equal(plots.length, 1, 'one plot all along');
    // Shift + wheel pans.
    plot.setScale('x', { min: 200, max: 400 });
    plot.calls = [];
    const wheel = new (container.ownerDocument.defaultView!.WheelEvent)('wheel', { deltaY: 100, shiftKey: true, cancelable: true });
    plot.over.dispatchEvent(wheel);
    assert.equal(wheel.defaultPrevented, true);
    assert.deepEqual(plot.calls, ['setScale(x, 225, 425)']);
    c.destroy();
    assert.equal(plot.calls.at(-1), 'destroy');
  });
});

class FakeChart implements ChartView {
  data: ChartData[] = [];
  destroyed = false;
  constructor(
    readonly container: HTMLElement,
    readonly spec: ChartSpec,
  ) {}
  setData(data: ChartData): void {
    this.data.push(data);
  }
  destroy(): void {
    this.destroyed = true;
  }
}

function page(load: (range: ChartRange) => Promise<Charts>) {
  const { doc } = appDocument();
  const el = chartsElements(doc);
  const made: FakeChart[] = [];
  let signedOut = 0;
  const p = new ChartsPage(el, {
    load,
    onSignedOut: () => signedOut++,
    storage: null,
    now: () => new Date(2026, 10, 3, 14, 3, 9),
    createChart: (container, spec) => {
      const c = new FakeChart(container, spec);
      made.push(c);
      return c;
    },
  });
  return { p, el, doc, made, signedOut: () => signedOut };
}

describe('Charts page', () => {
  it('has the stable ids and one button per range', () => {
    const { el } = page(async () => charts());
    assert.deepEqual(
      el.ranges.map((b) => b.dataset.range),
      CHART_RANGES,
    );
    assert.equal(el.queueDepth.id, 'chart-queue-depth');
    assert.equal(el.successRate.id, 'chart-success-rate');
    assert.equal(el.latency.id, 'chart-latency');
    assert.equal(el.refresh.value, '60', 'refreshed every 60 s by default');
  });

  it('loads 24 h first, with a loading indicator, and draws the three charts', async () => {
    const asked: ChartRange[] = [];
    let answer: (c: Charts) => void = () => undefined;
    const { p, el, made } = page((range) => {
      asked.push(range);
      return new Promise((resolve) => {
        answer = resolve;
      });
    });
    const shown = p.show();
    assert.deepEqual(asked, ['24h']);
    assert.equal(el.loading.hidden, false);
    assert.deepEqual(
      el.ranges.map((b) => b.getAttribute('aria-pressed')),
      ['false', 'false', 'true', 'false'],
    );
    answer(charts());
    await shown;
    p.hide();
    assert.equal(el.loading.hidden, true);
    assert.equal(el.warning.hidden, true);
    assert.equal(el.source.dataset.source, 'history');
    assert.match(el.source.textContent ?? '', /^Source: platform history · last 24 hours/);
    assert.equal(el.updated.textContent, 'updated 14:03:09');
    assert.deepEqual(
      made.map((c) => c.container.id),
      ['chart-queue-depth', 'chart-success-rate', 'chart-latency'],
    );
    assert.deepEqual(made[1]!.data[0]!.series[0]!.values, [null, 100, 75]);
    assert.equal(made[1]!.spec.yRange?.[1], 100, 'a share: 0 to 100 %');
  });

  it('switches range on a button, with new charts, and shows a stale answer’s warning', async () => {
    const asked: ChartRange[] = [];
    const { p, el, made } = page(async (range) => {
      asked.push(range);
      return range === '7d'
        ? charts({ range, source: 'prometheus', warning: 'Prometheus unreachable since 2026-11-03 09:00:00 UTC: showing data from 2026-11-03 08:59:00 UTC.' })
        : charts({ range });
    });
    await p.show();
    el.ranges[3]!.click();
    await settle();
    p.hide();
    assert.deepEqual(asked, ['24h', '7d']);
    assert.equal(p.currentRange(), '7d');
    assert.equal(el.ranges[3]!.getAttribute('aria-pressed'), 'true');
    assert.equal(el.warning.hidden, false);
    assert.equal(el.warning.textContent, 'Prometheus unreachable since 2026-11-03 09:00:00 UTC: showing data from 2026-11-03 08:59:00 UTC.');
    assert.equal(el.source.dataset.source, 'prometheus');
    assert.equal(made.length, 6, 'new charts for the new period');
    assert.deepEqual(
      made.slice(0, 3).map((c) => c.destroyed),
      [true, true, true],
    );
    // The same range again loads nothing.
    el.ranges[3]!.click();
    await settle();
    assert.deepEqual(asked, ['24h', '7d']);
  });

  it('keeps the last charts when a refresh fails, and signs out on 401', async () => {
    let fail: ApiError | null = null;
    const { p, el, made, signedOut } = page(async () => {
      if (fail) throw fail;
      return charts();
    });
    await p.show();
    p.hide();
    fail = new ApiError(503, 'unavailable', 'The charts cannot be read: the database does not answer in time.');
    await p.show();
    p.hide();
    assert.equal(el.error.hidden, false);
    assert.equal(el.error.textContent, 'Refresh failed: The charts cannot be read: the database does not answer in time.');
    assert.equal(el.loading.hidden, true);
    assert.equal(made.length, 3);
    assert.equal(made[0]!.data.length, 1, 'the last data stays');
    fail = new ApiError(401, 'unauthenticated', 'Sign in again.');
    await p.show();
    assert.equal(signedOut(), 1);
    p.clear();
    assert.equal(el.source.textContent, '');
    assert.deepEqual(
      made.map((c) => c.destroyed),
      [true, true, true],
    );
  });
});

describe('isolatedPoints', () => {
  it('finds the values a line cannot show: alone between gaps or edges', () => {
    assert.deepEqual(isolatedPoints([1, null, 2, 3, null, 4]), [0, 5]);
    assert.deepEqual(isolatedPoints([null, 5, null]), [1]);
    assert.deepEqual(isolatedPoints([1, 2, 3]), []);
    assert.deepEqual(isolatedPoints([null, undefined, null]), []);
    assert.deepEqual(isolatedPoints([]), []);
  });
});
