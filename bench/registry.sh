#!/usr/bin/env bash
# Push and pull of a multi-layer image (5 gzip layers, ~230 MiB unpacked)
# to and from `berth registry serve` on 127.0.0.1: berth's client, and
# docker's (a dockerd started here with its own roots and socket, when
# dockerd is installed). Everything lives on a tmpfs so that the figures are
# the engines', not the disk's. Needs root (tmpfs, dockerd).
#
#   MB=45 LAYERS=5 RUNS=3 bench/registry.sh
#
# Each run uses a fresh registry (so nothing is skipped as already there)
# and a fresh store (berth) or an image removed first (docker); runs of
# berth and docker are interleaved. Prints the times of each run and the
# medians.
set -euo pipefail

MB=${MB:-45}
LAYERS=${LAYERS:-5}
RUNS=${RUNS:-3}
ROOT=${ROOT:-/tmp/berth-bench-registry}
HERE=$(cd "$(dirname "$0")/.." && pwd)

cargo build --release -q -p berth-registry --bin berth-registry-bench --manifest-path "$HERE/Cargo.toml"
RB="$HERE/target/release/berth-registry-bench"

mkdir -p "$ROOT"
mountpoint -q "$ROOT" || mount -t tmpfs -o size=8g tmpfs "$ROOT"
REG_PID=""
DOCKERD_PID=""
cleanup() {
    [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null || true
    if [ -n "$DOCKERD_PID" ]; then
        kill "$DOCKERD_PID" 2>/dev/null || true
        wait "$DOCKERD_PID" 2>/dev/null || true
    fi
    umount -l "$ROOT" 2>/dev/null || true
}
trap cleanup EXIT

# --- the image: per layer a tree of files of root-filesystem sizes (most
# small), half random and half text so that gzip halves them, as a
# `docker save` archive with gzip'd layers that both engines load.
echo "generating $LAYERS layers of about $MB MiB" >&2
mkdir -p "$ROOT/arch/blobs/sha256"
for i in $(seq 0 $((LAYERS - 1))); do
    python3 - "$ROOT/tree$i" "$MB" "$i" <<'EOF'
import os, random, sys
root, mb, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
text = (b"the quick brown fox jumps over the lazy dog; " * 4096)
total, n = 0, 0
while total < mb << 20:
    d = os.path.join(root, f"d{rng.randrange(24):02}", f"s{rng.randrange(16):02}")
    os.makedirs(d, exist_ok=True)
    r = rng.randrange(100)
    size = rng.randrange(8 << 10) if r < 70 else (8 << 10) + rng.randrange(56 << 10) if r < 98 else (64 << 10) + rng.randrange(2 << 20)
    half = size // 2
    with open(os.path.join(d, f"f{n}"), "wb") as f:
        f.write(rng.randbytes(half))
        f.write(text[: size - half])
    total += size
    n += 1
EOF
    tar --numeric-owner --sort=name -C "$ROOT/tree$i" -cf "$ROOT/layer$i.tar" .
    gzip -1 -c "$ROOT/layer$i.tar" > "$ROOT/layer$i.tar.gz"
    rm -rf "$ROOT/tree$i"
done
python3 - "$ROOT" "$LAYERS" <<'EOF'
import hashlib, json, os, shutil, sys
root, n = sys.argv[1], int(sys.argv[2])
arch = os.path.join(root, "arch")
def sha(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()
diff_ids, layers = [], []
for i in range(n):
    diff_ids.append("sha256:" + sha(f"{root}/layer{i}.tar"))
    d = sha(f"{root}/layer{i}.tar.gz")
    shutil.move(f"{root}/layer{i}.tar.gz", f"{arch}/blobs/sha256/{d}")
    os.remove(f"{root}/layer{i}.tar")
    layers.append(f"blobs/sha256/{d}")
cfg = json.dumps({"architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
                  "config": {"Cmd": ["/bin/sh"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
                  "history": [{"created_by": f"layer {i}"} for i in range(n)]}).encode()
c = hashlib.sha256(cfg).hexdigest()
open(f"{arch}/blobs/sha256/{c}", "wb").write(cfg)
json.dump([{"Config": f"blobs/sha256/{c}", "RepoTags": ["bench/big:latest"], "Layers": layers}],
          open(f"{arch}/manifest.json", "w"))
EOF
tar -C "$ROOT/arch" -cf "$ROOT/image.tar" .
rm -rf "$ROOT/arch"
echo "image archive: $(du -m "$ROOT/image.tar" | cut -f1) MiB (compressed layers)" >&2

"$RB" load "$ROOT/image.tar" "$ROOT/berth-src" >/dev/null 2>&1

start_registry() {
    [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null || true
    rm -rf "$ROOT/registry"
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$RB" serve "127.0.0.1:$PORT" "$ROOT/registry" 2>/dev/null &
    REG_PID=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && return; sleep 0.1; done
    echo "registry did not start" >&2; exit 1
}

DOCKER=""
if command -v dockerd >/dev/null && command -v docker >/dev/null; then
    mkdir -p "$ROOT/docker" "$ROOT/docker-exec"
    dockerd --data-root "$ROOT/docker" --exec-root "$ROOT/docker-exec" --host "unix://$ROOT/docker.sock" \
        --pidfile "$ROOT/docker.pid" --bridge none --iptables=false --ip6tables=false >"$ROOT/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 100); do DOCKER_HOST="unix://$ROOT/docker.sock" docker info >/dev/null 2>&1 && break; sleep 0.2; done
    if DOCKER_HOST="unix://$ROOT/docker.sock" docker info >/dev/null 2>&1; then
        DOCKER="docker -H unix://$ROOT/docker.sock"
        $DOCKER load -i "$ROOT/image.tar" >/dev/null
        echo "$($DOCKER version --format '{{.Server.Version}}') as docker" >&2
    else
        echo "docker: skipped, dockerd did not start (see $ROOT/dockerd.log)" >&2
    fi
fi

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }
declare -a BP BL DP DL
for run in $(seq "$RUNS"); do
    start_registry
    ref="127.0.0.1:$PORT/bench/berth:$run"
    "$RB" tag "$ROOT/berth-src" bench/big:latest "$ref"
    BP+=("$("$RB" push "$ROOT/berth-src" "$ref" 2>/dev/null)")
    rm -rf "$ROOT/berth-dst"
    BL+=("$("$RB" pull "$ROOT/berth-dst" "$ref" 2>/dev/null)")
    if [ -n "$DOCKER" ]; then
        start_registry
        dref="127.0.0.1:$PORT/bench/docker:$run"
        $DOCKER tag bench/big:latest "$dref"
        t0=$(now); $DOCKER push -q "$dref" >/dev/null; t1=$(now)
        DP+=("$(secs "$t0" "$t1")")
        $DOCKER rmi -f "$dref" bench/big:latest >/dev/null
        $DOCKER image prune -af >/dev/null
        t0=$(now); $DOCKER pull -q "$dref" >/dev/null; t1=$(now)
        DL+=("$(secs "$t0" "$t1")")
        $DOCKER tag "$dref" bench/big:latest
    fi
    echo "run $run: berth push ${BP[-1]} s, pull ${BL[-1]} s${DOCKER:+; docker push ${DP[-1]} s, pull ${DL[-1]} s}" >&2
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "berth push median $(median "${BP[@]}") s (${BP[*]})"
echo "berth pull median $(median "${BL[@]}") s (${BL[*]})"
if [ -n "$DOCKER" ]; then
    echo "docker push median $(median "${DP[@]}") s (${DP[*]})"
    echo "docker pull median $(median "${DL[@]}") s (${DL[*]})"
fi
