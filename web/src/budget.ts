// The monthly budget indicator in the chat header: "$81.00 of $100 this
// month", amber from 80 % of the cap, red once it is used up. The server
// enforces the cap; this only lets users see it coming.

import { formatLimit, formatMoney } from './format';
import type { Budget, ServerFrame } from './protocol';

/** From this share of the cap the indicator warns (the server's `budget_warning` uses the same line). */
export const WARN_PERCENT = 80;

export type BudgetTone = 'ok' | 'warn' | 'error';

export interface BudgetView {
  text: string;
  tone: BudgetTone;
  /** The longer explanation, for the tooltip. */
  title: string;
}

/**
 * Whole percent of the cap spent: the server's figure when it sent one, else
 * worked out here; null without a cap. A cap of zero allows nothing, so it is used up.
 */
export function budgetPercent(budget: Pick<Budget, 'spent_usd' | 'cap_usd' | 'percent'>): number | null {
  const cap = budget.cap_usd;
  if (typeof cap !== 'number' || !Number.isFinite(cap)) return null;
  // Whole percent, rounded down, so 79.9 % does not read (or warn) as 80 %.
  if (typeof budget.percent === 'number' && Number.isFinite(budget.percent)) return Math.floor(budget.percent);
  if (cap <= 0) return 100;
  const spent = Number.isFinite(budget.spent_usd) ? budget.spent_usd : 0;
  return Math.floor((spent / cap) * 100);
}

export function budgetTone(percent: number | null): BudgetTone {
  if (percent === null) return 'ok';
  if (percent >= 100) return 'error';
  if (percent >= WARN_PERCENT) return 'warn';
  return 'ok';
}

export function budgetView(budget: Budget): BudgetView {
  const spent = formatMoney(budget.spent_usd);
  const percent = budgetPercent(budget);
  const month = typeof budget.month === 'string' && budget.month ? ` (${budget.month})` : '';
  if (budget.cap_usd === null || percent === null) {
    return { text: `${spent} this month`, tone: 'ok', title: `No monthly budget cap${month}` };
  }
  return {
    text: `${spent} of ${formatLimit(budget.cap_usd)} this month`,
    tone: budgetTone(percent),
    title: `${percent}% of your monthly budget used${month}`,
  };
}

/**
 * What a live frame changes outside the conversation: a finished turn or a
 * budget notice moves the spend; `permissions_changed` may change the role,
 * and with it the admin pages offered.
 */
export function accountEffect(frame: ServerFrame): 'budget' | 'permissions' | null {
  switch (frame.type) {
    case 'result':
      return 'budget';
    case 'notice':
      if (frame.code === 'budget_warning') return 'budget';
      if (frame.code === 'permissions_changed') return 'permissions';
      return null;
    case 'error':
      return frame.code === 'budget_exceeded' ? 'budget' : null;
    default:
      return null;
  }
}

/** The `#budget` element, loaded on demand. */
export class BudgetIndicator {
  private loading: Promise<void> | null = null;
  /** A refresh was asked for while one was in flight: fetch once more after it. */
  private stale = false;
  /** Bumped by `clear()` so a response for the previous user is dropped. */
  private generation = 0;

  constructor(
    private readonly el: HTMLElement,
    private readonly load: () => Promise<Budget>,
  ) {
    el.hidden = true;
  }

  /** Loads the budget again. Calls during a load fold into one more load after it. */
  refresh(): Promise<void> {
    if (this.loading) {
      this.stale = true;
      return this.loading;
    }
    this.loading = this.fetch().finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  /** Hides the indicator, e.g. on sign-out. */
  clear(): void {
    this.generation++;
    this.el.hidden = true;
    this.el.textContent = '';
    this.el.removeAttribute('title');
    delete this.el.dataset.tone;
  }

  private async fetch(): Promise<void> {
    do {
      this.stale = false;
      const generation = this.generation;
      let budget: Budget | null;
      try {
        budget = await this.load();
      } catch {
        // Keep the last figure: a stale indicator is more use than none, and chat works without it.
        budget = null;
      }
      if (generation !== this.generation || budget === null) continue;
      const view = budgetView(budget);
      this.el.textContent = view.text;
      this.el.title = view.title;
      this.el.dataset.tone = view.tone;
      this.el.hidden = false;
    } while (this.stale);
  }
}
