import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ErrProposalDropped, ErrCompacted, ErrUnavailable, ErrSnapOutOfDate, ErrStepLocalMsg, ErrStepPeerNotFound } from './errors';
import { ProgressState } from './tracker';
import {
  ConfChangeTransition,
  ConfChangeType,
  EntryType,
  MemoryStorage,
  MessageType,
  RawNode,
  StateType,
  decodeConfChange,
  decodeConfChangeEntry,
  decodeConfChangeV2,
  encodeConfChange,
  encodeConfChangeV2,
  type Entry,
} from './index';
import { msg } from './types';
import { Changer } from './tracker';
import { TestNetwork, mulberry32 } from './test-network';

const enc = (s: string) => new TextEncoder().encode(s);
const ent = (index: number, term: number, data = ''): Entry => ({ index, term, type: EntryType.Normal, data: enc(data) });

function elected(ids: bigint[] = [1n, 2n, 3n], opts = {}): TestNetwork {
  const net = new TestNetwork(ids, opts);
  net.campaign(ids[0]);
  assert.equal(net.leader(), ids[0]);
  return net;
}

describe('MemoryStorage', () => {
  test('etcd semantics for entries/term/compact/snapshots', () => {
    const ms = new MemoryStorage();
    ms.append([ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2)]);
    assert.equal(ms.firstIndex(), 1);
    assert.equal(ms.lastIndex(), 4);
    assert.equal(ms.term(3), 2);
    assert.equal(ms.term(0), 0);
    assert.throws(() => ms.term(5), ErrUnavailable);
    assert.deepEqual(ms.entries(2, 4).map((e) => e.index), [2, 3]);
    assert.equal(ms.entries(1, 5, 1).length, 1, 'size limit still returns one entry');
    // Conflicting append truncates the tail.
    ms.append([ent(3, 3), ent(4, 3), ent(5, 3)]);
    assert.deepEqual(ms.entries(1, 6).map((e) => e.term), [1, 1, 3, 3, 3]);
    ms.createSnapshot(3, { voters: [1n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false }, enc('s'));
    ms.compact(3);
    assert.equal(ms.firstIndex(), 4);
    assert.throws(() => ms.entries(3, 5), ErrCompacted);
    assert.throws(() => ms.term(2), ErrCompacted);
    assert.equal(ms.term(3), 3);
    assert.throws(() => ms.compact(2), ErrCompacted);
    assert.throws(() => ms.createSnapshot(2, undefined, enc('')), ErrSnapOutOfDate);
    assert.throws(() => ms.applySnapshot(ms.snapshot()), ErrSnapOutOfDate);
    ms.applySnapshot({ metadata: { index: 10, term: 4, confState: { voters: [1n, 2n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } }, data: enc('x') });
    assert.equal(ms.firstIndex(), 11);
    assert.equal(ms.lastIndex(), 10);
    assert.deepEqual(ms.initialState().confState.voters, [1n, 2n]);
  });
});

describe('conf change codec', () => {
  test('round-trips ConfChange and ConfChangeV2 in raftpb wire format', () => {
    const cc = { type: ConfChangeType.ConfChangeAddLearnerNode, nodeId: 0xffff_ffff_ffff_fff0n, id: 7, context: enc('ctx') };
    assert.deepEqual(decodeConfChange(encodeConfChange(cc)), cc);
    // raftpb.ConfChange{ID:1, Type:AddNode, NodeID:2} as gogoproto encodes it.
    assert.deepEqual([...encodeConfChange({ type: ConfChangeType.ConfChangeAddNode, nodeId: 2n, id: 1 })], [0x08, 1, 0x10, 0, 0x18, 2]);
    const v2 = {
      transition: ConfChangeTransition.JointExplicit,
      changes: [
        { type: ConfChangeType.ConfChangeAddNode, nodeId: 4n },
        { type: ConfChangeType.ConfChangeRemoveNode, nodeId: 1n },
      ],
    };
    assert.deepEqual(decodeConfChangeV2(encodeConfChangeV2(v2)), v2);
    assert.equal(encodeConfChangeV2({ transition: 0, changes: [] }).length, 0);
  });
});

describe('election', () => {
  test('a campaign with a quorum elects a leader and commits an empty entry of its term', () => {
    const net = elected();
    for (const id of [1n, 2n, 3n]) {
      const r = net.raft(id);
      assert.equal(r.term, 2);
      assert.equal(r.lead, 1n);
      assert.equal(r.raftLog.committed, 4, 'three bootstrap conf changes plus the empty entry');
    }
    assert.equal(net.raft(2n).state, StateType.Follower);
  });

  test('ticking elects a leader; randomized timeout lies in [electionTick, 2*electionTick)', () => {
    const net = new TestNetwork([1n, 2n, 3n]);
    for (const n of net.nodes.values()) {
      const t = n.raw.raft.randomizedElectionTimeout;
      assert.ok(t >= 10 && t < 20, `timeout ${t}`);
    }
    net.tickAll(25);
    const l = net.leader();
    assert.ok(l !== undefined);
    const leaders = [...net.nodes.values()].filter((n) => n.raw.raft.state === StateType.Leader);
    assert.equal(leaders.length, 1);
  });

  test('a candidate without a quorum does not become leader; a stale log cannot win', () => {
    const net = elected();
    net.propose(1n, 'a');
    net.isolate(3n);
    net.propose(1n, 'b');
    net.heal();
    net.isolate(1n);
    // Node 3 misses 'b', so 2 refuses it.
    net.campaign(3n);
    assert.notEqual(net.raft(3n).state, StateType.Leader);
    net.campaign(2n);
    assert.equal(net.raft(2n).state, StateType.Leader);
  });

  test('single-voter cluster elects itself at once and commits proposals', () => {
    const net = new TestNetwork([1n]);
    net.campaign(1n);
    assert.equal(net.raft(1n).state, StateType.Leader);
    net.propose(1n, 'x');
    assert.deepEqual(net.appliedData(1n), ['x']);
  });

  test('proposals without a leader throw ErrProposalDropped; followers forward otherwise', () => {
    const net = new TestNetwork([1n, 2n, 3n]);
    assert.throws(() => net.node(2n).raw.propose(enc('x')), ErrProposalDropped);
    net.campaign(1n);
    net.propose(2n, 'fwd');
    assert.deepEqual(net.appliedData(3n), ['fwd']);
    const nf = new TestNetwork([1n, 2n, 3n], { disableProposalForwarding: true });
    nf.campaign(1n);
    assert.throws(() => nf.node(2n).raw.propose(enc('x')), ErrProposalDropped);
  });
});

describe('pre-vote and check-quorum', () => {
  test('a partitioned node with pre-vote does not inflate its term or disrupt the leader', () => {
    const net = elected([1n, 2n, 3n], { preVote: true, checkQuorum: true });
    net.isolate(3n);
    for (let i = 0; i < 100; i++) {
      net.tickAll();
    }
    assert.equal(net.raft(3n).term, 2, 'pre-candidate keeps its term');
    assert.equal(net.raft(3n).state, StateType.PreCandidate);
    net.heal();
    net.tickAll(5);
    assert.equal(net.leader(), 1n);
    assert.equal(net.raft(1n).term, 2);
    assert.equal(net.raft(3n).lead, 1n);
  });

  test('without pre-vote the same partition forces a new term', () => {
    const net = elected([1n, 2n, 3n]);
    net.isolate(3n);
    net.tick(3n, 30);
    assert.ok(net.raft(3n).term > 2);
    net.heal();
    net.tickAll(30);
    assert.ok(net.raft(1n).term > 2, 'stale leader deposed by higher term');
  });

  test('check-quorum: a leader that hears from no quorum steps down', () => {
    const net = elected([1n, 2n, 3n], { checkQuorum: true });
    net.isolate(1n);
    net.tick(1n, 21);
    assert.equal(net.raft(1n).state, StateType.Follower);
    assert.equal(net.raft(1n).lead, 0n);
  });

  test('check-quorum: followers in lease ignore vote requests from a disruptive node', () => {
    const net = elected([1n, 2n, 3n], { checkQuorum: true });
    const r2 = net.raft(2n);
    net.node(3n).raw.raft.step(msg({ type: MessageType.MsgHup }));
    net.stabilize();
    // 3 became candidate at term 2, but 2 is in lease and ignores it; 1 stays leader of term 1
    // until it sees a higher term. Voting must not succeed for 3.
    assert.notEqual(net.raft(3n).state, StateType.Leader);
    assert.equal(r2.lead === 1n || r2.lead === 0n, true);
  });
});

describe('log replication', () => {
  test('conflicting uncommitted entries are overwritten by the new leader', () => {
    const net = elected();
    net.propose(1n, 'committed');
    net.isolate(1n);
    net.node(1n).raw.propose(enc('lost-1'));
    net.node(1n).raw.propose(enc('lost-2'));
    net.stabilize();
    assert.equal(net.raft(1n).raftLog.lastIndex(), 7);
    net.heal();
    net.isolate(1n);
    net.campaign(2n);
    net.propose(2n, 'new');
    net.heal();
    net.tickAll(3);
    for (const id of [1n, 2n, 3n]) assert.deepEqual(net.appliedData(id), ['committed', 'new']);
    const l1 = net.raft(1n).raftLog.allEntries();
    const l2 = net.raft(2n).raftLog.allEntries();
    assert.deepEqual(
      l1.map((e) => [e.index, e.term]),
      l2.map((e) => [e.index, e.term]),
    );
  });

  test('a leader does not commit an old-term entry by counting replicas (Raft §5.4.2)', () => {
    const storage = MemoryStorage.bootstrap([1n, 2n, 3n]);
    storage.append([ent(1, 1, 'old')]);
    storage.setHardState({ term: 2, vote: 0n, commit: 0 });
    const raw = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage, random: mulberry32(1) });
    const r = raw.raft;
    raw.campaign();
    r.step(msg({ type: MessageType.MsgVoteResp, from: 2n, to: 1n, term: 3 }));
    assert.equal(r.state, StateType.Leader);
    assert.equal(r.raftLog.lastIndex(), 2, 'empty entry of term 3 appended');
    // Follower acks only the old entry: still not committable.
    r.step(msg({ type: MessageType.MsgAppResp, from: 2n, to: 1n, term: 3, index: 1 }));
    assert.equal(r.raftLog.committed, 0);
    r.step(msg({ type: MessageType.MsgAppResp, from: 2n, to: 1n, term: 3, index: 2 }));
    assert.equal(r.raftLog.committed, 2);
  });

  test('follower rejects a mismatching append and the leader probes back', () => {
    const net = elected();
    net.isolate(3n);
    for (let i = 0; i < 5; i++) net.propose(1n, `e${i}`);
    net.heal();
    net.propose(1n, 'after');
    const rejects = net.delivered.filter((m) => m.type === MessageType.MsgAppResp && m.reject && m.from === 3n);
    assert.ok(rejects.length >= 1);
    assert.deepEqual(net.appliedData(3n), ['e0', 'e1', 'e2', 'e3', 'e4', 'after']);
  });

  test('inflight window caps un-acked appends in replicate state', () => {
    const net = elected([1n, 2n], { maxInflightMsgs: 3 });
    net.drop(MessageType.MsgAppResp);
    for (let i = 0; i < 10; i++) net.node(1n).raw.propose(enc(`p${i}`));
    net.stabilize();
    const apps = net.delivered.filter((m) => m.type === MessageType.MsgApp && m.to === 2n && m.entries.length > 0 && m.entries[0].data.length > 0);
    assert.equal(apps.length, 3);
    net.heal();
    net.tickAll(2);
    assert.equal(net.appliedData(2n).length, 10);
  });
});

