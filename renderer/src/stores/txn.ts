import { defineStore } from 'pinia';
import { etcdctlUnsupported, txnToEtcdctl, txnToGo, txnToTypeScript, type TxnCompare, type TxnOp, type TxnRequest, type TxnResult } from '../../../electron/contract/index';
import { useApi } from '../api';

export const useTxnStore = defineStore('txn', {
  state: () => ({
    compares: [] as TxnCompare[],
    success: [] as TxnOp[],
    failure: [] as TxnOp[],
    result: null as TxnResult | null,
    running: false,
  }),
  getters: {
    request: (s): TxnRequest => ({ compares: s.compares, success: s.success, failure: s.failure }),
    /** Exactly what `etcdctl txn` reads on stdin. */
    preview(): string {
      return txnToEtcdctl(this.request);
    },
    previewProblem(): string | null {
      return etcdctlUnsupported(this.request);
    },
    goCode(): string {
      return txnToGo(this.request);
    },
    tsCode(): string {
      return txnToTypeScript(this.request);
    },
  },
  actions: {
    addCompare(): void {
      this.compares.push({ key: '', target: 'mod', op: '=', operand: '0' });
    },
    addOp(branch: 'success' | 'failure', type: TxnOp['type'] = 'put'): void {
      const op: TxnOp = type === 'put' ? { type, key: '', value: '' } : { type, key: '' };
      this[branch].push(op);
    },
    remove(list: 'compares' | 'success' | 'failure', i: number): void {
      this[list].splice(i, 1);
    },
    setOpType(branch: 'success' | 'failure', i: number, type: TxnOp['type']): void {
      const old = this[branch][i];
      this[branch][i] = type === 'put' ? { type, key: old.key, value: old.type === 'put' ? old.value : '' } : { type, key: old.key };
    },
    reset(): void {
      this.compares = [];
      this.success = [];
      this.failure = [];
      this.result = null;
    },
    async run(): Promise<TxnResult> {
      this.running = true;
      try {
        this.result = await useApi().invoke('kv:txn', JSON.parse(JSON.stringify(this.request)) as TxnRequest);
        return this.result;
      } finally {
        this.running = false;
      }
    },
  },
});
