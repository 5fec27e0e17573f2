// etcd_server_proposals_pending counts this member's proposals from proposing
// until answered (applied, refused or timed out): a scrape during a slow fsync
// shows the writes waiting for it, and one after their acknowledgement none.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startSlowDiskMember } from '../testing/slow-disk-member';

test('proposals_pending counts the writes waiting for their fsync and drops to 0 once they are acknowledged', async (t) => {
  const { running, setSyncDelay } = await startSlowDiskMember(t, 'etcdesk-pending-');
  const node = running.node;
  const pending = async (): Promise<number> => {
    const text = await (await fetch(`${running.clientUrls[0]}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('etcd_server_proposals_pending '));
    assert.ok(line, 'the gauge is exposed');
    return Number(line.split(' ')[1]);
  };
  await node.propose({ put: { key: Buffer.from('k'), value: Buffer.from('v0') } });
  assert.equal(await pending(), 0);

  setSyncDelay(1000);
  const puts = [1, 2, 3].map((i) => node.propose({ put: { key: Buffer.from('k'), value: Buffer.from(`v${i}`) } }));
  assert.equal(await pending(), 3, 'three writes wait for the slow fsync');
  setSyncDelay(0);
  await Promise.all(puts);
  assert.equal(await pending(), 0, 'none once every write is acknowledged');
});
