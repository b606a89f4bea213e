#!/usr/bin/env bash
# The engine end to end, side by side with docker and podman when installed
# (apt-get install docker.io podman): `run --rm IMAGE true` through each
# daemon, idle memory of the daemon and of one shim, 50 detached starts, and
# `ps` with 50 running. Every engine gets the same busybox image (imported
# from the same tar) and runs without networking (`--network none`), each
# with its own data and exec roots. Root needed.
#
#   RUNS=30 bench/daemon.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
N=${N:-50}
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine

source bench/engines.sh
bench_setup daemon
init=$(scripts/build-init.sh)

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
ms() { python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(f\"{r['median']*1000:.1f} ms (mean {r['mean']*1000:.1f} ± {r['stddev']*1000:.1f})\")" "$1"; }

results=()

bench_engine() { # name, cli (string), run-extra
  local name=$1 cli=$2
  echo "== $name"
  $cli import "$work/bb.tar" bb >/dev/null
  $cli run --rm --network none bb true
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/$name-run.json" "$cli run --rm --network none bb true" >/dev/null
  local run; run=$(ms "$work/$name-run.json")
  local t0 t1
  t0=$(date +%s.%N)
  for i in $(seq "$N"); do $cli run -d --network none --name "b$i" bb sleep 100000 >/dev/null; done
  t1=$(date +%s.%N)
  local starts; starts=$(python3 -c "print(f'{$t1-$t0:.2f} s')")
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/$name-ps.json" "$cli ps" >/dev/null
  local ps; ps=$(ms "$work/$name-ps.json")
  results+=("| $name | $run | $starts | $ps |")
  $cli rm -f $($cli ps -aq) >/dev/null
}

# berth
mkdir -p "$work/berth"
"$bin/berthd" --data-root "$work/berth/data" --exec-root "$work/berth/exec" -H "unix://$work/berth/berth.sock" \
  --cgroup-parent berth-bench --init-path "$init" >"$work/berth/log" 2>&1 &
pids+=($!)
berthd_pid=$!
for _ in $(seq 100); do [ -S "$work/berth/berth.sock" ] && break; sleep 0.05; done
berth="$bin/berth -H unix://$work/berth/berth.sock"
sleep 1
berthd_idle=$(rss_kb "$berthd_pid")
$berth import "$work/bb.tar" bb >/dev/null
$berth run -d --network none --name shimtest bb sleep 100000 >/dev/null
sleep 2
shim_pid=$(pgrep -f "berth-shim" | while read -r p; do grep -q "$work/berth" "/proc/$p/cmdline" 2>/dev/null && echo "$p"; done | head -1 || true)
[ -z "$shim_pid" ] && shim_pid=$(cat "$work"/berth/exec/shims/*/shim.pid 2>/dev/null | head -1)
shim_rss=$(rss_kb "$shim_pid")
$berth rm -f shimtest >/dev/null
bench_engine berth "$berth"
berthd_after=$(rss_kb "$berthd_pid")

# docker (dockerd from docker.io, started here with its own roots)
docker_line="| docker | not installed | | |"
docker_mem="| docker | not installed | |"
if bench_dockerd bench; then
  sleep 2
  d_idle=$(rss_kb "$dpid")
  c_pid=$(pgrep -f "containerd --config $work/docker" || pgrep -n containerd || true)
  c_idle=$( [ -n "$c_pid" ] && rss_kb "$c_pid" || echo 0)
  $docker import "$work/bb.tar" bb >/dev/null
  $docker run -d --network none --name shimtest bb sleep 100000 >/dev/null
  sleep 2
  dshim=$(pgrep -n -f containerd-shim || true)
  dshim_rss=$( [ -n "$dshim" ] && rss_kb "$dshim" || echo 0)
  $docker rm -f shimtest >/dev/null
  bench_engine docker "$docker"
  docker_mem="| docker 20.10 | dockerd $((d_idle/1024)) MB + containerd $((c_idle/1024)) MB | containerd-shim $((dshim_rss/1024)).$(( (dshim_rss%1024)*10/1024 )) MB |"
fi

# podman (daemonless; conmon per container)
podman_mem="| podman | not installed | |"
if bench_podman; then
  $podman import "$work/bb.tar" bb >/dev/null
  $podman run -d --network none --name shimtest bb sleep 100000 >/dev/null
  sleep 1
  conmon=$(pgrep -n conmon || true)
  conmon_rss=$( [ -n "$conmon" ] && rss_kb "$conmon" || echo 0)
  $podman rm -f shimtest >/dev/null
  bench_engine podman "$podman"
  podman_mem="| podman 4.3 | no daemon | conmon $((conmon_rss/1024)).$(( (conmon_rss%1024)*10/1024 )) MB |"
fi

echo
echo "| engine | \`run --rm --network none bb true\` median | $N \`run -d\` | \`ps\` with $N running |"
echo "|---|---|---|---|"
for r in "${results[@]}"; do echo "$r"; done
echo
echo "| engine | daemon RSS, idle | per-container shim RSS |"
echo "|---|---|---|"
echo "| berth | berthd $((berthd_idle/1024)).$(( (berthd_idle%1024)*10/1024 )) MB (after the runs: $((berthd_after/1024)) MB) | berth-shim $((shim_rss/1024)).$(( (shim_rss%1024)*10/1024 )) MB |"
echo "$docker_mem"
echo "$podman_mem"
