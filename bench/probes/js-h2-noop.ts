// Ceiling probe: the lean TypeScript HTTP/2 server (node-core/server/h2) answering every call
// with the same fixed PutResponse as raw-h2.mjs, no protobuf: what the transport alone costs
// when it is ours instead of node:http2. usage: node --import tsx js-h2-noop.ts PORT
import net from 'node:net';
import { createLeanH2Server, EncodedHeaders } from '../../node-core/server/h2/server';

const port = Number(process.argv[2]);
// PutResponse{header:{cluster_id:1,member_id:2,revision:3,raft_term:4}}
const hdr = Buffer.from([0x08, 1, 0x10, 2, 0x18, 3, 0x20, 4]);
const msg = Buffer.concat([Buffer.from([0x0a, hdr.length]), hdr]);
const frame = Buffer.alloc(5 + msg.length);
frame[0] = 0;
frame.writeUInt32BE(msg.length, 1);
msg.copy(frame, 5);
const RESPONSE = new EncodedHeaders({ ':status': '200', 'content-type': 'application/grpc' });
const TRAILERS = new EncodedHeaders({ 'grpc-status': '0' });
const h2 = createLeanH2Server((stream) => {
  stream.onend = () => {
    stream.respond(RESPONSE);
    stream.write(frame);
    stream.end(TRAILERS);
  };
});
net.createServer((socket) => h2.handleSocket(socket)).listen(port, '127.0.0.1', () => console.log('ready', port));
