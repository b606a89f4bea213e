#!/usr/bin/env bash
# berth's main job on a fresh machine: start berthd, make a busybox image
# locally, and run containers from it with the berth CLI (the docker CLI
# works too: DOCKER_HOST=unix://$work/berth.sock). Run scripts/setup.sh
# first; root needed. Everything lives under a temporary directory and is
# removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
cargo build -q --release -p berth-daemon -p berth-shim -p berth-cli -p berth-testkit
bin=$PWD/target/release
init=$(scripts/build-init.sh)

work=$(mktemp -d /tmp/berth-demo.XXXXXX)
berthd_pid=
cleanup() {
  if [ -n "$berthd_pid" ]; then
    "$bin/berth" -H "unix://$work/berth.sock" rm -f $("$bin/berth" -H "unix://$work/berth.sock" ps -aq) >/dev/null 2>&1 || true
    kill "$berthd_pid" 2>/dev/null || true
    wait "$berthd_pid" 2>/dev/null || true
    "$bin/berthd" --data-root "$work/data" --exec-root "$work/exec" --uninstall-network 2>/dev/null || true
  fi
  grep "$work" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/berthd" --data-root "$work/data" --exec-root "$work/exec" -H "unix://$work/berth.sock" \
  --init-path "$init" >"$work/berthd.log" 2>&1 &
berthd_pid=$!
for _ in $(seq 100); do [ -S "$work/berth.sock" ] && break; sleep 0.05; done
berth() { "$bin/berth" -H "unix://$work/berth.sock" "$@"; }

# A busybox image made here, from Debian's busybox-static.
"$bin/berth-mkrootfs" "$work/rootfs"
tar -C "$work/rootfs" -cf "$work/busybox.tar" .
berth import --change 'CMD ["sh"]' "$work/busybox.tar" busybox:latest
berth images

berth run --rm busybox sh -c 'echo "hello from $(hostname), pid $$"; grep -E "Cap(Eff|Bnd)|Seccomp:" /proc/self/status'
berth run -d --name web --memory 64m busybox sh -c 'while true; do date; sleep 1; done'
sleep 2
berth ps
berth logs web
berth exec web cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || berth exec web cat /sys/fs/cgroup/memory.max
berth stop -t 1 web
berth rm web

# An image built from a Dockerfile, a named volume, a published port.
mkdir -p "$work/app"
cat >"$work/app/Dockerfile" <<'DOCKERFILE'
FROM busybox
RUN mkdir -p /www && echo "served by berth" > /www/index.html
EXPOSE 80
CMD ["httpd", "-f", "-p", "80", "-h", "/www"]
DOCKERFILE
berth build -t demo-web "$work/app"
berth volume create demo-data
berth run --rm -v demo-data:/data busybox sh -c 'echo kept > /data/note'
berth run --rm -v demo-data:/data busybox cat /data/note
berth run -d --name site -p 127.0.0.1::80 demo-web
port=$(berth port site 80/tcp | head -1 | sed 's/.*://')
for _ in $(seq 50); do
  reply=$( (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && cat <&3) 2>/dev/null || true)
  [ -n "$reply" ] && break
  sleep 0.1
done
printf '%s\n' "$reply" | tail -1
berth rm -f site
berth volume rm demo-data
