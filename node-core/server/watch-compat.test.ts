// etcdctl watch against real etcd 3.4 and etcdesk-node, side by side: the
// same writes in the same order, the same watch output.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { etcdctl, hasEtcd, startEtcd, startEtcdesk, type ServerProc } from '../testing/processes';
import { background, lines, normalize, sleep, until, type Background } from './compat-helpers.test';

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

  interface WatchOpts {
    /** The output is complete at this many lines (both sides; more is a difference too). */
    expectLines?: number;
    /** Interactive commands, written before anything else. */
    stdin?: string[];
    /** Waited for on each side before `during` runs (e.g. the answer to a progress request). */
    ready?: (out: string) => boolean;
    /** Compare whole events in any order (interactive mode prints each watcher from its own goroutine). */
    unordered?: boolean;
    /** A key inside the watched range: written until the watch reports it, so `during` runs live. */
    arm?: string;
  }

  /**
   * A watch run in the background on both servers while `during` writes; outputs compared. With
   * `expectLines` the output must reach exactly that many lines; without, etcdctl must exit (a
   * watch the server refuses or cancels).
   */
  async function watchSame(args: string[], during: () => Promise<void>, opts: WatchOpts = {}): Promise<string> {
    const ws = servers().map((s) => background(s.endpoint, args));
    const show = (): string => ws.map((w) => w.output()).join('--- ours:\n');
    if (opts.stdin) for (const w of ws) for (const l of opts.stdin) w.write(l);
    if (opts.ready) await until(() => ws.every((w) => opts.ready!(w.output())), 10_000, 'the watch to be ready', show);
    const from = opts.arm ? await armBoth(ws, opts.arm, args.includes('--prev-kv')) : [0, 0];
    await during();
    let outs: { stdout: string; stderr: string }[];
    if (opts.expectLines !== undefined) {
      const want = opts.expectLines;
      await until(() => ws.every((w, i) => lines(w.output().slice(from[i])).length >= want), 10_000, `${want} lines of watch output`, show);
      outs = await Promise.all(ws.map((w) => w.stop()));
    } else {
      const exited = await Promise.race([Promise.all(ws.map((w) => w.exited)), sleep(10_000).then(() => undefined)]);
      outs = await Promise.all(ws.map((w) => w.stop()));
      assert.ok(exited, `etcdctl ${args.join(' ')} was expected to exit:\n${outs.map((o) => o.stdout + o.stderr).join('---\n')}`);
    }
    const [a, b] = outs.map((o, i) => ({ stdout: o.stdout.slice(from[i]), stderr: o.stderr }));
    // unordered: several watchers on one etcdctl stream print from one goroutine each, a field per
    // Println, so the lines of two watchers reporting the same write interleave (seen from etcd 3.4
    // itself: "PUT PUT ia 1 ia 1"): compare the multiset of lines, not whole events
    const view = (x: string): string => (opts.unordered ? lines(normalize(x)).sort().join('\n') : normalize(x));
    assert.equal(view(b.stdout), view(a.stdout), `etcdctl ${args.join(' ')}`);
    assert.equal(normalize(b.stderr), normalize(a.stderr));
    if (opts.expectLines !== undefined) assert.equal(lines(a.stdout).length, opts.expectLines, `etcd's output of etcdctl ${args.join(' ')}:\n${a.stdout}`);
    if (process.env.SHOW_OUTPUT) console.log(`--- ${args.join(' ')}\n${b.stdout}${b.stderr}`);
    return b.stdout;
  }

  /**
   * Puts `key` on each server until its watch prints it, then deletes it and waits for that event:
   * the watch is live. The sides may need different numbers of puts, so the side with fewer is
   * padded with puts outside any watched range to keep the revisions equal. Returns, per side,
   * where the output after arming starts.
   */
  async function armBoth(ws: Background[], key: string, prevKv: boolean): Promise<number[]> {
    const puts = [0, 0];
    await Promise.all(
      servers().map(async (s, i) => {
        for (;;) {
          const v = `armed${++puts[i]}`;
          assert.equal((await etcdctl(s.endpoint, ['put', key, v])).code, 0);
          const seen = await until(() => ws[i].output().includes(`${key}\n${v}\n`), 1000).then(
            () => true,
            () => false,
          );
          if (seen) return;
          if (puts[i] > 20) throw new Error(`${s.kind}: the watch never reported ${key}:\n${ws[i].output()}`);
        }
      }),
    );
    const max = Math.max(...puts);
    await Promise.all(
      servers().map(async (s, i) => {
        for (let n = puts[i]; n < max; n++) assert.equal((await etcdctl(s.endpoint, ['put', 'zz-pad', String(n)])).code, 0);
        assert.equal((await etcdctl(s.endpoint, ['del', key])).code, 0);
      }),
    );
    const end = prevKv ? new RegExp(`DELETE\\n${key}\\narmed${'\\d+'}\\n${key}\\n\\n$`) : new RegExp(`DELETE\\n${key}\\n\\n$`);
    await until(() => ws.every((w) => end.test(w.output())), 5000, `the delete of ${key}`, () => ws.map((w) => w.output()).join('---\n'));
    return ws.map((w) => w.output().length);
  }

  it('history: --rev, --prefix, ranges, --prev-kv, json', async () => {
    await both(['put', 'k1', 'a'], ['put', 'k2', 'b'], ['del', 'k1'], ['put', 'k1', 'c'], ['put', 'x', 'y'], ['put', 'k3', 'd', '--lease', '0']);
    const out = await watchSame(['watch', '--rev', '1', '--prefix', 'k'], async () => undefined, { expectLines: 15 });
    assert.match(out, /DELETE\nk1\n\n/);
    await watchSame(['watch', '--rev', '3', 'k1', '--prev-kv'], async () => undefined, { expectLines: 8 });
    await watchSame(['watch', '--rev', '2', 'k1', 'k3', '-w', 'json'], async () => undefined, { expectLines: 1 });
    await watchSame(['watch', '--rev', '1', '', '--prefix', '--prev-kv', '-w', 'json'], async () => undefined, { expectLines: 1 });
  });

  it('live: events while watching, multi-key txn, deletes of ranges', async () => {
    await watchSame(
      ['watch', '--prefix', 'live', '--prev-kv'],
      async () => {
        await both(['put', 'live1', 'v1'], ['put', 'live2', 'v2'], ['put', 'live1', 'v3'], ['del', 'live', '--prefix'], ['put', 'live3', 'v4']);
      },
      { expectLines: 24, arm: 'live0' },
    );
  });

  it('interactive: several watchers on one stream, progress requests and notifications', async () => {
    await watchSame(
      ['watch', '-i'],
      async () => {
        await both(['put', 'ia', '1'], ['put', 'ib', '2']);
      },
      {
        stdin: ['watch ia\n', 'watch ib --prev-kv\n', 'watch i --prefix\n', 'progress\n'],
        // the progress request follows the three creates on the stream: once each watcher printed
        // its notice, all three watch, and the writes come after
        ready: (out) => (out.match(/^progress notify: \d+$/gm) ?? []).length >= 3,
        expectLines: 15,
        unordered: true,
      },
    );
  });

  it('a progress request on a quiet stream (etcdctl has no flag for progress_notify; watch-service.test.ts covers the interval)', async () => {
    await watchSame(['watch', '-i'], async () => undefined, { stdin: ['watch quiet\n', 'progress\n'], expectLines: 1 });
  });

  it('compacted start revision: canceled with the compaction error', async () => {
    await both(['put', 'c1', 'a'], ['put', 'c1', 'b'], ['put', 'c1', 'c']);
    const [st] = await Promise.all(servers().map((s) => etcdctl(s.endpoint, ['get', 'c1', '-w', 'json'])));
    const rev = (JSON.parse(st.stdout) as { header: { revision: number } }).header.revision;
    await both(['compaction', String(rev - 1)]);
    await watchSame(['watch', '--rev', String(rev - 2), 'c1'], async () => undefined);
    await watchSame(['watch', '--rev', String(rev - 1), 'c1'], async () => undefined, { expectLines: 6 });
  });

  it('errors: range end before key, prefix with range end', async () => {
    await watchSame(['watch', 'b', 'a'], async () => undefined);
    await both(['watch', 'a', 'b', '--prefix']);
  });
});
