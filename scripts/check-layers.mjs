#!/usr/bin/env node
// Enforces the import direction between layers (see ARCHITECTURE.md):
//   server -> cluster -> {lease, auth, watch} -> mvcc -> backend -> {errors, proto}
//   cluster -> raft;  raft -> nothing;  proto -> nothing (but its runtime)
//   electron/main -> node-core's public entry (node-core/index.ts) only
//   renderer -> electron/contract only (never electron, never node-core)
// and keeps the raft core free of clocks, timers, randomness and I/O.
import fs from 'node:fs';
import path from 'node:path';

const rank = { errors: 0, proto: 0, backend: 1, client: 1, mvcc: 2, lease: 3, auth: 3, watch: 3, raft: 0, cluster: 4, backup: 2, server: 5, testing: 9 };
const allowed = (from, to) => {
  if (from === to) return true;
  if (from === 'raft') return false;
  if (to === 'raft') return from === 'cluster' || from === 'testing';
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
walk('node-core', (file) => {
  const rel = path.relative('node-core', file).split(path.sep);
  if (rel.length < 2) return; // index.ts at the top re-exports the public API
  const layer = rel[0];
  const { src, out } = imports(file);
  const isTest = file.endsWith('.test.ts');
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
    if (!isTest && !allowed(layer, tl)) errors.push(`${file}: layer '${layer}' must not import '${tl}' (${spec})`);
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
if (errors.length) {
  console.error(errors.join('\n'));
  console.error(`check-layers: ${errors.length} violation(s)`);
  process.exit(1);
}
console.log('check-layers: ok');
