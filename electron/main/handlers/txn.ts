// The transaction builder: the contract's compares and ops to etcd's Txn and back.
import { EtcdPb, type EtcdClient } from '../../../node-core/index';
import { ContractError, type TxnCompare, type TxnOp, type TxnOpResult } from '../../contract/index';
import { kvToContract, prefixEndOf, text } from '../convert';
import type { HandlerDeps, HandlersFor } from './context';

const { Compare_CompareResult: CR, Compare_CompareTarget: CT } = EtcdPb;

function compareToPb(c: TxnCompare): EtcdPb.CompareInit {
  const result = { '=': CR.EQUAL, '!=': CR.NOT_EQUAL, '<': CR.LESS, '>': CR.GREATER }[c.op];
  const key = text(c.key);
  const num = (): number => {
    const n = Number(c.operand.trim() || '0');
    if (!Number.isInteger(n)) throw new ContractError(-1, `"${c.operand}" is not a number (compare on ${c.key})`);
    return n;
  };
  switch (c.target) {
    case 'version':
      return { key, result, target: CT.VERSION, version: num() };
    case 'create':
      return { key, result, target: CT.CREATE, create_revision: num() };
    case 'mod':
      return { key, result, target: CT.MOD, mod_revision: num() };
    case 'value':
      return { key, result, target: CT.VALUE, value: text(c.operand) };
    case 'lease': {
      const operand = c.operand.trim() || '0';
      if (!/^\d+$/.test(operand)) throw new ContractError(-1, `"${c.operand}" is not a lease id (compare on ${c.key})`);
      return { key, result, target: CT.LEASE, lease: BigInt(operand) };
    }
  }
}

function opToPb(op: TxnOp): EtcdPb.RequestOpInit {
  const key = text(op.key);
  const end = 'prefix' in op && op.prefix ? prefixEndOf(key) : undefined;
  switch (op.type) {
    case 'put':
      return { request_put: { key, value: text(op.value), lease: op.lease ? BigInt(op.lease) : undefined, prev_kv: true } };
    case 'get':
      return { request_range: { key, range_end: end } };
    case 'delete':
      return { request_delete_range: { key, range_end: end, prev_kv: true } };
  }
}

function opResult(op: TxnOp, r: EtcdPb.ResponseOp): TxnOpResult {
  if (r.response_range) return { type: 'get', key: op.key, kvs: r.response_range.kvs.map(kvToContract) };
  if (r.response_put) return { type: 'put', key: op.key, prevKv: r.response_put.prev_kv ? kvToContract(r.response_put.prev_kv) : null };
  if (r.response_delete_range) return { type: 'delete', key: op.key, deleted: r.response_delete_range.deleted, kvs: r.response_delete_range.prev_kvs.map(kvToContract) };
  return { type: op.type, key: op.key };
}

export function txnHandlers(deps: HandlerDeps): HandlersFor<'kv:txn'> {
  const c = (): EtcdClient => deps.manager.requireClient();
  return {
    'kv:txn': async (req) => {
      const r = await c().txn({ compare: req.compares.map(compareToPb), success: req.success.map(opToPb), failure: req.failure.map(opToPb) });
      const ops = r.succeeded ? req.success : req.failure;
      return { succeeded: r.succeeded, revision: r.header?.revision ?? 0, results: r.responses.map((resp, i) => opResult(ops[i], resp)) };
    },
  };
}
