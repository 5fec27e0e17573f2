// A quota of a few pages (13 × 4 KiB) behaves as etcd 3.4's: the same small
// puts are accepted until the data fills it, then `etcdserver: mvcc:
// database space exceeded` and the NOSPACE alarm. etcd counts bolt's file
// pages, ours LMDB's pages in use plus bolt's meta pages: the first refused
// put may differ by a few (measured: etcd 129, ours 131). The puts go one
// etcdctl run each, as a user at the CLI makes them: etcd updates its size
// only when its batch commits (100 ms), so a tight client loop lets more
// puts in before the refusal (157 measured) on etcd than on ours.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { etcdctl, hasEtcd, startEtcd, startEtcdesk, type ServerProc } from '../testing/processes';

const QUOTA = ['--quota-backend-bytes', String(13 * 4096)];
const TOLERANCE = 5;

/** Index of the first refused put of key k<i> = 100 bytes, with its error and the alarms then listed. */
async function fillUp(s: ServerProc): Promise<{ first: number; message: string; alarms: string }> {
  for (let i = 0; i < 400; i++) {
    const r = await etcdctl(s.endpoint, ['put', `k${i}`, 'v'.repeat(100)]);
    if (r.code !== 0) {
      const alarms = (await etcdctl(s.endpoint, ['alarm', 'list'])).stdout.replace(/memberID:\d+/g, 'memberID:X');
      return { first: i, message: r.stderr.trim().split('\n').pop() ?? '', alarms };
    }
  }
  throw new Error('the quota never filled');
}

const procs: ServerProc[] = [];
after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
});

describe('tiny backend quota', { skip: !hasEtcd() && 'etcd not installed' }, () => {
  it('accepts small puts until the data fills 13 pages, then refuses with NOSPACE, as etcd', { timeout: 120_000 }, async () => {
    const [etcd, ours] = await Promise.all([startEtcd({ extraArgs: QUOTA }), startEtcdesk({ extraArgs: [...QUOTA, '--log-level', 'warn'] })]);
    procs.push(etcd, ours);
    const [want, got] = await Promise.all([fillUp(etcd), fillUp(ours)]);
    assert.ok(want.first > 50, `etcd itself accepts many small puts (${want.first})`);
    assert.ok(Math.abs(got.first - want.first) <= TOLERANCE, `first refused put: etcd ${want.first}, ours ${got.first}`);
    assert.deepEqual({ message: got.message, alarms: got.alarms }, { message: want.message, alarms: want.alarms });
    assert.equal(want.message, 'Error: etcdserver: mvcc: database space exceeded');
    assert.equal(want.alarms, 'memberID:X alarm:NOSPACE \n');
  });
});
