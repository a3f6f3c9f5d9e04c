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
