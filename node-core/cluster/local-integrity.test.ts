// The start-up check of a member's own store (checkLocalIntegrity): a record
// that does not hold what its revision says refuses the start, whether the
// check runs inside the checkpoint's hash scan (a clean close at the current
// revision) or on its own (no checkpoint). The records are changed through
// the backend, checksums included, as a buggy write would leave them.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, test } from 'node:test';
import { Backend } from '../backend/backend';
import { MvccStore } from '../mvcc';
import { decodeKeyValue, encodeKeyValue } from '../proto/gen/mvccpb';
import { tempDir } from '../testing/processes';
import { CorruptionError, checkLocalIntegrity, writeIntegrityCheckpoint } from './corruption';
import type { EtcdNode } from './node';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** The parts of a node the check reads. */
function nodeOf(backend: Backend): EtcdNode {
  const mvcc = MvccStore.open(backend);
  return { backend, mvcc, memberId: 0xabcn, log: { info: () => undefined } } as unknown as EtcdNode;
}

/** A store with three puts (revisions 2..4), committed; with the clean-close checkpoint if asked. */
async function store(checkpoint: boolean): Promise<Backend> {
  const dir = tempDir('integrity');
  dirs.push(dir);
  const be = Backend.open(dir);
  const node = nodeOf(be);
  for (const k of ['a', 'b', 'c']) node.mvcc.put({ key: Buffer.from(k), value: Buffer.from(`v-${k}`), lease: 0n, prev_kv: false, ignore_value: false, ignore_lease: false });
  await be.commit();
  if (checkpoint) await writeIntegrityCheckpoint(node);
  return be;
}

/** Rewrites the record at `rev` (checksum included) with what `change` makes of its bytes. */
async function rewrite(be: Backend, rev: number, change: (bytes: Buffer) => Buffer): Promise<void> {
  for (const [k, v] of [...be.range('key')]) {
    if (Number(k.readBigInt64BE(0)) !== rev) continue;
    be.put('key', Buffer.from(k), change(Buffer.from(v)));
  }
  await be.commit();
}

for (const checkpoint of [true, false]) {
  const how = checkpoint ? 'within the checkpoint hash scan' : 'without a checkpoint';

  test(`a clean store passes (${how})`, async () => {
    const be = await store(checkpoint);
    await checkLocalIntegrity(nodeOf(be));
    await be.close();
  });

  test(`a record holding another revision refuses the start (${how})`, async () => {
    const be = await store(checkpoint);
    await rewrite(be, 3, (b) => Buffer.from(encodeKeyValue({ ...decodeKeyValue(b), mod_revision: 2 })));
    await assert.rejects(checkLocalIntegrity(nodeOf(be)), (e: unknown) => e instanceof CorruptionError && /revision 3 holds a record of revision 2/.test(e.message));
    await be.close();
  });

  test(`a cut-short record refuses the start (${how})`, async () => {
    const be = await store(checkpoint);
    // the value field's length says more bytes than the record holds
    await rewrite(be, 4, (b) => b.subarray(0, b.length - 2));
    await assert.rejects(checkLocalIntegrity(nodeOf(be)), (e: unknown) => e instanceof CorruptionError && /found corrupted records in its store:\nkey bucket: [0-9a-f]+: unexpected EOF/.test(e.message));
    await be.close();
  });
}
