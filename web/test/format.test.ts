import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatCost, formatDuration, formatInput, formatLimit, formatMoney, formatRelativeTime, formatTimestamp, summarize } from '../src/format';

describe('formatCost', () => {
  it('shows cents for a cent or more', () => {
    assert.equal(formatCost(0.02), '$0.02');
    assert.equal(formatCost(0.01), '$0.01');
    assert.equal(formatCost(1.5), '$1.50');
    assert.equal(formatCost(12.345), '$12.35');
  });

  it('shows enough decimals below a cent', () => {
    assert.equal(formatCost(0.0011), '$0.0011');
    assert.equal(formatCost(0.001), '$0.001');
    assert.equal(formatCost(0.000123), '$0.00012');
    assert.equal(formatCost(0.0099), '$0.0099');
  });

  it('shows zero and nonsense as $0.00', () => {
    assert.equal(formatCost(0), '$0.00');
    assert.equal(formatCost(-1), '$0.00');
    assert.equal(formatCost(Number.NaN), '$0.00');
  });

  it('does not print exponents for tiny costs', () => {
    assert.equal(formatCost(1e-9), '<$0.000001');
  });
});

describe('formatDuration', () => {
  it('uses seconds with one decimal', () => {
    assert.equal(formatDuration(1234), '1.2s');
    assert.equal(formatDuration(0), '0.0s');
    assert.equal(formatDuration(50), '0.1s');
    assert.equal(formatDuration(61_000), '61.0s');
  });
});

describe('summarize', () => {
  it('takes the first non-empty line and shortens it', () => {
    assert.equal(summarize('\n  hello-from-browser \nmore'), 'hello-from-browser');
    assert.equal(summarize('x'.repeat(200), 10), `${'x'.repeat(9)}…`);
    assert.equal(summarize(''), '');
  });
});

describe('formatInput', () => {
  it('pretty-prints JSON', () => {
    assert.equal(formatInput({ command: 'ls' }), '{\n  "command": "ls"\n}');
    assert.equal(formatInput(null), '');
  });
});

describe('formatRelativeTime', () => {
  const now = Date.parse('2025-06-10T12:00:00Z');
  const ago = (ms: number) => formatRelativeTime(now - ms, now);
  const MIN = 60_000;
  it('reads as a recent time', () => {
    assert.equal(ago(10_000), 'just now');
    assert.equal(ago(-5 * MIN), 'just now', 'clock skew');
    assert.equal(ago(MIN), '1 min ago');
    assert.equal(ago(59 * MIN), '59 min ago');
    assert.equal(ago(60 * MIN), '1 h ago');
    assert.equal(ago(23 * 60 * MIN), '23 h ago');
    assert.equal(ago(30 * 60 * MIN), 'yesterday');
    assert.equal(ago(3 * 24 * 60 * MIN), '3 days ago');
  });
  it('falls back to the date after a week, and to nothing for garbage', () => {
    const old = ago(30 * 24 * 60 * MIN);
    assert.doesNotMatch(old, /ago|yesterday|just now/);
    assert.match(old, /2025/);
    assert.equal(formatRelativeTime(Number.NaN, now), '');
  });
});

describe('formatMoney', () => {
  it('always shows cents, with thousands separators', () => {
    assert.equal(formatMoney(81), '$81.00');
    assert.equal(formatMoney(3.2), '$3.20');
    assert.equal(formatMoney(0.004), '$0.00');
    assert.equal(formatMoney(0.005), '$0.01');
    assert.equal(formatMoney(1234.5), '$1,234.50');
  });

  it('shows nonsense and negatives as $0.00', () => {
    assert.equal(formatMoney(Number.NaN), '$0.00');
    assert.equal(formatMoney(-3), '$0.00');
    assert.equal(formatMoney(Number.POSITIVE_INFINITY), '$0.00');
  });
});

describe('formatLimit', () => {
  it('drops cents from whole dollars only', () => {
    assert.equal(formatLimit(100), '$100');
    assert.equal(formatLimit(2500), '$2,500');
    assert.equal(formatLimit(12.5), '$12.50');
    assert.equal(formatLimit(0), '$0');
    assert.equal(formatLimit(Number.NaN), '$0');
  });
});

describe('formatTimestamp', () => {
  it('shows a time in the reader locale, and nothing for none or garbage', () => {
    assert.match(formatTimestamp('2026-11-03T09:15:00Z'), /2026/);
    assert.equal(formatTimestamp(''), '');
    assert.equal(formatTimestamp(null), '');
    assert.equal(formatTimestamp('yesterday'), '');
  });
});
