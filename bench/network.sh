#!/usr/bin/env bash
# Networking figures measurable without the daemon (root): one sandbox +
# endpoint on a bridge set up and torn down (median of RUNS), TCP throughput
# between two sandboxes on a bridge against the host's loopback (iperf3), and
# requests/s through a published port against the server's own address
# (busybox httpd + wrk). Figures are printed as `name value` lines.
#
#   RUNS=200 bench/network.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-200}
command -v iperf3 >/dev/null || apt-get install -y -qq iperf3
command -v wrk >/dev/null || apt-get install -y -qq wrk

cargo build -q --release -p berth-network --example netbench
# The exec root on a tmpfs, as /run is on a normal host.
work=$(mktemp -d /dev/shm/berth-bench-net.XXXXXX)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  # Whatever an interrupted run left: its links, table and namespace files.
  if [ -n "$pid" ]; then
    prefix="bnb$((pid % 100000))"
    for l in /sys/class/net/"$prefix"*; do [ -e "$l" ] && ip link del "$(basename "$l")" 2>/dev/null; done
    nft delete table inet "$prefix" 2>/dev/null || true
  fi
  grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$work"
}
trap cleanup EXIT
./target/release/examples/netbench "$work" "$RUNS" &
pid=$!
wait "$pid"
pid=
