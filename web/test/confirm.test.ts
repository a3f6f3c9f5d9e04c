import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JSDOM } from 'jsdom';
import { type ConfirmElements, isConfirmed, TypedConfirm } from '../src/confirm';
import { settle } from './page';

describe('the YES gate', () => {
  it('opens for YES exactly', () => {
    assert.equal(isConfirmed('YES'), true);
    for (const typed of ['', 'yes', 'Yes', ' YES', 'YES ', 'YESS', 'Y', 'NO', 'ＹＥＳ']) {
      assert.equal(isConfirmed(typed), false, JSON.stringify(typed));
    }
  });
});

describe('TypedConfirm', () => {
  const SPEC = { title: 'Clear the queue', body: 'Every pending job fails.', button: 'Clear queue' };

  /** A dialog as the pages' markup has it, open from the start (the constructor closes it). */
  function dialog() {
    const { window } = new JSDOM(
      '<div id="d"><h2 id="t"></h2><p id="b"></p><input id="i"><button id="c">Confirm</button><button id="x">Cancel</button></div>',
    );
    const doc = window.document as unknown as Document;
    const get = <T extends HTMLElement>(id: string) => doc.getElementById(id) as T;
    const el: ConfirmElements = {
      dialog: get('d'),
      title: get('t'),
      body: get('b'),
      input: get<HTMLInputElement>('i'),
      confirm: get<HTMLButtonElement>('c'),
      cancel: get<HTMLButtonElement>('x'),
    };
    const confirm = new TypedConfirm(el);
    const type = (text: string) => {
      el.input.value = text;
      el.input.dispatchEvent(new window.Event('input'));
    };
    const key = (name: string) => el.input.dispatchEvent(new window.KeyboardEvent('keydown', { key: name }));
    return { el, confirm, type, key };
  }

  it("starts closed, and opens with the action's words, an empty field and a disabled button", () => {
    const { el, confirm, type } = dialog();
    assert.equal(el.dialog.hidden, true);
    assert.equal(confirm.isOpen, false);
    assert.equal(el.confirm.disabled, true);
    confirm.ask(SPEC, async () => undefined);
    type('YES');
    confirm.close();
    confirm.ask(SPEC, async () => undefined);
    assert.equal(el.dialog.hidden, false);
    assert.equal(confirm.isOpen, true);
    assert.equal(el.title.textContent, 'Clear the queue');
    assert.equal(el.body.textContent, 'Every pending job fails.');
    assert.equal(el.confirm.textContent, 'Clear queue');
    assert.equal(el.input.value, '', 'each opening starts empty');
    assert.equal(el.confirm.disabled, true);
  });

  it('acts only on YES exactly, by the button or Enter', async () => {
    const { el, confirm, type, key } = dialog();
    let runs = 0;
    confirm.ask(SPEC, async () => {
      runs++;
    });
    for (const typed of ['', 'yes', 'YES ', 'Y']) {
      type(typed);
      assert.equal(el.confirm.disabled, true, JSON.stringify(typed));
      // Enter and a forced click go through the same gate.
      key('Enter');
      el.confirm.disabled = false;
      el.confirm.click();
      await settle();
    }
    assert.equal(runs, 0, 'nothing was done');
    type('YES');
    assert.equal(el.confirm.disabled, false);
    el.confirm.click();
    await settle();
    assert.equal(runs, 1);
    assert.equal(el.dialog.hidden, true);
    assert.equal(confirm.isOpen, false);
    confirm.ask(SPEC, async () => {
      runs++;
    });
    type('YES');
    key('Enter');
    await settle();
    assert.equal(runs, 2, 'Enter confirms');
    assert.equal(el.dialog.hidden, true);
  });

  it('closes on Escape or Cancel without acting', async () => {
    const { el, confirm, type, key } = dialog();
    let runs = 0;
    const action = async () => {
      runs++;
    };
    confirm.ask(SPEC, action);
    type('YES');
    key('Escape');
    assert.equal(el.dialog.hidden, true);
    assert.equal(el.input.value, '');
    assert.equal(el.confirm.disabled, true);
    confirm.ask(SPEC, action);
    type('YES');
    el.cancel.click();
    assert.equal(el.dialog.hidden, true);
    await settle();
    assert.equal(runs, 0);
  });

  it("names the action in the dialog's data- attributes while it is open", async () => {
    const { el, confirm, type } = dialog();
    confirm.ask({ ...SPEC, data: { operation: 'restart', workerId: 'w-1' } }, async () => undefined);
    assert.equal(el.dialog.dataset.operation, 'restart');
    assert.equal(el.dialog.getAttribute('data-worker-id'), 'w-1');
    // Another action's attributes replace them.
    confirm.ask({ ...SPEC, data: { operation: 'clear' } }, async () => undefined);
    assert.deepEqual({ ...el.dialog.dataset }, { operation: 'clear' });
    el.cancel.click();
    assert.deepEqual({ ...el.dialog.dataset }, {}, 'gone on Cancel');
    confirm.ask({ ...SPEC, data: { operation: 'pause' } }, async () => undefined);
    type('YES');
    el.confirm.click();
    await settle();
    assert.deepEqual({ ...el.dialog.dataset }, {}, 'gone once done');
  });

  it('runs an action once while it is in flight, and leaves a dialog opened meanwhile open', async () => {
    const { el, confirm, type, key } = dialog();
    let runs = 0;
    let finish: () => void = () => undefined;
    confirm.ask(SPEC, () => {
      runs++;
      return new Promise<void>((resolve) => (finish = resolve));
    });
    type('YES');
    el.confirm.click();
    assert.equal(el.confirm.disabled, true, 'disabled while it runs');
    el.confirm.disabled = false;
    el.confirm.click();
    key('Enter');
    await settle();
    assert.equal(runs, 1);
    // Closed (a sign-out) and opened for another action before the first ended.
    confirm.close();
    confirm.ask({ ...SPEC, data: { operation: 'reload' } }, async () => undefined);
    type('YES');
    assert.equal(el.confirm.disabled, true, 'still busy');
    finish();
    await settle();
    assert.equal(el.dialog.hidden, false, 'the new one stays open');
    assert.equal(el.dialog.dataset.operation, 'reload');
    assert.equal(el.confirm.disabled, false, 'and may go now');
  });
});
