# Sourced by the engine benchmarks (daemon.sh, volumes.sh): release
# binaries, a work directory that goes (with its mounts and the processes
# started into `pids`) on exit, and the busybox image tar every engine
# imports. Sets `bin`, `work`, `pids`.
#
#   bench_setup NAME
bench_setup() {
  cargo build -q --release -p berth-daemon -p berth-shim -p berth-cli -p berth-testkit
  bin=$PWD/target/release
  work=$(mktemp -d "/tmp/berth-bench-$1.XXXXXX")
  pids=()
  trap bench_cleanup EXIT
  "$bin/berth-mkrootfs" "$work/rootfs"
  tar -C "$work/rootfs" -cf "$work/bb.tar" .
}

bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  # The berthd's bridge and nft table (under $work/berth, as the benches start it).
  [ -d "$work/berth/data" ] && "$bin/berthd" --data-root "$work/berth/data" --exec-root "$work/berth/exec" --uninstall-network 2>/dev/null || true
  grep "$work" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}

# Start Debian's dockerd with its own roots under $work/docker and the
# containerd namespace NS; sets `dpid` and `docker` (the CLI pointed at it).
# Fails (status 1) when dockerd isn't installed.
#
#   bench_dockerd NS
bench_dockerd() {
  command -v dockerd >/dev/null || [ -x /usr/sbin/dockerd ] || return 1
  local dockerd; dockerd=$(command -v dockerd || echo /usr/sbin/dockerd)
  mkdir -p "$work/docker"
  "$dockerd" --data-root "$work/docker/data" --exec-root "$work/docker/exec" -H "unix://$work/docker/docker.sock" \
    --pidfile "$work/docker/docker.pid" --bridge none --iptables=false --ip6tables=false \
    --containerd-namespace "$1" --containerd-plugins-namespace "${1}p" >"$work/docker/log" 2>&1 &
  pids+=($!)
  dpid=$!
  for _ in $(seq 200); do [ -S "$work/docker/docker.sock" ] && break; sleep 0.1; done
  docker="docker -H unix://$work/docker/docker.sock"
}

# podman with its own roots under $work/podman (and a containers.conf whose
# ulimits a VM's root may set); sets `podman`. Fails when not installed.
bench_podman() {
  command -v podman >/dev/null || return 1
  mkdir -p "$work/podman"
  cat >"$work/podman/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
CONF
  export CONTAINERS_CONF="$work/podman/containers.conf"
  podman="podman --root $work/podman/root --runroot $work/podman/run --cgroup-manager cgroupfs --events-backend file --volumepath $work/podman/volumes"
}
