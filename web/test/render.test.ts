import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JSDOM } from 'jsdom';
import { createMarkdownRenderer } from '../src/markdown';
import type { StreamFrame } from '../src/protocol';
import { DENIED_WITHOUT_REASON, MessageList, renderBanner } from '../src/render';
import { addLocalMessage, applyFrame, createState } from '../src/state';

function setup() {
  const dom = new JSDOM('<!doctype html><body><div id="list"></div></body>');
  const root = dom.window.document.getElementById('list') as unknown as HTMLElement;
  const md = createMarkdownRenderer(dom.window as unknown as Parameters<typeof createMarkdownRenderer>[0]);
  const list = new MessageList(root, md);
  const state = createState();
  let seq = 0;
  const feed = (...frames: object[]) => {
    for (const f of frames) applyFrame(state, { ...f, seq: ++seq } as StreamFrame);
    list.render(state);
  };
  const q = (sel: string) => root.querySelector<HTMLElement>(sel);
  const qa = (sel: string) => [...root.querySelectorAll<HTMLElement>(sel)];
  return { root, list, state, feed, q, qa };
}

describe('MessageList', () => {
  it('streams into one element and ends with a cost footer', () => {
    const { feed, q, qa } = setup();
    feed({ type: 'user_message', text: 'hello' }, { type: 'delta', text: 'Hel' });
    const bubble = q('[data-testid="assistant-message"]');
    assert.ok(bubble);
    assert.equal(bubble.dataset.streaming, 'true');
    assert.ok(q('[data-testid="streaming-cursor"]'), 'cursor while streaming');

    feed({ type: 'delta', text: 'lo **world**' });
    assert.equal(q('[data-testid="assistant-message"]'), bubble, 'the same element is patched, not replaced');
    assert.equal(q('[data-testid="assistant-text"] strong')?.textContent, 'world');
    assert.equal(q('[data-testid="assistant-text"] p')?.textContent, 'Hello world');

    feed({ type: 'result', cost_usd: 0.0011, total_cost_usd: 0.0011, is_error: false, interrupted: false, duration_ms: 1 });
    assert.equal(bubble.dataset.streaming, 'false');
    assert.equal(q('[data-testid="streaming-cursor"]'), null);
    assert.equal(q('[data-testid="cost-footer"]')?.textContent, '$0.0011');
    assert.equal(q('[data-testid="interrupted-marker"]')?.hidden, true);
    assert.equal(qa('[data-testid="user-message"]').length, 1);
  });

  it('shows tool cards with status, input and result as text', () => {
    const { feed, q } = setup();
    feed(
      { type: 'user_message', text: 'run echo hi' },
      { type: 'tool_use', tool_use_id: 'toolu_1', name: 'Bash', input: { command: 'echo <b>hi</b>' } },
    );
    const card = q('[data-testid="tool-card"]');
    assert.ok(card);
    assert.equal(card.dataset.status, 'executing');
    assert.equal(q('[data-testid="tool-status"]')?.textContent, 'Executing...');
    assert.equal(q('[data-testid="tool-name"]')?.textContent, 'Bash');

    const toggle = q('[data-testid="tool-toggle"]')!;
    const body = card.querySelector<HTMLElement>('.tool-body')!;
    assert.equal(body.hidden, true);
    toggle.click();
    assert.equal(body.hidden, false);
    assert.equal(toggle.getAttribute('aria-expanded'), 'true');

    feed({ type: 'tool_result', tool_use_id: 'toolu_1', status: 'complete', duration_ms: 1234, content: '<img src=x onerror=alert(1)>hi' });
    assert.equal(q('[data-testid="tool-card"]'), card);
    assert.equal(card.dataset.status, 'complete');
    assert.equal(q('[data-testid="tool-status"]')?.textContent, 'Complete (1.2s)');
    assert.equal(body.hidden, false, 'an update keeps the card expanded');
    assert.equal(q('[data-testid="tool-result"]')?.textContent, '<img src=x onerror=alert(1)>hi');
    assert.equal(card.querySelector('img, b'), null, 'tool content is text, never HTML');
    assert.match(q('[data-testid="tool-input"]')?.textContent ?? '', /"command": "echo <b>hi<\/b>"/);
  });

  it('shows a failed tool as "Error: <first line>" with the details open below', () => {
    const { feed, q } = setup();
    feed(
      { type: 'tool_use', tool_use_id: 't', name: 'Bash', input: { command: 'psql' } },
      { type: 'tool_result', tool_use_id: 't', status: 'error', duration_ms: 3, content: '\nConnection refused\n  at <b>db</b>:5432' },
      { type: 'delta', text: 'The database is not reachable.' },
    );
    const card = q('[data-testid="tool-card"]')!;
    assert.equal(card.dataset.status, 'error');
    assert.equal(q('[data-testid="tool-name"]')?.textContent, 'Bash');
    assert.equal(q('[data-testid="tool-status"]')?.textContent, 'Error: Connection refused');
    assert.equal(q('[data-testid="tool-summary"]')?.hidden, true, 'the first line is not repeated');
    assert.equal(card.querySelector<HTMLElement>('.tool-body')?.hidden, false);
    assert.equal(q('[data-testid="tool-toggle"]')?.getAttribute('aria-expanded'), 'true');
    assert.equal(q('[data-testid="tool-result"]')?.textContent, '\nConnection refused\n  at <b>db</b>:5432');
    assert.equal(card.querySelector('b'), null);
    assert.equal(q('[data-testid="assistant-text"]')?.textContent?.trim(), 'The database is not reachable.');
  });

  it('says so when a tool fails without a reason', () => {
    const { feed, q } = setup();
    feed(
      { type: 'tool_use', tool_use_id: 't', name: 'Read', input: {} },
      { type: 'tool_result', tool_use_id: 't', status: 'error', duration_ms: 3, content: '' },
    );
    assert.equal(q('[data-testid="tool-status"]')?.textContent, 'Error: The tool failed without a reason.');
  });

  it('shows a denied tool as "Denied" with the reason in view, apart from errors', () => {
    const { feed, q } = setup();
    feed(
      { type: 'tool_use', tool_use_id: 't', name: 'Bash', input: { command: 'curl evil' } },
      {
        type: 'tool_result',
        tool_use_id: 't',
        status: 'denied',
        duration_ms: 0,
        content: 'Bash is not allowed for the <b>user</b> role.\nAsk an administrator.',
      },
    );
    const card = q('[data-testid="tool-card"]')!;
    assert.equal(card.dataset.status, 'denied');
    assert.equal(q('[data-testid="tool-status"]')?.textContent, 'Denied');
    const reason = q('[data-testid="tool-summary"]')!;
    assert.equal(reason.hidden, false);
    assert.equal(reason.textContent, 'Bash is not allowed for the <b>user</b> role.');
    assert.equal(card.querySelector('b'), null, 'the reason is text');
    assert.equal(card.querySelector<HTMLElement>('.tool-body')?.hidden, true, 'not opened like a failure');
    assert.equal(card.querySelector('.tool-result-label')?.textContent, 'Reason');
    assert.equal(q('[data-testid="tool-result"]')?.textContent, 'Bash is not allowed for the <b>user</b> role.\nAsk an administrator.');
  });

  it('names a cut output in the summary line', () => {
    const { feed, q, qa } = setup();
    const note = 'output truncated: 4.8 MiB (5000000 bytes), showing the first 256 KiB';
    feed(
      { type: 'tool_use', tool_use_id: 't', name: 'Read', input: { file_path: '/tmp/big' } },
      { type: 'tool_result', tool_use_id: 't', status: 'complete', duration_ms: 5, content: `aaaa\nbbbb\n… [${note}]` },
    );
    assert.equal(q('[data-testid="tool-summary"]')?.textContent, `aaaa · ${note}`);
    assert.ok(q('[data-testid="tool-result"]')?.textContent?.endsWith(`… [${note}]`));
    feed(
      { type: 'tool_use', tool_use_id: 'u', name: 'Read', input: { file_path: '/tmp/small' } },
      { type: 'tool_result', tool_use_id: 'u', status: 'complete', duration_ms: 5, content: 'just text [output truncated: no]' },
    );
    const summaries = qa('[data-testid="tool-summary"]').map((e) => e.textContent);
    assert.deepEqual(summaries, [`aaaa · ${note}`, 'just text [output truncated: no]'], 'only csp\'s marker counts');
  });

  it('says so when a call is denied without a reason', () => {
    const { feed, q } = setup();
    feed({ type: 'tool_result', tool_use_id: 't', status: 'denied', duration_ms: 0, content: '' });
    assert.equal(q('[data-testid="tool-status"]')?.textContent, 'Denied');
    assert.equal(q('[data-testid="tool-summary"]')?.textContent, DENIED_WITHOUT_REASON);
  });

  it('renders budget and permission notices like other notices, and budget_exceeded as a turn error', () => {
    const { feed, q, qa } = setup();
    feed(
      { type: 'notice', code: 'budget_warning', message: 'You have used 81% of your $100 monthly budget.' },
      { type: 'notice', code: 'permissions_changed', message: 'Your permissions have changed. Some tools are no longer available.' },
      { type: 'user_message', text: 'q' },
      { type: 'error', code: 'budget_exceeded', message: 'Monthly budget exceeded ($100.00/$100.00). Contact your administrator to increase your limit.' },
    );
    const notices = qa('[data-testid="notice"]');
    assert.deepEqual(
      notices.map((n) => [n.dataset.code, n.textContent]),
      [
        ['budget_warning', 'You have used 81% of your $100 monthly budget.'],
        ['permissions_changed', 'Your permissions have changed. Some tools are no longer available.'],
      ],
    );
    const err = q('[data-testid="turn-error"]')!;
    assert.equal(err.hidden, false);
    assert.equal(err.textContent, 'Monthly budget exceeded ($100.00/$100.00). Contact your administrator to increase your limit.');
  });

  it('renders notices as .notice and errors as .error, as text', () => {
    const { feed, q, root } = setup();
    feed(
      { type: 'notice', code: 'rate_limited', message: 'The AI service is temporarily busy. <img src=x onerror=alert(1)>' },
      { type: 'error', code: 'model_unavailable', message: 'The AI service is temporarily unavailable. <script>x()</script>' },
    );
    const notice = q('.notice')!;
    assert.equal(notice.dataset.code, 'rate_limited');
    assert.equal(notice.getAttribute('role'), 'status');
    assert.equal(notice.textContent, 'The AI service is temporarily busy. <img src=x onerror=alert(1)>');
    const error = q('.error')!;
    assert.equal(error.classList.contains('notice'), false);
    assert.equal(error.getAttribute('role'), 'alert');
    assert.equal(error.dataset.code, 'model_unavailable');
    assert.equal(error.textContent, 'The AI service is temporarily unavailable. <script>x()</script>');
    assert.equal(root.querySelector('img, script'), null);
  });

  it('turns a notice action into a same-origin link in place of its [label]', () => {
    const { feed, q, qa } = setup();
    const message =
      'Your session has been restarted to maintain performance. Your conversation history is preserved. [Continue in new session]';
    feed({ type: 'notice', code: 'session_restarted', message, action: { label: 'Continue in new session', href: '/?session=new-1' } });
    const link = q('.notice a.notice-action')!;
    assert.equal(link.getAttribute('href'), '/?session=new-1');
    assert.equal(link.textContent, 'Continue in new session');
    assert.equal(q('.notice')!.textContent, message.replace('[Continue in new session]', 'Continue in new session'));

    feed(
      { type: 'notice', code: 'session_restarted', message, action: { label: 'Continue in new session', href: 'javascript:alert(1)' } },
      { type: 'notice', code: 'session_restarted', message, action: { label: 'Continue in new session', href: '//evil.com/?session=x' } },
      { type: 'notice', code: 'session_restarted', message },
    );
    assert.equal(qa('a.notice-action').length, 1, 'unsafe or missing hrefs are never linked');
    const plain = qa('.notice').slice(1);
    assert.equal(plain.length, 3);
    for (const el of plain) assert.equal(el.textContent, message, 'the text stays as sent');
  });

  it('links an action on an error that ends a turn', () => {
    const { feed, q } = setup();
    feed(
      { type: 'user_message', text: 'q' },
      { type: 'delta', text: 'part' },
      {
        type: 'error',
        code: 'duration_limit',
        message: 'Session ended (duration limit). [Start over]',
        action: { label: 'Start over', href: '/' },
      },
    );
    const err = q('[data-testid="turn-error"]')!;
    assert.ok(err.classList.contains('error'));
    assert.equal(err.hidden, false);
    assert.equal(err.querySelector('a.notice-action')?.getAttribute('href'), '/');
    assert.equal(err.textContent, 'Session ended (duration limit). Start over');
  });

  it('marks interruptions and errors under the partial answer', () => {
    const { feed, q, qa } = setup();
    feed(
      { type: 'user_message', text: 'a' },
      { type: 'delta', text: 'part' },
      { type: 'result', cost_usd: 0.02, total_cost_usd: 0.02, is_error: false, interrupted: true, duration_ms: 1 },
    );
    assert.equal(q('[data-testid="interrupted-marker"]')?.textContent, '[Response interrupted]');
    assert.equal(q('[data-testid="interrupted-marker"]')?.hidden, false);

    feed(
      { type: 'user_message', text: 'b' },
      { type: 'delta', text: 'partial answer' },
      { type: 'error', code: 'response_interrupted', message: 'Response interrupted. You can retry.' },
    );
    const bubbles = qa('[data-testid="assistant-message"]');
    assert.equal(bubbles.length, 2);
    assert.equal(bubbles[1]?.querySelector('[data-testid="assistant-text"]')?.textContent?.trim(), 'partial answer');
    assert.equal(bubbles[1]?.querySelector('[data-testid="turn-error"]')?.textContent, 'Response interrupted. You can retry.');
  });

  it('keeps queued echoes last and moves them into place when confirmed', () => {
    const { feed, q, qa, state, list } = setup();
    feed({ type: 'user_message', text: 'first' }, { type: 'delta', text: 'working' });
    const echo = addLocalMessage(state, 'second <b>x</b>', 'c-2', true);
    echo.written = true;
    list.render(state);
    const users = qa('[data-testid="user-message"]');
    const echoEl = users[1]!;
    assert.equal(echoEl.dataset.delivery, 'queued');
    assert.equal(echoEl.querySelector('[data-testid="delivery"]')?.textContent, 'Queued');
    assert.equal(echoEl.querySelector('b'), null, 'user text is text');

    feed({ type: 'tool_use', tool_use_id: 't', name: 'Bash', input: {} });
    const order = [...(q('[data-testid="tool-card"]')!.parentElement!.children)].map((e) => e.getAttribute('data-testid'));
    assert.deepEqual(order, ['user-message', 'assistant-message', 'tool-card', 'user-message']);

    feed(
      { type: 'result', cost_usd: 0, total_cost_usd: 0, is_error: false, interrupted: false, duration_ms: 1 },
      { type: 'user_message', text: 'second <b>x</b>', client_id: 'c-2' },
    );
    const after = qa('[data-testid="user-message"]');
    assert.equal(after.length, 2, 'the echo is not rendered twice');
    assert.equal(after[1], echoEl);
    assert.equal(echoEl.dataset.delivery, 'delivered');
    assert.equal(echoEl.querySelector<HTMLElement>('[data-testid="delivery"]')?.hidden, true);
  });
});

describe('renderBanner', () => {
  it('shows the shutdown message as text and empties when it clears', () => {
    const dom = new JSDOM('<!doctype html><body><div id="banner" role="status" aria-live="polite"></div></body>');
    const el = dom.window.document.getElementById('banner') as unknown as HTMLElement;
    renderBanner(el, 'The server is restarting. <b>x</b>');
    assert.equal(el.textContent, 'The server is restarting. <b>x</b>');
    assert.equal(el.querySelector('b'), null);
    assert.equal(el.dataset.active, 'true');
    renderBanner(el, null);
    assert.equal(el.textContent, '');
    assert.equal(el.dataset.active, 'false');
    assert.equal(el.getAttribute('role'), 'status', 'the live region stays in the page');
  });
});
