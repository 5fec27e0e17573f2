// `etcdesk-node snapshot restore|status`: etcdctl's snapshot commands for our
// own data dir. A restore makes a new cluster from an etcd snapshot file (ours
// or etcd's): the keys, revisions, leases, auth and alarms of the file, the
// membership given by the flags (new member ids, computed as etcd does from
// the peer URLs and the cluster token), and a fresh raft log. The applied
// index starts at 0, matching that fresh log (see importEtcdSnapshot).
import fs from 'node:fs';
import path from 'node:path';
import { Backend } from '../backend/backend';
import { importEtcdSnapshot, snapshotStatus, type SnapshotStatus } from '../backup/index';
import { parseInitialCluster, MemberStore, computeClusterId, computeMemberId, type Member, CLUSTER_ID, MEMBER_ID } from '../cluster';

export interface RestoreOptions {
  /** Where the new member's data goes; must not exist yet (default `<name>.etcd`). */
  dataDir?: string;
  /** This member's name (default "default"). */
  name?: string;
  /** name=peerURL,... of the new cluster (default `<name>=<first advertise peer URL>`). */
  initialCluster?: string;
  initialClusterToken?: string;
  /** This member's peer URLs (default http://localhost:2380). */
  initialAdvertisePeerUrls?: string[];
  /** Accept a file without the trailing sha256 (e.g. a data dir's db file). */
  skipHashCheck?: boolean;
}

export interface RestoreResult {
  dataDir: string;
  memberId: bigint;
  clusterId: bigint;
  members: Member[];
  /** The store's revision after the restore. */
  revision: number;
  leases: number;
}

const u64 = (v: bigint): Buffer => {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(v);
  return b;
};

