// A time-series chart for the operations pages, on uPlot (canvas, ~50 KB):
// a time axis, a legend that shows the hovered point's values, drag on the
// plot to zoom into a period, Shift + wheel (or the ◀ ▶ buttons) to pan it,
// double click (or "Reset zoom") to see everything again, and the width of
// its container, followed as it resizes. Gaps (null) break the line rather
// than draw a zero nobody measured.
//
// Its first draw is timed: `data-render-ms` on the container and a
// `console.debug` line, which the browser test reads (1,000 points must
// draw in well under 2 s).
//
// uPlot's stylesheet is bundled by main.ts with the app's own.

import uPlot from 'uplot';

/** One line: a value (or null: none) per timestamp. */
export interface ChartSeries {
  label: string;
  values: readonly (number | null)[];
  /** CSS colour of the line. */
  color: string;
}

export interface ChartData {
  /** Unix seconds, oldest first. */
  timestamps: readonly number[];
  series: readonly ChartSeries[];
}

export interface ChartSpec {
  /** Says what the chart is for screen readers and in the debug line. */
  title: string;
  /** A value as the legend and the y axis show it. */
  format(value: number): string;
  /** A fixed y range (a share: 0 to 100); otherwise from 0 to the data's top. */
  yRange?: readonly [number, number];
  /** Counts (jobs): the y axis ticks whole numbers only, never 0.5 of a job. */
  integer?: boolean;
  height?: number;
}

/**
 * The indices of the values with no value beside them (a null, or the edge,
 * on both sides): a line needs two points, so these would not show at all.
 */
export function isolatedPoints(values: readonly (number | null | undefined)[]): number[] {
  const present = (i: number) => i >= 0 && i < values.length && typeof values[i] === 'number';
  const out: number[] = [];
  for (let i = 0; i < values.length; i++) {
    if (present(i) && !present(i - 1) && !present(i + 1)) out.push(i);
  }
  return out;
}

/** The y steps of a count axis: 1, 2, 5, 10, 20, 50, … */
const INTEGER_INCRS = Array.from({ length: 10 }, (_, i) => [1, 2, 5].map((m) => m * 10 ** i)).flat();

/** What the page needs of a chart; tests give the page their own. */
export interface ChartView {
  setData(data: ChartData): void;
  destroy(): void;
}

/** The part of uPlot the chart drives, so tests can stand in for the canvas. */
export interface PlotLike {
  readonly scales: { [key: string]: { min?: number | null; max?: number | null } };
  readonly over: HTMLElement;
  setData(data: uPlot.AlignedData, resetScales?: boolean): void;
  setScale(key: string, limits: { min: number; max: number }): void;
  setSize(size: { width: number; height: number }): void;
  destroy(): void;
}

export type PlotFactory = (opts: uPlot.Options, data: uPlot.AlignedData, target: HTMLElement) => PlotLike;

const DEFAULT_HEIGHT = 220;
/** How much of the visible period one pan step moves. */
export const PAN_STEP = 0.25;

/** uPlot's columns: the timestamps, then one array per series. */
export function alignedData(data: ChartData): uPlot.AlignedData {
  const n = data.timestamps.length;
  const columns: (number | null)[][] = data.series.map((s) => {
    const values = s.values.slice(0, n).map((v) => (typeof v === 'number' && Number.isFinite(v) ? v : null));
    while (values.length < n) values.push(null);
    return values;
  });
  return [Array.from(data.timestamps), ...columns] as uPlot.AlignedData;
}

/**
 * The x range after panning `[min, max]` by `fraction` of its width
 * (negative: back in time), kept within `[first, last]` and as wide.
 */
export function panned(min: number, max: number, fraction: number, first: number, last: number): { min: number; max: number } {
  const width = max - min;
  if (!(width > 0) || last - first <= width) return { min: first, max: first + Math.max(width, last - first) };
  let from = min + width * fraction;
  from = Math.min(Math.max(from, first), last - width);
  return { min: from, max: from + width };
}

