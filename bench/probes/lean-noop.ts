// Ceiling probe: the node's own gRPC server (node-core/server/grpc-server.ts) answering KV.Put and
// KV.Range with a fixed header, through the generated codecs and the same listener path as a node
// (cmux sniff, then the lean HTTP/2 server; ETCDESK_NODE_HTTP2=1: node:http2 + :authority sniff), but no raft, no store. usage: node --import tsx lean-noop.ts PORT
import { GrpcServer } from '../../node-core/server/grpc-server';
import { listenClientUrl } from '../../node-core/server/client-listener';
import { KVService } from '../../node-core/proto/gen/etcdserverpb';
import type { PutRequest, PutResponseInit, RangeRequest, RangeResponseInit } from '../../node-core/proto/gen/etcdserverpb';
import type { handleUnaryCall } from '@grpc/grpc-js';

const port = Number(process.argv[2]);
const header = { cluster_id: 1n, member_id: 2n, revision: 3, raft_term: 4 };
const s = new GrpcServer({ maxReceiveMessageBytes: 2 << 20 });
const put: handleUnaryCall<PutRequest, PutResponseInit> = (_call, cb) => cb(null, { header });
const range: handleUnaryCall<RangeRequest, RangeResponseInit> = (_call, cb) => cb(null, { header });
const handlers = { Put: put, Range: range };
s.addService(KVService, handlers);
await listenClientUrl(`http://127.0.0.1:${port}`, process.env.ETCDESK_NODE_HTTP2 === '1' ? s.http2Server() : s, false, (_req, res) => res.end());
console.log('ready', port);
