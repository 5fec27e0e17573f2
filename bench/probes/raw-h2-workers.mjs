// Ceiling probe: the raw node:http2 probe (raw-h2.mjs) spread over worker processes with node:cluster
// (the primary accepts and hands connections round-robin). Shows what a second core is worth for the
// HTTP/2 + framing part alone. usage: node raw-h2-workers.mjs PORT [WORKERS=2]
import cluster from 'node:cluster';
import http2 from 'node:http2';
const port = Number(process.argv[2]);
const workers = Number(process.argv[3] ?? 2);
if (cluster.isPrimary) {
  cluster.schedulingPolicy = cluster.SCHED_RR;
  let ready = 0;
  for (let i = 0; i < workers; i++) cluster.fork().on('listening', () => ++ready === workers && console.log('ready', port));
  process.on('SIGTERM', () => { for (const w of Object.values(cluster.workers)) w.kill(); process.exit(0); });
} else {
  const hdr = Buffer.from([0x08, 1, 0x10, 2, 0x18, 3, 0x20, 4]);
  const msg = Buffer.concat([Buffer.from([0x0a, hdr.length]), hdr]);
  const frame = Buffer.alloc(5 + msg.length); frame[0] = 0; frame.writeUInt32BE(msg.length, 1); msg.copy(frame, 5);
  const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
  server.on('stream', (stream) => {
    stream.on('data', () => {});
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(frame);
    });
  });
  server.listen(port, '127.0.0.1');
}
