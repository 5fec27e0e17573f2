import { defineStore } from 'pinia';
import type { DataExportFormat, DataExportResult, ImportPreview, TransferResult } from '../../../electron/contract/index';
import { useApi } from '../api';

let seq = 0;
const nextOp = (what: string): string => `data-${what}-${Date.now()}-${++seq}`;

type CopyResult = TransferResult & { planned: number; existing: string[] };
type Busy = '' | 'export' | 'preview' | 'apply' | 'copy' | 'delete';

/** Moving data: export, import (preview → apply), copy/rename a prefix, bulk delete. One operation at a time. */
export const useDataStore = defineStore('data', {
  state: () => ({
    opId: '',
    busy: '' as Busy,
    exported: null as DataExportResult | null,
    preview: null as ImportPreview | null,
    previewFile: '',
    applied: null as TransferResult | null,
    copyCheck: null as CopyResult | null,
    copied: null as CopyResult | null,
    deleted: null as TransferResult | null,
  }),
  actions: {
    async run<T>(what: Exclude<Busy, ''>, fn: (opId: string) => Promise<T>): Promise<T> {
      this.opId = nextOp(what);
      this.busy = what;
      try {
        return await fn(this.opId);
      } finally {
        this.busy = '';
        this.opId = '';
      }
    },
    async cancel(): Promise<void> {
      if (this.opId) await useApi().invoke('data:cancel', { opId: this.opId });
    },
    async exportPrefix(prefix: string, format: DataExportFormat): Promise<DataExportResult> {
      this.exported = await this.run('export', (opId) => useApi().invoke('data:export', { prefix, format, opId }));
      return this.exported;
    },
    async previewImport(fileName: string, text: string, targetPrefix?: string): Promise<ImportPreview> {
      this.applied = null;
      this.preview = await this.run('preview', (opId) => useApi().invoke('data:import-preview', { text, targetPrefix, opId }));
      this.previewFile = fileName;
      return this.preview;
    },
    async applyImport(): Promise<TransferResult | null> {
      const p = this.preview;
      if (!p) return null;
      this.applied = await this.run('apply', (opId) => useApi().invoke('data:import-apply', { planId: p.planId, opId }));
      this.preview = null;
      return this.applied;
    },
    async checkCopy(from: string, to: string, rename: boolean): Promise<CopyResult> {
      this.copied = null;
      this.copyCheck = await this.run('copy', (opId) => useApi().invoke('data:copy-prefix', { from, to, rename, dryRun: true, opId }));
      return this.copyCheck;
    },
    async copy(from: string, to: string, rename: boolean): Promise<CopyResult> {
      this.copied = await this.run('copy', (opId) => useApi().invoke('data:copy-prefix', { from, to, rename, dryRun: false, opId }));
      this.copyCheck = null;
      return this.copied;
    },
    async deleteKeys(keys: { key: string; modRevision: number }[]): Promise<TransferResult> {
      this.deleted = await this.run('delete', (opId) => useApi().invoke('data:delete-keys', { keys, opId }));
      return this.deleted;
    },
  },
});
