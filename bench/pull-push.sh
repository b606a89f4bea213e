#!/usr/bin/env bash
# Push and pull of a Debian image (a debootstrap'ed root filesystem over
# 200 MB, in 4 layers) to and from a local registry, through the daemons:
# berthd with the berth CLI, and docker 20.10 (a dockerd started here with
# its own roots, socket and insecure-registries entry, stopped at the end)
# with the docker CLI, in the same run. Everything lives on a tmpfs so
# that the figures are the engines', not the disk's. Root needed.
#
#   RUNS=5 bench/pull-push.sh
#
# The registry is `berth registry serve` on 127.0.0.1, emptied before each
# push; before each pull the image is removed (every layer gone from the
# engine's store). Runs of berth and docker alternate.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
ROOT=${ROOT:-/tmp/berth-bench-pull-push}

cargo build -q --release -p berth-daemon -p berth-shim -p berth-cli
init=$(scripts/build-init.sh)
bin=$PWD/target/release
rootfs_tar=$(bench/debian-rootfs.sh)

mkdir -p "$ROOT"
mountpoint -q "$ROOT" || mount -t tmpfs -o size=12g tmpfs "$ROOT"
pids=()
REG_PID=""
cleanup() {
    [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null || true
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    grep " $ROOT/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    umount -l "$ROOT" 2>/dev/null || true
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_registry() {
    if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null || true; fi
    rm -rf "$ROOT/registry"
    "$bin/berth" registry serve --addr "127.0.0.1:$PORT" --root "$ROOT/registry" 2>/dev/null &
    REG_PID=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && return; sleep 0.05; done
    echo "registry did not start" >&2; exit 1
}

# --- berthd
mkdir -p "$ROOT/berth"
"$bin/berthd" --data-root "$ROOT/berth/data" --exec-root "$ROOT/berth/exec" -H "unix://$ROOT/berth/berth.sock" \
    --cgroup-parent berth-bench --init-path "$init" --config-file "$ROOT/berth/none.json" >"$ROOT/berth/log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$ROOT/berth/berth.sock" ] && break; sleep 0.05; done
berth="$bin/berth -H unix://$ROOT/berth/berth.sock --config $ROOT/berth/client"

# --- the image: the root filesystem in 4 layers (parents before children),
# built by import, then cp into a container and commit per layer.
echo "building the image from $rootfs_tar" >&2
mkdir -p "$ROOT/rootfs" "$ROOT/layers"
tar -C "$ROOT/rootfs" -xf "$rootfs_tar"
tar -C "$ROOT/rootfs" --numeric-owner --exclude=./usr/share --exclude=./usr/lib -cf "$ROOT/layers/0.tar" .
tar -C "$ROOT/rootfs" --numeric-owner -cf "$ROOT/layers/1.tar" ./usr/share
tar -C "$ROOT/rootfs" --numeric-owner --exclude=./usr/lib/x86_64-linux-gnu -cf "$ROOT/layers/2.tar" ./usr/lib
tar -C "$ROOT/rootfs" --numeric-owner -cf "$ROOT/layers/3.tar" ./usr/lib/x86_64-linux-gnu
rm -rf "$ROOT/rootfs"
# Untagged parents: removing the final image removes them too.
img=$($berth import "$ROOT/layers/0.tar")
for i in 1 2 3; do
    $berth create --name stage "$img" true >/dev/null
    $berth cp - stage:/ <"$ROOT/layers/$i.tar"
    img=$($berth commit stage)
    $berth rm stage >/dev/null
done
$berth tag "$img" bench/deb:final
rm -rf "$ROOT/layers"
size=$($berth image inspect -f '{{.Size}}' bench/deb:final)
nlayers=$($berth image inspect -f '{{len .RootFS.Layers}}' bench/deb:final)
echo "image: $((size / 1000000)) MB unpacked, $nlayers layers" >&2
$berth save bench/deb:final -o "$ROOT/image.tar"
echo "docker save archive: $(du -m "$ROOT/image.tar" | cut -f1) MiB" >&2

# --- dockerd 20.10 with roots of its own
DOCKER=""
dockerd=$(command -v dockerd || echo /usr/sbin/dockerd)
if [ -x "$dockerd" ]; then
    mkdir -p "$ROOT/docker"
    echo "{}" >"$ROOT/docker/none.json"
    "$dockerd" --data-root "$ROOT/docker/data" --exec-root "$ROOT/docker/exec" -H "unix://$ROOT/docker/docker.sock" \
        --pidfile "$ROOT/docker/docker.pid" --bridge none --iptables=false --ip6tables=false \
        --insecure-registry "127.0.0.1:$PORT" --config-file "$ROOT/docker/none.json" \
        --containerd-namespace bench --containerd-plugins-namespace benchp >"$ROOT/docker/log" 2>&1 &
    pids+=($!)
    DOCKER="docker -H unix://$ROOT/docker/docker.sock --config $ROOT/docker/client"
    for _ in $(seq 150); do $DOCKER info >/dev/null 2>&1 && break; sleep 0.2; done
    $DOCKER info >/dev/null 2>&1 || { echo "dockerd did not start: $ROOT/docker/log" >&2; exit 1; }
    $DOCKER load -i "$ROOT/image.tar" >/dev/null
    echo "docker $($DOCKER version --format '{{.Server.Version}}')" >&2
fi
rm -f "$ROOT/image.tar"

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }
# engine cli, run: push to an empty registry, remove everything, pull.
cycle() {
    local cli=$1 run=$2 name=$3 t0 t1
    start_registry
    local ref="127.0.0.1:$PORT/bench/$name:$run"
    local want_size; want_size=$($cli image inspect -f '{{.Size}}' bench/deb:final)
    $cli tag bench/deb:final "$ref"
    t0=$(now); $cli push -q "$ref" >/dev/null; t1=$(now)
    PUSH=$(secs "$t0" "$t1")
    $cli rmi "$ref" bench/deb:final >/dev/null
    [ -z "$($cli images -aq)" ] || { echo "$name: images left before the pull" >&2; $cli images -a >&2; exit 1; }
    t0=$(now); $cli pull "$ref" >"$ROOT/pull.out"; t1=$(now)
    PULL=$(secs "$t0" "$t1")
    # Every layer came over the wire.
    local got; got=$(grep -c ': Pull complete' "$ROOT/pull.out" || true)
    [ "$got" = "$nlayers" ] || { echo "$name: $got layers pulled, not $nlayers" >&2; cat "$ROOT/pull.out" >&2; exit 1; }
    local got_size; got_size=$($cli image inspect -f '{{.Size}}' "$ref")
    [ "$got_size" = "$want_size" ] || { echo "$name: pulled $got_size bytes, not $want_size" >&2; exit 1; }
    $cli tag "$ref" bench/deb:final
    $cli rmi "$ref" >/dev/null
}
declare -a BP BL DP DL
for run in $(seq "$RUNS"); do
    cycle "$berth" "$run" berth; BP+=("$PUSH"); BL+=("$PULL")
    line="run $run: berth push $PUSH s, pull $PULL s"
    if [ -n "$DOCKER" ]; then
        cycle "$DOCKER" "$run" docker; DP+=("$PUSH"); DL+=("$PULL")
        line="$line; docker push $PUSH s, pull $PULL s"
    fi
    echo "$line" >&2
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "berth push median $(median "${BP[@]}") s (${BP[*]})"
echo "berth pull median $(median "${BL[@]}") s (${BL[*]})"
if [ -n "$DOCKER" ]; then
    echo "docker push median $(median "${DP[@]}") s (${DP[*]})"
    echo "docker pull median $(median "${DL[@]}") s (${DL[*]})"
fi
