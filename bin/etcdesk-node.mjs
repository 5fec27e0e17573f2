#!/usr/bin/env node
// etcdesk-node: runs the prebuilt bundle of the CLI (scripts/build-node.mjs,
// out/node/etcdesk-node.mjs), rebuilt first when any of its sources changed,
// so a start loads plain JavaScript and never runs stale code. Without
// esbuild, on a build error, or with ETCDESK_NODE_FROM_SOURCE=1 it runs the
// TypeScript sources through tsx's loader instead.
import { pathToFileURL } from 'node:url';

let main;
if (!process.env.ETCDESK_NODE_FROM_SOURCE) {
  const { freshBundle } = await import('../scripts/build-node.mjs');
  const bundle = await freshBundle();
  if (bundle) ({ main } = await import(pathToFileURL(bundle).href));
}
if (!main) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../node-core/server/cli.ts'));
}
const code = await main(process.argv.slice(2), process.env);
process.exit(code);
