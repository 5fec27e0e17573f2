// The search and analyzer stores with a fake contract API: scan:progress
// events are matched to the scan that asked (also when they arrive before
// the scan's id does), and the search keeps no more hits than main's cap.
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { createPinia, setActivePinia } from 'pinia';
import { utf8ToB64, type EtcdeskApi, type EventMap, type KeyspaceReport, type PrefixNode, type ScanProgressEvent, type SearchHit } from '../../../electron/contract/index';
import { setApi } from '../api';
import { useSearchStore } from './search';
import { useAnalyzerStore } from './analyzer';

function fakeScanApi(onStart: (emit: (e: ScanProgressEvent) => void) => void): EtcdeskApi & { cancelled: string[] } {
  const listeners = new Set<(p: ScanProgressEvent) => void>();
  const emit = (e: ScanProgressEvent): void => listeners.forEach((l) => l(e));
  const cancelled: string[] = [];
  let seq = 0;
  const api = {
    cancelled,
    async invoke(channel: string, req: unknown): Promise<unknown> {
      if (channel === 'scan:search' || channel === 'scan:analyze') {
        seq++;
        onStart(emit);
        return { scanId: `s${seq}`, revision: 42, total: 1000 };
      }
      if (channel === 'scan:cancel') {
        cancelled.push((req as { scanId: string }).scanId);
        return { ok: true };
      }
      throw new Error(`unexpected ${channel}`);
    },
    on(event: string, l: (p: unknown) => void): () => void {
      if (event !== 'scan:progress') return () => undefined;
      const f = l as (p: EventMap['scan:progress']) => void;
      listeners.add(f);
      return () => listeners.delete(f);
    },
  };
  return api as unknown as EtcdeskApi & { cancelled: string[] };
}

const hit = (i: number): SearchHit => ({ row: { key: utf8ToB64(`/k${i}`), keyText: `/k${i}`, createRevision: 1, modRevision: 1, version: 1, lease: '0' } });
const node = (path: string, name: string, count: number, children: PrefixNode[] = []): PrefixNode => ({ name, path, count, bytes: count * 10, ownKeys: children.length ? 0 : count, ownBytes: 0, foldedKeys: 0, foldedBytes: 0, children });

describe('search store', () => {
  beforeEach(() => setActivePinia(createPinia()));

  it('takes events that arrive before scan:search answers, ignores an older scan\'s, and keeps at most the cap', async () => {
    const api = fakeScanApi((emit) => {
      // Main may send the first hits before the HTTP answer carrying the id arrives.
      emit({ scanId: 's1', kind: 'search', revision: 42, scanned: 400, total: 1000, hits: Array.from({ length: 3 }, (_, i) => hit(i)), matched: 3, cap: 5 });
      emit({ scanId: 'old', kind: 'search', revision: 41, scanned: 9, total: 9, hits: [hit(99)], matched: 1, cap: 5, done: true });
    });
    setApi(api);
    const s = useSearchStore();
    s.pattern = 'k';
    await s.run('/');
    assert.equal(s.scanId, 's1');
    assert.equal(s.hitCount, 3);
    assert.equal(s.running, true, 'the older scan\'s done event did not end this one');
    // More matches than the cap: the store keeps the cap and says there are more.
    s.apply({ scanId: 's1', kind: 'search', revision: 42, scanned: 1000, total: 1000, hits: Array.from({ length: 4 }, (_, i) => hit(10 + i)), matched: 9, cap: 5, done: true });
    assert.equal(s.hitCount, 5);
    assert.equal(s.hitAt(4)?.row.keyText, '/k11');
    assert.equal(s.capped, true);
    assert.equal(s.done, true);
    assert.equal(s.running, false);
  });

  it('cancel asks main to stop the running scan', async () => {
    const api = fakeScanApi(() => undefined);
    setApi(api);
    const s = useSearchStore();
    s.pattern = 'x';
    await s.run('');
    await s.cancel();
    assert.deepEqual(api.cancelled, ['s1']);
  });

  it('cancel pressed before main answered with the scan\'s id cancels it as soon as the id arrives', async () => {
    const api = fakeScanApi(() => undefined);
    setApi(api);
    const s = useSearchStore();
    s.pattern = 'x';
    const started = s.run('');
    assert.equal(s.scanId, null);
    void s.cancel();
    assert.equal(s.cancelPending, true, 'no id to cancel yet: remembered');
    await started;
    assert.deepEqual(api.cancelled, ['s1']);
  });
});

describe('analyzer store', () => {
  beforeEach(() => setActivePinia(createPinia()));

  it('keeps the report of its own scan and drills down by path segment', async () => {
    const tree = node('/r/', '', 30, [node('/r/pods/', 'pods/', 20, [node('/r/pods/a/', 'a/', 20)]), node('/r/cm/', 'cm/', 10)]);
    const report = { prefix: '/r/', delimiter: '/', revision: 42, keys: 30, keyBytes: 0, valueBytes: 0, tree, nodeCap: 5000, biggest: [], mostRevised: [], leases: [], leaseCount: 0, noLease: 30, storage: { error: 'x' }, partial: false } satisfies KeyspaceReport;
    setApi(fakeScanApi((emit) => emit({ scanId: 's1', kind: 'analyze', revision: 42, scanned: 30, total: 30, done: true, report })));
    const a = useAnalyzerStore();
    await a.run();
    assert.equal(a.report?.keys, 30);
    assert.equal(a.node?.path, '/r/');
    a.drill(tree.children[0]);
    a.drill(tree.children[0].children[0]);
    assert.equal(a.node?.path, '/r/pods/a/');
    assert.deepEqual(a.crumbs.map((c) => c.label), ['/r/', 'pods/', 'a/']);
    a.up(1);
    assert.equal(a.node?.path, '/r/pods/');
  });
});
