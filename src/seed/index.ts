// seed: the client of the seed registry, the registry manifests (and blobs nobody near has) come
// from. Any OCI registry or a layerd node that was pushed to: auth (basic, bearer tokens), retries,
// timeouts.
// It may import oci. It must never import store, p2p, distribution, http or node.

export { UpstreamError } from './errors.js';
export { readBody } from './http.js';
export { UpstreamRegistry, headerOf } from './registry-client.js';
