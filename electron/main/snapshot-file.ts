// A snapshot (Maintenance.Snapshot) streamed to a file, and its integrity:
// etcd appends the sha256 of the db to the stream, so the file proves itself.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { EtcdClient } from '../../node-core/index';
import { ContractError } from '../contract/index';

/**
 * sha256 over everything but the last 32 bytes, fed chunk by chunk: etcd
 * appends the sha256 of the db to a snapshot, so the tail is only known at the end.
 */
export class SnapshotDigest {
  private readonly hash = createHash('sha256');
  private tail = Buffer.alloc(0);
  bytes = 0;

  update(chunk: Buffer): void {
    this.bytes += chunk.length;
    const all = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    const cut = Math.max(0, all.length - 32);
    if (cut) this.hash.update(all.subarray(0, cut));
    this.tail = Buffer.from(all.subarray(cut));
  }

  /** sha256: the appended hash; verified: it equals the hash of the db bytes before it. */
  finish(): { sha256: string; verified: boolean } {
    const computed = this.hash.digest('hex');
    const appended = this.tail.length === 32 ? this.tail.toString('hex') : '';
    return { sha256: appended || computed, verified: appended === computed };
  }
}

/**
 * Streams a snapshot into `file`: written beside it and renamed at the end, so
 * a failed export never leaves a file that looks whole; refused (and removed)
 * when the appended sha256 does not match the db.
 */
export async function writeSnapshot(client: EtcdClient, file: string, onProgress?: (done: number, total: number) => void): Promise<{ bytes: number; sha256: string; verified: true }> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const part = `${file}.part`;
  const out = fs.createWriteStream(part);
  let failed: Error | null = null;
  out.on('error', (e) => (failed = e));
  const digest = new SnapshotDigest();
  try {
    // a stale token (auth turned off or on behind the app's back) is renewed by the client itself
    await client.snapshot((blob, remaining) => {
      out.write(blob);
      digest.update(blob);
      onProgress?.(digest.bytes, digest.bytes + remaining);
    });
    await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
    if (failed) throw failed;
  } catch (e) {
    out.destroy();
    fs.rmSync(part, { force: true });
    throw e;
  }
  const { sha256, verified } = digest.finish();
  if (!verified) {
    fs.rmSync(part, { force: true });
    throw new ContractError(-1, `the snapshot's sha256 does not match its db (${sha256}): nothing was kept`);
  }
  fs.renameSync(part, file);
  return { bytes: digest.bytes, sha256, verified };
}