describe('snapshots', () => {
  test('a follower behind the first index receives a snapshot and catches up', () => {
    const net = elected();
    net.isolate(3n);
    for (let i = 0; i < 10; i++) net.propose(1n, `v${i}`);
    const n1 = net.node(1n);
    const applied = n1.raw.raft.raftLog.applied;
    n1.storage.createSnapshot(applied, n1.confState, enc('state@' + applied));
    n1.storage.compact(applied);
    net.heal();
    net.tickAll(3);
    const snaps = net.delivered.filter((m) => m.type === MessageType.MsgSnap && m.to === 3n);
    assert.equal(snaps.length, 1);
    const n3 = net.node(3n);
    assert.equal(n3.storage.snapshot().metadata.index, applied);
    assert.deepEqual(new TextDecoder().decode(n3.storage.snapshot().data), 'state@' + applied);
    net.propose(1n, 'post');
    assert.equal(n3.raw.raft.raftLog.committed, n1.raw.raft.raftLog.committed);
    assert.deepEqual(net.appliedData(3n).slice(-1), ['post']);
  });

  test('restart from storage recovers term, vote, commit and configuration', () => {
    const net = elected();
    net.propose(1n, 'a');
    const n2 = net.node(2n);
    // Like etcd, the configuration is rebuilt by replaying committed conf changes after the last
    // snapshot, so `applied` stays at the snapshot index (0 here).
    const raw = new RawNode({ id: 2n, electionTick: 10, heartbeatTick: 1, storage: n2.storage, random: mulberry32(9) });
    assert.equal(raw.raft.term, 2);
    assert.equal(raw.raft.vote, 1n);
    assert.equal(raw.raft.raftLog.committed, 5);
    assert.deepEqual(raw.status().config.voters, [], 'not known until the conf changes are re-applied');
    const rd = raw.ready();
    assert.deepEqual(rd.committedEntries.map((e) => e.index), [1, 2, 3, 4, 5]);
    for (const e of rd.committedEntries) {
      const cc = decodeConfChangeEntry(e.type, e.data);
      if (cc) raw.applyConfChange(cc);
    }
    raw.advance(rd);
    assert.deepEqual(raw.status().config.voters, [1n, 2n, 3n]);
    assert.equal(raw.hasReady(), false);
  });
});

