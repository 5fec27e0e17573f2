import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SHORTCUTS, shortcutMatcher } from './shortcuts';

const key = (k: string, mods: Partial<KeyboardEvent> = {}): KeyboardEvent => ({ key: k, ctrlKey: false, metaKey: false, altKey: false, shiftKey: false, target: null, ...mods }) as KeyboardEvent;

describe('keyboard shortcuts', () => {
  it('maps single keys, g-sequences and Ctrl/Cmd+K; leaves the browser its Ctrl shortcuts', () => {
    let t = 0;
    const m = shortcutMatcher(() => t);
    assert.equal(m(key('?')), 'help');
    assert.equal(m(key('n')), 'new-key');
    assert.equal(m(key('k', { ctrlKey: true })), 'palette');
    assert.equal(m(key('k', { metaKey: true })), 'palette');
    for (const c of ['r', 't', 'w', 'l', 'n', 'f', '1']) assert.equal(m(key(c, { ctrlKey: true })), null, `Ctrl+${c} stays the browser's`);
    assert.equal(m(key('g')), null);
    assert.equal(m(key('l')), 'view-leases');
    // A "g" long ago does not turn the next key into a jump.
    m(key('g'));
    t += 5000;
    assert.equal(m(key('t')), 'toggle-theme');
  });
  it('lists every action it can fire in the sheet', () => {
    const listed = new Set(SHORTCUTS.map((s) => s.action));
    for (const a of ['help', 'find', 'new-key', 'refresh', 'toggle-theme', 'view-keys', 'view-txn', 'view-leases', 'view-auth', 'view-cluster', 'view-maintenance', 'view-connections', 'palette']) assert.ok(listed.has(a as never), a);
  });
});
