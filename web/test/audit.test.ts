import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError, type AuditFilters, auditLogUrl } from '../src/api';
import {
  AuditLogPage,
  auditElements,
  auditRow,
  durationText,
  filterError,
  FIRST_PAGE,
  inputPreview,
  newerPage,
  olderPage,
  withNext,
} from '../src/audit';
import type { AuditEntry, AuditPage, UserList } from '../src/protocol';
import { appDocument, settle } from './page';

function entry(seq: number, more: Partial<AuditEntry> = {}): AuditEntry {
  return {
    audit_id: `a-${seq}`,
    seq,
    timestamp: '2026-11-03T09:15:00Z',
    user_id: 'u-1',
    username: 'alice',
    session_id: '6f1c2d4e-0000-4000-8000-000000000001',
    tool_name: 'Bash',
    sanitized_input: '{"command":"ls"}',
    result_status: 'success',
    execution_duration_ms: 120,
    cost_usd: 0.0021,
    ...more,
  };
}

describe('audit paging cursors', () => {
  it('walks older and back newer through the stack of cursors', () => {
    let s = withNext(FIRST_PAGE, 201);
    assert.equal(newerPage(s), null, 'the newest page has nothing newer');
    s = withNext(olderPage(s)!, 101);
    assert.deepEqual(s, { before: 201, newer: [null], next: 101 });
    s = withNext(olderPage(s)!, null);
    assert.deepEqual(s, { before: 101, newer: [null, 201], next: null });
    assert.equal(olderPage(s), null, 'the oldest page has nothing older');
    s = withNext(newerPage(s)!, 101);
    assert.deepEqual(s, { before: 201, newer: [null], next: 101 });
    s = withNext(newerPage(s)!, 201);
    assert.deepEqual(s, { before: null, newer: [], next: 201 });
  });

  it('does not change the state it was given', () => {
    const s = withNext(FIRST_PAGE, 201);
    olderPage(s);
    assert.deepEqual(s, { before: null, newer: [], next: 201 });
    assert.deepEqual(FIRST_PAGE, { before: null, newer: [], next: null });
  });

  it('treats a missing or odd next_before as the last page', () => {
    assert.equal(withNext(FIRST_PAGE, undefined).next, null);
    assert.equal(withNext(FIRST_PAGE, Number.NaN).next, null);
  });
});

