// The v3election gRPC service against real etcd 3.4: the same calls in the
// same order give the same answers (headers, leader keys, errors), and
// Observe streams the same leader changes.
import type * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EtcdClient, prefixEnd } from '../client/client';
import {
  ElectionService,
  type CampaignRequestInit,
  type CampaignResponse,
  type LeaderRequestInit,
  type LeaderResponse,
  type ProclaimRequestInit,
  type ResignRequestInit,
} from '../proto/gen/v3electionpb';
import { hasEtcd, startEtcd, startEtcdesk, type ServerProc } from '../testing/processes';
import { LeaseIds, until } from './compat-helpers.test';

const clientOf = (s: ServerProc): EtcdClient => new EtcdClient({ endpoints: [s.clientUrl], timeoutMs: 20_000 });

/**
 * What may differ between two servers: cluster and member ids; lease ids, mapped per side in order
 * of appearance (LEASEn), in fields and in keys (<name>/<lease id in hex>).
 */
function norm(v: unknown, ids: LeaseIds): unknown {
  return JSON.parse(
    JSON.stringify(v, (k, x: unknown) => {
      if (typeof x === 'bigint') return k === 'cluster_id' || k === 'member_id' ? 'ID' : x === 0n ? '0' : ids.label(x);
      if (x && typeof x === 'object' && (x as { type?: string }).type === 'Buffer') {
        return Buffer.from((x as { data: number[] }).data)
          .toString('latin1')
          .replace(/\/([0-9a-f]+)$/, (_m, h: string) => `/${ids.see(h)}`);
      }
      return x;
    }),
  );
}

async function outcome<T>(p: Promise<T>, ids: LeaseIds): Promise<unknown> {
  try {
    return norm({ ok: await p }, ids);
  } catch (e) {
    const err = e as { code?: number; message?: string };
    return { code: err.code, message: err.message };
  }
}

function observe(c: EtcdClient, name: string): { got: LeaderResponse[]; call: grpc.ClientReadableStream<LeaderResponse> } {
  const m = ElectionService.Observe;
  const call = c
    .channel()
    .makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize as (b: Buffer) => LeaderResponse, { name: Buffer.from(name) } as LeaderRequestInit, {});
  const got: LeaderResponse[] = [];
  call.on('data', (r: LeaderResponse) => got.push(r));
  call.on('error', () => undefined);
  return { got, call };
}

