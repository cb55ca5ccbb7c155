#!/usr/bin/env bash
# Installs the real registries and clients the integration/e2e tests drive (Debian 12 packages):
#   docker-registry (CNCF distribution), skopeo, umoci, podman, containerd (+ctr), docker.io (dockerd + docker),
#   chromium (the dashboard test drives it headless through playwright-core; no browser is downloaded).
#   docker-compose (1.29: validates compose/docker-compose.yml, and runs it against the test's own dockerd),
#   systemd (only for `systemd-analyze verify` of compose/systemd/layerd.service; nothing is started: no systemd
#   runs as PID 1 on a CI machine, and policy-rc.d below keeps the package scripts from starting services).
# Idempotent and fast: if every package is already installed it does nothing, not even `apt-get update`.
#
# --no-install-recommends on purpose: podman's Recommends (uidmap, fuse-overlayfs, slirp4netns, buildah,
# catatonit, dbus-user-session, netavark) are for rootless use, overlay storage and running containers.
# The tests pull as root with `--storage-driver vfs`; that was checked to work with all of them hidden.
# The hard Depends (conmon, runc/crun, containers-common and one network stack) still come along.
# docker.io's Recommends (apparmor, cgroupfs-mount, git, needrestart, xz-utils, ca-certificates) are not
# needed either: the e2e test runs a private dockerd with iptables and the bridge off that only pulls
# gzip layers over plain HTTP; its hard Depends (containerd, runc, tini, iptables) come along.
# chromium's one Recommends (chromium-sandbox) is skipped: the test launches it with --no-sandbox; its
# fonts come with fontconfig (fonts-dejavu-core), enough for a readable screenshot.
set -euo pipefail

PACKAGES=(docker-registry skopeo umoci podman containerd docker.io chromium docker-compose systemd)

# Prints the packages among "$@" that are not fully installed (one dpkg-query call: this is the fast path).
missing_of() {
  local installed
  installed="$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null | awk '$2 == "installed" {print $1}' || true)"
  local pkg
  for pkg in "$@"; do
    grep -qx "$pkg" <<<"$installed" || echo "$pkg"
  done
}

mapfile -t missing < <(missing_of "${PACKAGES[@]}")

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
  echo "install-test-tools: missing ${missing[*]}; run as root: sudo bash scripts/install-test-tools.sh" >&2
  exit 1
fi

echo "install-test-tools: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive

# The packages ship system services (docker-registry on every interface at :5000, containerd on
# /run/containerd, dockerd on /run/docker.sock); the tests start their own private instances, so keep
# the package scripts from starting those. policy-rc.d exit 101 = "action forbidden"; only ours is
# removed afterwards.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi

if ! apt-get update -q || ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
  echo "install-test-tools: FAILED to install ${missing[*]} (see apt output above)" >&2
  exit 1
fi

# apt can exit 0 and still leave a package unconfigured; check again so a broken install fails here,
# not as a confusing "command not found" deep inside a test.
still_missing="$(missing_of "${missing[@]}")"
if [[ -n "$still_missing" ]]; then
  echo "install-test-tools: still not installed after apt-get install: $still_missing" >&2
  exit 1
fi
for cmd in docker-registry skopeo umoci podman containerd ctr dockerd chromium docker-compose; do
  command -v "$cmd" >/dev/null || { echo "install-test-tools: $cmd not on PATH after install" >&2; exit 1; }
done
echo "install-test-tools: done" >&2