describe('audit helpers', () => {
  it('builds the log and export URLs, leaving out empty filters', () => {
    const none: AuditFilters = { userId: '', start: '', end: '' };
    assert.equal(auditLogUrl(none), '/api/v1/admin/audit-log');
    assert.equal(auditLogUrl(none, { before: null }), '/api/v1/admin/audit-log');
    assert.equal(auditLogUrl(none, { before: 0 }), '/api/v1/admin/audit-log?before=0');
    assert.equal(
      auditLogUrl({ userId: 'u 1&x', start: '2026-11-01', end: '2026-11-30' }, { before: 4512 }),
      '/api/v1/admin/audit-log?user_id=u+1%26x&start=2026-11-01&end=2026-11-30&before=4512',
    );
    assert.equal(auditLogUrl({ userId: '', start: '2026-11-01', end: '' }, { format: 'csv' }), '/api/v1/admin/audit-log?start=2026-11-01&format=csv');
  });

  it('refuses a start after the end', () => {
    assert.equal(filterError({ userId: '', start: '2026-11-02', end: '2026-11-01' }), 'The start date is after the end date.');
    assert.equal(filterError({ userId: '', start: '2026-11-01', end: '2026-11-01' }), null, 'one day: the end is inclusive');
    assert.equal(filterError({ userId: '', start: '2026-11-02', end: '' }), null);
  });

  it('previews inputs on one line and says when the preview is partial', () => {
    assert.deepEqual(inputPreview('{"command":"ls"}'), { text: '{"command":"ls"}', partial: false });
    assert.deepEqual(inputPreview('{\n  "command": "ls"\n}'), { text: '{ "command": "ls" }', partial: true });
    const long = inputPreview('x'.repeat(200), 80);
    assert.equal(long.text.length, 80);
    assert.ok(long.text.endsWith('…'));
    assert.equal(long.partial, true);
  });

  it('formats durations, with a dash when the tool never ran', () => {
    assert.equal(durationText(null), '—');
    assert.equal(durationText(7), '7 ms');
    assert.equal(durationText(999), '999 ms');
    assert.equal(durationText(1234), '1.2 s');
  });

  it('renders a row as text, with its status and the full input on demand', () => {
    const { doc } = appDocument();
    const input = `{"command":"echo <img src=x onerror=alert(1)> ${'y'.repeat(100)}"}`;
    const row = auditRow(doc, entry(7, { result_status: 'denied', sanitized_input: input, cost_usd: null, execution_duration_ms: null }));
    assert.equal(row.className, 'audit-row');
    assert.equal(row.dataset.status, 'denied');
    assert.equal(row.querySelector('img'), null);
    assert.equal(row.querySelector('.audit-status')?.textContent, 'Denied');
    assert.equal(row.querySelector('.audit-input')?.getAttribute('title'), input);
    assert.equal(row.querySelector('.audit-input-full')?.textContent, input);
    assert.equal(row.querySelector('.audit-duration')?.textContent, '—');
    assert.equal(row.querySelector('.audit-cost')?.textContent, '—');
    assert.equal(row.querySelector('.audit-session code')?.textContent, '6f1c2d4e');

    const short = auditRow(doc, entry(8));
    assert.equal(short.querySelector('details'), null, 'a short input needs no expander');
    assert.equal(short.querySelector('.audit-input')?.textContent, '{"command":"ls"}');
    assert.equal(short.querySelector('.audit-cost')?.textContent, '$0.0021');
    assert.equal(short.querySelector('.audit-duration')?.textContent, '120 ms');
    assert.equal(short.querySelector('.audit-user')?.textContent, 'alice');

    const gone = auditRow(doc, entry(9, { username: null, user_id: 'u-deleted' }));
    assert.equal(gone.querySelector('.audit-user')?.textContent, 'u-deleted', 'a deleted user shows by id');
  });
});

/** Three pages of the log: 300..201, 200..101, 100..1. */
function fakeLog() {
  const calls: { filters: AuditFilters; before: number | null }[] = [];
  let failNext: Error | null = null;
  const loadPage = async (filters: AuditFilters, before: number | null): Promise<AuditPage> => {
    calls.push({ filters, before });
    if (failNext) {
      const err = failNext;
      failNext = null;
      throw err;
    }
    const top = before ?? 301;
    const entries: AuditEntry[] = [];
    for (let seq = top - 1; seq >= Math.max(1, top - 100); seq--) entries.push(entry(seq));
    const oldest = entries.at(-1)?.seq ?? 1;
    return { entries, next_before: oldest > 1 ? oldest : null };
  };
  const loadUsers = async (): Promise<UserList> => ({
    users: [
      { user_id: 'u-2', username: 'bob', role: 'user', created_at: '', last_login_at: '', is_active: true, monthly_cost_cap_usd: null, current_month_spend_usd: 0 },
      { user_id: 'u-1', username: 'alice', role: 'admin', created_at: '', last_login_at: '', is_active: true, monthly_cost_cap_usd: null, current_month_spend_usd: 0 },
    ],
  });
  return { calls, loadPage, loadUsers, fail: (err: Error) => (failNext = err) };
}

function auditPage() {
  const { doc } = appDocument();
  const el = auditElements(doc);
  const log = fakeLog();
  let signedOut = 0;
  const page = new AuditLogPage(el, { loadPage: log.loadPage, loadUsers: log.loadUsers, onSignedOut: () => signedOut++ });
  // Row ids are `a-<seq>`: the seq says which page is shown.
  const rows = () => [...el.body.querySelectorAll<HTMLElement>('tr.audit-row')].map((r) => Number(r.dataset.auditId?.slice(2)));
  return { doc, el, log, page, rows, signedOut: () => signedOut };
}

