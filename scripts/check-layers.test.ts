// The layer lint (scripts/check-layers.mjs) run on small fixture trees: it
// must refuse what the layering forbids (import cycles between files, a
// layer reaching up, server reaching into cluster's insides) and pass a
// tree that keeps the rules.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

const script = path.resolve(import.meta.dirname, 'check-layers.mjs');
const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** Writes the files (path -> source) into a fresh directory and runs the lint there. */
function lint(files: Record<string, string>): { ok: boolean; out: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'check-layers-'));
  dirs.push(dir);
  for (const [p, src] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), src);
  }
  const r = spawnSync(process.execPath, [script], { cwd: dir, encoding: 'utf8' });
  return { ok: r.status === 0, out: r.stdout + r.stderr };
}

const clean = {
  'node-core/cluster/index.ts': "export { EtcdNode } from './node';\n",
  'node-core/cluster/node.ts': "import { Wal } from '../wal/wal';\nexport class EtcdNode { wal?: Wal }\n",
  'node-core/wal/wal.ts': "import type { Entry } from '../raft/types';\nexport class Wal { e?: Entry }\n",
  'node-core/raft/types.ts': 'export interface Entry { index: number }\n',
  'node-core/server/start.ts': "import { EtcdNode } from '../cluster';\nexport const n = EtcdNode;\n",
};

test('a tree that keeps the layering passes', () => {
  const r = lint(clean);
  assert.ok(r.ok, r.out);
  assert.match(r.out, /check-layers: ok/);
});

test('an import cycle between two files of one layer is reported, type-only imports included', () => {
  const r = lint({
    ...clean,
    'node-core/cluster/node.ts': "import { startDriver } from './driver';\nexport class EtcdNode { d = startDriver }\n",
    'node-core/cluster/driver.ts': "import type { EtcdNode } from './node';\nexport function startDriver(n: EtcdNode): void { void n; }\n",
  });
  assert.equal(r.ok, false);
  assert.match(r.out, /import cycle: node-core\/cluster\/driver\.ts -> node-core\/cluster\/node\.ts -> node-core\/cluster\/driver\.ts/);
});

test('a longer cycle is reported once, as a closed path', () => {
  const r = lint({
    ...clean,
    'node-core/server/a.ts': "import { b } from './b';\nexport const a = () => b;\n",
    'node-core/server/b.ts': "import { c } from './c';\nexport const b = () => c;\n",
    'node-core/server/c.ts': "import { a } from './a';\nexport const c = () => a;\n",
  });
  assert.equal(r.ok, false);
  const cycles = r.out.split('\n').filter((l) => l.startsWith('import cycle'));
  assert.deepEqual(cycles, ['import cycle: node-core/server/a.ts -> node-core/server/b.ts -> node-core/server/c.ts -> node-core/server/a.ts']);
});

test('a cycle among electron files is reported', () => {
  const r = lint({
    ...clean,
    'electron/main/x.ts': "import { y } from './y';\nexport const x = y;\n",
    'electron/main/y.ts': "import { x } from './x';\nexport const y = () => x;\n",
  });
  assert.equal(r.ok, false);
  assert.match(r.out, /import cycle: electron\/main\/x\.ts -> electron\/main\/y\.ts -> electron\/main\/x\.ts/);
});

test('server reaching past cluster/index.ts is refused', () => {
  const r = lint({ ...clean, 'node-core/server/start.ts': "import { EtcdNode } from '../cluster/node';\nexport const n = EtcdNode;\n" });
  assert.equal(r.ok, false);
  assert.match(r.out, /import cluster through its entry/);
});

test('the peer transport and the log storage stay below cluster and do not know each other', () => {
  const up = lint({ ...clean, 'node-core/wal/wal.ts': "import { EtcdNode } from '../cluster';\nexport class Wal { n?: EtcdNode }\n" });
  assert.equal(up.ok, false);
  assert.match(up.out, /layer 'wal' must not import 'cluster'/);
  const side = lint({ ...clean, 'node-core/transport/t.ts': "import { Wal } from '../wal/wal';\nexport const t = Wal;\n" });
  assert.equal(side.ok, false);
  assert.match(side.out, /layer 'transport' must not import 'wal'/);
});

test('raft may use the pure protobuf primitives (proto/wire) and nothing else outside itself', () => {
  const wire = { 'node-core/proto/wire.ts': 'export class Writer {}\n', 'node-core/proto/gen/raftpb.ts': "import { Writer } from '../wire';\nexport const w = Writer;\n" };
  const ok = lint({ ...clean, ...wire, 'node-core/raft/conf-change.ts': "import { Writer } from '../proto/wire';\nexport const w = Writer;\n" });
  assert.ok(ok.ok, ok.out);
  const gen = lint({ ...clean, ...wire, 'node-core/raft/conf-change.ts': "import { w } from '../proto/gen/raftpb';\nexport const x = w;\n" });
  assert.equal(gen.ok, false);
  assert.match(gen.out, /layer 'raft' must not import 'proto'/);
});
