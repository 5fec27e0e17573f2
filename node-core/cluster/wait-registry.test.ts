// The waits a member's requests rely on: a proposal's waiter answered by its
// own id only, overdue waiters timed out with the error their meta decides,
// "applied ≥ n" released by notification in index order, and linearizable
// reads batched into pipelined ReadIndex rounds, each released by its own
// read state once applied has caught up.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Errors } from '../errors';
import { MAX_ROUNDS, ReadIndexBatcher } from './read-index-batcher';
import { IndexWaiter, WaitRegistry } from './wait-registry';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Settled state of a promise, without waiting for it. */
function probe<T>(p: Promise<T>): { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } {
  const s: { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } = { state: 'pending' };
  p.then(
    (v) => Object.assign(s, { state: 'resolved', value: v }),
    (e: unknown) => Object.assign(s, { state: 'rejected', error: e }),
  );
  return s;
}

describe('WaitRegistry', () => {
  it('answers a waiter by its id only; unknown ids are reported', async () => {
    const w = new WaitRegistry<bigint, string, undefined>();
    const a = probe(w.register(1n, Date.now() + 1000, undefined));
    const b = probe(w.register(2n, Date.now() + 1000, undefined));
    assert.equal(w.trigger(2n, 'two'), true);
    assert.equal(w.trigger(3n, 'three'), false);
    await turn();
    assert.deepEqual(b, { state: 'resolved', value: 'two' });
    assert.equal(a.state, 'pending');
    assert.equal(w.isRegistered(1n), true);
    assert.equal(w.fail(1n, Errors.Stopped), true);
    await turn();
    assert.equal(a.error, Errors.Stopped);
    assert.equal(w.size, 0);
  });

  it('expires only overdue waiters, with the error their meta decides', async () => {
    const w = new WaitRegistry<number, number, string>();
    const early = probe(w.register(1, 100, 'old-leader'));
    const early2 = probe(w.register(2, 150, 'same-leader'));
    const late = probe(w.register(3, 500, 'same-leader'));
    const gone = w.expire(200, (m) => (m === 'old-leader' ? Errors.TimeoutDueToLeaderFail : Errors.Timeout));
    assert.deepEqual(gone, [1, 2]);
    await turn();
    assert.equal(early.error, Errors.TimeoutDueToLeaderFail);
    assert.equal(early2.error, Errors.Timeout);
    assert.equal(late.state, 'pending');
    w.failAll(Errors.Stopped);
    await turn();
    assert.equal(late.error, Errors.Stopped);
  });

  it('refuses a second waiter for a live id', async () => {
    const w = new WaitRegistry<number, number>();
    void w.register(1, 0, undefined).catch(() => undefined);
    await assert.rejects(w.register(1, 0, undefined), /duplicate wait id/);
  });
});

describe('IndexWaiter', () => {
  it('releases waiters in index order as the applied index is notified, at once when already reached', async () => {
    const w = new IndexWaiter(3);
    const at2 = probe(w.wait(2));
    const at7 = probe(w.wait(7));
    const at5 = probe(w.wait(5));
    await turn();
    assert.equal(at2.state, 'resolved');
    w.notify(4);
    await turn();
    assert.deepEqual([at5.state, at7.state], ['pending', 'pending']);
    w.notify(6);
    await turn();
    assert.deepEqual([at5.state, at7.state], ['resolved', 'pending']);
    w.notify(7);
    await turn();
    assert.equal(at7.state, 'resolved');
  });

  it('a stopped member fails every waiter, present and future', async () => {
    const w = new IndexWaiter(0);
    const p = probe(w.wait(1));
    w.failAll(Errors.Stopped);
    await turn();
    assert.equal(p.error, Errors.Stopped);
    await assert.rejects(w.wait(5), (e) => e === Errors.Stopped);
  });
});

