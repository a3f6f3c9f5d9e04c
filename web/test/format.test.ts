import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatCost, formatDuration, formatInput, summarize } from '../src/format';

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
