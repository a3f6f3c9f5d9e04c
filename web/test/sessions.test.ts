import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JSDOM } from 'jsdom';
import type { ChatTenantList, SessionList, SessionSummary } from '../src/protocol';
import { messageCountText, SessionListView, sessionTitle, Sidebar, sortSessions, tenantLabel, TenantPicker, UNTITLED } from '../src/sessions';
import { appDocument } from './page';

const NOW = Date.parse('2025-06-10T12:00:00Z');

/** A session as the page must tolerate it: a `null` title too. */
function session(id: string, minutesAgo: number, more: Partial<Omit<SessionSummary, 'title'>> & { title?: string | null } = {}): SessionSummary {
  return {
    session_id: id,
    user_id: 'u1',
    status: 'idle',
    created_at: new Date(NOW - (minutesAgo + 60) * 60_000).toISOString(),
    last_active_at: new Date(NOW - minutesAgo * 60_000).toISOString(),
    message_count: 2,
    total_cost_usd: 0.01,
    title: `Session ${id}`,
    resume_count: 0,
    is_resumable: true,
    ended_reason: '',
    tenant_id: null,
    ...more,
  } as SessionSummary;
}

const PAGE = `<!doctype html><body>
  <aside id="panel" data-open="false">
    <button id="new-session">New session</button>
    <label id="tenant-picker" hidden>Tenant <select id="tenant"><option value="">No tenant</option></select></label>
    <p id="err" hidden></p>
    <ul id="session-list"></ul>
  </aside>
  <button id="toggle" aria-expanded="false">Sessions</button>
  <p id="outside">elsewhere</p>
</body>`;

function dom() {
  const win = new JSDOM(PAGE).window;
  const doc = win.document;
  const get = <T extends HTMLElement = HTMLElement>(id: string) => doc.getElementById(id) as unknown as T;
  return { win, doc, get };
}

describe('session list helpers', () => {
  it('sorts most recently active first, whatever the server order', () => {
    const list = [session('b', 30), session('a', 5), session('c', 300), session('d', 30, { created_at: new Date(NOW).toISOString() })];
    assert.deepEqual(
      sortSessions(list).map((s) => s.session_id),
      ['a', 'd', 'b', 'c'],
    );
    assert.deepEqual(list.map((s) => s.session_id), ['b', 'a', 'c', 'd'], 'the input is not mutated');
  });

  it('names untitled sessions and counts messages', () => {
    assert.equal(sessionTitle({ title: null }), UNTITLED);
    assert.equal(sessionTitle({ title: '   ' }), 'Untitled session');
    assert.equal(sessionTitle({ title: ' Fix the build ' }), 'Fix the build');
    assert.equal(messageCountText(1), '1 message');
    assert.equal(messageCountText(0), '0 messages');
    assert.equal(messageCountText(12), '12 messages');
  });
});

describe('TenantPicker', () => {
  it('is in the page next to New session, hidden, with No tenant first', () => {
    const { doc } = appDocument();
    const picker = doc.querySelector<HTMLElement>('[data-testid="new-session-tenant-picker"]')!;
    const select = doc.querySelector<HTMLSelectElement>('[data-testid="new-session-tenant"]')!;
    assert.equal(picker.closest('.sessions-head')?.querySelector('#new-session')?.textContent, 'New session');
    assert.equal(picker.hidden, true);
    assert.deepEqual([...select.options].map((o) => [o.value, o.textContent]), [['', 'No tenant']]);
    const tenants = new TenantPicker({ picker, select });
    tenants.show([ACME]);
    assert.equal(picker.hidden, false);
    assert.equal(tenants.selected(), null, 'No tenant until one is chosen');
  });

  it('shows names as text and drops a choice no longer offered', () => {
    const { get } = dom();
    const tenants = new TenantPicker({ picker: get('tenant-picker'), select: get<HTMLSelectElement>('tenant') });
    const name = '<img src=x onerror="window.__xss=1">';
    tenants.show([{ ...ACME, name }, ACME, { ...GLOBEX, tenant_id: '' }]);
    const select = get<HTMLSelectElement>('tenant');
    assert.equal(select.options.length, 2, 'duplicates and empty ids are left out');
    assert.equal(select.options[1]!.textContent, `${name} (acme)`);
    assert.equal(select.querySelector('img'), null);
    select.value = 'acme';
    assert.equal(tenants.selected(), 'acme');
    tenants.show([GLOBEX]);
    assert.equal(tenants.selected(), null);
    tenants.show(null);
    assert.equal(get('tenant-picker').hidden, true);
  });

  it('labels a tenant by name and id, or by id alone', () => {
    assert.equal(tenantLabel(ACME), 'Acme MSP (acme)');
    assert.equal(tenantLabel(GLOBEX), 'globex');
    assert.equal(tenantLabel({ ...ACME, name: '  ' }), 'acme');
  });
});

