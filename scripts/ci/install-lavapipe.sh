#!/usr/bin/env bash
# Installs a software Vulkan driver (Mesa's lavapipe) so that WebGPU (Dawn, as
# bundled by onnxruntime-node and the `webgpu` package) finds an adapter on a
# machine with no GPU. Debian 12's own Mesa (22.3) lacks what Dawn requires
# (shaderUniform*ArrayDynamicIndexing); bookworm-backports has Mesa 25.x.
# The backports suite is added on the same mirror as the machine's own
# Debian sources: no registry host is written here.
# Needs root and apt; prints why and exits 0 without them (the WebGPU
# backends then report themselves skipped, with their reason).
set -euo pipefail
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-lavapipe: not root or no apt-get: WebGPU backends will be skipped" >&2
  exit 0
fi
. /etc/os-release
if [ "${VERSION_CODENAME:-}" != bookworm ]; then
  echo "install-lavapipe: ${PRETTY_NAME:-this system} is not Debian 12: installing its own mesa-vulkan-drivers" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
  exit 0
fi
backports=/etc/apt/sources.list.d/nadam-bookworm-backports.sources
if [ ! -f "$backports" ]; then
  # The mirror serving this machine's "bookworm" suite, from deb822 or one-line sources.
  mirror=$(awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ {print u; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list)
  fi
  if [ -z "$mirror" ]; then
    echo "install-lavapipe: no bookworm mirror found in the apt sources: WebGPU backends will be skipped" >&2
    exit 0
  fi
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror" > "$backports"
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
dpkg-query -W -f='install-lavapipe: ${Package} ${Version}\n' mesa-vulkan-drivers
