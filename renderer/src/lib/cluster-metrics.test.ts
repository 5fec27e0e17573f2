import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClusterInfo, HashCheck } from '../../../electron/contract/index';
import { addSample, addToSeries, emptySeries, groupHex, hashVerdict, isStale, sparkPath, writeRates } from './cluster-metrics';

const info = (revision: number, leaderIndex: number, otherIndex = leaderIndex - 1): ClusterInfo => ({
  clusterId: '1',
  revision,
  alarms: [],
  members: [
    { id: '1', name: 'a', peerUrls: [], clientUrls: ['u1'], isLearner: false, isLeader: false, status: { version: '3.4', dbSize: 1, raftIndex: otherIndex, raftTerm: 2, errors: [] } },
    { id: '2', name: 'b', peerUrls: [], clientUrls: ['u2'], isLearner: false, isLeader: true, status: { version: '3.4', dbSize: 1, raftIndex: leaderIndex, raftTerm: 2, errors: [] } },
    { id: '3', name: 'c', peerUrls: [], clientUrls: ['u3'], isLearner: false, isLeader: false, status: { error: 'down' } },
  ],
});

describe('cluster metrics', () => {
  it('samples keep the last minute and take the leader\'s raft index', () => {
    let s = addSample([], info(10, 100, 120), 0);
    assert.equal(s[0].raftIndex, 100);
    s = addSample(s, info(20, 110), 30_000);
    s = addSample(s, info(50, 140), 70_000);
    assert.deepEqual(s.map((x) => x.t), [30_000, 70_000]);
  });
  it('without a leader the highest reported index is used', () => {
    const i = info(1, 5, 9);
    i.members[1].isLeader = false;
    assert.equal(addSample([], i, 0)[0].raftIndex, 9);
  });
  it('write rate is the revision delta per second, never negative', () => {
    const r = writeRates([
      { t: 0, revision: 10, raftIndex: 1 },
      { t: 2000, revision: 30, raftIndex: 1 },
      { t: 2000, revision: 30, raftIndex: 1 },
      { t: 3000, revision: 25, raftIndex: 1 },
    ]);
    assert.deepEqual(r, [{ t: 2000, v: 10 }, { t: 3000, v: 0 }]);
  });
  it('spark path spans the box, newest at the right edge', () => {
    const { d, max } = sparkPath([{ t: 70_000, v: 0 }, { t: 100_000, v: 10 }], 100_000, 300, 60);
    assert.equal(max, 10);
    assert.match(d, /^M150\.0,58\.0 L300\.0,2\.0$/);
    assert.equal(sparkPath([], 0, 10, 10).d, '');
    // one sample (a single-member view just opened) still draws: held flat to now
    assert.equal(sparkPath([{ t: 99_000, v: 110 }], 100_000, 300, 60).d, 'M295.0,30.0 L300.0,30.0');
    assert.equal(sparkPath([{ t: 101_000, v: 110 }], 100_000, 300, 60).d, 'M294.0,30.0 L300.0,30.0');
  });
  it('hash verdict: agreement, the member that differs, members that failed', () => {
    const h = (name: string, hash: number, error?: string): HashCheck['hashes'][number] => ({ endpoint: `e-${name}`, memberId: '1', name, hash, compactRevision: -1, error });
    assert.deepEqual(hashVerdict({ revision: 5, hashes: [h('a', 1), h('b', 1), h('c', 0, 'down')] }), { agree: true, majority: 1, differing: [], failed: ['c'] });
    const v = hashVerdict({ revision: 5, hashes: [h('a', 1), h('b', 2), h('c', 1)] });
    assert.equal(v.agree, false);
    assert.deepEqual(v.differing, ['b']);
    assert.equal(hashVerdict({ revision: 5, hashes: [h('a', 0, 'x')] }).agree, false);
  });
  it('groups hex for reading', () => {
    assert.equal(groupHex('0123456789abcdef01'), '01234567 89abcdef 01');
  });
});

describe('chart series belong to their connection', () => {
  const of = (connectionId: number, revision: number): ClusterInfo => ({ ...info(revision, revision), connectionId });
  it('a read of another connection than the live one changes nothing; a new connection starts a new series', () => {
    let s = addToSeries(emptySeries(), of(1, 100), 1, 0);
    s = addToSeries(s, of(1, 200), 1, 1000);
    assert.deepEqual(s.samples.map((x) => x.revision), [100, 200]);
    // the switch happened (live connection 2); a late answer of connection 1 arrives
    assert.equal(addToSeries(s, of(1, 300), 2, 2000), s);
    assert.ok(isStale(of(1, 300), 2));
    s = addToSeries(s, of(2, 7), 2, 2000);
    assert.deepEqual(s, { connectionId: 2, samples: [{ t: 2000, revision: 7, raftIndex: 7 }] });
  });
  it('keeps one sample a second however often reads are pushed', () => {
    let s = emptySeries();
    for (let t = 0; t <= 3000; t += 250) s = addToSeries(s, of(1, t), 1, t);
    assert.deepEqual(s.samples.map((x) => x.t), [0, 1000, 2000, 3000]);
  });
});
