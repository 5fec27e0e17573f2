// The :authority rewrite: grpc-go's `http://host:port` authority would make
// nghttp2 reset the stream; the rewrite keeps the HPACK state consistent.
// Plain ports serve gRPC on the lean HTTP/2 server, which takes that
// authority as it is; the rewrite is for node:http2 on a plain port
// (ETCDESK_NODE_HTTP2=1).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { after, before } from 'node:test';
import { etcdctl, hasEtcd, startEtcdesk, type ServerProc } from '../testing/processes';
import { AuthorityRewriter, sniffStats } from './h2-authority';
import { startNode, type RunningNode } from './start';
import { silentLogger } from '../support/logger';
import { freePort, tempDir } from '../testing/processes';

// literal with incremental indexing, indexed name 1 (:authority), raw value
function literal(value: string): Buffer {
  const v = Buffer.from(value, 'latin1');
  return Buffer.concat([Buffer.from([0x41, v.length]), v]);
}

describe('h2 :authority rewrite', () => {
  it('strips the scheme from a literal :authority and keeps other fields byte for byte', () => {
    const rw = new AuthorityRewriter();
    const block = Buffer.concat([Buffer.from([0x83, 0x86]), literal('http://127.0.0.1:2379'), Buffer.from([0x84])]);
    const out = rw.rewriteBlock(block);
    assert.deepEqual(out, Buffer.concat([Buffer.from([0x83, 0x86]), Buffer.from([0x41, 14]), Buffer.from('127.0.0.1:2379'), Buffer.from([0x84])]));
    // the next block references the inserted entry (index 62) and passes unchanged
    const next = Buffer.from([0x83, 0xbe]);
    assert.equal(rw.rewriteBlock(next), next);
  });

  it('leaves blocks without a scheme untouched (same buffer)', () => {
    const rw = new AuthorityRewriter();
    const block = Buffer.concat([Buffer.from([0x83]), literal('127.0.0.1:2379')]);
    assert.equal(rw.rewriteBlock(block), block);
  });

  it('decodes Huffman-coded values (www.example.com from RFC 7541 C.4.1)', () => {
    const rw = new AuthorityRewriter();
    const huff = Buffer.from('f1e3c2e5f23a6ba0ab90f4ff', 'hex');
    const block = Buffer.concat([Buffer.from([0x41, 0x80 | huff.length]), huff]);
    assert.equal(rw.rewriteBlock(block), block);
  });
});

describe('etcdctl with scheme endpoints (per-endpoint maintenance calls)', { skip: !hasEtcd() && 'etcdctl not installed' }, () => {
  let n: ServerProc;
  before(async () => {
    n = await startEtcdesk();
  });
  after(async () => {
    await n?.stop();
  });
  it('endpoint status, hashkv and status --cluster answer over http:// endpoints', async () => {
    const ep = `http://${n.endpoint}`;
    for (const args of [['endpoint', 'status'], ['endpoint', 'hashkv'], ['endpoint', 'status', '--cluster'], ['put', 'k', 'v']]) {
      const r = await etcdctl(ep, args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    }
  });
});

describe('per-connection choice', { skip: !hasEtcd() && 'etcdctl not installed' }, () => {
  let lean: RunningNode;
  let native: RunningNode;
  const start = async (name: string): Promise<RunningNode> => {
    const peer = await freePort();
    return startNode(
      { dataDir: tempDir(name), listenClientUrls: ['http://127.0.0.1:0'], listenPeerUrls: [`http://127.0.0.1:${peer}`], initialAdvertisePeerUrls: [`http://127.0.0.1:${peer}`] },
      { logger: silentLogger },
    );
  };
  before(async () => {
    lean = await start('sniff-lean');
    // read once, when the client listeners are made
    process.env.ETCDESK_NODE_HTTP2 = '1';
    try {
      native = await start('sniff');
    } finally {
      delete process.env.ETCDESK_NODE_HTTP2;
    }
  });
  after(async () => {
    await lean?.stop();
    await native?.stop();
  });
  it('the lean server (default) answers scheme authorities without any rewrite', async () => {
    const ep = lean.clientUrls[0].replace('http://', '');
    const before = { ...sniffStats };
    assert.equal((await etcdctl(ep, ['put', 'k', 'v'])).code, 0);
    assert.equal((await etcdctl(`http://${ep}`, ['endpoint', 'status'])).code, 0);
    assert.deepEqual(sniffStats, before, 'no connection went through the sniffer');
  });
  it('node:http2: ordinary clients keep the native socket path; only scheme authorities are rewritten', async () => {
    const ep = native.clientUrls[0].replace('http://', '');
    const before = { ...sniffStats };
    assert.equal((await etcdctl(ep, ['put', 'k', 'v'])).code, 0);
    assert.equal(sniffStats.rewritten, before.rewritten, 'a host:port authority must not be rewritten');
    assert.ok(sniffStats.raw > before.raw);
    assert.equal((await etcdctl(`http://${ep}`, ['endpoint', 'status'])).code, 0);
    assert.ok(sniffStats.rewritten > before.rewritten);
  });
});
