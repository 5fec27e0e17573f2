// etcdctl against real etcd 3.4 and against etcdesk-node, side by side: the
// same commands in the same order must print the same output and errors
// (cluster and member ids aside; the raft term of a single member is etcd's).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { maskHeaderIds } from '../testing/wire-mask';
import { etcdctl, hasEtcd, startEtcd, startEtcdesk, tempDir, type CtlResult, type ServerProc } from '../testing/processes';

function normalize(s: string): string {
  return s
    .replace(/"cluster_id":\d+/g, '"cluster_id":X')
    .replace(/"member_id":\d+/g, '"member_id":X')
    .replace(/"ClusterID" : \d+/g, '"ClusterID" : X')
    .replace(/"MemberID" : \d+/g, '"MemberID" : X')
    .replace(/127\.0\.0\.1:\d+/g, 'ENDPOINT')
    .replace(/"ts":"[^"]*"/g, '"ts":T')
    .replace(/client-[0-9a-f-]{36}/g, 'client-UUID');
}

/** -w protobuf prints the marshalled response: compared as bytes, the header's ids masked in place. */
const normalizeProtobuf = (out: string): string => maskHeaderIds(Buffer.from(out, 'latin1'));

describe('etcdctl compatibility: KV', { skip: !hasEtcd() && 'etcd/etcdctl not installed' }, () => {
  let etcd: ServerProc;
  let ours: ServerProc;
  const valueFile = path.join(tempDir('compat-values'), 'big');

  before(async () => {
    [etcd, ours] = await Promise.all([startEtcd(), startEtcdesk()]);
    fs.writeFileSync(valueFile, 'x'.repeat(1_600_000));
  });
  after(async () => {
    await Promise.all([etcd?.stop(), ours?.stop()]);
  });

  async function both(args: string[], opts: { stdin?: string; protobuf?: boolean } = {}): Promise<[CtlResult, CtlResult]> {
    const a = await etcdctl(etcd.endpoint, args, opts);
    const b = await etcdctl(ours.endpoint, args, opts);
    return [a, b];
  }

  async function same(args: string[], opts: { stdin?: string; protobuf?: boolean } = {}): Promise<CtlResult> {
    const [a, b] = await both(args, opts);
    const norm = (r: CtlResult): { code: number; stdout: string; stderr: string } => ({
      code: r.code,
      stdout: opts.protobuf && r.code === 0 ? normalizeProtobuf(r.stdout) : normalize(r.stdout),
      stderr: normalize(r.stderr),
    });
    assert.deepEqual(norm(b), norm(a), `etcdctl ${args.join(' ')}`);
    return b;
  }

  it('put and get in every output format', async () => {
    await same(['put', 'foo', 'bar']);
    await same(['put', 'foo', 'baz', '--prev-kv']);
    await same(['put', 'foo', 'qux', '--prev-kv', '-w', 'json']);
    await same(['get', 'foo']);
    await same(['get', 'foo', '-w', 'json']);
    await same(['get', 'foo', '-w', 'fields']);
    await same(['get', 'foo', '-w', 'protobuf'], { protobuf: true });
    await same(['put', 'foo', 'again', '-w', 'protobuf'], { protobuf: true });
    await same(['get', 'missing', '-w', 'json']);
    await same(['get', 'foo', '--print-value-only']);
    await same(['get', 'foo', '--hex']);
  });

  it('range options: prefix, from-key, limit, sort, keys-only, count-only, rev', async () => {
    for (const k of ['a1', 'a3', 'a2', 'b1', 'b2', 'c', 'a4']) await same(['put', k, `v-${k}`]);
    await same(['put', 'a2', 'second']);
    await same(['get', 'a', '--prefix']);
    await same(['get', 'a', '--prefix', '-w', 'json']);
    await same(['get', 'b', '--from-key']);
    await same(['get', 'a', '--prefix', '--limit', '2', '-w', 'json']);
    await same(['get', 'a', '--prefix', '--sort-by', 'MODIFY', '--order', 'DESCEND']);
    await same(['get', 'a', '--prefix', '--sort-by', 'VALUE', '--order', 'ASCEND']);
    await same(['get', 'a', '--prefix', '--sort-by', 'CREATE', '--order', 'DESCEND', '--limit', '3']);
    await same(['get', 'a', '--prefix', '--sort-by', 'VERSION', '--order', 'DESCEND']);
    await same(['get', 'a', '--prefix', '--order', 'DESCEND']);
    await same(['get', 'a', '--prefix', '--keys-only']);
    await same(['get', 'a', '--prefix', '--count-only', '-w', 'json']);
    await same(['get', '', '--from-key', '--keys-only']);
    await same(['get', 'a1', 'b2']);
    await same(['get', 'a2', '--rev', '6', '-w', 'json']);
    await same(['get', 'a', '--prefix', '--rev', '4']);
    await same(['get', 'a', '--prefix', '--rev', '1000']);
  });

  it('delete with prev-kv, prefix and ranges', async () => {
    await same(['del', 'a1', '--prev-kv']);
    await same(['del', 'nothing']);
    await same(['del', 'b', '--prefix', '-w', 'json']);
    await same(['del', 'a2', 'a4', '--prev-kv']);
    await same(['put', 'a1', 'reborn']);
    await same(['get', 'a1', '-w', 'json']);
  });

  it('txn in its interactive stdin form, both branches, nested errors', async () => {
    const txn = (compares: string[], success: string[], failure: string[]): string => [...compares, '', ...success, '', ...failure, ''].join('\n') + '\n';
    await same(['txn', '-i'], { stdin: txn(['value("a1") = "reborn"'], ['put t1 yes', 'get a1'], ['put t1 no']) });
    await same(['txn', '-i', '-w', 'json'], { stdin: txn(['mod("a1") > "1000"'], ['put t2 yes'], ['put t2 no', 'get t1', 'del a3']) });
    await same(['txn', '-i', '-w', 'protobuf'], { stdin: txn(['version("t1") = "1"', 'create("t1") < "1000"'], ['get t', '--prefix'], []), protobuf: true });
    await same(['txn', '-i'], { stdin: txn(['version("none") = "0"'], ['put none created'], []) });
    await same(['txn', '-i'], { stdin: txn([], ['put d1 x', 'put d1 y'], []) });
    await same(['txn', '-i'], { stdin: txn([], ['del d --prefix', 'put d1 y'], []) });
    const many = Array.from({ length: 129 }, (_, i) => `put many${i} v`);
    await same(['txn', '-i'], { stdin: txn([], many, []) });
    await same(['get', 't', '--prefix', '-w', 'json']);
  });

  it('errors: request too large, empty key, compaction and revisions out of range', async () => {
    const big = fs.readFileSync(valueFile, 'utf8');
    await same(['put', 'big'], { stdin: big });
    await same(['get', 'big', '--count-only', '-w', 'json']);
    await same(['put', '', 'x']);
    await same(['compaction', '5']);
    await same(['compaction', '3']);
    await same(['get', 'a', '--prefix', '--rev', '4']);
    await same(['get', 'a', '--prefix', '--rev', '5', '-w', 'json']);
    await same(['compaction', '100000']);
    await same(['compaction', '--physical', '9']);
    await same(['get', '', '--from-key', '-w', 'json']);
  });
});
