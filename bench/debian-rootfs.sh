#!/usr/bin/env bash
# A Debian 12 root filesystem from Debian's mirror (debootstrap, with
# python3 and perl so that it is over 200 MB), kept as a tar in a cache
# directory so that benchmarks build it once. Prints the tar's path.
# Root needed (debootstrap).
#
#   CACHE=/var/cache/berth-bench bench/debian-rootfs.sh
set -euo pipefail
CACHE=${CACHE:-/var/cache/berth-bench}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=${SUITE:-bookworm}
INCLUDE=${INCLUDE:-python3,perl,ca-certificates,less,procps,xz-utils,bzip2,file}
tar="$CACHE/debian-$SUITE.tar"
if [ -s "$tar" ]; then
    echo "$tar"
    exit 0
fi
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >&2
mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$work/root" "$MIRROR" >&2
# Nothing host specific or time dependent that a registry would not carry.
rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"* "$work/root/dev/"*
tar --numeric-owner --sort=name -C "$work/root" -cf "$work/rootfs.tar" .
mv "$work/rootfs.tar" "$tar"
echo "$tar"
