// etcdctl's txn syntax (what `etcdctl txn` reads on stdin, and what its
// interactive mode prompts for): compares, blank line, success ops, blank
// line, failure ops. The txn builder previews it so a user can replay a txn
// from a shell; e2e pipes it to etcdctl to check the two agree.
import type { TxnCompare, TxnOp, TxnRequest } from './types';

const quote = (s: string): string => JSON.stringify(s);
const arg = (s: string): string => (/^[^\s"'\\]+$/.test(s) ? s : quote(s));

const targetWord: Record<TxnCompare['target'], string> = { version: 'ver', create: 'c', mod: 'm', value: 'val', lease: 'lease' };

export function compareToEtcdctl(c: TxnCompare): string {
  const operand = c.target === 'value' ? quote(c.operand) : quote(c.operand.trim() || '0');
  return `${targetWord[c.target]}(${quote(c.key)}) ${c.op} ${operand}`;
}

export function opToEtcdctl(op: TxnOp): string {
  switch (op.type) {
    case 'put':
      return `put${op.lease && op.lease !== '0' ? ` --lease=${BigInt(op.lease).toString(16)}` : ''} ${arg(op.key)} ${arg(op.value)}`;
    case 'get':
      return `get ${arg(op.key)}${op.prefix ? ' --prefix' : ''}`;
    case 'delete':
      return `del ${arg(op.key)}${op.prefix ? ' --prefix' : ''}`;
  }
}

export function txnToEtcdctl(t: TxnRequest): string {
  // Each section ends with an empty line, the last one included (etcdctl reads until it).
  return [t.compares.map(compareToEtcdctl), t.success.map(opToEtcdctl), t.failure.map(opToEtcdctl)].map((lines) => lines.map((l) => l + '\n').join('') + '\n').join('');
}

/** The interactive form, with etcdctl's prompts, for display. */
export function txnToInteractive(t: TxnRequest): string {
  return [
    'compares:',
    ...t.compares.map(compareToEtcdctl),
    '',
    'success requests (get, put, del):',
    ...t.success.map(opToEtcdctl),
    '',
    'failure requests (get, put, del):',
    ...t.failure.map(opToEtcdctl),
  ].join('\n');
}
