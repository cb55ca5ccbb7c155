// oci: the OCI data model and nothing else. Digests, references, manifests, byte ranges, the
// distribution spec's error codes, and the one classification of failures every layer uses
// (failureOf: not-found, busy, no-space, corrupt, refused, transient).
// Pure: it does no I/O and keeps no state, and it must never import any other part of layerd.
// Everything may import it.

export { DescriptorSizes } from './descriptor-sizes.js';
export { ALGORITHMS, algorithmOf, digestFromHash, digestOf, hexOf, makeDigest, newHash, parseDigest, type Algorithm, type Digest } from './digest.js';
export { OciError, insufficientStorage, isOciError, type ErrorCode } from './errors.js';
export { ClassifiedError, errnoOf, failureOf, type FailureKind } from './failure.js';
export { ACCEPT_ALL_MANIFESTS, MAX_MANIFEST_BYTES, MediaType, bareMediaType, isManifestMediaType, isPlatform, parseManifest, platformMatches, type Descriptor, type ParsedManifest } from './manifest.js';
export { contentRange, parseChunkRange, parseRangeHeader, uploadedRange, type ByteRange } from './range.js';
export { DOCKER_HUB, DOCKER_HUB_URL, compareLexical, formatImageReference, isTag, normalizeRepository, parseImageReference, parseManifestReference, parseRegistryName, parseRepositoryName, parseTag, referenceString, type ImageReference, type ManifestReference, type RepositoryName, type Tag } from './reference.js';
