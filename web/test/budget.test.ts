import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JSDOM } from 'jsdom';
import { accountEffect, BudgetIndicator, budgetPercent, budgetTone, budgetView } from '../src/budget';
import type { Budget } from '../src/protocol';

const budget = (more: Partial<Budget>): Budget => ({ month: '2026-11', spent_usd: 0, cap_usd: null, percent: null, ...more });

describe('budget figures', () => {
  it('reads spend against a cap', () => {
    assert.deepEqual(budgetView(budget({ spent_usd: 81, cap_usd: 100, percent: 81 })), {
      text: '$81.00 of $100 this month',
      tone: 'warn',
      title: '81% of your monthly budget used (2026-11)',
    });
    assert.equal(budgetView(budget({ spent_usd: 12.345, cap_usd: 12.5, percent: 98 })).text, '$12.35 of $12.50 this month');
  });

  it('reads spend alone without a cap', () => {
    assert.deepEqual(budgetView(budget({ spent_usd: 3.2 })), {
      text: '$3.20 this month',
      tone: 'ok',
      title: 'No monthly budget cap (2026-11)',
    });
  });

  it('warns from 80 % and errs from 100 %', () => {
    assert.equal(budgetTone(null), 'ok');
    assert.equal(budgetTone(0), 'ok');
    assert.equal(budgetTone(79), 'ok');
    assert.equal(budgetTone(80), 'warn');
    assert.equal(budgetTone(99), 'warn');
    assert.equal(budgetTone(100), 'error');
    assert.equal(budgetTone(140), 'error');
    assert.equal(budgetView(budget({ spent_usd: 100, cap_usd: 100, percent: 100 })).tone, 'error');
    assert.equal(budgetView(budget({ spent_usd: 10, cap_usd: 100, percent: 10 })).tone, 'ok');
  });

  it("prefers the server's percent and works it out when missing", () => {
    assert.equal(budgetPercent({ spent_usd: 81, cap_usd: 100, percent: 77 }), 77);
    assert.equal(budgetPercent({ spent_usd: 79.9, cap_usd: 100, percent: 79.9 }), 79);
    assert.equal(budgetPercent({ spent_usd: 79.99, cap_usd: 100, percent: null }), 79, 'rounded down: 79.99 % is not yet 80 %');
    assert.equal(budgetPercent({ spent_usd: 5, cap_usd: 0, percent: null }), 100, 'a zero cap allows nothing');
    assert.equal(budgetPercent({ spent_usd: 5, cap_usd: null, percent: 50 }), null, 'no cap, no percent');
  });
});

describe('accountEffect', () => {
  it('refreshes the budget after a turn and on budget frames, the role on permissions_changed', () => {
    assert.equal(accountEffect({ type: 'result', seq: 3, cost_usd: 0.1, total_cost_usd: 0.1, is_error: false }), 'budget');
    assert.equal(accountEffect({ type: 'notice', seq: 4, code: 'budget_warning', message: 'x' }), 'budget');
    assert.equal(accountEffect({ type: 'error', seq: 5, code: 'budget_exceeded', message: 'x' }), 'budget');
    assert.equal(accountEffect({ type: 'error', code: 'budget_exceeded', message: 'x' }), 'budget');
    assert.equal(accountEffect({ type: 'notice', seq: 6, code: 'permissions_changed', message: 'x' }), 'permissions');
    assert.equal(accountEffect({ type: 'notice', seq: 7, code: 'rate_limited', message: 'x' }), null);
    assert.equal(accountEffect({ type: 'error', seq: 8, code: 'model_stalled', message: 'x' }), null);
    assert.equal(accountEffect({ type: 'delta', seq: 9, text: 'x' }), null);
  });
});

describe('BudgetIndicator', () => {
  function setup(load: () => Promise<Budget>) {
    const doc = new JSDOM('<!doctype html><body><span id="budget"></span></body>').window.document;
    const el = doc.getElementById('budget') as unknown as HTMLElement;
    return { el, indicator: new BudgetIndicator(el, load) };
  }

  it('stays hidden until loaded, then shows text and tone', async () => {
    const { el, indicator } = setup(async () => budget({ spent_usd: 100, cap_usd: 100, percent: 100 }));
    assert.equal(el.hidden, true);
    await indicator.refresh();
    assert.equal(el.hidden, false);
    assert.equal(el.textContent, '$100.00 of $100 this month');
    assert.equal(el.dataset.tone, 'error');
    indicator.clear();
    assert.equal(el.hidden, true);
    assert.equal(el.dataset.tone, undefined);
  });

  it('keeps the last figure when a refresh fails, and folds refreshes asked for during a load', async () => {
    let calls = 0;
    let fail = false;
    const { el, indicator } = setup(async () => {
      calls++;
      if (fail) throw new Error('down');
      return budget({ spent_usd: calls, cap_usd: 100, percent: calls });
    });
    await indicator.refresh();
    assert.equal(el.textContent, '$1.00 of $100 this month');
    const first = indicator.refresh();
    const second = indicator.refresh();
    const third = indicator.refresh();
    await Promise.all([first, second, third]);
    assert.equal(calls, 3, 'three refreshes during one load make one more load, not three');
    assert.equal(el.textContent, '$3.00 of $100 this month');
    fail = true;
    await indicator.refresh();
    assert.equal(el.textContent, '$3.00 of $100 this month');
    assert.equal(el.hidden, false);
  });

  it('drops an answer that arrives after sign-out', async () => {
    let release: (b: Budget) => void = () => undefined;
    const { el, indicator } = setup(() => new Promise<Budget>((resolve) => (release = resolve)));
    const pending = indicator.refresh();
    indicator.clear();
    release(budget({ spent_usd: 5, cap_usd: 10, percent: 50 }));
    await pending;
    assert.equal(el.hidden, true);
    assert.equal(el.textContent, '');
  });
});
