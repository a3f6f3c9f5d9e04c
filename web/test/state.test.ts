import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ServerFrame, StreamFrame } from '../src/protocol';
import type { AssistantItem, NoticeItem, ThinkingItem, ToolItem, UserItem } from '../src/state';
import {
  addLocalMessage,
  applyFrame,
  applyHistory,
  connectionOpened,
  createState,
  isSendable,
  resetConversation,
  SHUTDOWN_TEXT,
  unwritten,
} from '../src/state';

const SID = '6f1c2d4e-0000-4000-8000-000000000001';

/** Applies frames numbered from `from`, returning the outcomes. */
function feed(state: ReturnType<typeof createState>, frames: object[], from = state.lastSeq + 1): string[] {
  return frames.map((f, i) => applyFrame(state, { ...f, seq: from + i } as StreamFrame));
}

function ready() {
  const s = createState();
  feed(s, [{ type: 'session', status: 'ready', session_id: SID, model: 'offline demo model' }]);
  return s;
}

describe('reducer', () => {
  it('tracks the session frame', () => {
    const s = ready();
    assert.equal(s.sessionId, SID);
    assert.equal(s.sessionStatus, 'ready');
    assert.equal(s.model, 'offline demo model');
    assert.equal(s.lastSeq, 1);
  });

  it('concatenates deltas into one streaming bubble and ends it on result', () => {
    const s = ready();
    feed(s, [
      { type: 'user_message', text: 'hello' },
      { type: 'delta', text: 'Hel' },
      { type: 'delta', text: 'lo ' },
      { type: 'delta', text: 'there' },
    ]);
    assert.equal(s.items.length, 2);
    const bubble = s.items[1] as AssistantItem;
    assert.equal(bubble.text, 'Hello there');
    assert.equal(bubble.streaming, true);
    assert.equal(s.turnActive, true);

    feed(s, [{ type: 'result', cost_usd: 0.0011, total_cost_usd: 0.0011, is_error: false, interrupted: false, duration_ms: 5 }]);
    assert.equal(s.items.length, 2);
    assert.equal(bubble.streaming, false);
    assert.equal(bubble.costUsd, 0.0011);
    assert.equal(bubble.interrupted, false);
    assert.equal(s.turnActive, false);
  });

  it('never applies a replayed frame twice', () => {
    const s = ready();
    feed(s, [
      { type: 'user_message', text: 'hi' },
      { type: 'delta', text: 'a' },
      { type: 'delta', text: 'b' },
    ]);
    const revBefore = s.items[1]!.rev;
    // A reconnect replays from an older after_seq: seq 3 and 4 again, then 5 is new.
    assert.deepEqual(feed(s, [{ type: 'delta', text: 'a' }, { type: 'delta', text: 'b' }, { type: 'delta', text: 'c' }], 3), [
      'duplicate',
      'duplicate',
      'applied',
    ]);
    assert.equal((s.items[1] as AssistantItem).text, 'abc');
    assert.equal(s.items[1]!.rev, revBefore + 1);
    assert.equal(s.lastSeq, 5);
  });

  it('reports a gap without applying the frame, unless told to accept it', () => {
    const s = ready();
    const skipped = { type: 'delta', text: 'x', seq: 3 } as StreamFrame;
    assert.equal(applyFrame(s, skipped), 'gap');
    assert.equal(s.lastSeq, 1);
    assert.equal(s.items.length, 0);
    assert.equal(applyFrame(s, skipped, { allowGap: true }), 'applied');
    assert.equal(s.lastSeq, 3);
  });

  it('updates tool cards by tool_use_id, in execution order', () => {
    const s = ready();
    feed(s, [
      { type: 'user_message', text: 'run two' },
      { type: 'delta', text: 'Running.' },
      { type: 'tool_use', tool_use_id: 'toolu_1', name: 'Bash', input: { command: 'ls' } },
      { type: 'tool_use', tool_use_id: 'toolu_2', name: 'Read', input: { file_path: '/x' } },
      { type: 'tool_result', tool_use_id: 'toolu_2', status: 'error', duration_ms: 10, content: 'no such file' },
      { type: 'tool_result', tool_use_id: 'toolu_1', status: 'complete', duration_ms: 1234, content: 'a\nb' },
      { type: 'delta', text: 'Done.' },
    ]);
    assert.deepEqual(
      s.items.map((i) => i.kind),
      ['user', 'assistant', 'tool', 'tool', 'assistant'],
    );
    assert.equal((s.items[1] as AssistantItem).streaming, false, 'a tool call ends the text before it');
    const [first, second] = [s.items[2] as ToolItem, s.items[3] as ToolItem];
    assert.deepEqual([first.name, first.status, first.durationMs, first.content], ['Bash', 'complete', 1234, 'a\nb']);
    assert.deepEqual([second.name, second.status, second.content], ['Read', 'error', 'no such file']);
    assert.deepEqual(first.input, { command: 'ls' });
    assert.equal((s.items[4] as AssistantItem).text, 'Done.');
  });

  it('puts the cost on a new bubble when the turn ends with a tool card', () => {
    const s = ready();
    feed(s, [
      { type: 'user_message', text: 'x' },
      { type: 'tool_use', tool_use_id: 't', name: 'Bash', input: {} },
      { type: 'tool_result', tool_use_id: 't', status: 'complete', duration_ms: 1, content: '' },
      { type: 'result', cost_usd: 0.02, total_cost_usd: 0.02, is_error: false, interrupted: false, duration_ms: 1 },
    ]);
    const tail = s.items.at(-1) as AssistantItem;
    assert.equal(tail.kind, 'assistant');
    assert.equal(tail.costUsd, 0.02);
  });

  it('marks an interrupted turn', () => {
    const s = ready();
    feed(s, [
      { type: 'user_message', text: 'long' },
      { type: 'delta', text: 'Once upon' },
      { type: 'result', cost_usd: 0, total_cost_usd: 0, is_error: false, interrupted: true, duration_ms: 1 },
    ]);
    const bubble = s.items[1] as AssistantItem;
    assert.equal(bubble.text, 'Once upon');
    assert.equal(bubble.interrupted, true);
    assert.equal(bubble.streaming, false);
  });

  it('keeps the partial answer when an error ends the turn', () => {
    const s = ready();
    feed(s, [
      { type: 'user_message', text: 'q' },
      { type: 'delta', text: 'Partial' },
      { type: 'error', code: 'response_interrupted', message: 'Response interrupted. You can retry.' },
    ]);
    const bubble = s.items[1] as AssistantItem;
    assert.equal(bubble.text, 'Partial');
    assert.equal(bubble.error, 'Response interrupted. You can retry.');
    assert.equal(bubble.streaming, false);
    assert.equal(s.turnActive, false);
    // The user can send again and the next turn is separate.
    feed(s, [{ type: 'user_message', text: 'again' }, { type: 'delta', text: 'Whole' }]);
    assert.equal((s.items.at(-1) as AssistantItem).text, 'Whole');
  });

  it('shows an error outside a turn as a notice', () => {
    const s = ready();
    feed(s, [{ type: 'error', code: 'agent_start_failed', message: 'The agent could not be started.' }]);
    assert.equal(s.items[0]?.kind, 'notice');
    assert.equal(s.statusMessage, 'The agent could not be started.');
  });

  it('matches local echoes to user_message by client_id', () => {
    const s = ready();
    const first = addLocalMessage(s, 'one', 'c-1', true);
    first.written = true;
    assert.equal(first.delivery, 'sending');
    assert.equal(s.items.length, 0, 'echoes wait outside the conversation');

    feed(s, [{ type: 'user_message', text: 'one', client_id: 'c-1' }, { type: 'delta', text: 'ans' }]);
    assert.equal(s.pending.length, 0);
    assert.equal(s.items[0], first, 'the echo becomes the conversation item');
    assert.equal(first.delivery, 'delivered');

    // Typed during the turn: queued behind it, shown after everything streamed so far.
    const second = addLocalMessage(s, 'two', 'c-2', true);
    assert.equal(second.delivery, 'queued');
    feed(s, [{ type: 'tool_use', tool_use_id: 't', name: 'Bash', input: {} }]);
    assert.deepEqual(s.items.map((i) => i.kind), ['user', 'assistant', 'tool']);
    assert.deepEqual(s.pending, [second]);

    // Another tab's message does not consume ours.
    feed(s, [
      { type: 'result', cost_usd: 0, total_cost_usd: 0, is_error: false, interrupted: false, duration_ms: 1 },
      { type: 'user_message', text: 'from elsewhere', client_id: 'c-other' },
    ]);
    assert.deepEqual(s.pending, [second]);
    assert.equal((s.items.at(-1) as UserItem).text, 'from elsewhere');

    feed(s, [{ type: 'user_message', text: 'two', client_id: 'c-2' }]);
    assert.equal(s.pending.length, 0);
    assert.equal(s.items.at(-1), second);
  });

  it('a message sent while another is unconfirmed is queued', () => {
    const s = ready();
    addLocalMessage(s, 'one', 'c-1', true).written = true;
    const two = addLocalMessage(s, 'two', 'c-2', true);
    assert.equal(two.delivery, 'queued');
  });

  it('a message typed while disconnected waits to be written', () => {
    const s = ready();
    const item = addLocalMessage(s, 'offline', 'c-1', false);
    assert.equal(item.delivery, 'queued');
    assert.deepEqual(unwritten(s), [item]);
    item.written = true;
    assert.deepEqual(unwritten(s), []);
  });

  it('fails the newest written message on frame_too_large', () => {
    const s = ready();
    const item = addLocalMessage(s, 'huge', 'c-1', true);
    item.written = true;
    applyFrame(s, { type: 'error', code: 'frame_too_large', message: 'That message is too long.' });
    assert.equal(item.delivery, 'failed');
    assert.equal(item.failure, 'That message is too long.');
    assert.equal(s.lastSeq, 1, 'connection frames have no seq');
  });

  it('ignores pong', () => {
    const s = ready();
    assert.equal(applyFrame(s, { type: 'pong' }), 'ignored');
  });

  it('ends streaming and fails pending messages when the session ends', () => {
    const s = ready();
    feed(s, [{ type: 'user_message', text: 'q' }, { type: 'delta', text: 'a' }]);
    const waiting = addLocalMessage(s, 'later', 'c-9', true);
    feed(s, [
      { type: 'notice', code: 'session_unavailable', message: 'Session ended (duration limit). You can start a new session.' },
      { type: 'session', status: 'ended', session_id: SID },
    ]);
    assert.equal(s.turnActive, false);
    assert.equal((s.items[1] as AssistantItem).streaming, false);
    assert.equal(waiting.delivery, 'failed');
    assert.equal(s.statusMessage, 'Session ended (duration limit). You can start a new session.');
  });

  it('applies a history page with gaps and resumes after last_seq', () => {
    const s = createState(SID);
    applyHistory(
      s,
      [
        { type: 'session', status: 'ready', session_id: SID, seq: 1 },
        { type: 'user_message', text: 'hello', seq: 2 },
        { type: 'delta', text: 'Hi!', seq: 7 },
        { type: 'result', cost_usd: 0.02, total_cost_usd: 0.02, is_error: false, interrupted: false, duration_ms: 3, seq: 9 },
      ],
      10,
    );
    assert.equal(s.lastSeq, 10);
    assert.equal((s.items[1] as AssistantItem).text, 'Hi!');
    assert.equal(applyFrame(s, { type: 'delta', text: 'old', seq: 10 }), 'duplicate');
    assert.equal(applyFrame(s, { type: 'user_message', text: 'next', seq: 11 }), 'applied');

    resetConversation(s);
    assert.equal(s.items.length, 0);
    assert.equal(s.lastSeq, 0);
  });

  it('thinking streams separately from the answer', () => {
    const s = ready();
    feed(s, [
      { type: 'user_message', text: 'q' },
      { type: 'thinking', text: 'Let me ' },
      { type: 'thinking', text: 'think.' },
      { type: 'delta', text: 'Answer' },
    ]);
    assert.deepEqual(s.items.map((i) => i.kind), ['user', 'thinking', 'assistant']);
    const thinking = s.items[1] as ThinkingItem;
    assert.equal(thinking.text, 'Let me think.');
    assert.equal(thinking.streaming, false);
  });
});