describe('ReadIndex', () => {
  test('safe mode: the leader answers after a heartbeat quorum; followers get it forwarded', () => {
    const net = elected();
    net.propose(1n, 'a');
    net.node(1n).raw.readIndex(enc('r1'));
    net.stabilize();
    const rs = net.node(1n).readStates;
    assert.equal(rs.length, 1);
    assert.equal(rs[0].index, 5);
    assert.deepEqual(rs[0].requestCtx, enc('r1'));
    net.node(3n).raw.readIndex(enc('r3'));
    net.stabilize();
    assert.equal(net.node(3n).readStates.length, 1);
    assert.equal(net.node(3n).readStates[0].index, 5);
  });

  test('safe mode: no answer without a quorum of heartbeat acks', () => {
    const net = elected();
    net.cutLink(1n, 2n);
    net.cutLink(1n, 3n);
    net.node(1n).raw.readIndex(enc('r'));
    net.stabilize();
    assert.equal(net.node(1n).readStates.length, 0);
  });

  test('a new leader serves reads only after committing an entry of its term', () => {
    const net = elected();
    net.drop(MessageType.MsgAppResp);
    net.campaign(2n);
    const r2 = net.raft(2n);
    assert.equal(r2.state, StateType.Leader);
    assert.notEqual(r2.raftLog.term(r2.raftLog.committed), r2.term);
    net.node(2n).raw.readIndex(enc('early'));
    net.stabilize();
    assert.equal(net.node(2n).readStates.length, 0);
    net.heal();
    net.tickAll(2);
    net.node(2n).raw.readIndex(enc('late'));
    net.stabilize();
    assert.equal(net.node(2n).readStates.length, 1);
  });

  test('lease-based mode answers at once', () => {
    const net = elected([1n, 2n, 3n], { checkQuorum: true, readOnlyOption: 'lease-based' });
    net.cutLink(1n, 2n);
    net.cutLink(1n, 3n);
    net.node(1n).raw.readIndex(enc('r'));
    net.stabilize();
    assert.equal(net.node(1n).readStates.length, 1);
  });
});

