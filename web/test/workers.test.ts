import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../src/api';
import type { ChartData } from '../src/chart';
import { TypedConfirm } from '../src/confirm';
import type { LogLevel, ThroughputHour, WorkerLogs, WorkerSummary } from '../src/protocol';
import {
  dailyTotals,
  loadText,
  loadTone,
  rateText,
  throughputChartData,
  uptimeText,
  workerRow,
  WorkersPage,
  workersElements,
  workerStatusText,
} from '../src/workers';
import { appDocument, settle } from './page';

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
  const LINES: WorkerLogs['lines'] = [
    { level: 'info', text: 'INFO job started' },
    { level: 'warn', text: 'WARN <img src=x onerror=alert(1)> slow' },
    { level: 'error', text: 'ERROR note failed' },
  ];
  const SEVERITY: Record<LogLevel, number> = { error: 3, warn: 2, info: 1, debug: 0 };
  const HOURS: ThroughputHour[] = [
    { start: '2026-11-02T23:00:00Z', completed: 2, failed: 1 },
    { start: '2026-11-03T00:00:00Z', completed: 3, failed: 0 },
    { start: '2026-11-03T11:00:00Z', completed: 4, failed: 2 },
  ];

  function workersPage(answers: ({ workers: WorkerSummary[] } | Error)[], opts: { admin?: boolean; restartFails?: Error } = {}) {
    const { doc } = appDocument();
    const el = workersElements(doc);
    let calls = 0;
    const asked: string[] = [];
    const charts: ChartData[] = [];
    const p = new WorkersPage(el, {
      load: async () => {
        const next = answers[Math.min(calls, answers.length - 1)]!;
        calls++;
        if (next instanceof Error) throw next;
        return next;
      },
      logs: async (id, level) => {
        asked.push(`logs:${id}:${level}`);
        return { worker_id: id, level, lines: LINES.filter((l) => SEVERITY[l.level] >= SEVERITY[level]) };
      },
      throughput: async (id) => {
        asked.push(`throughput:${id}`);
        return { worker_id: id, hours: HOURS };
      },
      restart: async (id) => {
        asked.push(`restart:${id}`);
        if (opts.restartFails) throw opts.restartFails;
        return { worker_id: id, status: 'active' };
      },
      canRestart: () => opts.admin ?? false,
      confirm: new TypedConfirm(el.dialog),
      createChart: () => ({ setData: (d) => charts.push(d), destroy: () => undefined }),
      onSignedOut: () => undefined,
      storage: null,
      now: () => new Date(NOW),
    });
    const rows = () => [...el.body.querySelectorAll<HTMLElement>('tr.worker-row')].map((r) => r.dataset.workerId);
    const type = (text: string) => {
      el.dialog.input.value = text;
      el.dialog.input.dispatchEvent(new doc.defaultView!.Event('input'));
    };
    return { doc, el, p, rows, asked, charts, type };
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

  it('opens a worker\'s log lines at a level and its throughput, and keeps them open across refreshes', async () => {
    const { el, p, asked, charts } = workersPage([{ workers: [worker()] }]);
    await p.show();
    p.hide();
    assert.equal(el.body.querySelector('.worker-restart'), null, 'an operator has no Restart');
    const toggle = el.body.querySelector<HTMLButtonElement>('.worker-details-toggle')!;
    assert.equal(toggle.getAttribute('aria-expanded'), 'false');
    assert.equal(toggle.dataset.action, 'logs');
    toggle.click();
    await settle();
    assert.equal(toggle.getAttribute('aria-expanded'), 'true');
    const logs = el.body.querySelector<HTMLElement>('#worker-logs-w-1')!;
    assert.equal(logs.dataset.workerLogs, 'w-1');
    const lines = () => [...logs.querySelectorAll<HTMLElement>('li.worker-log-line')].map((l) => [l.dataset.level, l.textContent]);
    assert.deepEqual(lines(), [
      ['info', 'INFO job started'],
      ['warn', 'WARN <img src=x onerror=alert(1)> slow'],
      ['error', 'ERROR note failed'],
    ]);
    assert.equal(logs.querySelector('img'), null, 'lines are text');
    const select = el.body.querySelector<HTMLSelectElement>('select[data-log-level]')!;
    select.value = 'error';
    select.dispatchEvent(new select.ownerDocument.defaultView!.Event('change'));
    await settle();
    assert.equal(select.dataset.logLevel, 'error');
    assert.deepEqual(lines(), [['error', 'ERROR note failed']]);
    // The throughput: a chart, the daily totals, the hours for scripts.
    const section = el.body.querySelector<HTMLElement>('[data-worker-throughput="w-1"]')!;
    const totals = [...section.querySelector('table')!.tBodies[0]!.rows].map((r) => [...r.cells].map((c) => c.textContent));
    assert.deepEqual(totals, [
      ['2026-11-02', '2', '1'],
      ['2026-11-03', '7', '2'],
    ]);
    assert.deepEqual(JSON.parse(section.dataset.hours!)[0], ['2026-11-02T23:00:00Z', 2, 1]);
    assert.equal(charts.length, 1);
    assert.deepEqual(charts[0]!.series[0]!.values, [2, 3, 4]);
    // A refresh keeps them open and reads the lines again at the chosen level.
    await p.show();
    p.hide();
    await settle();
    assert.ok(el.body.querySelector('#worker-logs-w-1'), 'still open');
    assert.deepEqual(asked, ['logs:w-1:info', 'throughput:w-1', 'logs:w-1:error', 'logs:w-1:error']);
    el.body.querySelector<HTMLButtonElement>('.worker-details-toggle')!.click();
    assert.equal(el.body.querySelector('#worker-logs-w-1'), null, 'closed');
  });

  it('restarts a worker for an admin only after YES, and says so', async () => {
    const { el, p, asked, type } = workersPage(
      [{ workers: [worker(), worker({ worker_id: 'w-2', hostname: 'worker-b', status: 'unresponsive' }), worker({ worker_id: 'w-3', status: 'draining' })] }],
      { admin: true },
    );
    await p.show();
    p.hide();
    const buttons = [...el.body.querySelectorAll<HTMLButtonElement>('button[data-action="restart"]')];
    assert.deepEqual(
      buttons.map((b) => b.disabled),
      [false, true, true],
      'an unresponsive or draining worker cannot be restarted',
    );
    assert.equal(el.body.querySelector('tr[data-worker-id="w-3"] .worker-status')?.textContent, 'Draining');
    // The dialog's own behaviour (the exact YES, Enter, Escape, Cancel) is confirm.test.ts's.
    buttons[0]!.click();
    assert.equal(el.dialog.dialog.hidden, false);
    assert.equal(el.dialog.title.textContent, 'Restart worker worker-a');
    assert.equal(el.dialog.dialog.dataset.operation, 'restart');
    assert.equal(el.dialog.dialog.dataset.workerId, 'w-1');
    assert.equal(el.dialog.confirm.disabled, true);
    assert.deepEqual(asked, [], 'nothing was done');
    type('YES');
    el.dialog.confirm.click();
    await settle();
    await settle();
    assert.deepEqual(asked, ['restart:w-1']);
    assert.equal(el.dialog.dialog.hidden, true);
    assert.equal(el.dialog.dialog.dataset.operation, undefined);
    assert.match(el.notice.textContent ?? '', /^Restart requested for worker-a .*started again with a new id\.$/);
    assert.equal(el.error.hidden, true);
  });

  it('says why a restart was refused', async () => {
    const refused = new ApiError(404, 'worker_not_found', 'That worker is not running: it has sent no heartbeat in the last hour.');
    const { el, p, type } = workersPage([{ workers: [worker()] }], { admin: true, restartFails: refused });
    await p.show();
    p.hide();
    el.body.querySelector<HTMLButtonElement>('.worker-restart')!.click();
    type('YES');
    el.dialog.confirm.click();
    await settle();
    await settle();
    assert.equal(el.error.hidden, false);
    assert.equal(el.error.textContent, refused.message);
    assert.equal(el.notice.textContent, '');
    assert.equal(el.dialog.dialog.hidden, true);
  });
});

describe('a worker\'s details', () => {
  it('sum the hours per UTC day and chart completed and failed', () => {
    const hours: ThroughputHour[] = [
      { start: '2026-11-03T00:00:00Z', completed: 3, failed: 0 },
      { start: '2026-11-02T23:00:00Z', completed: 2, failed: 1 },
      { start: 'not a time', completed: 9, failed: 9 },
      { start: '2026-11-03T11:00:00Z', completed: 4, failed: 2 },
    ];
    assert.deepEqual(dailyTotals(hours.filter((h) => h.start !== 'not a time')), [
      { day: '2026-11-02', completed: 2, failed: 1 },
      { day: '2026-11-03', completed: 7, failed: 2 },
    ]);
    const data = throughputChartData(hours);
    assert.equal(data.timestamps.length, 3, 'an hour without a time is left out');
    assert.equal(data.timestamps[1], Date.parse('2026-11-02T23:00:00Z') / 1000);
    assert.deepEqual(
      data.series.map((s) => [s.label, s.values]),
      [
        ['Completed', [3, 2, 4]],
        ['Failed', [0, 1, 2]],
      ],
    );
  });
});