describe('session lifecycle', () => {
  const SHUTDOWN =
    'The server is restarting. Your current reply will finish and your conversation is saved; this page reconnects by itself.';

  it('keeps the reason of the latest session frame', () => {
    const s = ready();
    feed(s, [{ type: 'session', status: 'preparing', session_id: SID, reason: 'resume' }]);
    assert.deepEqual([s.sessionStatus, s.sessionReason], ['preparing', 'resume']);
    feed(s, [{ type: 'session', status: 'ready', session_id: SID }]);
    assert.deepEqual([s.sessionStatus, s.sessionReason], ['ready', null]);
  });

  it('idle ends the turn and fails only what was already written', () => {
    const s = ready();
    feed(s, [{ type: 'user_message', text: 'q' }, { type: 'delta', text: 'a' }]);
    const written = addLocalMessage(s, 'sent', 'c-1', true);
    written.written = true;
    const unsent = addLocalMessage(s, 'typed offline', 'c-2', false);
    feed(s, [{ type: 'session', status: 'idle', session_id: SID, reason: 'shutdown' }]);
    assert.equal(s.sessionStatus, 'idle');
    assert.equal(s.sessionReason, 'shutdown');
    assert.equal(s.turnActive, false);
    assert.equal((s.items[1] as AssistantItem).streaming, false);
    assert.equal(written.delivery, 'failed');
    assert.match(written.failure ?? '', /Send it again/);
    // The next connection resumes the session and delivers it.
    assert.equal(unsent.delivery, 'queued');
    assert.deepEqual(unwritten(s), [unsent]);
  });

  it('failed is resumable like idle, and a late echo still confirms a failed message', () => {
    const s = ready();
    const written = addLocalMessage(s, 'hello', 'c-1', true);
    written.written = true;
    feed(s, [
      { type: 'error', code: 'agent_crashed', message: 'The agent stopped unexpectedly.' },
      { type: 'session', status: 'failed', session_id: SID, reason: 'crashed' },
    ]);
    assert.equal(s.sessionStatus, 'failed');
    assert.equal(written.delivery, 'failed');
    const later = addLocalMessage(s, 'again', 'c-2', false);
    assert.equal(later.delivery, 'queued');
    feed(s, [
      { type: 'session', status: 'preparing', session_id: SID, reason: 'resume' },
      { type: 'session', status: 'ready', session_id: SID },
      { type: 'user_message', text: 'hello', client_id: 'c-1' },
    ]);
    assert.equal(written.delivery, 'delivered');
    assert.equal(s.items.at(-1), written);
  });

  it('ended fails every pending message without repeating "Not sent"', () => {
    const s = ready();
    const unsent = addLocalMessage(s, 'x', 'c-1', false);
    feed(s, [{ type: 'session', status: 'ended', session_id: SID, reason: 'duration_limit' }]);
    assert.equal(unsent.delivery, 'failed');
    assert.doesNotMatch(unsent.failure ?? '', /Not sent/i);
  });

  it('keeps a notice’s code and action', () => {
    const s = ready();
    const action = { label: 'Continue in new session', href: '/?session=new-1' };
    feed(s, [
      {
        type: 'notice',
        code: 'session_restarted',
        message: 'Your session has been restarted to maintain performance. Your conversation history is preserved. [Continue in new session]',
        action,
      },
    ]);
    const notice = s.items[0] as NoticeItem;
    assert.equal(notice.kind, 'notice');
    assert.equal(notice.tone, 'info');
    assert.equal(notice.code, 'session_restarted');
    assert.deepEqual(notice.action, action);
  });

  it('an error with an action keeps it, inside or outside a turn', () => {
    const s = ready();
    const action = { label: 'New', href: '/' };
    feed(s, [{ type: 'error', code: 'duration_limit', message: 'Session ended (duration limit). You can start a new session.', action }]);
    assert.deepEqual((s.items[0] as NoticeItem).action, action);
    assert.equal((s.items[0] as NoticeItem).tone, 'error');
    feed(s, [
      { type: 'user_message', text: 'q' },
      { type: 'delta', text: 'part' },
      { type: 'error', code: 'model_stalled', message: 'The model stopped responding.', action },
    ]);
    const bubble = s.items.at(-1) as AssistantItem;
    assert.equal(bubble.error, 'The model stopped responding.');
    assert.deepEqual(bubble.errorAction, action);
  });

  it('model_unavailable marks the refused message not sent and explains why', () => {
    const s = ready();
    const msg = addLocalMessage(s, 'hi', 'c-1', true);
    msg.written = true;
    const text = 'The AI service is temporarily unavailable. We are monitoring the situation.';
    feed(s, [{ type: 'error', code: 'model_unavailable', message: text }]);
    assert.equal(msg.delivery, 'failed');
    assert.equal(msg.failure, null, 'the error notice next to it says why');
    assert.equal((s.items[0] as NoticeItem).text, text);
    assert.equal(s.turnActive, false);
  });

  it('budget_exceeded outside a turn marks the refused message not sent, as a stream or a connection error', () => {
    const text = 'Monthly budget exceeded ($100.00/$100.00). Contact your administrator to increase your limit.';
    const s = ready();
    const msg = addLocalMessage(s, 'hi', 'c-1', true);
    msg.written = true;
    feed(s, [{ type: 'error', code: 'budget_exceeded', message: text }]);
    assert.equal(msg.delivery, 'failed');
    assert.equal(msg.failure, null, 'the error notice next to it says why');
    const notice = s.items.at(-1) as NoticeItem;
    assert.equal(notice.text, text);
    assert.equal(notice.tone, 'error');
    assert.equal(notice.code, 'budget_exceeded');

    const c = ready();
    const first = addLocalMessage(c, 'one', 'c-1', true);
    first.written = true;
    const second = addLocalMessage(c, 'two', 'c-2', true);
    second.written = true;
    assert.equal(applyFrame(c, { type: 'error', code: 'budget_exceeded', message: text }), 'applied');
    assert.equal(second.delivery, 'failed', 'the newest send is the one refused');
    assert.equal(second.failure, null, 'the error notice next to it says why');
    assert.equal(first.delivery, 'sending', 'an older message may be admitted and waiting for its turn');
    assert.equal((c.items.at(-1) as NoticeItem).text, text);
  });

  it('budget_exceeded inside a turn ends it with the message under the answer', () => {
    const text = 'Monthly budget exceeded ($100.00/$100.00). Contact your administrator to increase your limit.';
    const s = ready();
    feed(s, [
      { type: 'user_message', text: 'q' },
      { type: 'delta', text: 'part' },
      { type: 'error', code: 'budget_exceeded', message: text },
    ]);
    const bubble = s.items.at(-1) as AssistantItem;
    assert.equal(bubble.text, 'part');
    assert.equal(bubble.error, text);
    assert.equal(s.turnActive, false);
  });

  it('other errors outside a turn leave pending messages alone', () => {
    const s = ready();
    const msg = addLocalMessage(s, 'hi', 'c-1', true);
    msg.written = true;
    feed(s, [{ type: 'error', code: 'model_api_failed', message: 'The AI service could not answer.' }]);
    assert.equal(msg.delivery, 'sending');
  });

  it('a denied tool call keeps the reason as its content', () => {
    const s = ready();
    feed(s, [
      { type: 'tool_use', tool_use_id: 't', name: 'Bash', input: { command: 'rm -rf /' } },
      { type: 'tool_result', tool_use_id: 't', status: 'denied', duration_ms: 0, content: 'Bash is not allowed for your role.' },
    ]);
    const card = s.items.at(-1) as ToolItem;
    assert.equal(card.status, 'denied');
    assert.equal(card.content, 'Bash is not allowed for your role.');
  });

  it('session_expiring is kept for the status bar until the process is replaced or ends', () => {
    const s = ready();
    const text = 'Session will end in 24 minutes. Save your work.';
    feed(s, [{ type: 'notice', code: 'session_expiring', message: text, minutes_left: 24 }]);
    assert.equal(s.expiring, text);
    assert.equal(s.items[0]?.kind, 'notice');
    feed(s, [{ type: 'notice', code: 'rate_limited', message: 'The AI service is temporarily busy.' }]);
    assert.equal(s.expiring, text, 'other notices do not clear it');
    feed(s, [{ type: 'session', status: 'preparing', session_id: SID, reason: 'restart' }]);
    assert.equal(s.expiring, null);
    feed(s, [
      { type: 'session', status: 'ready', session_id: SID },
      { type: 'notice', code: 'session_expiring', message: text, minutes_left: 24 },
      { type: 'session', status: 'ended', session_id: SID, reason: 'duration_limit' },
    ]);
    assert.equal(s.expiring, null);
  });

  it('server_shutting_down sets the banner until ready arrives on a later connection', () => {
    const s = ready();
    assert.equal(applyFrame(s, { type: 'server_shutting_down', message: SHUTDOWN, grace_seconds: 30 }), 'applied');
    assert.equal(s.shutdown, SHUTDOWN);
    assert.equal(s.lastSeq, 1, 'a connection frame has no seq');
    // The reply in flight finishes on the old socket; a ready there is not the restart.
    feed(s, [{ type: 'session', status: 'ready', session_id: SID }]);
    assert.equal(s.shutdown, SHUTDOWN);
    feed(s, [{ type: 'session', status: 'idle', session_id: SID, reason: 'shutdown' }]);
    assert.equal(s.shutdown, SHUTDOWN);

    connectionOpened(s);
    feed(s, [{ type: 'session', status: 'preparing', session_id: SID, reason: 'resume' }]);
    assert.equal(s.shutdown, SHUTDOWN);
    feed(s, [{ type: 'session', status: 'ready', session_id: SID }]);
    assert.equal(s.shutdown, null);
  });

  it('a shutdown banner without text says something, and an ended session clears it', () => {
    const s = ready();
    applyFrame(s, { type: 'server_shutting_down', message: '' } as ServerFrame);
    assert.equal(s.shutdown, SHUTDOWN_TEXT);
    feed(s, [{ type: 'session', status: 'ended', session_id: SID, reason: 'shutdown' }]);
    assert.equal(s.shutdown, null);
  });

  it('connectionOpened without a banner changes nothing', () => {
    const s = ready();
    const rev = s.rev;
    connectionOpened(s);
    assert.equal(s.rev, rev);
    assert.equal(s.shutdownReconnected, false);
  });
});

describe('isSendable', () => {
  it('refuses empty and whitespace-only text', () => {
    assert.equal(isSendable(''), false);
    assert.equal(isSendable('  \n\t '), false);
    assert.equal(isSendable(' x '), true);
  });
});