/** Restores an etcd snapshot file into a new data dir, as `etcdctl snapshot restore`. */
export async function restoreSnapshot(file: string, opts: RestoreOptions = {}): Promise<RestoreResult> {
  const name = opts.name ?? 'default';
  const dataDir = opts.dataDir ?? `${name}.etcd`;
  const token = opts.initialClusterToken ?? 'etcd-cluster';
  const peerUrls = opts.initialAdvertisePeerUrls?.length ? opts.initialAdvertisePeerUrls : ['http://localhost:2380'];
  const initial = opts.initialCluster ?? `${name}=${peerUrls.join(`,${name}=`)}`;
  if (fs.existsSync(dataDir)) throw new Error(`data-dir "${dataDir}" exists`);
  await fs.promises.access(file, fs.constants.R_OK);

  const cluster = parseInitialCluster(initial);
  const members: Member[] = [...cluster.entries()].map(([n, urls]) => ({
    id: computeMemberId(urls, token),
    name: n,
    peerURLs: urls,
    clientURLs: [],
    isLearner: false,
  }));
  const me = members.find((m) => m.name === name);
  if (!me) throw new Error(`couldn't find local name "${name}" in the initial cluster configuration`);
  const mine = [...me.peerURLs].sort().join(',');
  if (mine !== [...peerUrls].sort().join(',')) {
    throw new Error(`--initial-cluster has ${name}=${me.peerURLs.join(',')} but missing from --initial-advertise-peer-urls=${peerUrls.join(',')}`);
  }
  const clusterId = computeClusterId(members.map((m) => m.id));

  // everything is written under a temporary name first: a failed restore leaves no half data dir
  const tmp = `${dataDir.replace(/\/+$/, '')}.restore-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true, mode: 0o700 });
  try {
    const backend = Backend.open(path.join(tmp, 'member'));
    let imported;
    try {
      imported = await importEtcdSnapshot(file, backend, { skipHashCheck: opts.skipHashCheck, consistentIndex: 0 });
      const store = new MemberStore(backend);
      for (const m of store.list()) store.remove(m.id);
      for (const m of members) store.put(m);
      backend.put('meta', CLUSTER_ID, u64(clusterId));
      backend.put('meta', MEMBER_ID, u64(me.id));
      await backend.commit();
    } finally {
      await backend.close();
    }
    fs.renameSync(tmp, dataDir);
    return { dataDir, memberId: me.id, clusterId, members, revision: imported.revision, leases: imported.leases };
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** go-humanize's Bytes (SI units), as etcdctl prints sizes. */
export function humanizeBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const sizes = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  const e = Math.floor(Math.log(n) / Math.log(1000));
  const val = Math.floor((n / 1000 ** e) * 10 + 0.5) / 10;
  return `${val < 10 ? val.toFixed(1) : val.toFixed(0)} ${sizes[e]}`;
}

export function formatStatus(st: SnapshotStatus, format: string): string {
  const row = [st.hash.toString(16), String(st.revision), String(st.totalKey), humanizeBytes(st.totalSize)];
  if (format === 'json') return JSON.stringify({ hash: st.hash, revision: st.revision, totalKey: st.totalKey, totalSize: st.totalSize });
  if (format === 'table') {
    const hdr = ['HASH', 'REVISION', 'TOTAL KEYS', 'TOTAL SIZE'];
    const w = hdr.map((h, i) => Math.max(h.length, row[i].length));
    const line = '+' + w.map((x) => '-'.repeat(x + 2)).join('+') + '+';
    const fmt = (cells: string[]): string => '|' + cells.map((c, i) => ` ${c.padStart(w[i])} `).join('|') + '|';
    return [line, '|' + hdr.map((h, i) => ` ${h.padStart(Math.floor((w[i] + h.length) / 2)).padEnd(w[i])} `).join('|') + '|', line, fmt(row), line].join('\n');
  }
  return row.join(', ');
}

interface ParsedFlags {
  args: string[];
  flags: Map<string, string>;
}

function parseFlags(argv: string[], bools: Set<string>): ParsedFlags {
  const args: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-') || a === '-') {
      args.push(a);
      continue;
    }
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    if (eq >= 0) flags.set(body.slice(0, eq), body.slice(eq + 1));
    else if (bools.has(body)) flags.set(body, 'true');
    else if (i + 1 < argv.length) flags.set(body, argv[++i]);
    else throw new Error(`flag needs an argument: ${a}`);
  }
  return { args, flags };
}

const USAGE = `Usage:
  etcdesk-node snapshot restore <filename> [--data-dir DIR] [--name NAME] [--initial-cluster C] [--initial-cluster-token T] [--initial-advertise-peer-urls URLS] [--skip-hash-check]
  etcdesk-node snapshot status <filename> [-w simple|json|table]`;

/** The `snapshot` subcommand; returns the exit code (etcdctl's: 1 error, 2 bad arguments). */
export async function snapshotCommand(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s), err: (s: string) => void = (s) => process.stderr.write(s)): Promise<number> {
  const [sub, ...rest] = argv;
  let parsed: ParsedFlags;
  try {
    parsed = parseFlags(rest, new Set(['skip-hash-check']));
  } catch (e) {
    err(`Error: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { args, flags } = parsed;
  if (sub === 'status') {
    if (args.length !== 1) {
      err('Error: snapshot status requires exactly one argument\n');
      return 2;
    }
    try {
      const st = await snapshotStatus(args[0]);
      out(formatStatus(st, flags.get('write-out') ?? flags.get('w') ?? 'simple') + '\n');
      return 0;
    } catch (e) {
      err(`Error: ${(e as Error).message}\n`);
      return 1;
    }
  }
  if (sub === 'restore') {
    if (args.length !== 1) {
      err('Error: snapshot restore requires exactly one argument\n');
      return 2;
    }
    try {
      const peer = flags.get('initial-advertise-peer-urls');
      const r = await restoreSnapshot(args[0], {
        dataDir: flags.get('data-dir') || undefined,
        name: flags.get('name'),
        initialCluster: flags.get('initial-cluster'),
        initialClusterToken: flags.get('initial-cluster-token'),
        initialAdvertisePeerUrls: peer ? peer.split(',') : undefined,
        skipHashCheck: flags.get('skip-hash-check') === 'true',
      });
      for (const m of r.members) {
        err(JSON.stringify({ level: 'info', msg: 'restored snapshot', path: args[0], 'data-dir': r.dataDir, 'member-id': m.id.toString(16), 'cluster-id': r.clusterId.toString(16), name: m.name, 'peer-urls': m.peerURLs, revision: r.revision }) + '\n');
      }
      return 0;
    } catch (e) {
      err(`Error: ${(e as Error).message}\n`);
      return 1;
    }
  }
  err(`${USAGE}\n`);
  return sub ? 2 : 0;
}
