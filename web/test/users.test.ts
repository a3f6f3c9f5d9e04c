import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../src/api';
import type { AdminUser, NewUser, UserPatch } from '../src/protocol';
import { CAP_INVALID, capText, parseCap, rowPatch, sortUsers, spendText, UsersPage, usersElements } from '../src/users';
import { appDocument, settle } from './page';

function user(name: string, more: Partial<AdminUser> = {}): AdminUser {
  return {
    user_id: `id-${name}`,
    username: name,
    role: 'user',
    created_at: '2026-10-01T08:00:00Z',
    last_login_at: '',
    is_active: true,
    monthly_cost_cap_usd: null,
    current_month_spend_usd: 0,
    ...more,
  };
}

describe('users helpers', () => {
  it('parses the cap field: empty is no cap', () => {
    assert.deepEqual(parseCap(''), { ok: true, value: null });
    assert.deepEqual(parseCap('   '), { ok: true, value: null });
    assert.deepEqual(parseCap('100'), { ok: true, value: 100 });
    assert.deepEqual(parseCap(' $12.50 '), { ok: true, value: 12.5 });
    assert.deepEqual(parseCap('1,000'), { ok: true, value: 1000 });
    assert.deepEqual(parseCap('0'), { ok: true, value: 0 });
    assert.deepEqual(parseCap('.5'), { ok: true, value: 0.5 });
    for (const bad of ['-5', 'abc', '1e3', '10 dollars', '1.2.3', 'Infinity']) {
      assert.deepEqual(parseCap(bad), { ok: false, message: CAP_INVALID }, bad);
    }
  });

  it('shows a cap the way it parses back', () => {
    assert.equal(capText(null), '');
    assert.equal(capText(100), '100');
    assert.equal(capText(12.5), '12.50');
    for (const cap of [100, 12.5, 0]) assert.deepEqual(parseCap(capText(cap)), { ok: true, value: cap });
  });

  it('patches only what changed', () => {
    const alice = user('alice', { role: 'user', monthly_cost_cap_usd: 100 });
    assert.deepEqual(rowPatch(alice, 'user', '100'), { ok: true, patch: {} });
    assert.deepEqual(rowPatch(alice, 'user', '100.00'), { ok: true, patch: {} });
    assert.deepEqual(rowPatch(alice, 'operator', '100'), { ok: true, patch: { role: 'operator' } });
    assert.deepEqual(rowPatch(alice, 'user', ''), { ok: true, patch: { monthly_cost_cap_usd: null } });
    assert.deepEqual(rowPatch(alice, 'admin', '50'), { ok: true, patch: { role: 'admin', monthly_cost_cap_usd: 50 } });
    assert.deepEqual(rowPatch(alice, 'admin', 'lots'), { ok: false, message: CAP_INVALID });
  });

  it('shows spend with the share of the cap', () => {
    assert.equal(spendText({ current_month_spend_usd: 81, monthly_cost_cap_usd: 100 }), '$81.00 (81%)');
    assert.equal(spendText({ current_month_spend_usd: 3.2, monthly_cost_cap_usd: null }), '$3.20');
  });

  it('sorts by name regardless of case', () => {
    assert.deepEqual(
      sortUsers([user('carol'), user('Bob'), user('alice')]).map((u) => u.username),
      ['alice', 'Bob', 'carol'],
    );
  });
});

function usersPage(initial: AdminUser[]) {
  const { doc } = appDocument();
  const el = usersElements(doc);
  const created: NewUser[] = [];
  const patches: [string, UserPatch][] = [];
  let failNext: ApiError | null = null;
  let selfChanged = 0;
  const take = () => {
    const err = failNext;
    failNext = null;
    if (err) throw err;
  };
  const page = new UsersPage(el, {
    list: async () => ({ users: initial }),
    create: async (u) => {
      take();
      created.push(u);
      return user(u.username, { role: u.role, monthly_cost_cap_usd: u.monthly_cost_cap_usd });
    },
    update: async (id, patch) => {
      take();
      patches.push([id, patch]);
      const current = initial.find((u) => u.user_id === id)!;
      const next = { ...current, ...patch };
      initial = initial.map((u) => (u.user_id === id ? next : u));
      return next;
    },
    onSignedOut: () => undefined,
    onSelfChanged: () => selfChanged++,
    currentUserId: () => 'id-root',
  });
  const row = (name: string) => {
    const tr = doc.querySelector<HTMLTableRowElement>(`#users-table tr[data-username="${name}"]`);
    if (!tr) throw new Error(`no row for ${name}`);
    return {
      tr,
      role: tr.querySelector<HTMLSelectElement>('select.user-role')!,
      cap: tr.querySelector<HTMLInputElement>('input.user-cap')!,
      save: tr.querySelector<HTMLButtonElement>('button.user-save')!,
      toggle: tr.querySelector<HTMLButtonElement>('button.user-toggle-active')!,
      text: (sel: string) => tr.querySelector(sel)?.textContent,
    };
  };
  return { doc, el, page, row, created, patches, fail: (e: ApiError) => (failNext = e), selfChanged: () => selfChanged };
}

