#!/usr/bin/env bash
# Container start cost of OCI runtimes, side by side: berth-runtime, runc and
# crun (when installed), and the `unshare … chroot` floor. Each runs
# `true` in the same busybox bundle with the same config.json (docker's
# defaults: new pid/net/ipc/uts/mount/cgroup namespaces, docker's seccomp
# profile, masked paths, a cgroup) through `run` = create + start + wait +
# delete. Also peak RSS of each runtime process. Root needed.
#
#   RUNS=50 bench/runtime.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-50}
WARMUP=${WARMUP:-5}
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine
[ -x /usr/bin/time ] || apt-get install -y -qq time

cargo build -q --release -p berth-runtime -p berth-testkit
BERTH=$PWD/target/release/berth-runtime
work=$(mktemp -d /tmp/berth-bench-runtime.XXXXXX)
cg=berth-bench-$$

bundle=$work/bundle
mkdir -p "$bundle/rootfs"
cargo run -q --release -p berth-testkit --bin berth-mkrootfs -- "$bundle/rootfs"
(cd "$bundle" && "$BERTH" spec)
python3 - "$bundle/config.json" "$cg" <<'PY'
import json, sys
p, cg = sys.argv[1], sys.argv[2]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
c["linux"]["cgroupsPath"] = f"/{cg}/c"
# The oldest version every peer accepts (crun 1.8 refuses 1.2.0).
c["ociVersion"] = "1.0.2"
json.dump(c, open(p, "w"))
PY

# crun refuses hybrid hosts whose unified hierarchy offers any controller
# (here: hugetlb, which no v1 hierarchy holds). For the length of the run,
# give hugetlb a v1 hierarchy of its own so crun can be measured; it is
# unmounted again on exit.
hugetlb_mounted=
if command -v crun >/dev/null && grep -q . /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null && [ ! -d /sys/fs/cgroup/hugetlb ]; then
  mkdir /sys/fs/cgroup/hugetlb
  # A hierarchy unmounted a moment ago is destroyed lazily: retry a while.
  for _ in $(seq 50); do
    if mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb 2>/dev/null; then
      hugetlb_mounted=1
      break
    fi
    sleep 0.1
  done
  [ -n "$hugetlb_mounted" ] || { rmdir /sys/fs/cgroup/hugetlb; echo "no hugetlb hierarchy for crun: it will fail" >&2; }
fi
cleanup() {
  rm -rf "$work"
  for d in /sys/fs/cgroup/*/$cg; do rmdir "$d"/* "$d" 2>/dev/null || true; done
  if [ -n "$hugetlb_mounted" ]; then umount /sys/fs/cgroup/hugetlb && rmdir /sys/fs/cgroup/hugetlb; fi
}
trap cleanup EXIT

cmds=("$BERTH --root $work/state-berth run --bundle $bundle c")
names=("berth-runtime")
for r in runc crun; do
  if command -v $r >/dev/null; then
    cmds+=("$r --root $work/state-$r run --bundle $bundle c")
    names+=("$r $($r --version | head -1 | awk '{print $3}')")
  fi
done
cmds+=("unshare --pid --fork --net --ipc --uts --mount --cgroup chroot $bundle/rootfs /bin/true")
names+=("unshare+chroot floor")

for i in "${!cmds[@]}"; do
  if ! out=$(${cmds[$i]} 2>&1); then
    echo "${names[$i]} fails here: $out" >&2
    exit 1
  fi
done
echo "== start: create+start+wait+delete of 'true', $RUNS runs each =="
# Every command runs under `sh -c` with its stderr appended to a file: crun
# 1.8 fails every run when its stderr is the /dev/null hyperfine gives it,
# and the same shell and redirection in front of each keeps the comparison
# fair. -i: a failed run is counted and shown in the table (with the errors
# printed after it) rather than ending the whole comparison.
timed=()
for c in "${cmds[@]}"; do timed+=("$c 2>>$work/errors"); done
hyperfine -i --shell sh --warmup "$WARMUP" --runs "$RUNS" --export-json "$work/h.json" "${timed[@]}" >/dev/null 2>&1
python3 - "$work/h.json" "${names[@]}" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
names = sys.argv[2:]
print("| runtime | median | mean ± σ | min | failed runs |")
print("|---|---|---|---|---|")
for n, r in zip(names, res):
    failed = sum(1 for c in r.get("exit_codes", []) if c != 0)
    print(f"| {n} | {r['median']*1000:.2f} ms | {r['mean']*1000:.2f} ± {r['stddev']*1000:.2f} ms | {r['min']*1000:.2f} ms | {failed}/{len(r.get('exit_codes', []))} |")
PY
if [ -s "$work/errors" ]; then echo "errors:"; sort "$work/errors" | uniq -c | head; fi

echo
echo "== peak RSS of the runtime process (max of 10 runs, GNU time %M) =="
echo "| runtime | peak RSS |"
echo "|---|---|"
for i in "${!cmds[@]}"; do
  max=0
  for _ in $(seq 10); do
    kb=$( { /usr/bin/time -f %M ${cmds[$i]} >/dev/null; } 2>&1 | tail -1)
    [ "$kb" -gt "$max" ] && max=$kb
  done
  echo "| ${names[$i]} | $((max)) KiB |"
done
