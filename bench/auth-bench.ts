// Put and range throughput of etcdesk-node with authentication on (simple
// token, a user with a read-write role) against the same node with auth off.
// The shared etcdload has no user/password option, so this drives gRPC
// itself (grpc-js, a few channels, N requests in flight): both sides use the
// same driver, which is what the ratio needs.
import * as grpc from '@grpc/grpc-js';
import { pathToFileURL } from 'node:url';
import {
  AuthService,
  KVService,
  decodeAuthenticateResponse,
  decodeAuthEnableResponse,
  decodePutResponse,
  decodeRangeResponse,
  type AuthenticateResponse,
} from '../node-core/proto/gen/etcdserverpb';
import { etcdctl, startEtcdesk } from '../node-core/testing/processes';

export interface AuthBenchRow {
  op: 'put' | 'range';
  auth: boolean;
  qps: number;
  p99Ms: number;
}

type Unary = (path: string, ser: (m: never) => Buffer, de: (b: Buffer) => unknown, req: unknown, md: grpc.Metadata) => Promise<unknown>;

function caller(client: grpc.Client): Unary {
  return (path, ser, de, req, md) =>
    new Promise((resolve, reject) =>
      client.makeUnaryRequest(path, ser as (m: unknown) => Buffer, de, req, md, (err, res) => (err ? reject(err) : resolve(res))),
    );
}

async function drive(endpoint: string, op: 'put' | 'range', total: number, inflight: number, md: grpc.Metadata): Promise<{ qps: number; p99Ms: number }> {
  const channels = Array.from({ length: 4 }, () => new grpc.Client(endpoint, grpc.credentials.createInsecure()));
  const calls = channels.map(caller);
  const val = Buffer.alloc(256, 118);
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inflight }, async (_, w) => {
      const call = calls[w % calls.length];
      while (next < total) {
        const i = next++;
        const key = Buffer.from(String(i % 10000).padStart(8, '0'));
        const s = performance.now();
        if (op === 'put') await call(KVService.Put.path, KVService.Put.requestSerialize, decodePutResponse, { key, value: val }, md);
        else await call(KVService.Range.path, KVService.Range.requestSerialize, decodeRangeResponse, { key }, md);
        lat.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  for (const c of channels) c.close();
  lat.sort((a, b) => a - b);
  return { qps: total / secs, p99Ms: lat[Math.floor(lat.length * 0.99)] };
}

export async function runAuthBench(total = 20000, inflight = 64): Promise<AuthBenchRow[]> {
  const rows: AuthBenchRow[] = [];
  for (const auth of [false, true]) {
    const node = await startEtcdesk({ extraArgs: ['--log-level', 'warn'] });
    try {
      const md = new grpc.Metadata();
      if (auth) {
        for (const args of [['user', 'add', 'root:rootpw'], ['user', 'add', 'bench:benchpw'], ['role', 'add', 'rw'], ['role', 'grant-permission', 'rw', 'readwrite', '', '--from-key'], ['user', 'grant-role', 'bench', 'rw'], ['auth', 'enable']]) {
          const r = await etcdctl(node.endpoint, args);
          if (r.code !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
        }
        const c = new grpc.Client(node.endpoint, grpc.credentials.createInsecure());
        const res = (await caller(c)(AuthService.Authenticate.path, AuthService.Authenticate.requestSerialize, decodeAuthenticateResponse, { name: 'bench', password: 'benchpw' }, new grpc.Metadata())) as AuthenticateResponse;
        c.close();
        md.set('token', res.token);
        void decodeAuthEnableResponse;
      }
      await drive(node.endpoint, 'put', 3000, 16, md); // warm-up
      for (const op of ['put', 'range'] as const) {
        const r = await drive(node.endpoint, op, total, inflight, md);
        rows.push({ op, auth, ...r });
        process.stderr.write(`auth=${auth} ${op}: ${r.qps.toFixed(0)} qps p99 ${r.p99Ms.toFixed(2)} ms\n`);
      }
    } finally {
      await node.stop();
    }
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runAuthBench(Number(process.argv[2] ?? 20000)).then(
    (rows) => console.log(JSON.stringify(rows)),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
