// The IPC contract at runtime: malformed requests are refused with a clear
// error before any handler runs, through dispatch (Electron's IPC) and the
// browser shell's POST alike; and the Electron door's sender check.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CHANNELS, ErrorCode, IPC_PREFIX, type Channel } from '../contract/index';
import { requestSchemas } from '../contract/schemas';
import { dispatch, type HandlerContext, type Handlers } from './handlers';
import { handleInvoke, isTrustedSender, type SenderLike } from './ipc-guard';
import { startShellServer, type ShellServer } from '../shell/server';

const ctx: HandlerContext = { clientId: 't', emit: () => undefined };

/** Handlers that only record that they ran (and with what). */
function recordingHandlers(): { handlers: Handlers; ran: { channel: Channel; req: unknown }[] } {
  const ran: { channel: Channel; req: unknown }[] = [];
  const handlers = Object.fromEntries(
    CHANNELS.map((c) => [
      c,
      async (req: unknown) => {
        ran.push({ channel: c, req });
        return { ok: true };
      },
    ]),
  ) as unknown as Handlers;
  return { handlers, ran };
}

const malformed: [Channel, unknown, string][] = [
  ['kv:put', { key: 'not base64!', value: '' }, 'invalid request: kv:put.key must be base64'],
  ['kv:put', { key: 'YQ==' }, 'invalid request: kv:put.value is required'],
  ['kv:window', { prefix: '/a', offset: -1, limit: 10 }, 'invalid request: kv:window.offset must be ≥ 0'],
  ['kv:window', { prefix: 5, offset: 0, limit: 10 }, 'invalid request: kv:window.prefix must be a string'],
  ['lease:grant', { ttl: 1.5 }, 'invalid request: lease:grant.ttl must be a whole number'],
  ['lease:revoke', { id: '12abc' }, 'invalid request: lease:revoke.id must be a decimal id'],
  ['kv:txn', { compares: [], success: [{ type: 'exec', key: 'k' }], failure: [] }, 'invalid request: kv:txn.success.0.type must be a put, get or delete'],
  ['auth:role-grant', { name: 'r', perm: { type: 'all', key: 'k', scope: 'key' } }, 'invalid request: auth:role-grant.perm.type must be read, write or readwrite'],
  ['maint:snapshot', { opId: 'x', path: '/tmp/evil.db' }, 'invalid request: maint:snapshot.path takes only an opId: main chooses where the file goes'],
  ['backup:restore', { opId: 'x', name: '../../etc/passwd' }, 'invalid request: backup:restore.name must be a file name from backup:list, not a path'],
  ['conn:connect', 'embedded', 'invalid request: conn:connect needs an object request'],
];

describe('the contract validates every request at runtime', () => {
  it('has one schema per channel', () => {
    assert.deepEqual(Object.keys(requestSchemas).sort(), [...CHANNELS].sort());
  });

  it('dispatch refuses malformed payloads with a clear error and never runs the handler', async () => {
    const { handlers, ran } = recordingHandlers();
    for (const [channel, req, message] of malformed) {
      const env = await dispatch(handlers, channel, req, ctx);
      assert.deepEqual(env, { ok: false, error: { code: ErrorCode.InvalidRequest, message } }, `${channel} ${JSON.stringify(req)}`);
    }
    assert.deepEqual(ran, []);
  });

  it('a well-formed request reaches its handler as parsed (extra fields dropped)', async () => {
    const { handlers, ran } = recordingHandlers();
    const env = await dispatch(handlers, 'kv:put', { key: 'YQ==', value: '', extra: { a: 1 } }, ctx);
    assert.equal(env.ok, true);
    assert.deepEqual(ran, [{ channel: 'kv:put', req: { key: 'YQ==', value: '' } }]);
    assert.equal((await dispatch(handlers, 'conn:status', undefined, ctx)).ok, true, 'no payload is an empty request');
  });

  describe('through the browser shell\'s POST', () => {
    let server: ShellServer;
    const rendererDir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-contract-'));
    const rec = recordingHandlers();
    before(async () => {
      fs.writeFileSync(path.join(rendererDir, 'index.html'), 'x');
      server = await startShellServer({ rendererDir, handlers: () => rec.handlers, token: 'tok' });
    });
    after(async () => {
      await server.close();
      fs.rmSync(rendererDir, { recursive: true, force: true });
    });

    it('refuses the same payloads with the same errors', async () => {
      for (const [channel, req, message] of malformed) {
        const r = await fetch(`http://127.0.0.1:${server.port}/api/invoke/${channel}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-etcdesk-token': 'tok' },
          body: JSON.stringify(req),
        });
        assert.equal(r.status, 200);
        assert.deepEqual(await r.json(), { ok: false, error: { code: ErrorCode.InvalidRequest, message } });
      }
      assert.deepEqual(rec.ran, []);
    });
  });
});

describe('Electron\'s IPC door (ipc-guard)', () => {
  const sender = (id: number): SenderLike & { sent: unknown[] } => {
    const s = { id, mainFrame: { frame: `main-${id}` }, sent: [] as unknown[], send: (c: string, p: unknown) => void s.sent.push([c, p]) };
    return s;
  };

  it('trusts only our window\'s top frame', () => {
    const wc = sender(1);
    const win = { webContents: wc };
    assert.equal(isTrustedSender({ sender: wc, senderFrame: wc.mainFrame }, win), true);
    assert.equal(isTrustedSender({ sender: wc, senderFrame: { frame: 'iframe' } }, win), false, 'an iframe in our window');
    assert.equal(isTrustedSender({ sender: wc, senderFrame: null }, win), false, 'a frame already gone');
    const other = sender(2);
    assert.equal(isTrustedSender({ sender: other, senderFrame: other.mainFrame }, win), false, 'another window');
    assert.equal(isTrustedSender({ sender: wc, senderFrame: wc.mainFrame }, null), false, 'no window yet');
  });

  it('the invoke handler checks the channel, then the sender, then the request, and emits to the caller only', async () => {
    const wc = sender(7);
    const { handlers, ran } = recordingHandlers();
    handlers['kv:window'] = async (_req, c) => {
      c.emit('progress', { opId: 'o', label: 'l', done: 1, total: 1 });
      return { total: 0, offset: 0, rows: [], revision: 1, partial: false };
    };
    const invoke = handleInvoke(() => handlers, () => ({ webContents: wc }));
    assert.deepEqual(await invoke({ sender: wc, senderFrame: wc.mainFrame }, 'shell:exec', {}), { ok: false, error: { code: ErrorCode.App, message: 'unknown channel shell:exec' } });
    const iframe = await invoke({ sender: wc, senderFrame: {} }, 'conn:status', {});
    assert.deepEqual(iframe, { ok: false, error: { code: ErrorCode.App, message: 'forbidden sender' } });
    const bad = await invoke({ sender: wc, senderFrame: wc.mainFrame }, 'kv:get', { key: 7 });
    assert.equal(bad.ok, false);
    assert.deepEqual(ran, []);
    const ok = await invoke({ sender: wc, senderFrame: wc.mainFrame }, 'kv:window', { prefix: '', offset: 0, limit: 1 });
    assert.equal(ok.ok, true);
    assert.deepEqual(wc.sent, [[`${IPC_PREFIX}progress`, { opId: 'o', label: 'l', done: 1, total: 1 }]]);
  });
});
