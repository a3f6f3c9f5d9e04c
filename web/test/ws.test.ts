import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseServerFrame } from '../src/protocol';
import { CLOSE_REPLAY_GAP, CLOSE_SERVICE_RESTART, closeAction, reconnectDelay, wsUrl } from '../src/ws';

describe('wsUrl', () => {
  it('opens a new session without a query', () => {
    assert.equal(wsUrl({ protocol: 'http:', host: '127.0.0.1:8080' }, null, 0), 'ws://127.0.0.1:8080/ws');
  });

  it('binds a new session to a tenant, and never a reattach', () => {
    const loc = { protocol: 'https:', host: 'chat.example' };
    assert.equal(wsUrl(loc, null, 0, 'acme'), 'wss://chat.example/ws?tenant=acme');
    assert.equal(wsUrl(loc, null, 0, 'a&b c'), 'wss://chat.example/ws?tenant=a%26b+c');
    assert.equal(wsUrl(loc, null, 0, null), 'wss://chat.example/ws');
    assert.equal(wsUrl(loc, 's-1', 3, 'acme'), 'wss://chat.example/ws?session=s-1&after_seq=3');
  });

  it('reattaches with session and after_seq, over wss behind https', () => {
    assert.equal(
      wsUrl({ protocol: 'https:', host: 'chat.example' }, 'abc-1', 42),
      'wss://chat.example/ws?session=abc-1&after_seq=42',
    );
  });
});

describe('reconnectDelay', () => {
  it('backs off exponentially from 500 ms to a 10 s cap', () => {
    const mid = () => 0.5;
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 20].map((a) => reconnectDelay(a, mid)),
      [500, 1000, 2000, 4000, 8000, 10000, 10000, 10000],
    );
  });

  it('jitters within ±25%', () => {
    assert.equal(reconnectDelay(1, () => 0), 750);
    assert.equal(reconnectDelay(1, () => 1), 1250);
  });
});

describe('parseServerFrame', () => {
  it('reads frames and drops garbage', () => {
    assert.deepEqual(parseServerFrame('{"type":"delta","text":"a","seq":3}'), { type: 'delta', text: 'a', seq: 3 });
    assert.equal(parseServerFrame('not json'), null);
    assert.equal(parseServerFrame('[1,2]'), null);
    assert.equal(parseServerFrame('{"seq":1}'), null);
    assert.equal(parseServerFrame('null'), null);
  });
});

describe('closeAction', () => {
  const at = (sessionStatus: 'preparing' | 'ready' | 'idle' | 'failed' | 'ended' | null, shutdown: string | null = null) => ({
    sessionId: 's-1',
    sessionStatus,
    shutdown,
  });

  it('reattaches after drops and server restarts', () => {
    for (const code of [1001, 1006, 1013, CLOSE_SERVICE_RESTART]) assert.equal(closeAction(code, at('ready')), 'reconnect', String(code));
    assert.equal(CLOSE_SERVICE_RESTART, 1012);
  });

  it('reloads the history on a replay gap', () => {
    assert.equal(closeAction(CLOSE_REPLAY_GAP, at('ready')), 'reload');
    assert.equal(closeAction(CLOSE_REPLAY_GAP, { sessionId: null, sessionStatus: null, shutdown: null }), 'reconnect');
  });

  it('waits for the next message on a paused session, unless the server is restarting', () => {
    assert.equal(closeAction(1006, at('idle')), 'park');
    assert.equal(closeAction(1000, at('failed')), 'park');
    assert.equal(closeAction(CLOSE_SERVICE_RESTART, at('idle')), 'reconnect');
    assert.equal(closeAction(1006, at('idle', 'The server is restarting.')), 'reconnect');
  });

  it('stops for an ended session', () => {
    assert.equal(closeAction(CLOSE_SERVICE_RESTART, at('ended', 'x')), 'stop');
    assert.equal(closeAction(1006, at('ended')), 'stop');
  });
});
