import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ETCD_ERROR_HELP, cleanErrorMessage, explainError } from '../../../electron/contract/index';

// node-core's error table, read as text: the renderer and the contract import nothing from node-core,
// yet every entry here must name an error etcd really sends, by its exact code and message.
function etcdErrors(): Set<string> {
  const src = fs.readFileSync(path.join(import.meta.dirname, '../../../node-core/errors/index.ts'), 'utf8');
  const codes = new Map([...src.matchAll(/^\s+(\w+): (\d+),$/gm)].map((m) => [m[1], Number(m[2])]));
  return new Set([...src.matchAll(/e\(Code\.(\w+), '([^']+)'\)/g)].map((m) => `${codes.get(m[1])}|${m[2]}`));
}

describe('error help', () => {
  it('explains only errors etcd really sends, identified by code and exact message', () => {
    const known = etcdErrors();
    assert.ok(known.size > 40);
    for (const [code, message, title, sentence] of ETCD_ERROR_HELP) {
      assert.ok(known.has(`${code}|${message}`), `not an etcd error: ${code} ${message}`);
      assert.ok(title && /, so /.test(sentence) && sentence.endsWith('.'), `cause, so fix: ${sentence}`);
      assert.equal(explainError({ code, message })?.sentence, sentence);
    }
    // Same words with another code is another error: no match by text alone.
    assert.equal(explainError({ code: 2, message: 'etcdserver: permission denied' }), null);
  });
  it('names the request limits for a value that is too large, at either limit', () => {
    const app = explainError({ code: 3, message: 'etcdserver: request is too large' });
    const grpc = explainError({ code: 8, message: 'Received message larger than max (2621509 vs 2097152)' });
    for (const h of [app, grpc]) assert.match(h?.sentence ?? '', /1\.5 MiB request limit \(2 MiB per gRPC message\)/);
  });
  it('explains an unreachable endpoint and drops grpc-js\'s empty "Resolution note:"', () => {
    const raw = 'No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: ';
    assert.equal(explainError({ code: 14, message: raw })?.title, 'Endpoint unreachable');
    assert.equal(explainError({ code: -1, message: raw })?.title, 'Endpoint unreachable');
    assert.equal(cleanErrorMessage(raw), 'No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1.');
    assert.equal(cleanErrorMessage('14 UNAVAILABLE: No connection established'), 'No connection established');
  });
  it('names root protection and a lease on a missing key', () => {
    assert.match(explainError({ code: 3, message: 'etcdserver: invalid auth management' })?.sentence ?? '', /disable authentication first/);
    assert.match(explainError({ code: 3, message: 'etcdserver: key not found' })?.sentence ?? '', /create the key first/);
  });
});
