#!/usr/bin/env bash
# What a volume costs a container's start, side by side with docker and
# podman when installed: `run --rm bb true` without a volume, with a named
# volume (`-v vol:/data`, made once before), and with an anonymous volume
# (`-v /data`: made, copied up into, and removed with the container each
# run). Every engine gets the same busybox image (imported from the same
# tar), runs without networking, with its own data and exec roots. Root.
#
#   RUNS=20 bench/volumes.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine

source bench/engines.sh
bench_setup volumes

ms() { python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(f\"{r['median']*1000:.1f}\")" "$1"; }

results=()
bench_engine() { # name, cli
  local name=$1 cli=$2
  echo "== $name"
  $cli import "$work/bb.tar" bb >/dev/null
  $cli volume create vol >/dev/null
  $cli run --rm --network none -v vol:/data bb true
  local cases=("run --rm --network none bb true" "run --rm --network none -v vol:/data bb true" "run --rm --network none -v /data bb true")
  local row="| $name |"
  local base=""
  for i in 0 1 2; do
    hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/$name-$i.json" "$cli ${cases[$i]}" >/dev/null
    local m; m=$(ms "$work/$name-$i.json")
    if [ -z "$base" ]; then base=$m; row="$row $m ms |"; else row="$row $m ms ($(python3 -c "print(f'{$m-$base:+.1f}')")) |"; fi
  done
  local left; left=$($cli volume ls -q | wc -l)
  results+=("$row $left |")
  echo "$row $left |"
  $cli volume rm vol >/dev/null
}

mkdir -p "$work/berth"
"$bin/berthd" --data-root "$work/berth/data" --exec-root "$work/berth/exec" -H "unix://$work/berth/berth.sock" \
  --cgroup-parent berth-bench-volumes >"$work/berth/log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$work/berth/berth.sock" ] && break; sleep 0.05; done
bench_engine berth "$bin/berth -H unix://$work/berth/berth.sock"

if bench_dockerd benchvol; then
  sleep 2
  bench_engine docker "$docker"
fi

if bench_podman; then
  bench_engine podman "$podman"
fi

echo
echo "| engine | no volume | \`-v vol:/data\` (named) | \`-v /data\` (anonymous, removed by --rm) | volumes left after |"
echo "|---|---|---|---|---|"
for r in "${results[@]}"; do echo "$r"; done
for d in /sys/fs/cgroup/*/berth-bench-volumes /sys/fs/cgroup/berth-bench-volumes; do [ -d "$d" ] && rmdir "$d" 2>/dev/null || true; done
