// node-core/backup: etcd's snapshot file format, so backups move between
// Etcdesk and etcd 3.4 in both directions.
//
// An etcd snapshot is a bbolt (go.etcd.io/bbolt) database file followed by
// the 32-byte sha256 of the database bytes; etcd's Maintenance.Snapshot
// stream carries exactly those bytes, and `etcdctl snapshot restore` checks
// the hash whenever the file size is 32 past a multiple of 512.
//
// Bolt files
//   writeBoltFile(buckets, path, {appendSha256?, pageSize?, fsync?})
//       → Promise<{dbSize, sha256}>
//     Bulk-loads buckets (`{name, entries, buckets?, sequence?}`, entries a
//     sync or async iterable of [key, value] strictly ascending by bytes,
//     iterated once) into a bolt file: meta pages with checksums, an empty
//     freelist, packed leaf/branch pages, overflow pages for big elements,
//     inline buckets for small ones, nested buckets. Memory holds one page per
//     tree level, never the data.
//   buildBoltImage(buckets, {appendSha256?, tmpDir?, chunkSize?}) → Promise<BoltImage>
//     The same as a one-shot AsyncIterable<Buffer> of chunks, laid out first
//     into a spool file so `dbSize` is known up front; `sha256` is set once
//     the database bytes have streamed. close() drops an unread image.
//     `Readable.from(image)` makes it a Node stream.
//   readBoltFile(path, {hash?, requireHash?}) → Promise<BoltFile>
//     Opens a snapshot or a data file (member/snap/db), verifying a trailing
//     sha256 if present. BoltFile: bucketNames(path?), entries(path),
//     elements(path) and walk() generators (pages are read on demand),
//     check() (bbolt's Tx.Check), meta, dbSize, hashVerified, stats(), close().
//
// etcd snapshots of our backend
//   exportEtcdSnapshot(backend, {tmpDir?, chunkSize?}) → Promise<BoltImage>:
//     etcd's Snapshot stream (database bytes, then their sha256) of the ten
//     etcd buckets, all read from one committed state even while applies go
//     on (writes not yet committed are not in it).
//   saveEtcdSnapshot(backend, path) → Promise<{dbSize, sha256}>: the same as a
//     file, as `etcdctl snapshot save` writes it (via path.part + rename).
//   importEtcdSnapshot(path, backend, {skipHashCheck?, includeMembership?,
//     consistentIndex?}) → Promise<ImportResult>: verifies the sha256 (a file
//     without one, e.g. a data dir's db, needs skipHashCheck), runs bbolt's
//     integrity check and checks revision records and leases, then replaces
//     our etcd buckets with the file's. By default, like `etcdctl snapshot
//     restore`, the old cluster's membership is not taken (ours stays) and
//     meta.consistent_index is reset (to 0: the raft log it counted is not
//     imported); raft buckets are untouched. Run it on a backend no node uses.
//   snapshotStatus(path) → Promise<{hash, revision, totalKey, totalSize}>:
//     `etcdctl snapshot status`, the same numbers (CRC-32C hash included).
//   ETCD_BUCKETS: the buckets that travel (key, meta, lease, auth, authUsers,
//     authRoles, members, members_removed, cluster, alarm).
export {
  BoltFormatError,
  DEFAULT_PAGE_SIZE,
  type Meta as BoltMeta,
} from './bolt-format';
export {
  buildBoltImage,
  writeBoltFile,
  type BoltBucketSource,
  type BoltEntry,
  type BoltFileResult,
  type BoltImage,
  type BoltImageOptions,
  type BoltWriteOptions,
  type WriteBoltFileOptions,
} from './bolt-writer';
export {
  BoltFile,
  hasTrailingSha256,
  readBoltFile,
  type BoltWalkEntry,
  type BucketPath,
  type OpenBoltOptions,
} from './bolt-reader';
export {
  ETCD_BUCKETS,
  exportEtcdSnapshot,
  importEtcdSnapshot,
  saveEtcdSnapshot,
  snapshotStatus,
  type ExportOptions,
  type ImportOptions,
  type ImportResult,
  type SnapshotSource,
  type SnapshotStatus,
} from './etcd-snapshot';
export { crc32cUpdate as crc32c } from '../backend/crc32c';
