#!/usr/bin/env node
// Runs every *.test.ts under the given folders (default: the whole project)
// with node's own test runner, TypeScript loaded through tsx.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const roots = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const dirs = roots.length ? roots : ['node-core', 'electron', 'renderer', 'bench', 'scripts'];
const skip = new Set(['node_modules', 'out', 'gen', 'dist']);
function walk(p, out) {
  if (!fs.existsSync(p)) return out;
  const st = fs.statSync(p);
  if (st.isFile()) {
    if (p.endsWith('.test.ts')) out.push(p);
    return out;
  }
  for (const e of fs.readdirSync(p)) if (!skip.has(e)) walk(path.join(p, e), out);
  return out;
}
const files = dirs.flatMap((d) => walk(d, [])).sort();
if (!files.length) {
  console.error('run-tests: no test files found');
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
  { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
process.exit(r.status ?? 1);
