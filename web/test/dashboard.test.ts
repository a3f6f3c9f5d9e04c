import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../src/api';
import {
  DashboardPage,
  dashboardElements,
  dependencyItem,
  errorSummary,
  failureItem,
  feedbackText,
  healthText,
  latencyText,
  percentText,
} from '../src/dashboard';
import type { Dashboard, Enhancement } from '../src/protocol';
import { appDocument, settle } from './page';

function failure(n: number, more: Partial<Enhancement> = {}): Enhancement {
  return {
    job_id: `job-${n}`,
    ticket_id: `${4000 + n}`,
    tenant_id: 'acme',
    status: 'failed',
    attempts: 3,
    context_gathered: null,
    llm_output: null,
    error_message: `ServiceDesk Plus answered 503\nafter 3 attempts (${n})`,
    processing_time_ms: 1200,
    cost_usd: 0,
    created_at: '2026-11-03T09:15:00Z',
    completed_at: '2026-11-03T09:16:00Z',
    correlation_id: `corr-${n}`,
    subject: 'VPN drops',
    description: 'd',
    priority: 'High',
    note_id: null,
    feedback: null,
    feedback_at: null,
    ...more,
  };
}

function dashboard(more: Partial<Dashboard> = {}): Dashboard {
  return {
    status: 'healthy',
    reason: null,
    paused: false,
    queue_depth: 3,
    completed_24h: 97,
    failed_24h: 3,
    success_rate_24h: 0.97,
    p95_latency_ms_24h: 14_250,
    active_workers: 2,
    recent_failures: [failure(1), failure(2)],
    dependencies: [
      { name: 'postgres', ok: true, detail: '2 ms' },
      { name: 'redis', ok: true, detail: '1 ms' },
      { name: 'nats', ok: true, detail: '1 ms' },
    ],
    feedback: [{ tenant_id: 'acme', helpful: 3, not_helpful: 1, helpful_rate: 0.75 }],
    ...more,
  };
}

describe('dashboard figures', () => {
  it('names the statuses', () => {
    assert.equal(healthText('healthy'), 'Healthy');
    assert.equal(healthText('degraded'), 'Degraded');
    assert.equal(healthText('down'), 'Down');
    assert.equal(healthText('odd'), 'odd');
  });

  it('formats the rate and the latency, with a dash when there is none', () => {
    assert.equal(percentText(0.97), '97.0 %');
    assert.equal(percentText(0.9268), '92.7 %');
    assert.equal(percentText(1), '100.0 %');
    assert.equal(percentText(null), '—');
    assert.equal(latencyText(null), '—');
    assert.equal(latencyText(850), '850 ms');
    assert.equal(latencyText(1234), '1.2 s');
    assert.equal(latencyText(14_250), '14 s');
    assert.equal(latencyText(125_000), '125 s');
  });

  it('summarises an error on its first line', () => {
    assert.equal(errorSummary('boom\nmore'), 'boom');
    assert.equal(errorSummary('\n  late line'), 'late line');
    assert.equal(errorSummary(null), 'No error recorded');
    assert.equal(errorSummary('x'.repeat(150), 100).length, 100);
  });

  it('renders a failure as text that opens on its whole error', () => {
    const { doc } = appDocument();
    const evil = '<img src=x onerror=alert(1)> tenant inactive\n<script>alert(2)</script>';
    const li = failureItem(doc, failure(7, { error_message: evil, ticket_id: '<b>42</b>' }));
    assert.equal(li.querySelector('img'), null);
    assert.equal(li.querySelector('script'), null);
    assert.equal(li.querySelector('b'), null);
    const details = li.querySelector('details');
    assert.ok(details, 'expandable');
    assert.equal(details.open, false, 'closed at first');
    assert.equal(li.querySelector('.failure-summary')?.textContent, '<img src=x onerror=alert(1)> tenant inactive');
    assert.equal(li.querySelector('.failure-error')?.textContent, evil);
    assert.equal(li.querySelector('.failure-ticket')?.textContent, 'acme · ticket <b>42</b>');
    assert.match(li.querySelector('.failure-meta')?.textContent ?? '', /job-7 · 3 attempts · correlation corr-7/);
  });

  it('says a tenant without a rate has no votes to rate', () => {
    assert.equal(
      feedbackText({ tenant_id: '<b>x</b>', helpful: 0, not_helpful: 0, helpful_rate: null }),
      '<b>x</b> — — helpful (0 👍 · 0 👎)',
    );
  });

  it('colours a backend by whether it answered', () => {
    const { doc } = appDocument();
    const up = dependencyItem(doc, { name: 'postgres', ok: true, detail: '3 ms' });
    assert.equal(up.dataset.ok, 'true');
    assert.equal(up.textContent, 'postgres3 ms');
    const down = dependencyItem(doc, { name: 'redis', ok: false, detail: 'unreachable' });
    assert.equal(down.dataset.ok, 'false');
    assert.equal(down.querySelector('.dependency-detail')?.textContent, 'down: unreachable');
  });
});

