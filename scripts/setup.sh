#!/usr/bin/env bash
# Install what berth needs to build and to run its tests on a fresh Debian
# machine (run as root). Safe to run again.
set -euo pipefail

packages=(
  build-essential pkg-config     # cc for -sys crates
  libseccomp-dev                 # seccomp filters (libseccomp)
  busybox-static                 # test and demo images
  tar gzip zstd xz-utils         # layer formats
  bc                             # arithmetic in bench scripts
  iproute2 nftables procps       # networking and leak checks
  docker-registry openssl        # a registry nobody here wrote; certificates for TLS registry tests
  xfsprogs                       # mkfs.xfs, xfs_quota: --storage-opt size tests on a loop xfs
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    apt-get install -y -qq cargo rustc
  fi
fi
echo "setup: ok ($(cargo --version))"