describe('AuditLogPage', () => {
  it('pages older and newer with the cursor, enabling only what exists', async () => {
    const { el, log, page, rows } = auditPage();
    await page.show();
    assert.equal(rows().length, 100);
    assert.equal(rows()[0], 300);
    assert.equal(el.newer.disabled, true);
    assert.equal(el.older.disabled, false);
    assert.equal(el.pageInfo.textContent, 'Page 1');

    el.older.click();
    await settle();
    assert.equal(log.calls.at(-1)?.before, 201);
    assert.equal(rows()[0], 200);
    assert.equal(el.newer.disabled, false);
    assert.equal(el.pageInfo.textContent, 'Page 2');

    el.older.click();
    await settle();
    assert.equal(log.calls.at(-1)?.before, 101);
    assert.deepEqual([rows()[0], rows().at(-1)], [100, 1]);
    assert.equal(el.older.disabled, true, 'the oldest page');

    el.newer.click();
    await settle();
    assert.equal(log.calls.at(-1)?.before, 201);
    el.newer.click();
    await settle();
    assert.equal(log.calls.at(-1)?.before, null);
    assert.equal(rows()[0], 300);
    assert.equal(el.newer.disabled, true);
    assert.equal(log.calls.length, 5);
  });

  it('applies filters from the first page and exports what the form holds', async () => {
    const { el, log, page } = auditPage();
    await page.show();
    await settle();
    assert.deepEqual(
      [...el.user.options].map((o) => [o.value, o.textContent]),
      [
        ['', 'All users'],
        ['u-1', 'alice'],
        ['u-2', 'bob'],
      ],
    );
    el.older.click();
    await settle();

    el.user.value = 'u-2';
    el.user.dispatchEvent(new el.user.ownerDocument.defaultView!.Event('change'));
    el.start.value = '2026-11-01';
    el.start.dispatchEvent(new el.start.ownerDocument.defaultView!.Event('input'));
    assert.equal(el.exportLink.getAttribute('href'), '/api/v1/admin/audit-log?user_id=u-2&start=2026-11-01&format=csv');
    assert.equal(el.exportLink.hasAttribute('download'), true);

    el.apply.click();
    await settle();
    assert.deepEqual(log.calls.at(-1), { filters: { userId: 'u-2', start: '2026-11-01', end: '' }, before: null });
    assert.equal(el.pageInfo.textContent, 'Page 1', 'new filters start from the newest page');

    el.older.click();
    await settle();
    assert.deepEqual(log.calls.at(-1), { filters: { userId: 'u-2', start: '2026-11-01', end: '' }, before: 201 }, 'paging keeps the filters');
  });

  it('refuses a start after the end without asking the server', async () => {
    const { el, log, page } = auditPage();
    await page.show();
    const before = log.calls.length;
    el.start.value = '2026-11-05';
    el.end.value = '2026-11-01';
    el.apply.click();
    await settle();
    assert.equal(log.calls.length, before);
    assert.equal(el.error.hidden, false);
    assert.equal(el.error.textContent, 'The start date is after the end date.');
  });

  it("shows the server's message and keeps its place when a page fails", async () => {
    const { el, log, page, rows } = auditPage();
    await page.show();
    log.fail(new ApiError(403, 'permission_denied', 'Insufficient permissions. Required role: admin.'));
    el.older.click();
    await settle();
    assert.equal(el.error.hidden, false);
    assert.equal(el.error.textContent, 'Insufficient permissions. Required role: admin.');
    assert.equal(rows()[0], 300, 'the page shown stays');
    assert.equal(el.pageInfo.textContent, 'Page 1');
    el.older.click();
    await settle();
    assert.equal(log.calls.at(-1)?.before, 201, 'a retry goes to the same older page');
    assert.equal(el.error.hidden, true);
  });

  it('signs out on 401', async () => {
    const { log, page, signedOut } = auditPage();
    log.fail(new ApiError(401, 'unauthenticated', 'Please sign in.'));
    await page.show();
    assert.equal(signedOut(), 1);
  });

  it('says so when nothing matches', async () => {
    const el = auditElements(appDocument().doc);
    const empty = new AuditLogPage(el, {
      loadPage: async () => ({ entries: [], next_before: null }),
      loadUsers: async () => ({ users: [] }),
      onSignedOut: () => undefined,
    });
    await empty.show();
    assert.equal(el.body.querySelectorAll('tr.audit-row').length, 0);
    assert.equal(el.body.querySelector('tr.audit-empty')?.textContent, 'No entries match these filters.');
  });
});