describe('SessionListView', () => {
  it('renders rows with title, badge, count, time, and marks the current one', () => {
    const { get } = dom();
    const ul = get('session-list');
    const view = new SessionListView(ul);
    view.render(
      [
        session('old', 120, { status: 'ended', is_resumable: false, message_count: 1 }),
        session('new', 5, { status: 'ready', title: null, message_count: 4 }),
      ],
      'old',
      NOW,
    );
    const links = [...ul.querySelectorAll<HTMLAnchorElement>('[data-session-id]')];
    assert.deepEqual(links.map((a) => a.dataset.sessionId), ['new', 'old']);
    const [first, second] = links as [HTMLAnchorElement, HTMLAnchorElement];
    assert.equal(first.tagName, 'A', 'rows are links: keyboard and new-tab work');
    assert.equal(first.getAttribute('href'), '?session=new');
    assert.equal(first.querySelector('.session-title')?.textContent, 'Untitled session');
    assert.equal(first.querySelector('.session-badge')?.textContent, 'Active');
    assert.equal(first.querySelector('.session-count')?.textContent, '4 messages');
    assert.equal(first.querySelector('.session-time')?.textContent, '5 min ago');
    assert.equal(first.hasAttribute('aria-current'), false);
    assert.equal(second.getAttribute('aria-current'), 'page');
    assert.equal(second.querySelector('.session-badge')?.textContent, 'Ended');
    assert.equal(second.dataset.resumable, 'false');
    assert.equal(second.querySelector('.session-time')?.textContent, '2 h ago');
  });

  it('shows titles as text, never markup', () => {
    const { get } = dom();
    const ul = get('session-list');
    const title = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';
    new SessionListView(ul).render([session('x', 1, { title })], null, NOW);
    assert.equal(ul.querySelector('.session-title')?.textContent, title);
    assert.equal(ul.querySelector('img, script'), null);
  });

  it('keeps row elements across renders, reorders them and drops the gone', () => {
    const { get } = dom();
    const ul = get('session-list');
    const view = new SessionListView(ul);
    view.render([session('a', 5), session('b', 10), session('c', 15)], 'a', NOW);
    const b = ul.querySelector('[data-session-id="b"]');
    view.render([session('b', 1, { status: 'ready' }), session('a', 5)], 'b', NOW);
    assert.deepEqual([...ul.querySelectorAll<HTMLElement>('[data-session-id]')].map((a) => a.dataset.sessionId), ['b', 'a']);
    assert.equal(ul.querySelector('[data-session-id="b"]'), b, 'same element, so focus survives a refresh');
    assert.equal(ul.querySelectorAll('[aria-current]').length, 1);
    assert.equal(ul.querySelector('[aria-current]')?.getAttribute('data-session-id'), 'b');
  });

  it('says when there are none', () => {
    const { get } = dom();
    const ul = get('session-list');
    const view = new SessionListView(ul);
    view.render([], null, NOW);
    assert.equal(ul.textContent, 'No sessions yet.');
    view.render([session('a', 1)], null, NOW);
    assert.equal(ul.querySelector('.session-empty'), null);
  });
});

