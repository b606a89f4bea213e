#!/usr/bin/env bash
# Dockerfile builds side by side: berth (`berth build` through berthd),
# docker's classic builder and BuildKit (dockerd 20.10 from docker.io,
# started here with its own roots), and podman (buildah) when installed.
# Two Dockerfiles on the same busybox image (imported from the same tar):
# the 4-line one of the issue and a 20-step one; each built cold
# (`--no-cache`) and fully cached (a rebuild that runs nothing). Root needed.
#
#   RUNS=10 bench/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine

cargo build -q --release -p berth-daemon -p berth-shim -p berth-runtime -p berth-cli -p berth-testkit
init=$(scripts/build-init.sh)
bin=$PWD/target/release
work=$(mktemp -d /tmp/berth-bench-build.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  grep "$work" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/berth-mkrootfs" "$work/rootfs"
tar -C "$work/rootfs" -cf "$work/bb.tar" .

# The 4-line Dockerfile.
mkdir -p "$work/ctx4"
echo "hello from the context" >"$work/ctx4/app.txt"
cat >"$work/ctx4/Dockerfile" <<'EOF'
FROM bb
COPY app.txt /app/
RUN echo built > /built && cat /app/app.txt
CMD ["cat", "/app/app.txt"]
EOF

# The 20-step Dockerfile: what a small service's build looks like.
mkdir -p "$work/ctx20/src" "$work/ctx20/conf"
for i in 1 2 3 4 5; do echo "echo part $i" >"$work/ctx20/src/part$i.sh"; done
echo "port=8080" >"$work/ctx20/conf/app.conf"
cat >"$work/ctx20/Dockerfile" <<'EOF'
FROM bb
LABEL org.example.name=svc org.example.tier=backend
ARG VERSION=1.0
ENV APP_HOME=/srv/app LOG_LEVEL=info
WORKDIR /srv/app
RUN mkdir -p bin conf data logs
COPY conf/ conf/
COPY src/*.sh bin/
RUN chmod +x bin/*.sh && ls bin > manifest.txt
RUN echo "$VERSION" > VERSION
ENV PATH=/srv/app/bin:$PATH
RUN for i in 1 2 3 4 5; do sh bin/part$i.sh; done > parts.txt
USER user
RUN touch /tmp/user-was-here
USER root
EXPOSE 8080
VOLUME /srv/app/data
HEALTHCHECK --interval=30s CMD test -f /srv/app/VERSION
STOPSIGNAL SIGTERM
ENTRYPOINT ["sh", "-c"]
CMD ["cat /srv/app/parts.txt"]
EOF

ms() { python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(f\"{r['median']*1000:.0f} ms\")" "$1"; }
rows=()

bench_engine() { # name, build command prefix (string), import command (string)
  local name=$1 build=$2 import=$3
  echo "== $name"
  $import "$work/bb.tar" bb >/dev/null
  local cells=()
  for c in ctx4 ctx20; do
    $build -t "bench-$c" "$work/$c" >/dev/null
    hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$work/$name-$c-cold.json" "$build --no-cache -t bench-$c $work/$c" >/dev/null
    $build -t "bench-$c" "$work/$c" >/dev/null
    hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$work/$name-$c-cached.json" "$build -t bench-$c $work/$c" >/dev/null
    cells+=("$(ms "$work/$name-$c-cold.json")" "$(ms "$work/$name-$c-cached.json")")
  done
  rows+=("| $name | ${cells[0]} | ${cells[1]} | ${cells[2]} | ${cells[3]} |")
}

# berth
mkdir -p "$work/berth"
"$bin/berthd" --data-root "$work/berth/data" --exec-root "$work/berth/exec" -H "unix://$work/berth/berth.sock" \
  --cgroup-parent berth-bench --init-path "$init" >"$work/berth/log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$work/berth/berth.sock" ] && break; sleep 0.05; done
berth="$bin/berth -H unix://$work/berth/berth.sock"
bench_engine berth "$berth build -q" "$berth import"

# docker: classic builder and BuildKit (the 20.10 CLI has BuildKit built in)
if [ -x /usr/sbin/dockerd ]; then
  mkdir -p "$work/docker"
  /usr/sbin/dockerd --data-root "$work/docker/data" --exec-root "$work/docker/exec" -H "unix://$work/docker/docker.sock" \
    --pidfile "$work/docker/docker.pid" --bridge none --iptables=false --ip6tables=false \
    --containerd-namespace bench --containerd-plugins-namespace benchp >"$work/docker/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 200); do [ -S "$work/docker/docker.sock" ] && break; sleep 0.1; done
  sleep 2
  dcli=/usr/bin/docker
  [ -x "$dcli" ] || dcli=docker
  bench_engine "docker classic" "env DOCKER_BUILDKIT=0 $dcli -H unix://$work/docker/docker.sock build -q" "$dcli -H unix://$work/docker/docker.sock import"
  bench_engine "docker BuildKit" "env DOCKER_BUILDKIT=1 $dcli -H unix://$work/docker/docker.sock build -q --network none" "$dcli -H unix://$work/docker/docker.sock import"
fi

# podman (buildah)
if command -v podman >/dev/null; then
  mkdir -p "$work/podman"
  cat >"$work/podman/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
EOF
  export CONTAINERS_CONF="$work/podman/containers.conf"
  podman="podman --root $work/podman/root --runroot $work/podman/run --cgroup-manager cgroupfs --events-backend file"
  bench_engine podman "$podman build -q --network none --layers" "$podman import"
fi

echo
echo "| engine | 4 lines, cold | 4 lines, cached | 20 steps, cold | 20 steps, cached |"
echo "|---|---|---|---|---|"
for r in "${rows[@]}"; do echo "$r"; done