/** Leader 1 transferring to 3, which lags (appends dropped): the transfer stays in progress. */
function transferToLaggingFollower(): TestNetwork {
  const net = elected([1n, 2n, 3n], { preVote: true, checkQuorum: true });
  net.isolate(3n);
  net.propose(1n, 'x');
  net.heal();
  net.drop(MessageType.MsgApp);
  net.node(1n).raw.transferLeader(3n);
  net.stabilize();
  assert.equal(net.raft(1n).leadTransferee, 3n);
  return net;
}

describe('leader transfer', () => {
  test('transfer to an up-to-date follower', () => {
    const net = elected();
    net.node(1n).raw.transferLeader(2n);
    net.stabilize();
    assert.equal(net.leader(), 2n);
    assert.equal(net.raft(1n).lead, 2n);
    assert.equal(net.raft(2n).term, 3);
  });

  test('transfer to a lagging follower catches it up first; proposals are refused meanwhile', () => {
    const net = transferToLaggingFollower();
    assert.throws(() => net.node(1n).raw.propose(enc('y')), ErrProposalDropped);
    net.heal();
    net.tickAll(2);
    assert.equal(net.leader(), 3n);
  });

  test('a transfer that does not finish within an election timeout is aborted', () => {
    const net = elected();
    net.isolate(3n);
    net.node(1n).raw.transferLeader(3n);
    net.stabilize();
    assert.equal(net.raft(1n).leadTransferee, 3n);
    net.tick(1n, 10);
    assert.equal(net.raft(1n).leadTransferee, 0n);
    assert.equal(net.leader(), 1n);
  });

  test('a proposal a follower forwards during the transfer is held and committed once, under the new leader', () => {
    const net = transferToLaggingFollower();
    // 2 still follows 1 and forwards to it; 1 cannot append while handing over, and holds it.
    net.propose(2n, 'forwarded');
    assert.ok(!net.raft(1n).raftLog.allEntries().some((e) => new TextDecoder().decode(e.data) === 'forwarded'));
    net.heal();
    net.tickAll(2);
    assert.equal(net.leader(), 3n);
    net.tickAll(1);
    for (const id of [1n, 2n, 3n]) assert.deepEqual(net.appliedData(id).filter((d) => d === 'forwarded'), ['forwarded'], `member ${id}`);
  });

  test('a transfer abandoned: the leader appends what it held meanwhile', () => {
    const net = elected();
    net.isolate(3n);
    net.node(1n).raw.transferLeader(3n);
    net.stabilize();
    net.propose(2n, 'held');
    assert.deepEqual(net.appliedData(2n), []);
    net.tick(1n, 10);
    assert.equal(net.raft(1n).leadTransferee, 0n);
    assert.deepEqual(net.appliedData(2n), ['held']);
  });

  test('a forwarded proposal is held at most an election timeout when no leader comes', () => {
    const net = elected([1n, 2n, 3n], { preVote: true, checkQuorum: true });
    net.isolate(2n);
    net.tick(2n, 25);
    assert.equal(net.raft(2n).lead, 0n);
    const forwarded = { type: MessageType.MsgProp, from: 3n, to: 2n, term: 0, entries: [{ term: 0, index: 0, type: EntryType.Normal, data: enc('late') }] };
    net.node(2n).raw.step(msg(forwarded));
    // Its own proposals are refused at once: its caller holds and retries them.
    assert.throws(() => net.node(2n).raw.propose(enc('own')), ErrProposalDropped);
    net.tick(2n, 10);
    net.heal();
    net.tickAll(3);
    assert.equal(net.leader(), 1n);
    assert.ok(!net.appliedData(1n).includes('late'), 'dropped after an election timeout');
    // Within the timeout it reaches the leader once 2 hears of one.
    net.isolate(2n);
    net.tick(2n, 25);
    net.node(2n).raw.step(msg({ ...forwarded, entries: [{ term: 0, index: 0, type: EntryType.Normal, data: enc('in time') }] }));
    net.heal();
    net.tickAll(3);
    assert.deepEqual(net.appliedData(1n).filter((d) => d === 'in time'), ['in time']);
  });
});

