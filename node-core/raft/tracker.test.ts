import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  Changer,
  Inflights,
  Progress,
  ProgressState,
  ProgressTracker,
  VoteResult,
  emptyTrackerConfig,
  jointCommitted,
  jointVoteResult,
  majorityCommitted,
  majorityVoteResult,
  restoreConfState,
} from './tracker';
import { ConfChangeType } from './types';

const add = (nodeId: bigint) => ({ type: ConfChangeType.ConfChangeAddNode, nodeId });
const learner = (nodeId: bigint) => ({ type: ConfChangeType.ConfChangeAddLearnerNode, nodeId });
const remove = (nodeId: bigint) => ({ type: ConfChangeType.ConfChangeRemoveNode, nodeId });

describe('quorum', () => {
  test('majority commit index is the highest index acked by a majority', () => {
    const ids = new Set([1n, 2n, 3n, 4n, 5n]);
    const acked = new Map([
      [1n, 10],
      [2n, 8],
      [3n, 7],
      [4n, 2],
    ]);
    assert.equal(majorityCommitted(ids, (id) => acked.get(id)), 7);
    assert.equal(majorityCommitted(new Set([1n, 2n]), (id) => acked.get(id)), 8);
    assert.equal(majorityCommitted(new Set(), () => 0), Number.MAX_SAFE_INTEGER, 'empty config is no constraint');
  });

  test('joint commit index is the minimum of both halves', () => {
    const c = emptyTrackerConfig();
    c.incoming = new Set([1n, 2n, 3n]);
    c.outgoing = new Set([3n, 4n, 5n]);
    const acked = new Map([
      [1n, 9],
      [2n, 9],
      [3n, 5],
      [4n, 4],
      [5n, 1],
    ]);
    assert.equal(jointCommitted(c, (id) => acked.get(id)), 4);
  });

  test('vote results: won, pending, lost; joint needs both', () => {
    const ids = new Set([1n, 2n, 3n]);
    assert.equal(majorityVoteResult(ids, new Map([[1n, true]])), VoteResult.Pending);
    assert.equal(majorityVoteResult(ids, new Map([[1n, true], [2n, true]])), VoteResult.Won);
    assert.equal(majorityVoteResult(ids, new Map([[1n, false], [2n, false]])), VoteResult.Lost);
    const c = emptyTrackerConfig();
    c.incoming = new Set([1n, 2n, 3n]);
    c.outgoing = new Set([1n, 4n, 5n]);
    const votes = new Map([
      [1n, true],
      [2n, true],
      [4n, false],
      [5n, false],
    ]);
    assert.equal(jointVoteResult(c, votes), VoteResult.Lost);
    votes.set(4n, true);
    assert.equal(jointVoteResult(c, votes), VoteResult.Won);
  });
});

describe('progress', () => {
  test('inflights window fills, frees up to an index, and frees one when stuck', () => {
    const inf = new Inflights(3);
    inf.add(5);
    inf.add(7);
    inf.add(9);
    assert.equal(inf.full(), true);
    assert.throws(() => inf.add(10));
    inf.freeLE(7);
    assert.equal(inf.count(), 1);
    inf.freeFirstOne();
    assert.equal(inf.count(), 0);
  });

  test('probe: one message at a time; a rejection moves next back to the hint', () => {
    const pr = new Progress(4);
    pr.next = 11;
    assert.equal(pr.isPaused(), false);
    pr.probeSent = true;
    assert.equal(pr.isPaused(), true);
    assert.equal(pr.maybeDecrTo(9, 5), false, 'stale rejection for an older probe');
    assert.equal(pr.maybeDecrTo(10, 5), true);
    assert.equal(pr.next, 6);
    assert.equal(pr.isPaused(), false);
    assert.equal(pr.maybeUpdate(6), true);
    pr.becomeReplicate();
    assert.equal(pr.state, ProgressState.Replicate);
    assert.equal(pr.next, 7);
    assert.equal(pr.maybeDecrTo(5, 5), false, 'rejections at or below match are stale in replicate');
    assert.equal(pr.maybeDecrTo(8, 7), true);
    assert.equal(pr.next, 7);
  });

  test('after a snapshot, probing resumes past the snapshot index', () => {
    const pr = new Progress(4);
    pr.match = 3;
    pr.becomeSnapshot(20);
    assert.equal(pr.isPaused(), true);
    pr.becomeProbe();
    assert.equal(pr.next, 21);
  });
});

