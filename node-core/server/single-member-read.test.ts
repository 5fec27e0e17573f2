// A linearizable read on a single-member cluster waits for no write that is
// not yet acknowledged: the only voter's read index is the last entry on disk
// (every write it acknowledged is there), not raft's commit index, which for a
// single voter already counts proposals still waiting for their fsync. So a
// UI's read is not held behind the next batch of writers' fsync. It still
// sees every acknowledged write.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EtcdClient } from '../client/index';
import { startSlowDiskMember } from '../testing/slow-disk-member';

test('a single member answers a linearizable read without waiting for a write still being fsynced, and sees it once acknowledged', async (t) => {
  const { running, setSyncDelay } = await startSlowDiskMember(t, 'etcdesk-single-read-');
  const node = running.node;
  const client = new EtcdClient({ endpoints: running.clientUrls });
  t.after(() => client.close());
  const key = Buffer.from('k');
  // a linearizable Range (the default), as the app's kv:get
  const get = async (): Promise<string> => (await client.range({ key })).kvs.map((kv) => Buffer.from(kv.value).toString()).join();
  await node.propose({ put: { key, value: Buffer.from('old') } });

  // a slow disk: the next write's fsync takes a second
  setSyncDelay(1000);
  const events: string[] = [];
  const put = node.propose({ put: { key, value: Buffer.from('new') } }).then(() => events.push('put acknowledged'));
  events.push(`read served: ${await get()}`);
  await put;
  setSyncDelay(0);
  assert.deepEqual(events, ['read served: old', 'put acknowledged']);

  assert.equal(await get(), 'new', 'a read after the acknowledgement sees the write');
});
