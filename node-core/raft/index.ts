/**
 * node-core/raft — a pure, deterministic Raft state machine after etcd-io/raft.
 *
 * Nothing here touches clocks, timers, randomness, disks or sockets: the caller (the cluster
 * layer) owns all of that and drives a RawNode like this:
 *
 *   const storage = new MemoryStorage(); // or the cluster's disk-backed Storage
 *   const node = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage, random, preVote: true, checkQuorum: true });
 *   node.bootstrap([1n, 2n, 3n]);        // first start of a new cluster only (see below)
 *   every tick interval:        node.tick();
 *   on a message from a peer:   node.step(msg);
 *   on a client write:          node.propose(bytes)   (throws ErrProposalDropped without a leader)
 *   then, while node.hasReady():
 *     const rd = node.ready();
 *     1. persist: rd.snapshot (if any) first, then rd.entries and rd.hardState — fsync if
 *        rd.mustSync. Nothing in rd.messages may leave before this is durable.
 *     2. send rd.messages (a MsgSnap's delivery outcome goes back via reportSnapshot(to, failed);
 *        undeliverable peers via reportUnreachable(to)).
 *     3. apply rd.snapshot to the state machine, then rd.committedEntries in order; for
 *        ConfChange / ConfChangeV2 entries call node.applyConfChange(decoded) and keep the returned
 *        ConfState for the next snapshot. rd.readStates answer earlier readIndex(ctx) calls:
 *        serve the read once applied >= readState.index.
 *     4. node.advance(rd).
 *
 * Bootstrapping (etcd's way): every member of a new cluster calls
 * `node.bootstrap(voters, learners?)` once on a fresh node with an empty Storage. The initial
 * membership becomes committed ConfChange entries at indexes 1..n (term 1), so a member added
 * later can start from an empty Storage (no configuration, never campaigns) and rebuild the
 * configuration by replaying the leader's log or from a snapshot's ConfState.
 * MemoryStorage.bootstrap(voters) is a shortcut for tests with fixed membership only: the
 * configuration rides on an index-0 snapshot, which joiners would never see.
 *
 * Restarting: build a new RawNode over the persisted Storage. The configuration is the last
 * snapshot's ConfState plus the conf changes after it, which raft learns only through
 * applyConfChange. So leave `applied` at (or below) the snapshot index: committed entries after
 * it are handed out again; skip re-applying data your state machine already has (etcd's
 * consistent index), but always call applyConfChange for conf change entries.
 *
 * Snapshots: the leader sends Storage.snapshot() to followers that need compacted entries. A
 * member refuses a snapshot whose ConfState does not contain it (added after the snapshot was
 * taken) and waits for a newer one, as in etcd: keep some entries after each compaction
 * (etcd's SnapshotCatchUpEntries) and keep snapshotting as the log grows.
 *
 * Conf change entries use raftpb's protobuf encoding (encodeConfChange / decodeConfChangeV2 ...),
 * so the log stays compatible with etcd's tools.
 */
export * from './types';
export * from './errors';
export { type Storage, MemoryStorage } from './storage';
export { type Config, Raft } from './raft';
export { RawNode, type Status, type ProgressStatus } from './raw-node';
export { ProgressState } from './tracker';
export {
  asV2,
  decodeConfChange,
  decodeConfChangeV2,
  decodeConfChangeEntry,
  encodeConfChange,
  encodeConfChangeV2,
  enterJoint,
  leaveJoint,
} from './conf-change';
