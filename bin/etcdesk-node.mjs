#!/usr/bin/env node
// etcdesk-node: runs the TypeScript sources through tsx's loader, so the CLI
// needs no separate build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../node-core/server/cli.ts');
const code = await main(process.argv.slice(2), process.env);
process.exit(code);
