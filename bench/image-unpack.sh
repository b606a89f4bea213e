#!/usr/bin/env bash
# Layer unpack throughput: berth's unpack against GNU `tar -x` of the same
# uncompressed layer, in the same run, median of RUNS runs each, runs
# interleaved, into tmpfs and into the root file system. berth's figure includes hashing the stream (the diff ID) and
# the final syncfs; tar is timed alone and followed by `sync`.
# Also `load` of the layer as a `docker save` archive, and `docker load` of
# it when a docker engine answers. Needs root (owners, device nodes).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"

MB="${MB:-320}"
RUNS="${RUNS:-5}"
WORK="${WORK:-$PWD/bench/work/image}"
mkdir -p "$WORK"
cargo build -q --release -p berth-image --bin berth-image-bench
BIN=target/release/berth-image-bench

if [ ! -f "$WORK/layer.tar" ]; then
  rm -rf "$WORK/tree"
  "$BIN" gen "$WORK/tree" "$MB"
  tar --numeric-owner --sort=name -C "$WORK/tree" -cf "$WORK/layer.tar" .
  rm -rf "$WORK/tree"
fi
SIZE=$(stat -c %s "$WORK/layer.tar")
FILES=$(tar -tf "$WORK/layer.tar" | wc -l)
echo "layer: $((SIZE / 1048576)) MiB, $FILES entries"

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
MIBS() { echo "scale=0; $SIZE / 1048576 / $1" | bc; }

# measure NAME DIR RUNS: tar -x and berth unpack into DIR/x, interleaved.
measure() {
  local name=$1 dir=$2 runs=$3 tar_t=() tar_sync_t=() berth_t=()
  for i in $(seq "$runs"); do
    rm -rf "$dir/x"; mkdir "$dir/x"; sync; sleep 1
    s=$(now); tar -xf "$LAYER" -C "$dir/x"; e=$(now); sync; e2=$(now)
    tar_t+=("$(echo "$e - $s" | bc)"); tar_sync_t+=("$(echo "$e2 - $s" | bc)")
    rm -rf "$dir/x"; mkdir "$dir/x"; sync; sleep 1
    berth_t+=("$("$BIN" unpack "$LAYER" "$dir/x" 2>/dev/null)")
  done
  rm -rf "$dir/x"
  local T TS B
  T=$(printf '%s\n' "${tar_t[@]}" | median)
  TS=$(printf '%s\n' "${tar_sync_t[@]}" | median)
  B=$(printf '%s\n' "${berth_t[@]}" | median)
  echo "[$name] tar -x:          ${T}s ($(MIBS "$T") MiB/s)   runs: ${tar_t[*]}"
  echo "[$name] tar -x && sync:  ${TS}s ($(MIBS "$TS") MiB/s)   runs: ${tar_sync_t[*]}"
  echo "[$name] berth unpack:    ${B}s ($(MIBS "$B") MiB/s)   runs: ${berth_t[*]}"
  echo "[$name] berth speed / tar -x speed:           $(echo "scale=2; $T / $B" | bc)"
  echo "[$name] berth speed / (tar -x && sync) speed: $(echo "scale=2; $TS / $B" | bc)"
}

# In memory (tmpfs): what the unpack itself costs, with the layer read from
# tmpfs too. On the root file system: what the disk allows.
mkdir -p "$WORK/mem"
mount -t tmpfs -o size=$((MB * 3))m berth-bench "$WORK/mem"
trap 'umount "$WORK/mem" 2>/dev/null || true' EXIT
cp "$WORK/layer.tar" "$WORK/mem/layer.tar"
LAYER="$WORK/mem/layer.tar"
measure tmpfs "$WORK/mem" "$RUNS"
umount "$WORK/mem"
LAYER="$WORK/layer.tar"
cat "$LAYER" >/dev/null  # into the page cache once, for both
measure rootfs "$WORK" "${DISK_RUNS:-3}"

"$BIN" archive "$WORK/layer.tar" "$WORK/image.tar"
load_t=()
for i in $(seq 3); do
  rm -rf "$WORK/root"; sync
  load_t+=("$("$BIN" load "$WORK/image.tar" "$WORK/root" 2>/dev/null)")
done
rm -rf "$WORK/root"
L=$(printf '%s\n' "${load_t[@]}" | median)
echo "berth load:        ${L}s   runs: ${load_t[*]}"
if docker info >/dev/null 2>&1; then
  dl=()
  for i in $(seq 3); do
    docker rmi -f bench:layer >/dev/null 2>&1 || true
    s=$(now); docker load -i "$WORK/image.tar" >/dev/null; e=$(now)
    dl+=("$(echo "$e - $s" | bc)")
  done
  docker rmi -f bench:layer >/dev/null 2>&1 || true
  echo "docker load:       $(printf '%s\n' "${dl[@]}" | median)s   runs: ${dl[*]}"
else
  echo "docker load:       skipped (no docker engine answers here)"
fi