describe('v3election service', { skip: !hasEtcd() && 'etcd not installed' }, () => {
  let etcd: ServerProc;
  let ours: ServerProc;
  let ce: EtcdClient;
  const ids = [new LeaseIds(), new LeaseIds()];
  let co: EtcdClient;

  before(async () => {
    [etcd, ours] = await Promise.all([startEtcd(), startEtcdesk()]);
    ce = clientOf(etcd);
    co = clientOf(ours);
  });
  after(async () => {
    ce?.close();
    co?.close();
    await Promise.all([etcd?.stop(), ours?.stop()]);
  });

  /** Waits until `n` candidates (keys) are queued under `name` on both servers. */
  async function candidates(name: string, n: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const counts = await Promise.all([ce, co].map(async (c) => (await c.range({ key: Buffer.from(`${name}/`), range_end: prefixEnd(`${name}/`), count_only: true })).count));
      if (counts.every((k) => k === n)) return;
      assert.ok(Date.now() < deadline, `${n} candidates for ${name}: ${counts.join(', ')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async function same<T>(f: (c: EtcdClient, i: number) => Promise<T>): Promise<unknown> {
    const a = await outcome(f(ce, 0), ids[0]);
    const b = await outcome(f(co, 1), ids[1]);
    assert.deepEqual(b, a);
    return b;
  }

  it('Campaign, Leader, Proclaim, Resign and their errors, as etcd', async () => {
    const leases = [await ce.leaseGrant(30), await co.leaseGrant(30)];
    const others = [await ce.leaseGrant(30), await co.leaseGrant(30)];
    // labels in grant order on each side: a key or field naming another lease reads differently
    for (const i of [0, 1]) for (const l of [leases[i], others[i]]) ids[i].label(l.ID);
    const campaigns: CampaignResponse[] = [];
    await same((c) => c.unary<LeaderRequestInit, LeaderResponse>(ElectionService.Leader, { name: Buffer.from('el') }));
    await same(async (c, i) => {
      const r = await c.unary<CampaignRequestInit, CampaignResponse>(ElectionService.Campaign, { name: Buffer.from('el'), lease: leases[i].ID, value: Buffer.from('v1') });
      campaigns[i] = r;
      return r;
    });
    await same((c) => c.unary<LeaderRequestInit, LeaderResponse>(ElectionService.Leader, { name: Buffer.from('el') }));
    // campaigning again with the same lease and another value proclaims it
    await same((c, i) => c.unary<CampaignRequestInit, CampaignResponse>(ElectionService.Campaign, { name: Buffer.from('el'), lease: leases[i].ID, value: Buffer.from('v2') }));
    await same((c, i) => c.unary<ProclaimRequestInit, unknown>(ElectionService.Proclaim, { leader: campaigns[i].leader, value: Buffer.from('v3') }));
    await same((c, i) => c.unary<ProclaimRequestInit, unknown>(ElectionService.Proclaim, { leader: { ...campaigns[i].leader!, rev: 1 }, value: Buffer.from('x') }));
    await same((c) => c.unary<ProclaimRequestInit, unknown>(ElectionService.Proclaim, { value: Buffer.from('x') }));
    await same((c) => c.unary<ResignRequestInit, unknown>(ElectionService.Resign, {}));
    await same((c) => c.unary<CampaignRequestInit, CampaignResponse>(ElectionService.Campaign, { name: Buffer.from('el2'), lease: 99999n, value: Buffer.from('x') }));
    // a second candidate waits until the leader resigns
    const waiting = [ce, co].map((c, i) =>
      outcome(c.unary<CampaignRequestInit, CampaignResponse>(ElectionService.Campaign, { name: Buffer.from('el'), lease: others[i].ID, value: Buffer.from('w') }), ids[i]),
    );
    await candidates('el', 2);
    await same((c, i) => c.unary<ResignRequestInit, unknown>(ElectionService.Resign, { leader: campaigns[i].leader }));
    const [wa, wb] = await Promise.all(waiting);
    assert.deepEqual(wb, wa);
    await same((c) => c.unary<LeaderRequestInit, LeaderResponse>(ElectionService.Leader, { name: Buffer.from('el') }));
  });

  it('Observe streams the leader, its proclamations and successions', async () => {
    const l1 = [await ce.leaseGrant(30), await co.leaseGrant(30)];
    const l2 = [await ce.leaseGrant(30), await co.leaseGrant(30)];
    for (const i of [0, 1]) for (const l of [l1[i], l2[i]]) ids[i].label(l.ID);
    const c1 = await Promise.all([ce, co].map((c, i) => c.unary<CampaignRequestInit, CampaignResponse>(ElectionService.Campaign, { name: Buffer.from('ob'), lease: l1[i].ID, value: Buffer.from('a') })));
    // Observe answers with the current leader first: once that arrived, it watches
    const obs = [observe(ce, 'ob'), observe(co, 'ob')];
    await until(() => obs.every((o) => o.got.length >= 1), 10_000, 'the current leader observed');
    const second = [ce, co].map((c, i) => c.unary<CampaignRequestInit, CampaignResponse>(ElectionService.Campaign, { name: Buffer.from('ob'), lease: l2[i].ID, value: Buffer.from('b') }));
    await candidates('ob', 2); // the second candidate's key is in before the proclamation, on both
    await Promise.all([ce, co].map((c, i) => c.unary<ProclaimRequestInit, unknown>(ElectionService.Proclaim, { leader: c1[i].leader, value: Buffer.from('a2') })));
    await Promise.all([ce, co].map((c, i) => c.leaseRevoke(l1[i].ID)));
    await Promise.all(second);
    await until(() => obs.every((o) => o.got.length >= 3), 10_000, 'three leader changes observed');
    for (const o of obs) o.call.cancel();
    assert.equal(obs[0].got.length, 3);
    assert.deepEqual(norm(obs[1].got, ids[1]), norm(obs[0].got, ids[0]));
    assert.deepEqual(
      obs[1].got.map((r) => Buffer.from(r.kv!.value).toString()),
      ['a', 'a2', 'b'],
    );
  });
});
