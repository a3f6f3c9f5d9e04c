import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JSDOM } from 'jsdom';
import { createMarkdownRenderer } from '../src/markdown';
import type { StreamFrame } from '../src/protocol';
import { MessageList } from '../src/render';
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

  it('shows a failed tool in error state with its reason', () => {
    const { feed, q } = setup();
    feed(
      { type: 'tool_use', tool_use_id: 't', name: 'Read', input: {} },
      { type: 'tool_result', tool_use_id: 't', status: 'error', duration_ms: 3, content: 'File does not exist.' },
    );
    assert.equal(q('[data-testid="tool-card"]')?.dataset.status, 'error');
    assert.equal(q('[data-testid="tool-status"]')?.textContent, 'Error');
    assert.equal(q('[data-testid="tool-summary"]')?.textContent, 'File does not exist.');
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
