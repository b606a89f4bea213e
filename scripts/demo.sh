#!/usr/bin/env bash
# berth's main job on a fresh machine: make a busybox image locally and run a
# container from it. (Run scripts/setup.sh first; root needed.)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
cargo build -q --release -p berth-runtime -p berth-testkit
bin=$PWD/target/release

work=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bundle/rootfs"
"$bin/berth-mkrootfs" "$work/bundle/rootfs"
(cd "$work/bundle" && "$bin/berth-runtime" spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "echo hello from $(hostname), pid $$; uname -sr; grep -E 'Cap(Eff|Bnd)|Seccomp:' /proc/self/status"]
json.dump(c, open(p, "w"))
PY
"$bin/berth-runtime" --root "$work/state" run --bundle "$work/bundle" demo
