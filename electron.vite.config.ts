// electron-vite: main (ESM, node-core and dependencies external), preload
// (one CommonJS file: sandboxed preloads cannot load ES modules or chunks),
// renderer (Vue, contract alias).
import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';
import vue from '@vitejs/plugin-vue';

const contract = resolve(__dirname, 'electron/contract');

export default defineConfig({
  main: {
    build: {
      outDir: 'out/main',
      // node-worker: each hosted node's worker thread, loaded by path beside index.js (node-thread.ts).
      rollupOptions: { input: { index: resolve(__dirname, 'electron/main/index.ts'), 'node-worker': resolve(__dirname, 'electron/main/node-worker.ts') } },
    },
  },
  preload: {
    build: {
      outDir: 'out/preload',
      externalizeDeps: false,
      isolatedEntries: true,
      rollupOptions: {
        input: { index: resolve(__dirname, 'electron/preload/index.ts') },
        external: ['electron'],
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: resolve(__dirname, 'renderer'),
    plugins: [vue()],
    resolve: { alias: { '@contract': contract } },
    build: {
      outDir: resolve(__dirname, 'out/renderer'),
      rollupOptions: { input: resolve(__dirname, 'renderer/index.html') },
    },
  },
});
