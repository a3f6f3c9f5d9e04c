import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../src/api';
import { TypedConfirm } from '../src/confirm';
import {
  actionText,
  OPERATION_ACTIONS,
  operationDetails,
  OperationsPage,
  operationsElements,
  operationsUrl,
  resultText,
  SHOWN_OPERATIONS,
} from '../src/operations';
import type { AuditEntry, Processing } from '../src/protocol';
import { appDocument, settle } from './page';

function entry(seq: number, tool: string, input: unknown, more: Partial<AuditEntry> = {}): AuditEntry {
  return {
    audit_id: `a-${seq}`,
    seq,
    timestamp: '2026-11-03T09:15:00Z',
    user_id: 'u-1',
    username: 'alice',
    session_id: '',
    tool_name: tool,
    sanitized_input: typeof input === 'string' ? input : JSON.stringify(input),
    result_status: 'success',
    execution_duration_ms: null,
    cost_usd: null,
    ...more,
  };
}

describe('the operations list', () => {
  it('asks the audit log for the five operations', () => {
    assert.deepEqual(OPERATION_ACTIONS, ['tickets.pause', 'tickets.resume', 'tickets.clear_queue', 'tickets.reload_configs', 'tickets.retry', 'tickets.restart_worker']);
    assert.equal(
      operationsUrl(),
      '/api/v1/admin/audit-log?tool_name=tickets.pause%2Ctickets.resume%2Ctickets.clear_queue%2Ctickets.reload_configs%2Ctickets.retry%2Ctickets.restart_worker',
    );
  });

  it('says what each operation did', () => {
    assert.equal(actionText('tickets.clear_queue'), 'Cleared the queue');
    assert.equal(actionText('tickets.other'), 'tickets.other');
    assert.equal(operationDetails(entry(1, 'tickets.pause', { paused: true })), '');
    assert.equal(operationDetails(entry(1, 'tickets.clear_queue', { cleared: 12, error: 'cleared' })), "12 pending jobs failed as 'cleared'");
    assert.equal(operationDetails(entry(1, 'tickets.clear_queue', { cleared: 1 })), "1 pending job failed as 'cleared'");
    assert.equal(operationDetails(entry(1, 'tickets.reload_configs', { tenants: 3, not_announced: 0 })), '3 tenants');
    assert.equal(
      operationDetails(entry(1, 'tickets.reload_configs', { tenants: 3, not_announced: 2 }, { result_status: 'error' })),
      '3 tenants, 2 not announced to other replicas (error)',
    );
    assert.equal(
      operationDetails(entry(1, 'tickets.retry', { job_id: 'j-1', tenant_id: 'acme', ticket_id: '1234' })),
      'ticket 1234 of acme (job j-1)',
    );
    assert.equal(operationDetails(entry(1, 'tickets.retry', 'not json')), 'not json');
    assert.equal(
      operationDetails(entry(1, 'tickets.restart_worker', { worker_id: 'w-1', hostname: 'box-1', status: 'active' })),
      'box-1 (worker w-1), drained and started again',
    );
  });

  it('says what came of an operation', () => {
    assert.equal(resultText('clear', { cleared: 4 }), "Queue cleared: 4 pending jobs failed as 'cleared'.");
    assert.match(resultText('pause', { paused: true, queue_depth: 0, active_workers: 0 }), /paused/);
    assert.match(resultText('reload', { reloaded: true }), /every replica/);
  });
});

