// Server-side paging for the key browser. main keeps the key list (keys only,
// no values) for the prefix being browsed, read at one fixed revision in
// chunks as the renderer scrolls, so the renderer only ever holds the rows in
// view and 100,000 keys never cross IPC at once.
import type { EtcdClient } from '../../node-core/index';
import type { KeyRow, KeysWindowResponse, TreeNode } from '../contract/index';
import { kvToRow, prefixEndOf, text } from './convert';

const FIRST_CHUNK = 300;
const CHUNK = 5000;

export function rangeOfPrefix(prefix: string): { key: Buffer; end: Buffer } {
  // The empty prefix means the whole keyspace: etcd's [\0, \0) convention.
  if (!prefix) return { key: Buffer.from([0]), end: Buffer.from([0]) };
  const key = text(prefix);
  return { key, end: prefixEndOf(key) };
}

export class KeyList {
  rows: KeyRow[] = [];
  revision = 0;
  total = 0;
  done = false;
  private lastKey: Buffer | null = null;
  private loading: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: EtcdClient,
    readonly prefix: string,
  ) {}

  async init(): Promise<void> {
    const { key, end } = rangeOfPrefix(this.prefix);
    const r = await this.client.range({ key, range_end: end, count_only: true });
    this.revision = r.header?.revision ?? 0;
    this.total = r.count;
    this.done = r.count === 0;
  }

  /** Loads rows until `want` are present (or the range is exhausted). */
  ensure(want: number, onProgress?: (done: number, total: number) => void): Promise<void> {
    this.loading = this.loading.then(async () => {
      const { end } = rangeOfPrefix(this.prefix);
      while (!this.done && this.rows.length < want) {
        const start = this.lastKey ? Buffer.concat([this.lastKey, Buffer.from([0])]) : rangeOfPrefix(this.prefix).key;
        const limit = this.rows.length === 0 ? Math.max(FIRST_CHUNK, Math.min(want, CHUNK)) : CHUNK;
        const r = await this.client.range({ key: start, range_end: end, keys_only: true, limit, revision: this.revision });
        for (const kv of r.kvs) this.rows.push(kvToRow(kv));
        if (r.kvs.length) this.lastKey = Buffer.from(r.kvs[r.kvs.length - 1].key);
        if (!r.more || !r.kvs.length) {
          this.done = true;
          this.total = this.rows.length;
        }
        onProgress?.(this.rows.length, this.total);
      }
    });
    return this.loading;
  }

  async window(offset: number, limit: number): Promise<KeysWindowResponse> {
    await this.ensure(offset + limit);
    return { total: this.total, offset, rows: this.rows.slice(offset, offset + limit), revision: this.revision, partial: !this.done };
  }

  /** Children of the prefix, grouped by the delimiter (a directory view over flat keys). */
  async tree(delimiter: string): Promise<TreeNode[]> {
    await this.ensure(Number.MAX_SAFE_INTEGER);
    const byName = new Map<string, TreeNode>();
    for (const row of this.rows) {
      const rest = row.keyText.slice(this.prefix.length);
      const cut = delimiter ? rest.indexOf(delimiter) : -1;
      if (cut === -1) {
        const n = byName.get(rest);
        if (n) n.isKey = true;
        else byName.set(rest, { path: row.keyText, name: rest, isDir: false, count: 0, isKey: true });
        continue;
      }
      // A dir node's path keeps the trailing delimiter so it is also the child prefix.
      const name = rest.slice(0, cut + delimiter.length);
      const n = byName.get(name);
      if (n && n.isDir) n.count++;
      else byName.set(name, { path: this.prefix + name, name, isDir: true, count: 1, isKey: n?.isKey ?? false });
    }
    return [...byName.values()].sort((a, b) => (a.isDir === b.isDir ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.isDir ? -1 : 1));
  }
}
