// The preload's whitelist: only contract channels reach ipcRenderer, only
// contract events can be listened to, and listeners never see Electron's event.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CHANNELS, EVENT_CHANNELS, IPC_PREFIX } from '../contract/index';
import { createBridge, type IpcRendererLike } from './bridge';

function fakeIpc(): IpcRendererLike & { invoked: unknown[][]; listeners: Map<string, ((e: unknown, ...a: unknown[]) => void)[]> } {
  const listeners = new Map<string, ((e: unknown, ...a: unknown[]) => void)[]>();
  const invoked: unknown[][] = [];
  return {
    invoked,
    listeners,
    invoke: async (...args: unknown[]) => {
      invoked.push(args);
      return { ok: true, value: 'answer' };
    },
    on: (c, l) => listeners.set(c, [...(listeners.get(c) ?? []), l]),
    removeListener: (c, l) => listeners.set(c, (listeners.get(c) ?? []).filter((x) => x !== l)),
  };
}

describe('preload bridge whitelist', () => {
  it('passes every contract channel to main through the one invoke channel', async () => {
    const ipc = fakeIpc();
    const bridge = createBridge(ipc);
    for (const c of CHANNELS) assert.deepEqual(await bridge.invoke(c, { x: 1 }), { ok: true, value: 'answer' });
    assert.deepEqual(ipc.invoked.map((a) => a[0]), CHANNELS.map(() => `${IPC_PREFIX}invoke`));
    assert.deepEqual(ipc.invoked.map((a) => a[1]), CHANNELS);
  });

  it('refuses anything else without reaching ipcRenderer', async () => {
    const ipc = fakeIpc();
    const bridge = createBridge(ipc);
    for (const c of ['shell:exec', 'toString', '__proto__', 'etcdesk:invoke', 'conn:list ', '']) {
      const r = await bridge.invoke(c, {});
      assert.deepEqual(r, { ok: false, error: { code: -1, message: `channel not allowed: ${c}` } });
    }
    assert.equal(ipc.invoked.length, 0);
  });

  it('listens only to contract events, hands the payload alone, and unsubscribes', () => {
    const ipc = fakeIpc();
    const bridge = createBridge(ipc);
    assert.throws(() => bridge.on('ipc:anything', () => undefined), /event not allowed/);
    assert.throws(() => bridge.on('hasOwnProperty', () => undefined), /event not allowed/);
    assert.equal(ipc.listeners.size, 0);
    const got: unknown[][] = [];
    const off = bridge.on('keys:changed', (...args: unknown[]) => got.push(args));
    assert.ok(EVENT_CHANNELS.includes('keys:changed'));
    const [l] = ipc.listeners.get(`${IPC_PREFIX}keys:changed`)!;
    l({ sender: 'electron internals' }, { total: 1 });
    assert.deepEqual(got, [[{ total: 1 }]]);
    off();
    assert.equal(ipc.listeners.get(`${IPC_PREFIX}keys:changed`)!.length, 0);
  });
});