describe('configuration changer', () => {
  const tracker = (voters: bigint[], learners: bigint[] = []) => {
    const t = new ProgressTracker(16);
    restoreConfState(t, 10, { voters, learners, votersOutgoing: [], learnersNext: [], autoLeave: false });
    return t;
  };
  const apply = (t: ProgressTracker, r: { config: ProgressTracker['config']; progress: ProgressTracker['progress'] }) => {
    t.config = r.config;
    t.progress = r.progress;
  };

  test('demoting a voter while joint parks it in learnersNext until the joint config is left', () => {
    const t = tracker([1n, 2n, 3n]);
    apply(t, new Changer(t, 10).enterJoint(false, [learner(3n), add(4n)]));
    let cs = t.confState();
    assert.deepEqual(cs.voters, [1n, 2n, 4n]);
    assert.deepEqual(cs.votersOutgoing, [1n, 2n, 3n]);
    assert.deepEqual(cs.learnersNext, [3n]);
    assert.deepEqual(cs.learners, []);
    assert.equal(t.progress.get(3n)?.isLearner, false, 'still votes in the outgoing config');
    apply(t, new Changer(t, 10).leaveJoint());
    cs = t.confState();
    assert.deepEqual(cs.voters, [1n, 2n, 4n]);
    assert.deepEqual(cs.votersOutgoing, []);
    assert.deepEqual(cs.learners, [3n]);
    assert.equal(t.progress.get(3n)?.isLearner, true);
  });

  test('a voter removed while joint keeps its progress until the joint config is left', () => {
    const t = tracker([1n, 2n, 3n]);
    apply(t, new Changer(t, 10).enterJoint(true, [remove(3n), add(4n)]));
    assert.ok(t.progress.has(3n));
    assert.equal(t.config.autoLeave, true);
    apply(t, new Changer(t, 10).leaveJoint());
    assert.equal(t.progress.has(3n), false);
  });

  test('refusals: joint twice, simple while joint, zero voters', () => {
    const t = tracker([1n, 2n]);
    apply(t, new Changer(t, 10).enterJoint(false, [add(3n)]));
    assert.throws(() => new Changer(t, 10).enterJoint(false, [add(4n)]), /already joint/);
    assert.throws(() => new Changer(t, 10).simple([add(4n)]), /in joint config/);
    const t2 = tracker([1n]);
    assert.throws(() => new Changer(t2, 10).simple([remove(1n)]), /removed all voters/);
  });

  test('restoring a joint ConfState reproduces it exactly', () => {
    const t = tracker([1n, 2n, 3n], [7n]);
    apply(t, new Changer(t, 10).enterJoint(true, [learner(3n), add(4n), remove(2n)]));
    const cs = t.confState();
    const t2 = new ProgressTracker(16);
    restoreConfState(t2, 10, cs);
    assert.deepEqual(t2.confState(), cs);
  });

  test('promoting a learner keeps its progress; new peers start probing at the last index', () => {
    const t = tracker([1n, 2n], [3n]);
    const pr3 = t.progress.get(3n);
    assert.ok(pr3);
    pr3.match = 9;
    apply(t, new Changer(t, 12).simple([add(3n)]));
    assert.equal(t.progress.get(3n)?.match, 9);
    assert.equal(t.progress.get(3n)?.isLearner, false);
    apply(t, new Changer(t, 12).simple([learner(5n)]));
    assert.equal(t.progress.get(5n)?.next, 12);
    assert.equal(t.progress.get(5n)?.recentActive, true);
  });
});