function page(answers: (Dashboard | Error)[]) {
  const { doc } = appDocument();
  const el = dashboardElements(doc);
  let signedOut = 0;
  let calls = 0;
  const p = new DashboardPage(el, {
    load: async () => {
      const next = answers[Math.min(calls, answers.length - 1)]!;
      calls++;
      if (next instanceof Error) throw next;
      return next;
    },
    onSignedOut: () => signedOut++,
    storage: null,
    now: () => new Date(2026, 10, 3, 14, 3, 9),
  });
  return { el, p, calls: () => calls, signedOut: () => signedOut };
}

describe('DashboardPage', () => {
  it('shows the status, the four figures, the backends and the failures', async () => {
    const { el, p } = page([dashboard()]);
    await p.show();
    p.hide();
    assert.equal(el.health.dataset.health, 'healthy');
    assert.equal(el.status.textContent, 'Healthy');
    assert.equal(el.reason.textContent, '');
    assert.equal(el.queue.textContent, '3');
    assert.equal(el.success.textContent, '97.0 %');
    assert.equal(el.successNote.textContent, '97 completed · 3 failed');
    assert.equal(el.latency.textContent, '14 s');
    assert.equal(el.workers.textContent, '2');
    assert.equal(el.dependencies.querySelectorAll('.dependency[data-ok="true"]').length, 3);
    assert.equal(el.failures.querySelectorAll('li.failure').length, 2);
    assert.equal(el.noFailures.hidden, true);
    assert.equal(el.feedback.textContent, 'acme — 75.0 % helpful (3 👍 · 1 👎)');
    assert.equal(el.noFeedback.hidden, true);
    assert.equal(el.updated.textContent, 'updated 14:03:09');
    assert.equal(el.error.hidden, true);
  });

  it('shows degraded and down with their reason, and no failures as such', async () => {
    for (const [status, word] of [
      ['degraded', 'Degraded'],
      ['down', 'Down'],
    ] as const) {
      const reason = 'No worker is alive and 4 jobs are waiting.';
      const { el, p } = page([dashboard({ status, reason, recent_failures: [], success_rate_24h: null, p95_latency_ms_24h: null, paused: true })]);
      await p.show();
      p.hide();
      assert.equal(el.health.dataset.health, status);
      assert.equal(el.status.textContent, word);
      assert.equal(el.reason.textContent, reason);
      assert.equal(el.success.textContent, '—');
      assert.equal(el.latency.textContent, '—');
      assert.equal(el.queueNote.textContent, 'Processing is paused');
      assert.equal(el.noFailures.hidden, false);
    }
  });

  it('keeps the last figures and shows a banner when a refresh fails', async () => {
    const { el, p } = page([dashboard(), new ApiError(503, 'unavailable', 'The service is temporarily unavailable. Please try again shortly.'), dashboard({ queue_depth: 9 })]);
    await p.show();
    p.hide();
    await p.show();
    p.hide();
    assert.equal(el.error.hidden, false);
    assert.equal(el.error.textContent, 'Refresh failed: The service is temporarily unavailable. Please try again shortly.');
    assert.equal(el.queue.textContent, '3', 'the last data stays');
    assert.equal(el.updated.textContent, 'updated 14:03:09', 'and the time it is from');
    await p.show();
    p.hide();
    assert.equal(el.error.hidden, true, 'the next refresh that works clears it');
    assert.equal(el.queue.textContent, '9');
  });

  it('signs out on 401 and stops refreshing', async () => {
    const { p, calls, signedOut } = page([new ApiError(401, 'unauthenticated', 'Please sign in.')]);
    await p.show();
    await settle();
    assert.equal(signedOut(), 1);
    assert.equal(calls(), 1);
  });

  it('forgets everything on clear', async () => {
    const { el, p } = page([dashboard()]);
    await p.show();
    p.clear();
    assert.equal(el.status.textContent, '');
    assert.equal(el.failures.children.length, 0);
    assert.equal(el.updated.textContent, '');
    assert.equal(el.health.hasAttribute('data-health'), false);
  });
});