/** The y range: a fixed one, or from 0 to a little above the top (1 when all is 0 or empty). */
export function yRangeOf(fixed: readonly [number, number] | undefined, dataMax: number | null): [number, number] {
  if (fixed) return [fixed[0], fixed[1]];
  const top = typeof dataMax === 'number' && Number.isFinite(dataMax) && dataMax > 0 ? dataMax * 1.1 : 1;
  return [0, top];
}

function defaultFactory(opts: uPlot.Options, data: uPlot.AlignedData, target: HTMLElement): PlotLike {
  return new uPlot(opts, data, target);
}

export interface TimeChartOptions {
  /** The plot to build (uPlot; tests pass a stand-in). */
  factory?: PlotFactory;
  now?: () => number;
  debug?: (message: string) => void;
}

/** A chart in `container`: built on the first `setData`, updated after. */
export class TimeChart implements ChartView {
  private plot: PlotLike | null = null;
  private readonly plotArea: HTMLElement;
  private readonly factory: PlotFactory;
  private readonly now: () => number;
  private readonly debug: (message: string) => void;
  private labels = '';
  private resizeObserver: ResizeObserver | null = null;
  private readonly onWindowResize = () => this.fit();
  /** Whether the reader zoomed or panned; a refresh then keeps the period they look at. */
  private zoomed = false;
  private data: uPlot.AlignedData = [[]];

  constructor(
    private readonly container: HTMLElement,
    private readonly spec: ChartSpec,
    opts: TimeChartOptions = {},
  ) {
    this.factory = opts.factory ?? defaultFactory;
    this.now = opts.now ?? (() => performance.now());
    this.debug = opts.debug ?? ((message) => console.debug(message));
    const doc = container.ownerDocument;
    const tools = doc.createElement('div');
    tools.className = 'chart-tools';
    const button = (text: string, label: string, action: () => void): HTMLButtonElement => {
      const b = doc.createElement('button');
      b.type = 'button';
      b.className = 'secondary chart-tool';
      b.textContent = text;
      b.setAttribute('aria-label', `${label} (${spec.title})`);
      b.title = label;
      b.addEventListener('click', action);
      return b;
    };
    tools.append(
      button('◀', 'Pan back in time', () => this.pan(-PAN_STEP)),
      button('▶', 'Pan forward in time', () => this.pan(PAN_STEP)),
      button('Reset zoom', 'Show the whole period', () => this.resetZoom()),
    );
    this.plotArea = doc.createElement('div');
    this.plotArea.className = 'chart-plot';
    this.plotArea.setAttribute('role', 'img');
    this.plotArea.setAttribute('aria-label', spec.title);
    container.replaceChildren(tools, this.plotArea);
  }

  setData(data: ChartData): void {
    const aligned = alignedData(data);
    this.data = aligned;
    const labels = data.series.map((s) => s.label).join('\n');
    if (this.plot !== null && labels === this.labels) {
      // A refresh: keep the reader's zoom, if any (uPlot would reset it).
      const x = this.plot.scales.x;
      const keep = this.zoomed && typeof x?.min === 'number' && typeof x?.max === 'number' ? { min: x.min, max: x.max } : null;
      this.plot.setData(aligned, keep === null);
      if (keep !== null) this.plot.setScale('x', keep);
      return;
    }
    this.plot?.destroy();
    this.labels = labels;
    this.zoomed = false;
    this.build(data, aligned);
  }

  /** Moves the visible period by `fraction` of its width. */
  pan(fraction: number): void {
    const plot = this.plot;
    const x = plot?.scales.x;
    const times = this.data[0] as readonly number[];
    const first = times[0];
    const last = times[times.length - 1];
    if (!plot || typeof x?.min !== 'number' || typeof x?.max !== 'number' || first === undefined || last === undefined) return;
    plot.setScale('x', panned(x.min, x.max, fraction, first, last));
  }