describe('learners', () => {
  test('a learner receives the log, never campaigns, and its ack does not count', () => {
    const net = new TestNetwork([1n, 2n], {}, [3n]);
    net.campaign(1n);
    net.propose(1n, 'a');
    assert.deepEqual(net.appliedData(3n), ['a']);
    net.tick(3n, 100);
    assert.equal(net.raft(3n).state, StateType.Follower);
    assert.equal(net.raft(3n).term, 2);
    // With voter 2 unreachable, the learner's acks cannot commit anything.
    net.cutLink(1n, 2n);
    net.propose(1n, 'b');
    assert.equal(net.raft(1n).raftLog.committed, 5);
    assert.equal(net.raft(3n).raftLog.lastIndex(), 6);
  });

  test("a learner's vote is not counted by a candidate", () => {
    const net = new TestNetwork([1n, 2n], {}, [3n]);
    net.isolate(2n);
    net.campaign(1n);
    assert.equal(net.raft(1n).state, StateType.Candidate, 'learner 3 alone cannot elect 1');
  });

  test('a learner is promoted by AddNode and then votes', () => {
    const net = new TestNetwork([1n, 2n], {}, [3n]);
    net.campaign(1n);
    net.node(1n).raw.proposeConfChange({ type: ConfChangeType.ConfChangeAddNode, nodeId: 3n });
    net.stabilize();
    assert.deepEqual(net.node(3n).confState.voters, [1n, 2n, 3n]);
    assert.deepEqual(net.node(3n).confState.learners, []);
    net.isolate(2n);
    net.campaign(3n);
    assert.equal(net.leader(), 3n);
  });
});

