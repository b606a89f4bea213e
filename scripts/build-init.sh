#!/usr/bin/env bash
# Build berth-init as a static binary (it runs inside containers whose
# images have no libc) and print its path.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
target=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR=target/static \
  cargo build -q --release -p berth-init --target "$target"
echo "$PWD/target/static/$target/release/berth-init"
