// The prebuilt CLI bundle (scripts/build-node.mjs) is only ever run while it
// matches its sources: an input rewritten with the same bytes keeps it, an
// edited input makes the next start rebuild it, and what runs is the edit.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, test } from 'node:test';
import { freshBundle, isFresh, type BundleTarget } from './build-node.mjs';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

let loads = 0;
async function run(bundle: string): Promise<string> {
  // a new URL each time: the module cache would hand back the first build
  const m = (await import(`${pathToFileURL(bundle).href}?${++loads}`)) as { word: () => string };
  return m.word();
}

test('the bundle is rebuilt when a source changes, and only then', { timeout: 60_000 }, async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'build-node-'));
  dirs.push(root);
  fs.writeFileSync(path.join(root, 'main.ts'), "import { current } from './word';\nexport const word = (): string => current;\n");
  fs.writeFileSync(path.join(root, 'word.ts'), "export const current: string = 'one';\n");
  const target: BundleTarget = { root, entry: 'main.ts', bundle: path.join(root, 'out/cli.mjs') };

  assert.equal(isFresh(target), false, 'nothing built yet');
  const bundle = await freshBundle(target);
  assert.equal(bundle, target.bundle);
  assert.equal(await run(target.bundle), 'one');
  assert.equal(isFresh(target), true);

  // the same bytes written again (a newer mtime): still fresh, nothing rebuilt
  const later = new Date(Date.now() + 5000);
  fs.utimesSync(path.join(root, 'word.ts'), later, later);
  const builtAt = fs.statSync(target.bundle).mtimeMs;
  assert.equal(isFresh(target), true);
  await freshBundle(target);
  assert.equal(fs.statSync(target.bundle).mtimeMs, builtAt);

  // an edit of an imported file: stale, and the next start runs the edit
  fs.writeFileSync(path.join(root, 'word.ts'), "export const current: string = 'two';\n");
  assert.equal(isFresh(target), false);
  await freshBundle(target);
  assert.equal(await run(target.bundle), 'two');
  assert.equal(isFresh(target), true);

  // an input gone: stale
  fs.rmSync(path.join(root, 'word.ts'));
  assert.equal(isFresh(target), false);
});