describe('membership changes', () => {
  test('adding a node: it joins with an empty log and catches up', () => {
    const net = elected();
    net.propose(1n, 'before');
    net.node(1n).raw.proposeConfChange({ type: ConfChangeType.ConfChangeAddNode, nodeId: 4n });
    net.stabilize();
    net.addNode(4n);
    net.tickAll(2);
    assert.deepEqual(net.node(4n).confState.voters, [1n, 2n, 3n, 4n]);
    assert.deepEqual(net.appliedData(4n), ['before']);
    // Quorum is now 3 of 4.
    net.isolate(2n);
    net.isolate(3n);
    net.propose(1n, 'no-quorum');
    assert.deepEqual(net.appliedData(1n), ['before']);
  });

  test('a joiner refuses a snapshot that predates its addition and takes a newer one', () => {
    const net = elected();
    net.propose(1n, 'a');
    const n1 = net.node(1n);
    const snapAt = () => {
      const applied = n1.raw.raft.raftLog.applied;
      n1.storage.createSnapshot(applied, n1.confState, enc(`s${applied}`));
      n1.storage.compact(applied);
    };
    snapAt();
    n1.raw.proposeConfChange({ type: ConfChangeType.ConfChangeAddNode, nodeId: 4n });
    net.stabilize();
    const n4 = net.addNode(4n);
    net.tickAll(3);
    assert.equal(n4.raw.raft.raftLog.lastIndex(), 0, 'snapshot without 4 in its ConfState is refused');
    assert.ok(net.delivered.some((m) => m.type === MessageType.MsgSnap && m.to === 4n));
    snapAt();
    net.tickAll(3);
    assert.ok(n4.storage.snapshot().metadata.index > 0);
    assert.deepEqual(n4.confState.voters, [1n, 2n, 3n, 4n]);
    net.propose(1n, 'b');
    assert.deepEqual(net.appliedData(4n), ['b'], 'earlier entries arrived inside the snapshot');
  });

  test('only one conf change may be pending', () => {
    const net = elected();
    net.drop(MessageType.MsgApp);
    net.node(1n).raw.proposeConfChange({ type: ConfChangeType.ConfChangeAddNode, nodeId: 4n });
    net.node(1n).raw.proposeConfChange({ type: ConfChangeType.ConfChangeAddNode, nodeId: 5n });
    const ents = net.raft(1n).raftLog.allEntries().slice(3);
    assert.deepEqual(
      ents.map((e) => e.type),
      [EntryType.Normal, EntryType.ConfChange, EntryType.Normal],
      'the second one was turned into an empty normal entry',
    );
  });

  test('a removed leader steps down and the rest elect a new leader', () => {
    const net = elected();
    net.node(1n).raw.proposeConfChange({ type: ConfChangeType.ConfChangeRemoveNode, nodeId: 1n });
    net.stabilize();
    assert.notEqual(net.raft(1n).state, StateType.Leader);
    net.tickAll(25);
    const l = net.leader();
    assert.ok(l === 2n || l === 3n, `leader ${String(l)}`);
    assert.deepEqual(net.node(l).confState.voters, [2n, 3n]);
    net.propose(l, 'after-removal');
    assert.deepEqual(net.appliedData(2n), ['after-removal']);
    assert.deepEqual(net.appliedData(3n), ['after-removal']);
  });

  test('joint consensus: replace two voters at once, auto-leave', () => {
    const net = elected();
    net.addNode(4n);
    net.addNode(5n);
    net.node(1n).raw.proposeConfChange({
      transition: ConfChangeTransition.Auto,
      changes: [
        { type: ConfChangeType.ConfChangeAddNode, nodeId: 4n },
        { type: ConfChangeType.ConfChangeAddNode, nodeId: 5n },
        { type: ConfChangeType.ConfChangeRemoveNode, nodeId: 3n },
        { type: ConfChangeType.ConfChangeAddLearnerNode, nodeId: 2n },
      ],
    });
    net.stabilize();
    net.tickAll(3);
    const cs = net.node(1n).confState;
    assert.deepEqual(cs.voters, [1n, 4n, 5n]);
    assert.deepEqual(cs.votersOutgoing, [], 'left the joint config automatically');
    assert.deepEqual(cs.learners, [2n]);
    assert.equal(net.raft(2n).isLearner, true);
    assert.deepEqual(net.node(4n).confState, cs);
  });

  test('joint consensus: decisions need both majorities while joint; explicit leave', () => {
    const net = elected();
    net.addNode(4n);
    net.addNode(5n);
    net.node(1n).raw.proposeConfChange({
      transition: ConfChangeTransition.JointExplicit,
      changes: [
        { type: ConfChangeType.ConfChangeAddNode, nodeId: 4n },
        { type: ConfChangeType.ConfChangeAddNode, nodeId: 5n },
        { type: ConfChangeType.ConfChangeRemoveNode, nodeId: 2n },
        { type: ConfChangeType.ConfChangeRemoveNode, nodeId: 3n },
      ],
    });
    net.stabilize();
    net.tickAll(2);
    const cs = net.node(1n).confState;
    assert.deepEqual(cs.voters, [1n, 4n, 5n]);
    assert.deepEqual(cs.votersOutgoing, [1n, 2n, 3n]);
    // New majority {1,4,5} reachable but old {1,2,3} not: nothing commits.
    net.isolate(2n);
    net.isolate(3n);
    const before = net.raft(1n).raftLog.committed;
    net.propose(1n, 'needs-both');
    assert.equal(net.raft(1n).raftLog.committed, before);
    net.heal();
    net.tickAll(2);
    assert.ok(net.raft(1n).raftLog.committed > before);
    // A non-empty change is refused while joint; the empty one leaves.
    net.node(1n).raw.proposeConfChange({ transition: ConfChangeTransition.Auto, changes: [] });
    net.stabilize();
    net.tickAll(2);
    assert.deepEqual(net.node(1n).confState.votersOutgoing, []);
    assert.deepEqual(net.node(1n).confState.voters, [1n, 4n, 5n]);
    // Now {1,4,5} alone commits.
    net.isolate(2n);
    net.isolate(3n);
    net.propose(1n, 'new-majority');
    assert.ok(net.appliedData(4n).includes('new-majority'));
  });

  test('simple change of more than one voter is refused; leaving a non-joint config too', () => {
    const net = elected();
    const r = net.raft(2n);
    const changer = new Changer(r.prs, r.raftLog.lastIndex());
    assert.throws(
      () =>
        changer.simple([
          { type: ConfChangeType.ConfChangeRemoveNode, nodeId: 3n },
          { type: ConfChangeType.ConfChangeAddNode, nodeId: 4n },
        ]),
      /more than one voter changed/,
    );
    assert.throws(() => r.applyConfChange({ transition: ConfChangeTransition.Auto, changes: [] }), /non-joint/);
    assert.throws(() => changer.simple([{ type: ConfChangeType.ConfChangeRemoveNode, nodeId: 1n }, { type: ConfChangeType.ConfChangeRemoveNode, nodeId: 2n }, { type: ConfChangeType.ConfChangeRemoveNode, nodeId: 3n }]), /removed all voters/);
  });
});