  /** Shows the whole period again. */
  resetZoom(): void {
    const times = this.data[0] as readonly number[];
    const first = times[0];
    const last = times[times.length - 1];
    if (!this.plot || first === undefined || last === undefined) return;
    this.plot.setScale('x', { min: first, max: last });
    this.zoomed = false;
  }

  destroy(): void {
    this.resizeObserver?.disconnect();
    this.resizeObserver = null;
    this.container.ownerDocument.defaultView?.removeEventListener('resize', this.onWindowResize);
    this.plot?.destroy();
    this.plot = null;
    this.labels = '';
  }

  private size(): { width: number; height: number } {
    return { width: Math.max(this.plotArea.clientWidth || this.container.clientWidth || 600, 200), height: this.spec.height ?? DEFAULT_HEIGHT };
  }

  private fit(): void {
    this.plot?.setSize(this.size());
  }

  private build(data: ChartData, aligned: uPlot.AlignedData): void {
    const spec = this.spec;
    const format = (v: number | null | undefined) => (typeof v === 'number' && Number.isFinite(v) ? spec.format(v) : '—');
    const started = this.now();
    let drawn = false;
    const opts: uPlot.Options = {
      ...this.size(),
      scales: {
        x: { time: true },
        y: { range: (_u, _min, max) => yRangeOf(spec.yRange, max) },
      },
      axes: [{}, { values: (_u, splits) => splits.map((v) => format(v)), size: 70, ...(spec.integer ? { incrs: INTEGER_INCRS } : {}) }],
      series: [
        {},
        ...data.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 1.5,
          spanGaps: false,
          // A value between two gaps has no line to show it: draw it as a dot.
          points: { show: true, size: 5, filter: (u: uPlot, i: number) => isolatedPoints(u.data[i] as readonly (number | null | undefined)[]) },
          value: (_u: uPlot, v: number | null) => format(v),
        })),
      ],
      cursor: { drag: { x: true, y: false, setScale: true } },
      legend: { live: true },
      hooks: {
        draw: [
          () => {
            if (drawn) return;
            drawn = true;
            const ms = this.now() - started;
            const points = aligned.slice(1).reduce((sum, column) => sum + column.length, 0);
            this.container.dataset.renderMs = ms.toFixed(1);
            this.container.dataset.points = String(points);
            this.debug(`chart "${spec.title}": ${points} points drawn in ${ms.toFixed(1)} ms`);
          },
        ],
        setScale: [
          (u, key) => {
            if (key !== 'x') return;
            const times = this.data[0] as readonly number[];
            const x = u.scales.x;
            const first = times[0];
            const last = times[times.length - 1];
            this.zoomed =
              first !== undefined && last !== undefined && typeof x?.min === 'number' && typeof x?.max === 'number' && (x.min > first || x.max < last);
          },
        ],
      },
    };
    this.plot = this.factory(opts, aligned, this.plotArea);
    // Shift + wheel (or a sideways wheel) pans; a plain wheel still scrolls the page.
    this.plot.over.addEventListener(
      'wheel',
      (ev: WheelEvent) => {
        const sideways = Math.abs(ev.deltaX) > Math.abs(ev.deltaY);
        if (!ev.shiftKey && !sideways) return;
        ev.preventDefault();
        const delta = sideways ? ev.deltaX : ev.deltaY;
        this.pan(delta > 0 ? PAN_STEP / 2 : -PAN_STEP / 2);
      },
      { passive: false },
    );
    // Follows the container; where there is no ResizeObserver (jsdom), the window.
    const view = this.container.ownerDocument.defaultView;
    const Observer = (view as { ResizeObserver?: typeof ResizeObserver } | null)?.ResizeObserver;
    if (Observer) {
      this.resizeObserver = new Observer(() => this.fit());
      this.resizeObserver.observe(this.plotArea);
    } else {
      view?.addEventListener('resize', this.onWindowResize);
    }
  }
}
