import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatCost, formatDuration, formatInput, formatRelativeTime, summarize } from '../src/format';

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
