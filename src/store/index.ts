// store: where blobs and repositories live. The BlobStore and RepositoryStore seams, their file-system
// implementations and in-memory twins, the change stream every store emits (commits, deletes, links),
// writers that hash bytes as they land, and the guard that keeps collection from removing what a push
// or pull still needs.
// It may import oci and io. It must never import p2p, seed, distribution, http or node: the store does
// not know where bytes come from or who asks for them.

export { readSmallBlob, type BlobInfo, type BlobStore, type BlobWriter, type ByteSource, type OpenBlob, type WrittenReader } from './blob-store.js';
export { ChangeEmitter, type BlobChange, type ChangeStream, type LinkChange, type Listener, type Unsubscribe } from './change-stream.js';
export { GuardedRepositoryStore, type CollectionGuard, type Sweep } from './collection-guard.js';
export { BlobNotFoundError, DigestMismatchError, InsufficientStorageError, LandingRefusedError, OffsetMismatchError } from './errors.js';
export { FsBlobStore } from './fs-blob-store.js';
export { FsRepositoryStore } from './fs-repository-store.js';
export { FSYNC, readdirOrEmpty, removeStaleTempFiles } from './fs-util.js';
export { LandedMap, type Extent } from './landed-map.js';
export { JsonRecords } from './json-records.js';
export { type ManifestRecord, type RepositoryStore } from './repository-store.js';
export { TrackedBlobStore } from './tracked-blob-store.js';
export { type UsageEntry } from './usage-index.js';