describe('ReadIndexBatcher', () => {
  function setup(appliedAt = 0) {
    const sent: Buffer[] = [];
    const applied = new IndexWaiter(appliedAt);
    const b = new ReadIndexBatcher({ memberId: 0xabcn, sendReadIndex: (ctx) => sent.push(Buffer.from(ctx)), applied, timeoutMs: 1000, retryMs: 100 });
    return { sent, applied, b };
  }

  it('reads of one turn share a round; while it is out, new reads start their own round', async () => {
    const { sent, applied, b } = setup(10);
    const first = [probe(b.read()), probe(b.read()), probe(b.read())];
    await turn();
    assert.equal(sent.length, 1, 'one round for the reads of one turn');
    const second = [probe(b.read()), probe(b.read())];
    await turn();
    assert.equal(sent.length, 2, 'a second round while the first is outstanding');
    assert.equal(b.inFlight, 2);
    // the second round is answered first: its reads go as soon as applied reaches its index
    b.onReadState(sent[1], 12);
    await turn();
    assert.deepEqual(second.map((p) => p.state), ['pending', 'pending']);
    applied.notify(12);
    await turn();
    assert.deepEqual(second.map((p) => p.state), ['resolved', 'resolved']);
    assert.deepEqual(first.map((p) => p.state), ['pending', 'pending', 'pending']);
    b.onReadState(sent[0], 11);
    await turn();
    assert.deepEqual(first.map((p) => p.state), ['resolved', 'resolved', 'resolved']);
    // an unknown or repeated read state changes nothing
    b.onReadState(sent[0], 99);
    assert.equal(b.inFlight, 0);
  });

  it('at most MAX_ROUNDS rounds are out at once; the next round starts when one is answered', async () => {
    const { sent, b } = setup(0);
    const reads = [];
    for (let i = 0; i < MAX_ROUNDS + 2; i++) {
      reads.push(probe(b.read()));
      await turn();
    }
    assert.equal(sent.length, MAX_ROUNDS);
    b.onReadState(sent[0], 0);
    await turn();
    assert.equal(sent.length, MAX_ROUNDS + 1, 'the waiting reads go out together in one round');
    assert.equal(reads[0].state, 'resolved');
    b.onReadState(sent[MAX_ROUNDS], 0);
    await turn();
    assert.deepEqual(reads.slice(MAX_ROUNDS).map((p) => p.state), ['resolved', 'resolved']);
  });

  it('a round lost to a leader change is asked again under a new context; overdue reads time out', async () => {
    const { sent, b } = setup(0);
    const now = Date.now();
    const r = probe(b.read());
    await turn();
    b.sweep(now + 50);
    assert.equal(sent.length, 1);
    b.sweep(now + 150);
    assert.equal(sent.length, 2, 'asked again after retryMs');
    assert.notDeepEqual(sent[1], sent[0]);
    b.onReadState(sent[0], 0);
    await turn();
    assert.equal(r.state, 'pending', 'the abandoned context answers nothing');
    b.sweep(now + 2000);
    await turn();
    assert.equal(r.error, Errors.Timeout);
    assert.equal(b.inFlight, 0);
  });

  it("two members' rounds never share a context (the leader would drop one as a duplicate)", async () => {
    const sent: Buffer[] = [];
    const mk = (memberId: bigint): ReadIndexBatcher =>
      new ReadIndexBatcher({ memberId, sendReadIndex: (ctx) => sent.push(Buffer.from(ctx)), applied: new IndexWaiter(0), timeoutMs: 1000, retryMs: 100 });
    const [a, b] = [mk(1n), mk(2n)];
    const reads = [a.read(), b.read()].map((p) => p.catch(() => undefined));
    await turn();
    assert.equal(sent.length, 2);
    assert.notDeepEqual(sent[0], sent[1]);
    a.stop(Errors.Stopped);
    b.stop(Errors.Stopped);
    await Promise.all(reads);
  });

  it('stop fails every read, waiting for a round or for the apply', async () => {
    const { sent, b } = setup(0);
    const a = probe(b.read());
    await turn();
    b.onReadState(sent[0], 5);
    const c = probe(b.read());
    await turn();
    b.stop(Errors.Stopped);
    await turn();
    assert.equal(a.error, Errors.Stopped);
    assert.equal(c.error, Errors.Stopped);
    await assert.rejects(b.read(), (e) => e === Errors.Stopped);
  });

  it('the only voter reads at its durable index without a round: at once when applied, else once applied reaches it', async () => {
    const sent: Buffer[] = [];
    const applied = new IndexWaiter(4);
    let local: number | undefined = 4;
    const b = new ReadIndexBatcher({ memberId: 1n, sendReadIndex: (ctx) => sent.push(Buffer.from(ctx)), applied, timeoutMs: 1000, retryMs: 100, localIndex: () => local });
    const now = probe(b.read());
    await turn();
    assert.equal(now.state, 'resolved', 'everything on disk is applied: served at once');
    // entries 5 and 6 are on disk (their writes may be acknowledged once applied) but not applied yet
    local = 6;
    const later = probe(b.read());
    applied.notify(5);
    await turn();
    assert.equal(later.state, 'pending', 'never served below the durable index');
    applied.notify(6);
    await turn();
    assert.equal(later.state, 'resolved');
    assert.equal(sent.length, 0, 'no ReadIndex round');
    // not (or no longer) the only voter leading: a round through raft again
    local = undefined;
    const round = probe(b.read());
    await turn();
    assert.equal(sent.length, 1);
    assert.equal(round.state, 'pending');
    b.onReadState(sent[0], 6);
    await turn();
    assert.equal(round.state, 'resolved');
  });
});