describe('flow control and driver API', () => {
  test('maxUncommittedEntriesSize drops proposals beyond the budget until entries commit', () => {
    const net = elected([1n, 2n, 3n], { maxUncommittedEntriesSize: 100 });
    net.isolate(1n);
    const raw = net.node(1n).raw;
    raw.propose(new Uint8Array(80));
    assert.throws(() => raw.propose(new Uint8Array(80)), ErrProposalDropped);
    net.stabilize();
    net.heal();
    net.tickAll(2);
    raw.propose(new Uint8Array(80));
  });

  test('reportUnreachable moves a replicating follower back to probe', () => {
    const net = elected();
    net.propose(1n, 'x');
    const pr = () => net.node(1n).raw.status().progress?.get(2n);
    assert.equal(pr()?.state, ProgressState.Replicate);
    net.node(1n).raw.reportUnreachable(2n);
    assert.equal(pr()?.state, ProgressState.Probe);
  });

  test('step refuses local messages and responses from unknown peers', () => {
    const net = elected();
    const raw = net.node(1n).raw;
    assert.throws(() => raw.step(msg({ type: MessageType.MsgHup, from: 2n, to: 1n })), ErrStepLocalMsg);
    assert.throws(() => raw.step(msg({ type: MessageType.MsgAppResp, from: 9n, to: 1n, term: 2 })), ErrStepPeerNotFound);
  });

  test('several pending reads are all answered by one heartbeat round', () => {
    const net = elected();
    net.drop(MessageType.MsgHeartbeatResp);
    const raw = net.node(1n).raw;
    raw.readIndex(enc('a'));
    raw.readIndex(enc('b'));
    raw.readIndex(enc('c'));
    net.stabilize();
    assert.equal(net.node(1n).readStates.length, 0);
    net.heal();
    net.tick(1n); // heartbeat carries the latest context, acking all three
    assert.deepEqual(
      net.node(1n).readStates.map((r) => new TextDecoder().decode(r.requestCtx)),
      ['a', 'b', 'c'],
    );
  });

  test('Ready hands out entries, HardState and committed entries, and clears after advance', () => {
    const storage = new MemoryStorage();
    const raw = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage, random: mulberry32(3) });
    raw.bootstrap([1n]);
    let rd = raw.ready();
    assert.deepEqual(rd.entries.map((e) => e.index), [1]);
    assert.deepEqual(rd.committedEntries.map((e) => e.index), [1]);
    assert.deepEqual(rd.hardState, { term: 1, vote: 0n, commit: 1 });
    assert.equal(rd.mustSync, true);
    storage.append(rd.entries);
    if (rd.hardState) storage.setHardState(rd.hardState);
    const cc = decodeConfChangeEntry(rd.committedEntries[0].type, rd.committedEntries[0].data);
    assert.ok(cc);
    raw.applyConfChange(cc);
    raw.advance(rd);
    assert.equal(raw.hasReady(), false);
    raw.campaign();
    rd = raw.ready();
    assert.equal(rd.softState?.raftState, StateType.Leader);
    assert.equal(rd.mustSync, true);
    assert.deepEqual(rd.committedEntries.map((e) => e.index), [2], 'the empty entry of the new term');
    storage.append(rd.entries);
    raw.advance(rd);
    raw.propose(enc('p'));
    rd = raw.ready();
    assert.deepEqual(rd.committedEntries.map((e) => new TextDecoder().decode(e.data)), ['p']);
    assert.equal(rd.hardState?.commit, 3);
    assert.equal(rd.mustSync, true);
    storage.append(rd.entries);
    raw.advance(rd);
    // Only the commit index moves when nothing new is appended: no fsync needed.
    assert.equal(raw.hasReady(), false);
  });
});