function sidebar(load: () => Promise<SessionList>, loadTenants?: () => Promise<ChatTenantList>) {
  const { win, doc, get } = dom();
  const opened: string[] = [];
  const creates: (string | null)[] = [];
  let changes = 0;
  const bar = new Sidebar(
    {
      panel: get('panel'),
      list: get('session-list'),
      error: get('err'),
      toggle: get<HTMLButtonElement>('toggle'),
      newSession: get<HTMLButtonElement>('new-session'),
      tenant: { picker: get('tenant-picker'), select: get<HTMLSelectElement>('tenant') },
    },
    {
      load,
      ...(loadTenants ? { loadTenants } : {}),
      open: (id) => opened.push(id),
      create: (tenant) => creates.push(tenant),
      changed: () => changes++,
      now: () => NOW,
    },
  );
  const click = (el: Element, init: MouseEventInit = {}) =>
    el.dispatchEvent(new win.MouseEvent('click', { bubbles: true, cancelable: true, button: 0, ...init }));
  const choose = (value: string) => {
    const select = get<HTMLSelectElement>('tenant');
    select.value = value;
    select.dispatchEvent(new win.Event('change', { bubbles: true }));
  };
  return { bar, doc, get, opened, created: () => creates.length, creates, changes: () => changes, click, choose };
}

const ACME = { tenant_id: 'acme', name: 'Acme MSP', tool_type: 'servicedesk_plus' };
const GLOBEX = { tenant_id: 'globex', name: 'globex', tool_type: 'jira' };

/** A load() the test answers by hand, to see what happens while one is in flight. */
function manualLoads() {
  const waiting: ((list: SessionList) => void)[] = [];
  const failing: ((err: Error) => void)[] = [];
  const load = () =>
    new Promise<SessionList>((resolve, reject) => {
      waiting.push(resolve);
      failing.push(reject);
    });
  return { load, waiting, failing };
}

