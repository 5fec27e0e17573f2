#!/usr/bin/env node
// Enforces the import direction between layers (see ARCHITECTURE.md):
//   server -> cluster -> {lease, auth, watch} -> mvcc -> backend -> {errors, proto, support}
//   cluster -> {wal, transport} -> raft;  wal -> backend;  raft -> proto/wire only;  proto -> nothing (but its runtime)
//   electron/main -> node-core's public entry (node-core/index.ts) only
//   renderer -> electron/contract only (never electron, never node-core)
// keeps the raft core free of clocks, timers, randomness and I/O, and refuses
// import cycles between files of node-core and electron (type-only imports
// count too: a cycle of types is still two modules that cannot be read apart).
import fs from 'node:fs';
import path from 'node:path';

const rank = {
  errors: 0, proto: 0, support: 0, raft: 0,
  backend: 1, client: 1, transport: 1,
  mvcc: 2, backup: 2, wal: 2,
  lease: 3, auth: 3, watch: 3,
  cluster: 4, server: 5, verify: 6, testing: 9,
};
// layers whose reach is narrower than their rank: the peer transport and the raft log storage sit
// under cluster and know raft's types, nothing of the state machine
const only = { transport: ['raft', 'proto', 'errors', 'support'], wal: ['raft', 'backend', 'errors', 'proto', 'support'], support: [] };
const allowed = (from, to) => {
  if (from === to) return true;
  if (from === 'raft') return false;
  if (only[from]) return only[from].includes(to);
  if (to === 'raft') return ['cluster', 'transport', 'wal', 'testing'].includes(from);
  if (to === 'proto' || to === 'errors') return from !== 'raft';
  if (rank[from] === undefined || rank[to] === undefined) return false;
  if (rank[from] === 3 && rank[to] === 3) return false; // lease/auth/watch are siblings
  return rank[to] < rank[from];
};
const errors = [];
function walk(dir, fn) {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (['node_modules', 'gen', 'out', 'dist'].includes(e.name)) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, fn);
    else if (/\.(ts|vue|mts)$/.test(e.name)) fn(p);
  }
}
const importRe = /(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s+['"]([^'"]+)['"]/gm;
function imports(file) {
  const src = fs.readFileSync(file, 'utf8');
  const out = [];
  let m;
  while ((m = importRe.exec(src))) out.push(m[1] ?? m[2] ?? m[3]);
  return { src, out };
}
const root = process.cwd();
/** file -> files it imports (relative specifiers resolved), for the cycle check */
const graph = new Map();
function resolveSpec(file, spec) {
  const base = path.resolve(path.dirname(file), spec);
  for (const c of [base, `${base}.ts`, `${base}.mts`, `${base}.vue`, path.join(base, 'index.ts')]) {
    if (fs.existsSync(c) && fs.statSync(c).isFile()) return path.relative(root, c);
  }
  return undefined;
}
function addEdges(file, out) {
  const to = [];
  for (const spec of out) {
    if (!spec.startsWith('.')) continue;
    const t = resolveSpec(file, spec);
    if (t && t !== file) to.push(t);
  }
  graph.set(file, to);
}
walk('node-core', (file) => {
  const rel = path.relative('node-core', file).split(path.sep);
  if (rel.length < 2) return; // index.ts at the top re-exports the public API
  const layer = rel[0];
  const { src, out } = imports(file);
  const isTest = file.endsWith('.test.ts');
  addEdges(file, out);
  for (const spec of out) {
    if (!spec.startsWith('.')) {
      if (layer === 'raft' && !isTest && !spec.startsWith('node:assert')) errors.push(`${file}: raft imports package '${spec}'`);
      continue;
    }
    const target = path.relative(path.join(root, 'node-core'), path.resolve(path.dirname(file), spec)).split(path.sep);
    if (target[0] === '..') {
      errors.push(`${file}: imports outside node-core: ${spec}`);
      continue;
    }
    const tl = target.length === 1 && /^index(\.ts)?$/.test(target[0]) ? 'index' : target[0];
    if (tl === 'index') {
      errors.push(`${file}: node-core modules must not import the public index`);
      continue;
    }
    // raft's one import from outside itself: the pure protobuf primitives (no I/O, no clock), not the generated codecs
    const rawWire = layer === 'raft' && target.join('/').replace(/\.ts$/, '') === 'proto/wire';
    if (!isTest && !rawWire && !allowed(layer, tl)) errors.push(`${file}: layer '${layer}' must not import '${tl}' (${spec})`);
    // cluster has one public entry (cluster/index.ts); its other files are the member's insides
    if (!isTest && tl === 'cluster' && layer !== 'cluster' && !(target.length === 1 || (target.length === 2 && /^index(\.ts)?$/.test(target[1]))))
      errors.push(`${file}: import cluster through its entry (cluster/index.ts), not ${spec}`);
  }
  if (layer === 'raft' && !isTest) {
    const banned = /\b(Date\.now|new Date\(|Math\.random|setTimeout|setInterval|setImmediate|process\.|performance\.now|require\()/;
    src.split('\n').forEach((line, i) => {
      const code = line.replace(/\/\/.*$/, '');
      if (banned.test(code)) errors.push(`${file}:${i + 1}: raft core must stay pure: ${line.trim()}`);
    });
  }
});
walk('electron', (file) => {
  const { out } = imports(file);
  addEdges(file, out);
  const inContract = file.startsWith(path.join('electron', 'contract'));
  for (const spec of out) {
    if (!spec.startsWith('.')) continue;
    const abs = path.relative(root, path.resolve(path.dirname(file), spec));
    // Tests may use node-core's test helpers (real etcd processes, free ports); the app itself may not.
    const testHelper = file.endsWith('.test.ts') && abs.startsWith(path.join('node-core', 'testing') + path.sep);
    if (abs.startsWith('node-core') && abs !== 'node-core' && abs !== path.join('node-core', 'index') && !testHelper)
      errors.push(`${file}: electron must use node-core's public entry only (${spec})`);
    if (inContract && !abs.startsWith(path.join('electron', 'contract'))) errors.push(`${file}: the contract must stand alone (${spec})`);
    if (abs.startsWith('renderer')) errors.push(`${file}: electron must not import the renderer (${spec})`);
  }
});
walk('renderer', (file) => {
  const { out } = imports(file);
  for (const spec of out) {
    if (spec === 'electron' || spec.startsWith('electron/')) errors.push(`${file}: renderer imports electron`);
    if (!spec.startsWith('.') && !spec.startsWith('@contract')) continue;
    const abs = spec.startsWith('@contract') ? 'electron/contract' : path.relative(root, path.resolve(path.dirname(file), spec));
    if (abs.startsWith('node-core')) errors.push(`${file}: renderer imports node-core (${spec})`);
    if (abs.startsWith('electron') && !abs.startsWith(path.join('electron', 'contract'))) errors.push(`${file}: renderer may import only electron/contract (${spec})`);
  }
});
// Import cycles (Tarjan's strongly connected components): each component of more than one
// file is reported once, as one closed path through it.
{
  let next = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const components = [];
  const visit = (v) => {
    // iterative, so a long import chain cannot overflow the stack
    const work = [[v, 0]];
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    while (work.length) {
      const top = work[work.length - 1];
      const [u, i] = top;
      const edges = graph.get(u) ?? [];
      if (i < edges.length) {
        top[1]++;
        const w = edges[i];
        if (!graph.has(w)) continue;
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          onStack.add(w);
          work.push([w, 0]);
        } else if (onStack.has(w)) low.set(u, Math.min(low.get(u), index.get(w)));
        continue;
      }
      work.pop();
      if (work.length) {
        const parent = work[work.length - 1][0];
        low.set(parent, Math.min(low.get(parent), low.get(u)));
      }
      if (low.get(u) === index.get(u)) {
        const comp = [];
        let w;
        do {
          w = stack.pop();
          onStack.delete(w);
          comp.push(w);
        } while (w !== u);
        if (comp.length > 1) components.push(comp);
      }
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  for (const comp of components) {
    const inComp = new Set(comp);
    const start = comp.sort()[0];
    // shortest path from start back to start inside the component (breadth-first)
    const prev = new Map();
    const queue = [start];
    let closing;
    while (queue.length && !closing) {
      const u = queue.shift();
      for (const w of graph.get(u) ?? []) {
        if (!inComp.has(w)) continue;
        if (w === start) {
          closing = u;
          break;
        }
        if (!prev.has(w)) {
          prev.set(w, u);
          queue.push(w);
        }
      }
    }
    const cycle = [start];
    for (let u = closing; u && u !== start; u = prev.get(u)) cycle.splice(1, 0, u);
    cycle.push(start);
    errors.push(`import cycle: ${cycle.join(' -> ')}${comp.length > cycle.length - 1 ? ` (${comp.length} files in the tangle)` : ''}`);
  }
}
if (errors.length) {
  console.error(errors.join('\n'));
  console.error(`check-layers: ${errors.length} violation(s)`);
  process.exit(1);
}
console.log('check-layers: ok');
