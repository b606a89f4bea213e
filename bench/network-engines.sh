#!/usr/bin/env bash
# Networking through each engine, side by side with docker and podman when
# installed (root):
#   1. the cost of networking in `run --rm bb true`: default bridge minus
#      `--network none` (hyperfine medians, RUNS each);
#   2. TCP throughput container -> container on the default bridge (iperf3,
#      5 s) against the host's loopback in the same run;
#   3. requests/s of busybox httpd in a container (wrk -t2 -c32, 5 s) through
#      a published port on 127.0.0.1, at the container's own address, and of
#      the same httpd on the host.
# Every engine gets the same image (busybox plus iperf3 and its libraries,
# from one tar) and its own roots, bridge and subnet; everything is removed
# at exit. Figures are printed as a markdown table.
#
#   RUNS=20 [ENGINES="berth docker podman"] bench/network-engines.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
ENGINES=${ENGINES:-berth docker podman}
for t in hyperfine iperf3 wrk; do command -v "$t" >/dev/null || apt-get install -y -qq "$t"; done

cargo build -q --release -p berth-daemon -p berth-shim -p berth-cli -p berth-testkit
init=$(scripts/build-init.sh)
bin=$PWD/target/release
work=$(mktemp -d /tmp/berth-bench-netd.XXXXXX)
pids=()
dockerd_pid=
berth_args=(--data-root "$work/berth/data" --exec-root "$work/berth/exec" --network-prefix bbench
  --bridge bbench0 --bip 10.252.0.1/24 --default-address-pool base=10.252.0.0/16,size=24)
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  [ -d "$work/berth" ] && "$bin/berthd" "${berth_args[@]}" --config-file "$work/none.json" --uninstall-network 2>/dev/null || true
  [ -n "$dockerd_pid" ] && ip link del bdock0 2>/dev/null || true
  grep "$work" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/berth-mkrootfs" "$work/rootfs"
cp /usr/bin/iperf3 "$work/rootfs/bin/"
for l in $(ldd /usr/bin/iperf3 | grep -o '/[^ ]*'); do
  mkdir -p "$work/rootfs$(dirname "$l")"
  cp -L "$l" "$work/rootfs$l"
done
tar -C "$work/rootfs" -cf "$work/bb.tar" .

median_ms() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results'][int(sys.argv[2])]['median']*1000)" "$@"; }
gbits() { python3 -c "import json,sys; print(round(json.load(sys.stdin)['end']['sum_received']['bits_per_second']/1e9, 1))"; }
rps() { wrk -t2 -c32 -d5s "$1" | awk '/Requests\/sec/ {printf "%.0f", $2}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HTTPD='mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www'

rows_cost=() rows_tcp=() rows_http=()

bench_engine() { # name, cli
  local name=$1 cli=$2
  echo "== $name" >&2
  $cli import "$work/bb.tar" bb >/dev/null
  $cli run --rm bb true
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/$name-run.json" \
    "$cli run --rm --network none bb true" "$cli run --rm bb true" >/dev/null
  local none bridge
  none=$(median_ms "$work/$name-run.json" 0)
  bridge=$(median_ms "$work/$name-run.json" 1)
  rows_cost+=("$(python3 -c "print(f'| $name | {$none:.1f} ms | {$bridge:.1f} ms | **{$bridge-$none:.1f} ms** |')")")

  $cli run -d --name srv bb iperf3 -s >/dev/null
  local ip; ip=$($cli inspect -f '{{.NetworkSettings.IPAddress}}' srv)
  sleep 1
  local tcp; tcp=$($cli run --rm bb iperf3 -c "$ip" -t 5 -J | gbits)
  rows_tcp+=("| $name: container -> container | $tcp |")
  $cli rm -f srv >/dev/null

  local port; port=$(free_port)
  $cli run -d --name web -p "127.0.0.1:$port:80" bb sh -c "$HTTPD" >/dev/null
  ip=$($cli inspect -f '{{.NetworkSettings.IPAddress}}' web)
  sleep 1
  local direct published
  direct=$(rps "http://$ip:80/")
  published=$(rps "http://127.0.0.1:$port/")
  rows_http+=("$(python3 -c "print(f'| $name | {$published:,} | {$direct:,} | **{$published/$HOST_RPS:.2f}** | {$published/$direct:.2f} |')")")
  $cli rm -f web >/dev/null
  printf '%s\n' "${rows_cost[-1]}" "${rows_tcp[-1]}" "${rows_http[-1]}" >&2
}

# The host: loopback TCP and the same httpd.
iperf3 -s -1 -B 127.0.0.1 >/dev/null &
sleep 0.5
HOST_TCP=$(iperf3 -c 127.0.0.1 -t 5 -J | gbits)
mkdir -p "$work/www" && echo hello > "$work/www/index.html"
hport=$(free_port)
busybox httpd -f -p "127.0.0.1:$hport" -h "$work/www" &
pids+=($!)
sleep 0.5
HOST_RPS=$(rps "http://127.0.0.1:$hport/")

# berth
if [[ " $ENGINES " == *" berth "* ]]; then
mkdir -p "$work/berth"
"$bin/berthd" "${berth_args[@]}" -H "unix://$work/berth/berth.sock" --config-file "$work/none.json" \
  --cgroup-parent berth-bench --init-path "$init" >"$work/berth/log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$work/berth/berth.sock" ] && break; sleep 0.05; done
bench_engine berth "$bin/berth -H unix://$work/berth/berth.sock"
fi

# docker (dockerd from docker.io, its own roots and bridge)
if [[ " $ENGINES " == *" docker "* ]] && [ -x /usr/sbin/dockerd ]; then
  mkdir -p "$work/docker"
  ip link add bdock0 type bridge
  ip addr add 10.253.0.1/24 dev bdock0
  ip link set bdock0 up
  /usr/sbin/dockerd --data-root "$work/docker/data" --exec-root "$work/docker/exec" -H "unix://$work/docker/sock" \
    --pidfile "$work/docker/pid" --bridge bdock0 >"$work/docker/log" 2>&1 &
  dockerd_pid=$!
  pids+=($dockerd_pid)
  for _ in $(seq 200); do [ -S "$work/docker/sock" ] && break; sleep 0.05; done
  sleep 1
  bench_engine docker "docker -H unix://$work/docker/sock"
fi

# podman (its own storage; its default netavark network)
if [[ " $ENGINES " == *" podman "* ]] && command -v podman >/dev/null; then
  mkdir -p "$work/podman"
  # Limits within the host's (crun refuses to raise them).
  printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n' >"$work/podman/containers.conf"
  export CONTAINERS_CONF="$work/podman/containers.conf"
  bench_engine podman "podman --root $work/podman/root --runroot $work/podman/run --cgroup-manager cgroupfs --events-backend file"
fi

echo
echo "| engine | --network none | default bridge | networking cost |"
echo "|---|---|---|---|"
printf '%s\n' "${rows_cost[@]}"
echo
echo "| TCP (iperf3, 5 s) | Gbit/s |"
echo "|---|---|"
printf '%s\n' "${rows_tcp[@]}"
echo "| host loopback | $HOST_TCP |"
echo
echo "| HTTP (busybox httpd, wrk -t2 -c32) | published port at 127.0.0.1 (req/s) | container's own address | published / host | published / direct |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows_http[@]}"
echo "| host (same httpd on 127.0.0.1) | $HOST_RPS | | 1 | |"
