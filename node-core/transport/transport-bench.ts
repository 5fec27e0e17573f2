// Micro-benchmark of the peer transport on loopback (not part of the test suite):
//   node --import tsx node-core/transport/transport-bench.ts
// 1. ping-pong latency: one MsgApp → MsgAppResp round trip at a time (the floor of a put's
//    replication latency);
// 2. pipelined throughput: a leader sending a MsgApp with one 256-byte entry per proposal to two
//    followers, which answer each with a MsgAppResp, with up to 64 proposals in flight per turn.
import { MessageType, msg, type Entry, type Message } from '../raft/index';
import { silentLogger } from '../support/logger';
import { PeerTransport, type TransportHandler } from './transport';

const L = 1n;
const F1 = 2n;
const F2 = 3n;

function handler(onMsg: (m: Message) => void): TransportHandler {
  return {
    receive: onMsg,
    receiveSnapshot() {},
    openSnapshotData: () => Promise.reject(new Error('no snapshots')),
    reportUnreachable() {},
    reportSnapshot() {},
  };
}

async function main(): Promise<void> {
  let onLeader: (m: Message) => void = () => {};
  const mk = (id: bigint, on: (m: Message) => void): PeerTransport =>
    new PeerTransport({ memberId: id, clusterId: 7n, listenPeerUrls: ['http://127.0.0.1:0'], handler: handler(on), log: silentLogger });
  const leader = mk(L, (m) => onLeader(m));
  const followers: PeerTransport[] = [];
  for (const id of [F1, F2]) {
    const f = mk(id, (m) => {
      if (m.type === MessageType.MsgApp) f.send([msg({ type: MessageType.MsgAppResp, from: id, to: L, term: 1, index: m.index + m.entries.length })]);
    });
    followers.push(f);
  }
  await Promise.all([leader, ...followers].map((t) => t.start()));
  const all = [leader, ...followers];
  const ids = [L, F1, F2];
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) if (i !== j) all[i].setPeer(ids[j], all[j].listenUrls());
  while (!leader.isActive(F1) || !leader.isActive(F2)) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 100));

  const data = Buffer.alloc(256, 1);
  let warmed = false;
  const app = (to: bigint, index: number): Message =>
    msg({ type: MessageType.MsgApp, from: L, to, term: 1, logTerm: 1, index, commit: index, entries: [{ term: 1, index: index + 1, type: 0, data }] });

  // 1. latency (after a warm-up so the JIT has settled)
  for (const N of [20_000, 20_000]) {
    let i = 0;
    const t0 = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      onLeader = () => {
        if (++i === N) return resolve();
        leader.send([app(F1, i)]);
      };
      leader.send([app(F1, 0)]);
    });
    const us = Number(process.hrtime.bigint() - t0) / 1000 / N;
    if (N === 20_000 && !warmed) warmed = true;
    else console.log(`round trip (one at a time): ${us.toFixed(1)} µs`);
  }

  // 2. throughput
  {
    const N = 200_000;
    const WINDOW = 64;
    let sent = 0;
    let acked = 0;
    const t0 = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      let scheduled = false;
      const pump = (): void => {
        scheduled = false;
        const out: Message[] = [];
        while (sent < N && sent - acked < WINDOW) {
          out.push(app(F1, sent), app(F2, sent));
          sent++;
        }
        if (out.length) leader.send(out);
      };
      onLeader = () => {
        // a proposal counts once both followers have it
        acked += 0.5;
        if (acked >= N) return resolve();
        if (!scheduled) {
          scheduled = true;
          setImmediate(pump);
        }
      };
      pump();
    });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(`pipelined: ${(N / s).toFixed(0)} proposals/s replicated to 2 followers (${((2 * N) / s).toFixed(0)} MsgApp/s)`);
  }

  // 3. as the raft loop sends: one MsgApp per follower per turn carrying every entry proposed
  //    since (at most 64 unacknowledged), acknowledged by one MsgAppResp per MsgApp.
  {
    const N = 500_000;
    const WINDOW = 256;
    let next = 0;
    const acked = new Map<bigint, number>([
      [F1, 0],
      [F2, 0],
    ]);
    const t0 = process.hrtime.bigint();
    let sends = 0;
    await new Promise<void>((resolve) => {
      let scheduled = false;
      const pump = (): void => {
        scheduled = false;
        const low = Math.min(acked.get(F1) ?? 0, acked.get(F2) ?? 0);
        const upto = Math.min(N, low + WINDOW);
        if (upto <= next) return;
        const ents: Entry[] = [];
        for (let i = next; i < upto; i++) ents.push({ term: 1, index: i + 1, type: 0, data });
        const out = [F1, F2].map((to) => msg({ type: MessageType.MsgApp, from: L, to, term: 1, logTerm: 1, index: next, commit: low, entries: ents }));
        next = upto;
        sends++;
        leader.send(out);
      };
      onLeader = (m) => {
        acked.set(m.from, Math.max(acked.get(m.from) ?? 0, m.index));
        if ((acked.get(F1) ?? 0) >= N && (acked.get(F2) ?? 0) >= N) return resolve();
        if (!scheduled) {
          scheduled = true;
          setImmediate(pump);
        }
      };
      pump();
    });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(`raft-loop pattern: ${(N / s).toFixed(0)} entries/s to 2 followers, ${(N / sends).toFixed(1)} entries per MsgApp`);
  }
  await Promise.all(all.map((t) => t.stop()));
}

void main();
