import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../src/api';
import type { WorkerSummary } from '../src/protocol';
import { loadText, loadTone, rateText, uptimeText, workerRow, WorkersPage, workersElements, workerStatusText } from '../src/workers';
import { appDocument } from './page';

const NOW = Date.parse('2026-11-03T12:00:00Z');

function worker(more: Partial<WorkerSummary> = {}): WorkerSummary {
  return {
    worker_id: 'w-1',
    hostname: 'worker-a',
    started_at: '2026-11-03T09:30:00Z',
    last_seen_at: '2026-11-03T11:59:58Z',
    status: 'active',
    active_jobs: 2,
    completed_jobs: 140,
    failed_jobs: 3,
    cpu_percent: 42.5,
    memory_percent: 12.25,
    jobs_per_minute: 2.5,
    ...more,
  };
}

describe('worker figures', () => {
  it('turn yellow above 80 % and red above 95 %', () => {
    assert.equal(loadTone(0), 'ok');
    assert.equal(loadTone(80), 'ok');
    assert.equal(loadTone(80.1), 'warn');
    assert.equal(loadTone(95), 'warn');
    assert.equal(loadTone(95.1), 'error');
    assert.equal(loadTone(100), 'error');
    assert.equal(loadTone(Number.NaN), 'ok');
    assert.equal(loadText(42.5), '42.5 %');
    assert.equal(loadText(Number.NaN), '—');
  });

  it('format the uptime from seconds to days', () => {
    assert.equal(uptimeText('2026-11-03T11:59:15Z', NOW), '45 s');
    assert.equal(uptimeText('2026-11-03T11:48:00Z', NOW), '12 min');
    assert.equal(uptimeText('2026-11-03T08:40:00Z', NOW), '3 h 20 min');
    assert.equal(uptimeText('2026-11-01T08:00:00Z', NOW), '2 d 4 h');
    assert.equal(uptimeText('2026-11-03T12:00:05Z', NOW), '0 s', 'a clock ahead is not negative');
    assert.equal(uptimeText('soon', NOW), '—');
  });

  it('name the statuses and the rate', () => {
    assert.equal(workerStatusText('active'), 'Active');
    assert.equal(workerStatusText('idle'), 'Idle');
    assert.equal(workerStatusText('unresponsive'), 'Unresponsive');
    assert.equal(rateText(3), '3');
    assert.equal(rateText(2.25), '2.3');
  });

  it('render a row as text with its status and tones', () => {
    const { doc } = appDocument();
    const row = workerRow(doc, worker({ hostname: '<img src=x onerror=alert(1)>', cpu_percent: 96.2, memory_percent: 81 }), NOW);
    assert.equal(row.querySelector('img'), null);
    assert.equal(row.querySelector('.worker-host')?.textContent, '<img src=x onerror=alert(1)>');
    assert.equal(row.dataset.status, 'active');
    assert.equal(row.querySelector('.worker-status')?.textContent, 'Active');
    assert.equal(row.querySelector('.worker-uptime')?.textContent, '2 h 30 min');
    assert.equal(row.querySelector('.worker-active')?.textContent, '2');
    assert.equal(row.querySelector('.worker-completed')?.textContent, '140');
    assert.equal(row.querySelector('.worker-failed')?.textContent, '3');
    assert.equal(row.querySelector('.worker-rate')?.textContent, '2.5');
    const cpu = row.querySelector<HTMLElement>('.worker-cpu')!;
    assert.equal(cpu.dataset.tone, 'error');
    assert.equal(cpu.textContent, '96.2 %');
    assert.equal(row.querySelector<HTMLElement>('.worker-memory')?.dataset.tone, 'warn');
    const calm = workerRow(doc, worker({ status: 'unresponsive' }), NOW);
    assert.equal(calm.querySelector<HTMLElement>('.worker-cpu')?.dataset.tone, 'ok');
    assert.equal(calm.querySelector('.worker-status')?.getAttribute('data-status'), 'unresponsive');
  });
});

describe('WorkersPage', () => {
  function workersPage(answers: ({ workers: WorkerSummary[] } | Error)[]) {
    const { doc } = appDocument();
    const el = workersElements(doc);
    let calls = 0;
    const p = new WorkersPage(el, {
      load: async () => {
        const next = answers[Math.min(calls, answers.length - 1)]!;
        calls++;
        if (next instanceof Error) throw next;
        return next;
      },
      onSignedOut: () => undefined,
      storage: null,
      now: () => new Date(NOW),
    });
    const rows = () => [...el.body.querySelectorAll<HTMLElement>('tr.worker-row')].map((r) => r.dataset.workerId);
    return { el, p, rows };
  }

  it('lists the workers, says when there is none, and keeps them when a refresh fails', async () => {
    const { el, p, rows } = workersPage([
      { workers: [worker(), worker({ worker_id: 'w-2', status: 'idle' })] },
      new ApiError(503, 'unavailable', 'The workers cannot be listed: the cache does not answer.'),
      { workers: [] },
    ]);
    await p.show();
    p.hide();
    assert.deepEqual(rows(), ['w-1', 'w-2']);
    assert.equal(el.empty.hidden, true);
    assert.match(el.updated.textContent ?? '', /^updated \d\d:\d\d:\d\d$/);
    await p.show();
    p.hide();
    assert.deepEqual(rows(), ['w-1', 'w-2'], 'the last list stays');
    assert.equal(el.error.textContent, 'Refresh failed: The workers cannot be listed: the cache does not answer.');
    await p.show();
    p.hide();
    assert.deepEqual(rows(), []);
    assert.equal(el.empty.hidden, false);
    assert.equal(el.error.hidden, true);
  });
});