describe('UsersPage', () => {
  it('lists users with role, cap, spend, status and logins', async () => {
    const { el, page, row } = usersPage([
      user('bob', { role: 'operator', monthly_cost_cap_usd: 100, current_month_spend_usd: 81 }),
      user('alice', { role: 'admin', last_login_at: '2026-11-02T10:00:00Z', is_active: false }),
    ]);
    await page.show();
    assert.deepEqual(
      [...el.body.querySelectorAll<HTMLElement>('tr')].map((tr) => tr.dataset.username),
      ['alice', 'bob'],
    );
    const bob = row('bob');
    assert.equal(bob.role.value, 'operator');
    assert.deepEqual([...bob.role.options].map((o) => o.value), ['user', 'operator', 'admin']);
    assert.equal(bob.cap.value, '100');
    assert.equal(bob.text('.user-spend'), '$81.00 (81%)');
    assert.equal(bob.tr.querySelector<HTMLElement>('.user-spend')?.dataset.tone, 'warn');
    assert.equal(bob.text('.user-active'), 'Active');
    assert.equal(bob.text('.user-last-login'), 'Never');
    assert.equal(bob.toggle.textContent, 'Deactivate');
    const alice = row('alice');
    assert.equal(alice.tr.dataset.active, 'false');
    assert.equal(alice.text('.user-active'), 'Inactive');
    assert.equal(alice.toggle.textContent, 'Activate');
    assert.match(alice.text('.user-last-login') ?? '', /2026/);
    assert.equal(alice.cap.value, '', 'no cap');
  });

  it('creates a user, with an empty cap as no cap, and shows it', async () => {
    const { el, page, row, created } = usersPage([user('alice')]);
    await page.show();
    el.username.value = ' carol ';
    el.password.value = 'correct horse';
    el.role.value = 'operator';
    el.submit.click();
    await settle();
    assert.deepEqual(created, [{ username: 'carol', password: 'correct horse', role: 'operator', monthly_cost_cap_usd: null }]);
    assert.equal(row('carol').role.value, 'operator');
    assert.equal(el.username.value, '', 'the form is cleared');
    assert.equal(el.password.value, '');
    assert.equal(el.role.value, 'user');
    assert.equal(el.error.hidden, true);
    assert.equal(el.notice.textContent, 'Created carol.');
  });

  it("shows the server's refusal inline and keeps the form", async () => {
    const { el, page, created, fail } = usersPage([user('alice')]);
    await page.show();
    el.username.value = 'alice';
    el.password.value = 'pw';
    el.cap.value = '25';
    fail(new ApiError(409, 'conflict', 'That username is already taken.'));
    el.submit.click();
    await settle();
    assert.equal(el.error.hidden, false);
    assert.equal(el.error.textContent, 'That username is already taken.');
    assert.equal(el.username.value, 'alice');
    assert.equal(el.cap.value, '25');
    assert.deepEqual(created, []);
  });

  it('refuses a cap it cannot read without asking the server', async () => {
    const { el, page, row, created, patches } = usersPage([user('alice')]);
    await page.show();
    el.username.value = 'dave';
    el.password.value = 'pw';
    el.cap.value = '-3';
    el.submit.click();
    await settle();
    assert.equal(el.error.textContent, CAP_INVALID);
    row('alice').cap.value = 'ten';
    row('alice').save.click();
    await settle();
    assert.deepEqual(created, []);
    assert.deepEqual(patches, []);
  });

  it('saves only the changed fields of a row and keeps edits in other rows', async () => {
    const { el, page, row, patches } = usersPage([user('alice'), user('bob', { monthly_cost_cap_usd: 100 })]);
    await page.show();
    row('alice').role.value = 'operator';
    row('bob').cap.value = '50';
    row('bob').save.click();
    await settle();
    assert.deepEqual(patches, [['id-bob', { monthly_cost_cap_usd: 50 }]]);
    assert.equal(row('bob').cap.value, '50');
    assert.equal(row('bob').text('.user-spend'), '$0.00 (0%)');
    assert.equal(row('alice').role.value, 'operator', 'an unsaved edit survives another row saving');
    assert.equal(el.notice.textContent, 'Saved bob.');

    row('alice').save.click();
    await settle();
    assert.deepEqual(patches[1], ['id-alice', { role: 'operator' }]);

    row('bob').cap.value = '';
    row('bob').save.click();
    await settle();
    assert.deepEqual(patches[2], ['id-bob', { monthly_cost_cap_usd: null }]);
    assert.equal(row('bob').text('.user-spend'), '$0.00');
  });

  it('deactivates and activates', async () => {
    const { page, row, patches, fail, el } = usersPage([user('bob')]);
    await page.show();
    row('bob').toggle.click();
    await settle();
    assert.deepEqual(patches, [['id-bob', { is_active: false }]]);
    assert.equal(row('bob').tr.dataset.active, 'false');
    assert.equal(row('bob').toggle.textContent, 'Activate');
    fail(new ApiError(400, 'invalid', 'is_active: you cannot deactivate the last admin.'));
    row('bob').toggle.click();
    await settle();
    assert.equal(el.error.textContent, 'is_active: you cannot deactivate the last admin.');
    assert.equal(row('bob').toggle.disabled, false, 'the buttons come back after a failure');
    row('bob').toggle.click();
    await settle();
    assert.deepEqual(patches[1], ['id-bob', { is_active: true }]);
    assert.equal(row('bob').text('.user-active'), 'Active');
  });

  it('tells the app when admins change their own account', async () => {
    const { page, row, selfChanged } = usersPage([user('root', { role: 'admin' }), user('bob')]);
    await page.show();
    row('bob').role.value = 'operator';
    row('bob').save.click();
    await settle();
    assert.equal(selfChanged(), 0);
    row('root').role.value = 'operator';
    row('root').save.click();
    await settle();
    assert.equal(selfChanged(), 1);
  });
});