describe('operations page', () => {
  function page() {
    const { doc } = appDocument();
    const calls: string[] = [];
    let state: Processing = { paused: false, queue_depth: 5, active_workers: 1 };
    let fail: Error | null = null;
    let log: AuditEntry[] = [entry(2, 'tickets.pause', { paused: true }), entry(1, 'tickets.retry', { job_id: 'j', tenant_id: 'acme', ticket_id: '7' })];
    const elements = operationsElements(doc);
    const p = new OperationsPage(elements, {
      processing: async () => state,
      setProcessing: async (paused) => {
        calls.push(paused ? 'pause' : 'resume');
        if (fail) throw fail;
        state = { ...state, paused };
        return state;
      },
      clearQueue: async () => {
        calls.push('clear');
        if (fail) throw fail;
        return { cleared: 5 };
      },
      reloadConfigs: async () => {
        calls.push('reload');
        if (fail) throw fail;
        return { reloaded: true };
      },
      loadOperations: async () => ({ entries: log, next_before: null }),
      confirm: new TypedConfirm(elements.dialog),
      onSignedOut: () => undefined,
    });
    const el = (id: string) => doc.getElementById(id) as HTMLElement;
    const type = (text: string) => {
      const input = el('operations-dialog-input') as HTMLInputElement;
      input.value = text;
      input.dispatchEvent(new doc.defaultView!.Event('input'));
    };
    return {
      doc,
      p,
      calls,
      el,
      type,
      setFail: (e: Error | null) => (fail = e),
      setLog: (l: AuditEntry[]) => (log = l),
      confirm: el('operations-dialog-confirm') as HTMLButtonElement,
    };
  }

  it('has its caution banner', () => {
    const { doc } = appDocument();
    assert.match(doc.querySelector('[data-testid="operations-caution"]')?.textContent ?? '', /Caution/);
  });

  it('shows the state, one of pause and resume, and the last operations', async () => {
    const t = page();
    await t.p.show();
    assert.match(t.el('operations-state').textContent ?? '', /Running\. Queue depth 5, 1 job in progress\./);
    assert.equal(t.el('operations-pause').hidden, false);
    assert.equal(t.el('operations-resume').hidden, true);
    const rows = [...t.doc.querySelectorAll('#operations-table tbody tr')];
    assert.deepEqual(
      rows.map((r) => [...(r as HTMLTableRowElement).cells].slice(1).map((c) => c.textContent)),
      [
        ['alice', 'Paused processing', ''],
        ['alice', 'Retried a job', 'ticket 7 of acme (job j)'],
      ],
    );
  });

  it('lists 20 operations at most, and says when there is none', async () => {
    const t = page();
    t.setLog(Array.from({ length: 30 }, (_, i) => entry(30 - i, 'tickets.resume', { paused: false })));
    await t.p.show();
    assert.equal(t.doc.querySelectorAll('#operations-table tbody tr.operation-row').length, SHOWN_OPERATIONS);
    t.setLog([]);
    await t.p.show();
    assert.equal(t.doc.querySelector('#operations-table tbody')?.textContent, 'No operation yet.');
  });

  // The dialog's own behaviour (the exact YES, Enter, Escape, Cancel) is confirm.test.ts's.
  it('asks in the dialog, named by its data-operation, and acts after YES', async () => {
    const t = page();
    await t.p.show();
    t.el('operations-clear').click();
    assert.equal(t.el('operations-dialog').hidden, false);
    assert.equal(t.el('operations-dialog').dataset.operation, 'clear');
    assert.equal(t.p.asking, 'clear');
    assert.equal(t.el('operations-dialog-title').textContent, 'Clear the queue');
    assert.match(t.el('operations-dialog-body').textContent ?? '', /cleared/);
    assert.equal(t.confirm.textContent, 'Clear queue');
    assert.equal(t.confirm.disabled, true);
    assert.deepEqual(t.calls, [], 'nothing was done');
    t.type('YES');
    t.confirm.click();
    await settle();
    await settle();
    assert.deepEqual(t.calls, ['clear']);
    assert.equal(t.el('operations-dialog').hidden, true);
    assert.equal(t.el('operations-dialog').dataset.operation, undefined);
    assert.equal(t.p.asking, null);
    assert.equal(t.el('operations-notice').textContent, "Queue cleared: 5 pending jobs failed as 'cleared'.");
  });

  it('closes the dialog when it forgets everything (sign-out)', async () => {
    const t = page();
    await t.p.show();
    t.el('operations-reload').click();
    assert.equal(t.p.asking, 'reload');
    t.p.clear();
    assert.equal(t.el('operations-dialog').hidden, true);
    assert.equal(t.el('operations-dialog').dataset.operation, undefined);
    assert.equal(t.p.asking, null);
  });

  it('pauses, then offers resume, and shows a refusal', async () => {
    const t = page();
    await t.p.show();
    t.el('operations-pause').click();
    t.type('YES');
    t.confirm.click();
    await settle();
    assert.deepEqual(t.calls, ['pause']);
    assert.equal(t.el('operations-pause').hidden, true);
    assert.equal(t.el('operations-resume').hidden, false);
    assert.match(t.el('operations-state').textContent ?? '', /^Paused/);
    t.setFail(new ApiError(403, 'forbidden', 'This needs the admin role.'));
    t.el('operations-resume').click();
    t.type('YES');
    t.confirm.click();
    await settle();
    assert.deepEqual(t.calls, ['pause', 'resume']);
    assert.equal(t.el('operations-error').textContent, 'This needs the admin role.');
    assert.equal(t.el('operations-error').hidden, false);
  });
});
