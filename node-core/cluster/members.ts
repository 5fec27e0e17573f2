// Cluster membership as applied from the log, kept in the backend's
// `members` bucket (removed ids in `members_removed`, as etcd) so every
// member restarts with the same view.
import type { Backend } from '../backend/backend';
import { Errors } from '../errors';
import type { Member } from './membership';

interface MemberJson {
  id: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

const key = (id: bigint): Buffer => Buffer.from(id.toString(16));

export function encodeMember(m: Member): Buffer {
  const j: MemberJson = { id: m.id.toString(16), name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs, isLearner: m.isLearner };
  return Buffer.from(JSON.stringify(j));
}

export function decodeMember(b: Uint8Array): Member {
  const j = JSON.parse(Buffer.from(b).toString()) as MemberJson;
  return { id: BigInt('0x' + j.id), name: j.name ?? '', peerURLs: j.peerURLs ?? [], clientURLs: j.clientURLs ?? [], isLearner: !!j.isLearner };
}

export class MemberStore {
  private readonly members = new Map<bigint, Member>();
  private readonly removed = new Set<bigint>();

  constructor(private readonly backend: Backend) {
    this.reload();
  }

  /** (Re)reads the buckets: at open, and after a snapshot replaced them. */
  reload(): void {
    this.members.clear();
    this.removed.clear();
    for (const [, v] of this.backend.range('members')) {
      const m = decodeMember(v);
      this.members.set(m.id, m);
    }
    for (const [k] of this.backend.range('members_removed')) this.removed.add(BigInt('0x' + k.toString()));
  }

  list(): Member[] {
    return [...this.members.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  get(id: bigint): Member | undefined {
    return this.members.get(id);
  }

  isRemoved(id: bigint): boolean {
    return this.removed.has(id);
  }

  isEmpty(): boolean {
    return this.members.size === 0;
  }

  /** Adds or replaces a member (bootstrap, conf change). */
  put(m: Member): void {
    this.members.set(m.id, { ...m });
    this.backend.put('members', key(m.id), encodeMember(m));
  }

  remove(id: bigint): void {
    this.members.delete(id);
    this.removed.add(id);
    this.backend.del('members', key(id));
    this.backend.put('members_removed', key(id), Buffer.from('removed'));
  }

  /** Checks an add as etcd's ValidateConfigurationChange: a duplicate id or peer URL is refused. */
  validateAdd(m: Member): void {
    if (this.removed.has(m.id)) throw Errors.MemberNotFound;
    if (this.members.has(m.id)) throw Errors.MemberExist;
    const urls = new Set(this.list().flatMap((x) => x.peerURLs));
    for (const u of m.peerURLs) if (urls.has(u)) throw Errors.PeerURLExist;
  }

  validateUpdate(id: bigint, peerURLs: string[]): void {
    if (this.removed.has(id) || !this.members.has(id)) throw Errors.MemberNotFound;
    for (const other of this.list()) {
      if (other.id === id) continue;
      for (const u of peerURLs) if (other.peerURLs.includes(u)) throw Errors.PeerURLExist;
    }
  }
}
