// A txn as code a user can take elsewhere: etcdctl txn's stdin input, Go
// clientv3 and TypeScript (the etcd3 npm client). The txn builder previews
// the etcdctl form, which is exactly what `etcdctl txn` reads (e2e pipes the
// page's preview to etcdctl and compares with the app's own Run).
import type { TxnCompare, TxnOp, TxnRequest } from './types';

// Go's %q (etcdctl's compare scanner and argify) reads JSON's escapes: \" \\ \n \uXXXX.
const quote = (s: string): string => JSON.stringify(s);
/**
 * One etcdctl argument. etcdctl's argify splits on whitespace, honours "double quotes" (its
 * 'single quote' branch slices wrongly, so never used here), and cobra reads a leading '-' as a flag.
 */
const arg = (s: string): string => (/^[^\s"'\\-][^\s"'\\]*$/.test(s) ? s : quote(s));

const targetWord: Record<TxnCompare['target'], string> = { version: 'ver', create: 'c', mod: 'm', value: 'val', lease: 'lease' };

/** etcdctl 3.4 builds a lease compare without its key and panics on the value, so it cannot run one. */
export const etcdctlUnsupported = (t: TxnRequest): string | null =>
  t.compares.some((c) => c.target === 'lease') ? 'etcdctl txn cannot express a lease compare (etcdctl 3.4 drops its key); use the Go or TypeScript export' : null;

export function compareToEtcdctl(c: TxnCompare): string {
  const operand = c.target === 'value' ? quote(c.operand) : quote(c.operand.trim() || '0');
  return `${targetWord[c.target]}(${quote(c.key)}) ${c.op} ${operand}`;
}

const hexLease = (lease?: string): string | null => (lease && lease !== '0' && /^\d+$/.test(lease) ? BigInt(lease).toString(16) : null);

export function opToEtcdctl(op: TxnOp): string {
  // Arguments that look like flags need "--" before them (the flags themselves go first).
  const words = (flags: string[], args: string[]): string => [...flags, ...(args.some((a) => a.startsWith('-')) ? ['--'] : []), ...args.map(arg)].join(' ');
  switch (op.type) {
    case 'put': {
      const lease = hexLease(op.lease);
      return `put ${words(lease ? [`--lease=${lease}`] : [], [op.key, op.value])}`;
    }
    case 'get':
      return `get ${words(op.prefix ? ['--prefix'] : [], [op.key])}`;
    case 'delete':
      return `del ${words(op.prefix ? ['--prefix'] : [], [op.key])}`;
  }
}

/** What `etcdctl txn` reads on stdin: compares, blank line, success ops, blank line, failure ops, blank line. */
export function txnToEtcdctl(t: TxnRequest): string {
  return [t.compares.map(compareToEtcdctl), t.success.map(opToEtcdctl), t.failure.map(opToEtcdctl)].map((lines) => lines.map((l) => l + '\n').join('') + '\n').join('');
}

/** The interactive form, with etcdctl's prompts (`etcdctl txn -i`), for reading. */
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

// --- Go clientv3 (etcd 3.4: go.etcd.io/etcd/clientv3) ---
const goTarget: Record<TxnCompare['target'], string> = { version: 'Version', create: 'CreateRevision', mod: 'ModRevision', value: 'Value', lease: 'LeaseValue' };
const num = (s: string): string => (/^-?\d+$/.test(s.trim()) ? s.trim() : '0');

function goOp(op: TxnOp): string {
  const k = quote(op.key);
  switch (op.type) {
    case 'put': {
      const lease = hexLease(op.lease);
      return `clientv3.OpPut(${k}, ${quote(op.value)}${lease ? `, clientv3.WithLease(clientv3.LeaseID(0x${lease}))` : ''})`;
    }
    case 'get':
      return `clientv3.OpGet(${k}${op.prefix ? ', clientv3.WithPrefix()' : ''})`;
    case 'delete':
      return `clientv3.OpDelete(${k}${op.prefix ? ', clientv3.WithPrefix()' : ''})`;
  }
}

export function txnToGo(t: TxnRequest): string {
  const cmp = (c: TxnCompare): string => {
    const operand = c.target === 'value' ? quote(c.operand) : c.target === 'lease' ? `clientv3.LeaseID(${num(c.operand)})` : num(c.operand);
    return `clientv3.Compare(clientv3.${goTarget[c.target]}(${quote(c.key)}), ${quote(c.op)}, ${operand})`;
  };
  const list = (items: string[]): string => (items.length ? `\n\t\t${items.join(',\n\t\t')},\n\t` : '');
  return [
    'import (',
    '\t"context"',
    '',
    '\t"go.etcd.io/etcd/clientv3"',
    ')',
    '',
    'func runTxn(ctx context.Context, cli *clientv3.Client) (*clientv3.TxnResponse, error) {',
    '\treturn cli.Txn(ctx).',
    `\t\tIf(${list(t.compares.map(cmp))}).`,
    `\t\tThen(${list(t.success.map(goOp))}).`,
    `\t\tElse(${list(t.failure.map(goOp))}).`,
    '\t\tCommit()',
    '}',
    '',
  ].join('\n');
}

// --- TypeScript (the etcd3 npm client's transaction builder) ---
const tsColumn: Record<TxnCompare['target'], string> = { version: 'Version', create: 'Create', mod: 'Mod', value: 'Value', lease: 'Lease' };
const tsCmp: Record<TxnCompare['op'], string> = { '=': '==', '!=': '!=', '<': '<', '>': '>' };

function tsOp(op: TxnOp): string {
  const k = quote(op.key);
  switch (op.type) {
    case 'put':
      return `client.put(${k}).value(${quote(op.value)})${op.lease && op.lease !== '0' ? `.lease(${quote(op.lease)})` : ''}`;
    case 'get':
      return op.prefix ? `client.getAll().prefix(${k})` : `client.get(${k})`;
    case 'delete':
      return op.prefix ? `client.delete().prefix(${k})` : `client.delete().key(${k})`;
  }
}

export function txnToTypeScript(t: TxnRequest): string {
  const cmp = (c: TxnCompare): string => `${quote(c.key)}, ${quote(tsColumn[c.target])}, ${quote(tsCmp[c.op])}, ${c.target === 'value' ? quote(c.operand) : num(c.operand)}`;
  const lines = ["import { Etcd3 } from 'etcd3';", '', "const client = new Etcd3({ hosts: '127.0.0.1:2379' });", 'const result = await client'];
  // etcd3's builder starts from if(); with no compares an always-true one keeps the Then branch unconditional.
  const [first, ...rest] = t.compares.length ? t.compares : [null];
  lines.push(first ? `  .if(${cmp(first)})` : "  .if('', 'Create', '>', -1) // no compares: always true");
  for (const c of rest) if (c) lines.push(`  .and(${cmp(c)})`);
  const branch = (name: string, ops: TxnOp[]): void => {
    if (ops.length) lines.push(`  .${name}(\n    ${ops.map(tsOp).join(',\n    ')},\n  )`);
  };
  branch('then', t.success);
  branch('else', t.failure);
  lines.push('  .commit();', "console.log(result.succeeded ? 'Then branch' : 'Else branch', result.responses);", '');
  return lines.join('\n');
}
