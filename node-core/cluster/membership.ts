// Member and cluster ids derived exactly as etcd derives them, so a member
// started with the same flags has the same ids as etcd would give it (and
// they stay stable across restarts).
import { createHash } from 'node:crypto';

export interface Member {
  id: bigint;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

/** etcd's membership.newMember id: sha1(sorted peer URLs + cluster token [+ unix time]). */
export function computeMemberId(peerURLs: string[], clusterToken: string, nowUnix?: number): bigint {
  const sorted = peerURLs.map(normalizeUrl).sort();
  let s = sorted.join('') + clusterToken;
  if (nowUnix !== undefined) s += String(nowUnix);
  const h = createHash('sha1').update(s).digest();
  return h.readBigUInt64BE(0);
}

/** etcd's RaftCluster.genID: sha1 over the sorted member ids, big-endian. */
export function computeClusterId(memberIds: bigint[]): bigint {
  const ids = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const b = Buffer.alloc(8 * ids.length);
  ids.forEach((id, i) => b.writeBigUInt64BE(id, 8 * i));
  return createHash('sha1').update(b).digest().readBigUInt64BE(0);
}

/** Go's url.URL.String() for the URLs etcd accepts: scheme://host[:port][path]. */
function normalizeUrl(u: string): string {
  try {
    const p = new URL(u);
    const path = p.pathname === '/' && !u.endsWith('/') ? '' : p.pathname;
    return `${p.protocol}//${p.host}${path}`;
  } catch {
    return u;
  }
}

export function idToHex(id: bigint): string {
  return id.toString(16);
}
