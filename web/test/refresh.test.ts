import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_REFRESH, readRefresh, Refresher, saveRefresh, type Timers, updatedText } from '../src/refresh';
import { appDocument, settle } from './page';

/** A storage in memory, optionally refusing everything. */
function memoryStorage(refuse = false): Storage {
  const items = new Map<string, string>();
  return {
    getItem: (k: string) => {
      if (refuse) throw new Error('denied');
      return items.get(k) ?? null;
    },
    setItem: (k: string, v: string) => {
      if (refuse) throw new Error('denied');
      items.set(k, v);
    },
    removeItem: (k: string) => void items.delete(k),
    clear: () => items.clear(),
    key: () => null,
    get length() {
      return items.size;
    },
  };
}

/** Timers the test fires by hand. */
function manualTimers() {
  const pending = new Map<number, { fn: () => void; ms: number }>();
  let next = 1;
  const timers: Timers = {
    set: (fn, ms) => {
      const id = next++;
      pending.set(id, { fn, ms });
      return id;
    },
    clear: (id) => void pending.delete(id as number),
  };
  return {
    timers,
    /** The delays of the timers set and not fired nor cleared. */
    delays: () => [...pending.values()].map((t) => t.ms),
    fire: async () => {
      const all = [...pending.entries()];
      pending.clear();
      for (const [, t] of all) t.fn();
      await settle();
    },
  };
}

describe('refresh interval', () => {
  it('defaults to 30 s and remembers only the intervals offered', () => {
    const storage = memoryStorage();
    assert.equal(readRefresh(storage, 'k'), DEFAULT_REFRESH);
    assert.equal(DEFAULT_REFRESH, 30);
    for (const seconds of [10, 60, 0]) {
      saveRefresh(storage, 'k', seconds);
      assert.equal(readRefresh(storage, 'k'), seconds);
    }
    storage.setItem('k', '7');
    assert.equal(readRefresh(storage, 'k'), 30, 'an interval not offered');
    storage.setItem('k', 'soon');
    assert.equal(readRefresh(storage, 'k'), 30);
    assert.equal(readRefresh(null, 'k'), 30);
    const refusing = memoryStorage(true);
    saveRefresh(refusing, 'k', 10);
    assert.equal(readRefresh(refusing, 'k'), 30, 'refused storage: the default, no exception');
  });

  it('says when the page was updated, hh:mm:ss', () => {
    assert.equal(updatedText(new Date(2026, 0, 2, 9, 5, 7)), 'updated 09:05:07');
    assert.equal(updatedText(new Date(2026, 0, 2, 23, 59, 59)), 'updated 23:59:59');
  });
});

describe('Refresher', () => {
  function refresher(storage = memoryStorage()) {
    const { doc } = appDocument();
    const select = doc.getElementById('dashboard-refresh') as HTMLSelectElement;
    const clock = manualTimers();
    let loads = 0;
    const r = new Refresher({
      select,
      storageKey: 'csp.refresh.test',
      storage,
      load: async () => {
        loads++;
      },
      timers: clock.timers,
    });
    return { select, clock, r, storage, loads: () => loads };
  }

  it('offers 10 s, 30 s, 60 s and off, 30 s chosen at first', () => {
    const { select } = refresher();
    assert.deepEqual(
      [...select.options].map((o) => [o.value, o.textContent]),
      [
        ['10', '10 s'],
        ['30', '30 s'],
        ['60', '60 s'],
        ['0', 'Off'],
      ],
    );
    assert.equal(select.value, '30');
  });

  it('loads at once, then every interval, until stopped', async () => {
    const { clock, r, loads } = refresher();
    await r.start();
    assert.equal(loads(), 1);
    assert.deepEqual(clock.delays(), [30_000]);
    await clock.fire();
    assert.equal(loads(), 2);
    assert.deepEqual(clock.delays(), [30_000], 'the next one after the load ended');
    r.stop();
    assert.deepEqual(clock.delays(), []);
    await clock.fire();
    assert.equal(loads(), 2);
  });

  it('follows the selector, remembers it, and does nothing when off', async () => {
    const { select, clock, r, storage, loads } = refresher();
    await r.start();
    select.value = '10';
    select.dispatchEvent(new select.ownerDocument.defaultView!.Event('change'));
    assert.deepEqual(clock.delays(), [10_000]);
    assert.equal(storage.getItem('csp.refresh.test'), '10');
    select.value = '0';
    select.dispatchEvent(new select.ownerDocument.defaultView!.Event('change'));
    assert.deepEqual(clock.delays(), [], 'off: no timer');
    assert.equal(loads(), 1);
    // A new page reads the remembered choice.
    const again = refresher(storage);
    assert.equal(again.select.value, '0');
    await again.r.start();
    assert.equal(again.loads(), 1, 'off still loads once when the page opens');
    assert.deepEqual(again.clock.delays(), []);
  });
});
