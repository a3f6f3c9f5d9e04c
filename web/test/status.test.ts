import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  composerView,
  ENDED_TEXT,
  FAILED_TEXT,
  IDLE_TEXT,
  PREPARING_TEXT,
  RESTARTING_TEXT,
  RESUMING_TEXT,
  statusView,
} from '../src/status';

describe('statusView', () => {
  it('follows the connection, then the session', () => {
    assert.equal(statusView({ connection: 'connecting', session: null }).text, 'Connecting...');
    assert.equal(statusView({ connection: 'open', session: null }).text, 'Connecting...');
    assert.deepEqual(statusView({ connection: 'open', session: 'preparing' }), { text: PREPARING_TEXT, tone: 'busy', progress: true });
    assert.equal(PREPARING_TEXT, 'Preparing your session (up to 30 seconds)...');
    assert.deepEqual(statusView({ connection: 'open', session: 'ready' }), { text: 'Ready', tone: 'ok', progress: false });
    assert.equal(statusView({ connection: 'reconnecting', session: 'ready' }).text, 'Reconnecting...');
  });

  it('says why a process is starting, with progress each time', () => {
    assert.deepEqual(statusView({ connection: 'open', session: 'preparing', reason: 'resume' }), {
      text: 'Restoring your session...',
      tone: 'busy',
      progress: true,
    });
    assert.equal(RESUMING_TEXT, 'Restoring your session...');
    assert.deepEqual(statusView({ connection: 'open', session: 'preparing', reason: 'restart' }), {
      text: 'Session restarting due to resource limits',
      tone: 'busy',
      progress: true,
    });
    assert.equal(RESTARTING_TEXT, 'Session restarting due to resource limits');
    assert.equal(statusView({ connection: 'open', session: 'preparing', reason: 'something_new' }).text, PREPARING_TEXT);
  });

  it('shows a paused session as resumable, with or without a socket', () => {
    const open = statusView({ connection: 'open', session: 'idle', reason: 'idle_timeout' });
    assert.deepEqual(open, { text: 'Paused — send a message to continue', tone: 'info', progress: false });
    assert.equal(IDLE_TEXT, 'Paused — send a message to continue');
    assert.deepEqual(statusView({ connection: 'closed', session: 'idle' }), open);
    // While the page reattaches after a server restart, that is the news.
    assert.equal(statusView({ connection: 'reconnecting', session: 'idle', reason: 'shutdown' }).text, 'Reconnecting...');
  });

  it('tells the user a failed session restarts on the next message', () => {
    const view = statusView({ connection: 'closed', session: 'failed', message: 'The agent stopped unexpectedly.' });
    assert.deepEqual(view, { text: FAILED_TEXT, tone: 'error', progress: false });
    assert.match(FAILED_TEXT, /Send a message/);
  });

  it('uses the frames’ text for an ended session', () => {
    const msg = 'Session ended (duration limit). You can start a new session.';
    assert.deepEqual(statusView({ connection: 'open', session: 'ended', message: msg }), { text: msg, tone: 'error', progress: false });
    assert.equal(statusView({ connection: 'closed', session: 'ended' }).text, ENDED_TEXT);
  });

  it('shows the session_expiring warning while ready', () => {
    const msg = 'Session will end in 24 minutes. Save your work.';
    assert.deepEqual(statusView({ connection: 'open', session: 'ready', expiring: msg }), { text: msg, tone: 'warn', progress: false });
    // A process starting says so first.
    assert.equal(statusView({ connection: 'open', session: 'preparing', expiring: msg }).text, PREPARING_TEXT);
  });

  it('says why it stopped reconnecting', () => {
    const msg = 'That session does not exist or is not yours.';
    assert.equal(statusView({ connection: 'closed', session: 'ready', connectionMessage: msg }).text, msg);
    assert.equal(statusView({ connection: 'closed', session: 'ready' }).text, 'Disconnected.');
  });
});

describe('composerView', () => {
  it('stays enabled for paused and failed sessions, disabled with a way out once ended', () => {
    for (const s of [null, 'preparing', 'ready', 'idle', 'failed'] as const) {
      assert.deepEqual(composerView(s), { enabled: true, startNew: false }, String(s));
    }
    assert.deepEqual(composerView('ended'), { enabled: false, startNew: true });
  });
});
