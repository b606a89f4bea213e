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

# Side by side with docker: `load` of the same archive by berth and by a
# dockerd this script starts (Debian's docker.io) with its own roots, both on
# one tmpfs, runs interleaved, so the figures are the engines' and not the
# disk's.
dockerd=$(command -v dockerd || true)
[ -z "$dockerd" ] && [ -x /usr/sbin/dockerd ] && dockerd=/usr/sbin/dockerd
if [ -n "$dockerd" ]; then
  D="$WORK/dmem"
  mkdir -p "$D"
  mount -t tmpfs -o size=$((MB * 8))m berth-bench-load "$D"
  dpid=
  stop_docker() {
    [ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null || true
    grep " $D" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  }
  trap stop_docker EXIT
  cp "$WORK/image.tar" "$D/image.tar"
  "$dockerd" --data-root "$D/docker" --exec-root "$D/docker-exec" -H "unix://$D/docker.sock" \
    --pidfile "$D/docker.pid" --bridge none --iptables=false --ip6tables=false \
    --containerd-namespace bench-load --containerd-plugins-namespace bench-loadp >"$D/dockerd.log" 2>&1 &
  dpid=$!
  for _ in $(seq 200); do [ -S "$D/docker.sock" ] && break; sleep 0.1; done
  docker="docker -H unix://$D/docker.sock"
  dl=(); bl=()
  for i in $(seq 3); do
    rm -rf "$D/berth"; sync
    bl+=("$("$BIN" load "$D/image.tar" "$D/berth" 2>/dev/null)")
    rm -rf "$D/berth"
    $docker rmi -f bench:layer >/dev/null 2>&1 || true
    s=$(now); $docker load -i "$D/image.tar" >/dev/null; e=$(now)
    dl+=("$(echo "$e - $s" | bc)")
  done
  $docker rmi -f bench:layer >/dev/null 2>&1 || true
  BL=$(printf '%s\n' "${bl[@]}" | median); DL=$(printf '%s\n' "${dl[@]}" | median)
  echo "[tmpfs] berth load:  ${BL}s   runs: ${bl[*]}"
  echo "[tmpfs] docker load: ${DL}s   runs: ${dl[*]}"
  echo "[tmpfs] berth time / docker time: $(echo "scale=2; $BL / $DL" | bc)"
else
  echo "docker load:       skipped (docker.io is not installed)"
fi
