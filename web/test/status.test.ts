import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PREPARING_TEXT, statusView } from '../src/status';

describe('statusView', () => {
  it('follows the connection, then the session', () => {
    assert.equal(statusView('connecting', null, null).text, 'Connecting...');
    assert.equal(statusView('open', null, null).text, 'Connecting...');
    assert.deepEqual(statusView('open', 'preparing', null), { text: PREPARING_TEXT, tone: 'busy', progress: true });
    assert.equal(PREPARING_TEXT, 'Preparing your session (up to 30 seconds)...');
    assert.deepEqual(statusView('open', 'ready', null), { text: 'Ready', tone: 'ok', progress: false });
    assert.equal(statusView('reconnecting', 'ready', null).text, 'Reconnecting...');
  });

  it('uses the frames’ text for failed and ended sessions', () => {
    const msg = 'Session ended (duration limit). You can start a new session.';
    assert.deepEqual(statusView('open', 'ended', msg), { text: msg, tone: 'error', progress: false });
    assert.equal(statusView('closed', 'failed', null).tone, 'error');
    assert.notEqual(statusView('closed', 'failed', null).text, '');
  });

  it('says why it stopped reconnecting', () => {
    const msg = 'That session does not exist or is not yours.';
    assert.equal(statusView('closed', 'ready', msg).text, msg);
  });
});
