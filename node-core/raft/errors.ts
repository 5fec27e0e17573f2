// Error values of the raft core, mirroring etcd-io/raft's sentinel errors so callers can branch
// on them with instanceof.

export class RaftError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The requested index is older than the storage's first index (compacted away). */
export class ErrCompacted extends RaftError {
  constructor() {
    super('requested index is unavailable due to compaction');
  }
}

/** A snapshot older than the storage's current one was offered. */
export class ErrSnapOutOfDate extends RaftError {
  constructor() {
    super('requested index is older than the existing snapshot');
  }
}

/** The requested index is beyond what the storage holds. */
export class ErrUnavailable extends RaftError {
  constructor() {
    super('requested entry at index is unavailable');
  }
}

/** The storage cannot produce a snapshot right now; raft retries later. */
export class ErrSnapshotTemporarilyUnavailable extends RaftError {
  constructor() {
    super('snapshot is temporarily unavailable');
  }
}

/** A proposal was not accepted (no leader, forwarding disabled, transfer in flight, size limit). */
export class ErrProposalDropped extends RaftError {
  constructor(reason = 'raft proposal dropped') {
    super(reason);
  }
}

export class ErrStepLocalMsg extends RaftError {
  constructor() {
    super('raft: cannot step raft local message');
  }
}

export class ErrStepPeerNotFound extends RaftError {
  constructor() {
    super('raft: cannot step as peer not found');
  }
}

export class ErrInvalidConfig extends RaftError {}

/** A broken invariant: the equivalent of etcd's panics. Never expected in a correct program. */
export class RaftInvariantError extends RaftError {}

export function invariant(cond: boolean, message: string | (() => string)): asserts cond {
  if (!cond) throw new RaftInvariantError(typeof message === 'string' ? message : message());
}
