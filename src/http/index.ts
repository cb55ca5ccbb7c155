// http: the node's HTTP face. The OCI distribution API (/v2), the /api of operations with its schemas,
// the dashboard, access policy and authentication.
// It may import oci, io and distribution (and p2p's types for /api answers). It must never import
// store, seed or node: every request goes through distribution.

export { AccessPolicy, isLoopbackHost } from './access.js';
export { type NodeApi, type Viewer } from './api-routes.js';
export { type Check, type GcAnswer, type ImageAnswer, type ImagesAnswer, type Loose, type RolloutAnswer, type RolloutRequest, type StatusAnswer } from './api-schema.js';
export { AuthGuard, CredentialsFileError, ReloadingCredentials } from './credentials.js';
export { buildHttpServer } from './server.js';
