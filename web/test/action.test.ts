import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JSDOM } from 'jsdom';
import { actionParts, fillWithAction, isPlainClick, safeActionHref, sessionFromHref } from '../src/action';

const RESTARTED =
  'Your session has been restarted to maintain performance. Your conversation history is preserved. [Continue in new session]';
const ACTION = { label: 'Continue in new session', href: '/?session=abc-2' };

describe('safeActionHref', () => {
  it('accepts same-origin paths', () => {
    assert.equal(safeActionHref('/?session=abc-2'), '/?session=abc-2');
    assert.equal(safeActionHref('/'), '/');
    assert.equal(safeActionHref('/sessions/x#y'), '/sessions/x#y');
  });

  it('refuses other origins, schemes and anything a browser would read as a host', () => {
    for (const href of [
      'javascript:alert(1)',
      'JAVASCRIPT:alert(1)',
      ' javascript:alert(1)',
      'data:text/html,<b>x</b>',
      'https://evil.com/',
      '//evil.com',
      '//evil.com/?session=x',
      '/\\evil.com',
      '/\t/evil.com',
      '/\n/evil.com',
      ' /x',
      '/\\\\evil.com',
      '?session=x',
      'session',
      '',
    ]) {
      assert.equal(safeActionHref(href), null, JSON.stringify(href));
    }
    assert.equal(safeActionHref(undefined), null);
    assert.equal(safeActionHref(42), null);
  });
});

describe('actionParts', () => {
  it('replaces the bracketed label with the link', () => {
    assert.deepEqual(actionParts(RESTARTED, ACTION), [
      { kind: 'text', text: 'Your session has been restarted to maintain performance. Your conversation history is preserved. ' },
      { kind: 'link', text: 'Continue in new session', href: '/?session=abc-2' },
    ]);
    assert.deepEqual(actionParts('Go [here] now', { label: 'here', href: '/x' }), [
      { kind: 'text', text: 'Go ' },
      { kind: 'link', text: 'here', href: '/x' },
      { kind: 'text', text: ' now' },
    ]);
  });

  it('keeps the message as sent without an action or with an unsafe href', () => {
    assert.deepEqual(actionParts(RESTARTED, undefined), [{ kind: 'text', text: RESTARTED }]);
    assert.deepEqual(actionParts(RESTARTED, { ...ACTION, href: 'javascript:alert(1)' }), [{ kind: 'text', text: RESTARTED }]);
    assert.deepEqual(actionParts(RESTARTED, { ...ACTION, href: '//evil.com' }), [{ kind: 'text', text: RESTARTED }]);
    assert.deepEqual(actionParts(RESTARTED, { label: '', href: '/' }), [{ kind: 'text', text: RESTARTED }]);
  });

  it('puts the link after a message that does not mention it', () => {
    assert.deepEqual(actionParts('Restarted.', ACTION), [
      { kind: 'text', text: 'Restarted. ' },
      { kind: 'link', text: 'Continue in new session', href: '/?session=abc-2' },
    ]);
  });
});

describe('fillWithAction', () => {
  const doc = new JSDOM('<!doctype html><body><p id="p">old</p></body>').window.document;
  const p = doc.getElementById('p') as unknown as HTMLElement;

  it('builds the link as an element and everything else as text', () => {
    fillWithAction(p, `<img src=x onerror=alert(1)> ${RESTARTED}`, ACTION);
    const links = p.querySelectorAll('a');
    assert.equal(links.length, 1);
    assert.equal(links[0]?.className, 'notice-action');
    assert.equal(links[0]?.getAttribute('href'), '/?session=abc-2');
    assert.equal(links[0]?.textContent, 'Continue in new session');
    assert.equal(p.querySelector('img'), null);
    assert.equal(p.textContent, `<img src=x onerror=alert(1)> ${RESTARTED.replace('[Continue in new session]', 'Continue in new session')}`);
  });

  it('never links an unsafe href and treats the label as text', () => {
    fillWithAction(p, 'Go [<b>x</b>]', { label: '<b>x</b>', href: '//evil.com' });
    assert.equal(p.querySelector('a, b'), null);
    assert.equal(p.textContent, 'Go [<b>x</b>]');
    fillWithAction(p, 'Go [<b>x</b>]', { label: '<b>x</b>', href: '/ok' });
    assert.equal(p.querySelector('b'), null);
    assert.equal(p.querySelector('a')?.textContent, '<b>x</b>');
  });
});

describe('sessionFromHref', () => {
  const here = { origin: 'http://127.0.0.1:8080', pathname: '/' };
  it('finds the session an app link opens', () => {
    assert.equal(sessionFromHref('/?session=abc-2', here), 'abc-2');
    assert.equal(sessionFromHref('?session=a%20b', here), 'a b');
  });
  it('leaves other links to the browser', () => {
    assert.equal(sessionFromHref('/', here), null);
    assert.equal(sessionFromHref('/other?session=x', here), null);
    assert.equal(sessionFromHref('//evil.com/?session=x', here), null);
  });
});

describe('isPlainClick', () => {
  const click = { button: 0, ctrlKey: false, metaKey: false, shiftKey: false, altKey: false };
  it('only an unmodified left click', () => {
    assert.equal(isPlainClick(click), true);
    assert.equal(isPlainClick({ ...click, ctrlKey: true }), false);
    assert.equal(isPlainClick({ ...click, metaKey: true }), false);
    assert.equal(isPlainClick({ ...click, button: 1 }), false);
  });
});