describe('Sidebar', () => {
  it('loads and opens a session in place on a plain click', async () => {
    const { bar, get, opened, click } = sidebar(async () => ({ sessions: [session('a', 1), session('b', 2)] }));
    await bar.refresh();
    const link = get('session-list').querySelector('[data-session-id="b"]')!;
    assert.equal(click(link), false, 'the default navigation is prevented');
    assert.deepEqual(opened, ['b']);
    assert.equal(click(link, { ctrlKey: true }), true, 'a ctrl-click opens the real href');
    assert.deepEqual(opened, ['b']);
  });

  it('highlights the current session', async () => {
    const { bar, get } = sidebar(async () => ({ sessions: [session('a', 1), session('b', 2)] }));
    bar.setCurrent('b');
    await bar.refresh();
    assert.equal(get('session-list').querySelector('[aria-current="page"]')?.getAttribute('data-session-id'), 'b');
    bar.setCurrent(null);
    assert.equal(get('session-list').querySelector('[aria-current]'), null);
  });

  it('starts a new session from the New session button', () => {
    const { get, created, creates, click } = sidebar(async () => ({ sessions: [] }));
    click(get('new-session'));
    assert.equal(created(), 1);
    assert.deepEqual(creates, [null], 'bound to no tenant');
  });

  it('offers the chat tenants next to New session and starts the new session with the chosen one', async () => {
    let asked = 0;
    const { bar, get, creates, click, choose } = sidebar(
      async () => ({ sessions: [] }),
      async () => {
        asked++;
        return { tenants: [ACME, GLOBEX] };
      },
    );
    assert.equal(get('tenant-picker').hidden, true, 'hidden until the list is known');
    await bar.refresh();
    await new Promise((r) => setImmediate(r));
    assert.equal(get('tenant-picker').hidden, false);
    const options = [...get<HTMLSelectElement>('tenant').options].map((o) => [o.value, o.textContent]);
    assert.deepEqual(options, [
      ['', 'No tenant'],
      ['acme', 'Acme MSP (acme)'],
      ['globex', 'globex'],
    ]);
    click(get('new-session'));
    choose('acme');
    click(get('new-session'));
    assert.deepEqual(creates, [null, 'acme']);
    await bar.refresh();
    assert.equal(asked, 1, 'asked once per sign-in, not on every refresh');
    assert.equal(bar.selectedTenant(), 'acme', 'the choice stays');
  });

  it('offers no tenant when there are none or they cannot be loaded, and asks again after a failure', async () => {
    const answers: (() => Promise<ChatTenantList>)[] = [
      async () => ({ tenants: [] }),
    ];
    const { bar, get, creates, click } = sidebar(
      async () => ({ sessions: [] }),
      () => answers.shift()!(),
    );
    await bar.refresh();
    await new Promise((r) => setImmediate(r));
    assert.equal(get('tenant-picker').hidden, true, 'nothing to pick');
    click(get('new-session'));
    assert.deepEqual(creates, [null]);
    bar.clear();
    answers.push(async () => {
      throw new Error('offline');
    });
    await bar.refresh();
    await new Promise((r) => setImmediate(r));
    assert.equal(get('tenant-picker').hidden, true);
    answers.push(async () => ({ tenants: [ACME] }));
    await bar.refresh();
    await new Promise((r) => setImmediate(r));
    assert.equal(get('tenant-picker').hidden, false, 'asked again after the failure');
    assert.equal(answers.length, 0);
  });

  it('says which tenant a listed session is bound to', async () => {
    const { bar, changes } = sidebar(async () => ({
      sessions: [session('bound', 1, { tenant_id: 'acme' }), session('free', 2)],
    }));
    assert.equal(bar.tenantOf('bound'), null, 'not listed yet');
    await bar.refresh();
    assert.equal(bar.tenantOf('bound'), 'acme');
    assert.equal(bar.tenantOf('free'), null);
    assert.equal(bar.tenantOf('unknown'), null);
    assert.equal(changes(), 1, 'the chat is told the list changed');
  });

  it('folds refreshes during a load into one more load', async () => {
    const { load, waiting } = manualLoads();
    const { bar, get } = sidebar(load);
    const first = bar.refresh();
    void bar.refresh();
    void bar.refresh();
    assert.equal(waiting.length, 1);
    waiting[0]!({ sessions: [session('a', 1)] });
    await new Promise((r) => setImmediate(r));
    assert.equal(waiting.length, 2, 'one more load for the refreshes asked meanwhile');
    waiting[1]!({ sessions: [session('a', 1), session('b', 2)] });
    await first;
    assert.equal(waiting.length, 2);
    assert.equal(get('session-list').querySelectorAll('[data-session-id]').length, 2);
  });

  it('keeps the last list and says so when loading fails', async () => {
    const { load, waiting, failing } = manualLoads();
    const { bar, get } = sidebar(load);
    const ok = bar.refresh();
    waiting[0]!({ sessions: [session('a', 1)] });
    await ok;
    const failed = bar.refresh();
    failing[1]!(new Error('offline'));
    await failed;
    assert.equal(get('err').hidden, false);
    assert.match(get('err').textContent ?? '', /could not be loaded/);
    assert.equal(get('session-list').querySelectorAll('[data-session-id]').length, 1);
    const again = bar.refresh();
    waiting[2]!({ sessions: [] });
    await again;
    assert.equal(get('err').hidden, true);
  });

  it('drops a response that arrives after clear()', async () => {
    const { load, waiting } = manualLoads();
    const { bar, get } = sidebar(load);
    const pending = bar.refresh();
    bar.clear();
    waiting[0]!({ sessions: [session('previous-user', 1)] });
    await pending;
    assert.equal(get('session-list').querySelector('[data-session-id]'), null);
  });

  it('opens and closes as a panel, with aria-expanded, Escape and outside clicks', async () => {
    const { bar, doc, get, click } = sidebar(async () => ({ sessions: [session('a', 1)] }));
    await bar.refresh();
    const panel = get('panel');
    const toggle = get('toggle');
    click(toggle);
    assert.equal(panel.dataset.open, 'true');
    assert.equal(toggle.getAttribute('aria-expanded'), 'true');
    assert.equal(doc.activeElement, get('new-session'), 'focus moves into the panel');
    panel.dispatchEvent(new doc.defaultView!.KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
    assert.equal(panel.dataset.open, 'false');
    assert.equal(doc.activeElement, toggle, 'focus returns to the toggle');
    click(toggle);
    click(get('outside'));
    assert.equal(panel.dataset.open, 'false');
    click(toggle);
    click(get('session-list').querySelector('[data-session-id="a"]')!);
    assert.equal(panel.dataset.open, 'false', 'picking a session closes the panel');
  });
});
