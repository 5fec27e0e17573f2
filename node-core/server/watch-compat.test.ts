// etcdctl watch against real etcd 3.4 and etcdesk-node, side by side: the
// same writes in the same order, the same watch output.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { etcdctl, hasEtcd, startEtcd, startEtcdesk, type ServerProc } from '../testing/processes';
import { background, normalize, sleep, until } from './compat-helpers.test';

describe('etcdctl compatibility: watch', { skip: !hasEtcd() && 'etcd/etcdctl not installed' }, () => {
  let etcd: ServerProc;
  let ours: ServerProc;
  const servers = (): ServerProc[] => [etcd, ours];

  before(async () => {
    const extra = ['--experimental-watch-progress-notify-interval', '300ms'];
    [etcd, ours] = await Promise.all([startEtcd({ extraArgs: extra }), startEtcdesk({ extraArgs: extra })]);
  });
  after(async () => {
    await Promise.all([etcd?.stop(), ours?.stop()]);
  });

  /** Runs the same etcdctl commands on both servers (in parallel), asserting equal outputs. */
  async function both(...cmds: string[][]): Promise<void> {
    for (const args of cmds) {
      const [a, b] = await Promise.all(servers().map((s) => etcdctl(s.endpoint, args)));
      assert.deepEqual({ ...b, stdout: normalize(b.stdout) }, { ...a, stdout: normalize(a.stdout) }, `etcdctl ${args.join(' ')}`);
    }
  }

  /** A watch run in the background on both servers while `during` writes; outputs compared. */
  async function watchSame(args: string[], during: () => Promise<void>, opts: { expectLines?: number; stdin?: string[]; unordered?: boolean } = {}): Promise<string> {
    const ws = servers().map((s) => background(s.endpoint, args));
    if (opts.stdin) for (const w of ws) for (const l of opts.stdin) w.write(l);
    await sleep(400);
    await during();
    if (opts.expectLines) await until(() => ws.every((w) => w.output().split('\n').length > opts.expectLines!), 5000);
    await sleep(200);
    const [a, b] = await Promise.all(ws.map((w) => w.stop()));
    // etcdctl's interactive mode prints each watcher from its own goroutine: the interleaving varies
    const view = (x: string): string => (opts.unordered ? normalize(x).split('\n').sort().join('\n') : normalize(x));
    assert.equal(view(b.stdout), view(a.stdout), `etcdctl ${args.join(' ')}`);
    assert.equal(normalize(b.stderr), normalize(a.stderr));
    if (process.env.SHOW_OUTPUT) console.log(`--- ${args.join(" ")}\n${b.stdout}${b.stderr}`);
    return b.stdout;
  }

  it('history: --rev, --prefix, ranges, --prev-kv, json', async () => {
    await both(['put', 'k1', 'a'], ['put', 'k2', 'b'], ['del', 'k1'], ['put', 'k1', 'c'], ['put', 'x', 'y'], ['put', 'k3', 'd', '--lease', '0']);
    const out = await watchSame(['watch', '--rev', '1', '--prefix', 'k'], async () => undefined, { expectLines: 12 });
    assert.match(out, /DELETE\nk1\n\n/);
    await watchSame(['watch', '--rev', '3', 'k1', '--prev-kv'], async () => undefined, { expectLines: 6 });
    await watchSame(['watch', '--rev', '2', 'k1', 'k3', '-w', 'json'], async () => undefined, { expectLines: 1 });
    await watchSame(['watch', '--rev', '1', '', '--prefix', '--prev-kv', '-w', 'json'], async () => undefined, { expectLines: 1 });
  });

  it('live: events while watching, multi-key txn, deletes of ranges', async () => {
    await watchSame(
      ['watch', '--prefix', 'live', '--prev-kv'],
      async () => {
        await both(['put', 'live1', 'v1'], ['put', 'live2', 'v2'], ['put', 'live1', 'v3'], ['del', 'live', '--prefix'], ['put', 'live3', 'v4']);
      },
      { expectLines: 20 },
    );
  });

  it('interactive: several watchers on one stream, progress requests and notifications', async () => {
    await watchSame(
      ['watch', '-i'],
      async () => {
        await both(['put', 'ia', '1'], ['put', 'ib', '2']);
        await sleep(200);
      },
      { stdin: ['watch ia\n', 'watch ib --prev-kv\n', 'watch i --prefix\n', 'progress\n'], expectLines: 10, unordered: true },
    );
  });

  it('a progress request on a quiet stream (etcdctl has no flag for progress_notify; watch-service.test.ts covers the interval)', async () => {
    await watchSame(['watch', '-i'], async () => sleep(100), { stdin: ['watch quiet\n', 'progress\n'], expectLines: 1 });
  });

  it('compacted start revision: canceled with the compaction error', async () => {
    await both(['put', 'c1', 'a'], ['put', 'c1', 'b'], ['put', 'c1', 'c']);
    const [st] = await Promise.all(servers().map((s) => etcdctl(s.endpoint, ['get', 'c1', '-w', 'json'])));
    const rev = (JSON.parse(st.stdout) as { header: { revision: number } }).header.revision;
    await both(['compaction', String(rev - 1)]);
    await watchSame(['watch', '--rev', String(rev - 2), 'c1'], async () => undefined);
    await watchSame(['watch', '--rev', String(rev - 1), 'c1'], async () => undefined, { expectLines: 3 });
  });

  it('errors: range end before key, prefix with range end', async () => {
    await watchSame(['watch', 'b', 'a'], async () => undefined);
    await both(['watch', 'a', 'b', '--prefix']);
  });
});
