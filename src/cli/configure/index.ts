// configure: the edits `layerd configure` makes to container runtimes' mirror settings (docker's
// daemon.json, containerd's hosts.toml, podman's registries.conf), as pure functions of text to text,
// and the unified diff --dry-run shows. It reads and writes no file and must never import the node's
// code (store, distribution, p2p, http): the command around it does the file work.
export { configureDocker, unconfigureDocker } from './docker.js';
export { configureHostsToml, criConfigPath, registryServer, unconfigureHostsToml } from './containerd.js';
export { configurePodman, unconfigurePodman, type MirrorPlan } from './podman.js';
export { ConfigFileError } from './errors.js';
export { unifiedDiff } from './unified-diff.js';
