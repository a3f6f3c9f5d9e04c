// Numbers as the chat shows them.

/**
 * A turn's cost in dollars: cents for a cent or more ("$0.02"), two
 * significant digits below that so small turns do not read as free
 * ("$0.0011").
 */
export function formatCost(usd: number): string {
  if (!Number.isFinite(usd) || usd <= 0) return '$0.00';
  if (usd >= 0.01) return `$${usd.toFixed(2)}`;
  const digits = usd.toPrecision(2);
  // toPrecision switches to exponent form below 1e-6; such costs round to nothing useful.
  if (digits.includes('e')) return '<$0.000001';
  return `$${trimZeros(digits)}`;
}

/** A tool's run time, e.g. "1.2s". */
export function formatDuration(ms: number): string {
  const safe = Number.isFinite(ms) && ms > 0 ? ms : 0;
  return `${(safe / 1000).toFixed(1)}s`;
}

/** The first line of a tool result, shortened, for the card's summary. */
export function summarize(text: string, max = 120): string {
  const line = text.split('\n').find((l) => l.trim().length > 0)?.trim() ?? '';
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/**
 * The note csp ends a cut tool output with, e.g. "output truncated: 4.8 MiB
 * (5000000 bytes), showing the first 256 KiB"; null for a whole output.
 */
export function truncationNote(text: string): string | null {
  const m = /\n… \[(output truncated: [^\]\n]*)\]$/.exec(text);
  return m?.[1] ?? null;
}

/** A tool's JSON input, readable. */
export function formatInput(input: unknown): string {
  if (input === undefined || input === null) return '';
  try {
    return JSON.stringify(input, null, 2);
  } catch {
    return String(input);
  }
}

function trimZeros(fixed: string): string {
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
}

/**
 * How long ago `then` was, for the session list: "just now", "5 min ago",
 * "3 h ago", "yesterday", "4 days ago", then the date. A time in the future
 * (clock skew between browser and server) reads as "just now".
 */
export function formatRelativeTime(then: number, now: number): string {
  if (!Number.isFinite(then)) return '';
  const minutes = Math.floor((now - then) / 60_000);
  if (minutes < 1) return 'just now';
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.floor(hours / 24);
  if (days < 2) return 'yesterday';
  if (days < 7) return `${days} days ago`;
  return new Date(then).toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}

const DOLLARS = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
const WHOLE_DOLLARS = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 0, maximumFractionDigits: 0 });

/** Money spent, always in cents: "$81.00", "$1,234.50". Nonsense reads as "$0.00". */
export function formatMoney(usd: number): string {
  return DOLLARS.format(Number.isFinite(usd) && usd > 0 ? usd : 0);
}

/** A limit as an admin set it: "$100" for whole dollars, "$12.50" otherwise. */
export function formatLimit(usd: number): string {
  const safe = Number.isFinite(usd) && usd > 0 ? usd : 0;
  return Number.isInteger(safe) ? WHOLE_DOLLARS.format(safe) : DOLLARS.format(safe);
}

/** An RFC 3339 time in the reader's locale, or "" when there is none (e.g. never logged in). */
export function formatTimestamp(iso: string | null | undefined): string {
  if (typeof iso !== 'string' || !iso) return '';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '';
  return new Date(t).toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}
