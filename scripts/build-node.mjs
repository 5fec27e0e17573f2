#!/usr/bin/env node
// Builds etcdesk-node's CLI (node-core/server/cli.ts) ahead of time into one
// ES module, out/node/etcdesk-node.mjs, so a start loads plain JavaScript
// instead of compiling ~100 TypeScript files through tsx (about a second of
// CPU per start, and ~40 MB of RSS that tsx itself keeps). lmdb (native) and
// @grpc/grpc-js (which finds its .proto files next to its own sources) stay
// ordinary node_modules imports.
//
// Beside the bundle, a manifest lists every input with its size, mtime and
// sha1: bin/etcdesk-node.mjs runs the bundle only when every input is as it
// was built from, so a start never runs code older than the sources.
//
// `node scripts/build-node.mjs` builds unconditionally; `freshBundle()` is
// what the bin calls.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The CLI's bundle; tests pass their own (a scratch project). */
const CLI = { root: ROOT, entry: 'node-core/server/cli.ts', bundle: path.join(ROOT, 'out/node/etcdesk-node.mjs') };
const manifestOf = (bundle) => bundle.replace(/\.mjs$/, '.inputs.json');

const sha1 = (file) => crypto.createHash('sha1').update(fs.readFileSync(file)).digest('hex');

/** Whether every input recorded in the manifest is unchanged (size and mtime, or else content). */
export function isFresh(target = CLI) {
  let manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(manifestOf(target.bundle), 'utf8'));
    if (!fs.existsSync(target.bundle)) return false;
  } catch {
    return false;
  }
  for (const [rel, [size, mtimeMs, hash]] of Object.entries(manifest.inputs ?? {})) {
    const file = path.resolve(target.root, rel);
    let st;
    try {
      st = fs.statSync(file);
    } catch {
      return false;
    }
    if (st.size !== size) return false;
    // rewritten with the same bytes (e.g. the generated protobuf codecs on every `npm run node`): still fresh
    if (st.mtimeMs !== mtimeMs && sha1(file) !== hash) return false;
  }
  return true;
}

/** Builds the bundle and its manifest (each written whole, then renamed: concurrent builders are safe). */
export async function buildNode(target = CLI) {
  const esbuild = await import('esbuild');
  const started = Date.now();
  const { bundle } = target;
  const manifest = manifestOf(bundle);
  fs.mkdirSync(path.dirname(bundle), { recursive: true });
  const tmp = `${bundle}.${process.pid}.tmp`;
  const r = await esbuild.build({
    absWorkingDir: target.root,
    entryPoints: [target.entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: tmp,
    external: ['lmdb', '@grpc/grpc-js'],
    // bundled CommonJS dependencies call require(): give the module one
    banner: { js: "import { createRequire as __etcdeskCreateRequire } from 'node:module'; const require = __etcdeskCreateRequire(import.meta.url);" },
    metafile: true,
    logLevel: 'silent',
  });
  const inputs = {};
  const ended = Date.now();
  for (const rel of Object.keys(r.metafile.inputs)) {
    const file = path.resolve(target.root, rel);
    const st = fs.statSync(file);
    // (a file dated in the future is not taken for one written during the build)
    if (st.mtimeMs >= started && st.mtimeMs <= ended + 1) {
      // changed while being bundled: this build may hold the older version, so it replaces nothing
      fs.rmSync(tmp, { force: true });
      throw new Error(`${rel} changed during the build`);
    }
    inputs[rel] = [st.size, st.mtimeMs, sha1(file)];
  }
  // no manifest may vouch for a bundle while it is being replaced
  fs.rmSync(manifest, { force: true });
  fs.renameSync(tmp, bundle);
  const mtmp = `${manifest}.${process.pid}.tmp`;
  fs.writeFileSync(mtmp, JSON.stringify({ entry: target.entry, inputs }));
  fs.renameSync(mtmp, manifest);
  return bundle;
}

/**
 * The bundle's path when it matches the sources, rebuilding it first when
 * they changed; undefined when it cannot be built here (esbuild missing, a
 * syntax error, a source changed while it was built): the caller then runs
 * the sources through tsx, which reports any error in its usual form.
 */
export async function freshBundle(target = CLI) {
  if (isFresh(target)) return target.bundle;
  try {
    return await buildNode(target);
  } catch {
    return undefined;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const t0 = Date.now();
  try {
    await buildNode();
  } catch (e) {
    // an install without dev dependencies: the bin runs the sources instead
    if (e?.code === 'ERR_MODULE_NOT_FOUND') {
      process.stdout.write('esbuild not installed: etcdesk-node will run its TypeScript sources\n');
      process.exit(0);
    }
    throw e;
  }
  process.stdout.write(`built ${path.relative(ROOT, CLI.bundle)} in ${Date.now() - t0} ms\n`);
}
