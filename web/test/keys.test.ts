import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type KeyLike, keyAction } from '../src/keys';

const key = (k: string, mods: Partial<KeyLike> = {}): KeyLike => ({
  key: k,
  shiftKey: false,
  ctrlKey: false,
  altKey: false,
  metaKey: false,
  ...mods,
});

describe('keyAction', () => {
  it('Enter sends', () => {
    assert.equal(keyAction(key('Enter', { code: 'Enter' })), 'send');
  });

  it('Shift+Enter is a newline, not a send', () => {
    assert.equal(keyAction(key('Enter', { shiftKey: true })), null);
  });

  it('Enter while an IME composes does not send', () => {
    assert.equal(keyAction(key('Enter', { isComposing: true })), null);
  });

  it('Ctrl+Shift+X interrupts whatever the layout reports as key', () => {
    assert.equal(keyAction(key('X', { code: 'KeyX', ctrlKey: true, shiftKey: true })), 'interrupt');
    assert.equal(keyAction(key('x', { ctrlKey: true, shiftKey: true })), 'interrupt');
  });

  it('other combinations do nothing', () => {
    assert.equal(keyAction(key('x', { ctrlKey: true })), null);
    assert.equal(keyAction(key('X', { shiftKey: true, code: 'KeyX' })), null);
    assert.equal(keyAction(key('X', { ctrlKey: true, shiftKey: true, altKey: true })), null);
    assert.equal(keyAction(key('a')), null);
    assert.equal(keyAction(key('Enter', { ctrlKey: true })), null);
  });
});
