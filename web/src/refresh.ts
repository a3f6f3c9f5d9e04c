// Auto-refresh of the operations pages (Dashboard, Workers, Charts): load now, then
// again every 10, 30 (the default; the Charts' is 60) or 60 seconds, or never ("off"), as the
// page's selector says; the choice is remembered per page in localStorage.
// A load starts only after the previous one ended, and never while the page
// is hidden. What the pages show of it: "updated hh:mm:ss" after a load that
// worked, and an error banner (the last data kept) after one that did not.

/** The intervals offered, in seconds; 0 is "off". */
export const REFRESH_CHOICES: readonly number[] = [10, 30, 60, 0];
export const DEFAULT_REFRESH = 30;

/** The interval remembered under `key`, or the page's default for anything else. */
export function readRefresh(storage: Pick<Storage, 'getItem'> | null, key: string, fallback = DEFAULT_REFRESH): number {
  let stored: string | null = null;
  try {
    stored = storage?.getItem(key) ?? null;
  } catch {
    // Storage refused (privacy settings): the default.
  }
  const seconds = stored === null ? Number.NaN : Number(stored);
  return REFRESH_CHOICES.includes(seconds) ? seconds : fallback;
}

export function saveRefresh(storage: Pick<Storage, 'setItem'> | null, key: string, seconds: number): void {
  try {
    storage?.setItem(key, String(seconds));
  } catch {
    // Not remembered; the choice still holds until the page is reloaded.
  }
}

function two(n: number): string {
  return String(n).padStart(2, '0');
}

/** "updated 14:03:09" in the reader's time zone, 24-hour. */
export function updatedText(at: Date): string {
  return `updated ${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}`;
}

/** The timers the refresher uses; tests pass their own. */
export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const WINDOW_TIMERS: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface RefreshOptions {
  select: HTMLSelectElement;
  /** Where the choice is remembered, e.g. `csp.refresh.dashboard`. */
  storageKey: string;
  storage: Storage | null;
  /** The interval until the reader picks one ([`DEFAULT_REFRESH`] unless said). */
  defaultSeconds?: number;
  /** One load; its own errors are its to show. */
  load(): Promise<void>;
  timers?: Timers;
}

/** Runs a page's loads on the interval its selector says, while started. */
export class Refresher {
  private readonly timers: Timers;
  private timer: unknown = null;
  private running = false;
  /** Bumped by start and stop, so a load that ends after them schedules nothing. */
  private generation = 0;

  constructor(private readonly opts: RefreshOptions) {
    this.timers = opts.timers ?? WINDOW_TIMERS;
    const doc = opts.select.ownerDocument;
    const options = REFRESH_CHOICES.map((seconds) => {
      const option = doc.createElement('option');
      option.value = String(seconds);
      option.textContent = seconds === 0 ? 'Off' : `${seconds} s`;
      return option;
    });
    opts.select.replaceChildren(...options);
    opts.select.value = String(readRefresh(opts.storage, opts.storageKey, this.fallback()));
    opts.select.addEventListener('change', () => {
      saveRefresh(opts.storage, opts.storageKey, this.seconds());
      if (this.running) this.schedule(this.generation);
    });
  }

  /** The interval chosen, in seconds (0: off). */
  seconds(): number {
    const n = Number(this.opts.select.value);
    return REFRESH_CHOICES.includes(n) ? n : this.fallback();
  }

  private fallback(): number {
    const wanted = this.opts.defaultSeconds;
    return wanted !== undefined && REFRESH_CHOICES.includes(wanted) ? wanted : DEFAULT_REFRESH;
  }

  /** Loads now, then on the interval until [`stop`]. */
  async start(): Promise<void> {
    this.stop();
    this.running = true;
    const generation = this.generation;
    await this.opts.load();
    if (generation === this.generation) this.schedule(generation);
  }

  stop(): void {
    this.running = false;
    this.generation++;
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
  }

  private schedule(generation: number): void {
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
    const seconds = this.seconds();
    if (!this.running || seconds === 0) return;
    this.timer = this.timers.set(() => {
      this.timer = null;
      void this.opts.load().then(() => {
        if (generation === this.generation) this.schedule(generation);
      });
    }, seconds * 1000);
  }
}
