// --grpc-keepalive-interval / --grpc-keepalive-timeout, side by side with etcd
// 3.4.23: a client connection that goes quiet gets a PING after the interval,
// and one that never answers it is closed after the timeout.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { hasEtcd, startEtcd, startEtcdesk, type ServerProc } from '../testing/processes';

const procs: ServerProc[] = [];
after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
});

const FRAME_PING = 6;

/** Opens an HTTP/2 connection that sends its preface and SETTINGS, then never answers; resolves with what happened to it. */
function silentClient(port: number): Promise<{ pinged: boolean; closed: boolean }> {
  return new Promise((resolve) => {
    const raw = net.connect(port, '127.0.0.1');
    let pinged = false;
    let buf = Buffer.alloc(0);
    raw.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    raw.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]));
    raw.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        if (buf[3] === FRAME_PING && (buf[4] & 1) === 0) pinged = true;
        buf = buf.subarray(9 + len);
      }
    });
    raw.on('error', () => undefined);
    raw.on('close', () => resolve({ pinged, closed: true }));
  });
}

describe('gRPC keepalive flags', { skip: !hasEtcd() && 'etcd not installed' }, () => {
  it('a silent client connection is pinged after --grpc-keepalive-interval and closed after --grpc-keepalive-timeout, as etcd', { timeout: 60_000 }, async () => {
    const args = ['--grpc-keepalive-interval', '500ms', '--grpc-keepalive-timeout', '500ms'];
    const [etcd, ours] = await Promise.all([startEtcd({ extraArgs: args }), startEtcdesk({ extraArgs: ['--log-level', 'warn', ...args] })]);
    procs.push(etcd, ours);
    // with etcd's defaults (2 h) neither would ping nor close within the test's timeout
    const [want, got] = await Promise.all([silentClient(Number(etcd.endpoint.split(':')[1])), silentClient(Number(ours.endpoint.split(':')[1]))]);
    assert.deepEqual(want, { pinged: true, closed: true }, 'etcd pings and closes');
    assert.deepEqual(got, want);
  });
});
