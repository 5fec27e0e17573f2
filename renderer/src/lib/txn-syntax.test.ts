import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { etcdctlUnsupported, opToEtcdctl, txnToEtcdctl, txnToGo, txnToTypeScript } from '../../../electron/contract/index';

describe('txn export', () => {
  it('writes etcdctl txn input with etcdctl\'s quoting: double quotes, "--" before dash-led arguments', () => {
    assert.equal(opToEtcdctl({ type: 'put', key: '/a', value: 'b' }), 'put /a b');
    assert.equal(opToEtcdctl({ type: 'put', key: 'a b', value: '' }), 'put "a b" ""');
    assert.equal(opToEtcdctl({ type: 'put', key: '-k', value: 'it\'s\n"x"' }), 'put -- "-k" "it\'s\\n\\"x\\""');
    assert.equal(opToEtcdctl({ type: 'put', key: 'k', value: 'v', lease: '255' }), 'put --lease=ff k v');
    assert.equal(opToEtcdctl({ type: 'get', key: '/p/', prefix: true }), 'get --prefix /p/');
    assert.equal(opToEtcdctl({ type: 'delete', key: '-x' }), 'del -- "-x"');
  });
  it('ends every section, empty ones included, with a blank line', () => {
    assert.equal(txnToEtcdctl({ compares: [], success: [{ type: 'get', key: 'k' }], failure: [] }), '\nget k\n\n\n');
    assert.equal(
      txnToEtcdctl({ compares: [{ key: 'k', target: 'mod', op: '>', operand: '' }], success: [], failure: [{ type: 'delete', key: 'k' }] }),
      'm("k") > "0"\n\n\ndel k\n\n',
    );
  });
  it('says when etcdctl cannot express a txn (a lease compare) and exports it as code instead', () => {
    const t = { compares: [{ key: 'k', target: 'lease' as const, op: '=' as const, operand: '7' }], success: [], failure: [] };
    assert.ok(etcdctlUnsupported(t));
    assert.match(txnToGo(t), /clientv3\.Compare\(clientv3\.LeaseValue\("k"\), "=", clientv3\.LeaseID\(7\)\)/);
    assert.match(txnToTypeScript(t), /\.if\("k", "Lease", "==", 7\)/);
    assert.equal(etcdctlUnsupported({ compares: [], success: [], failure: [] }), null);
  });
});
