#!/usr/bin/env bash
# The whole test suite: unit tests, root integration tests, then the leak
# check. Needs root. Every resource the run makes is named after
# BERTH_TEST_RUN, and the leak check fails if any of it is left.
set -uo pipefail
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"

if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh: the integration tests need root" >&2
  exit 1
fi

export BERTH_TEST_RUN="${BERTH_TEST_RUN:-$(date +%s)$$}"
echo "test run ${BERTH_TEST_RUN}"

# A test that sets hugetlb limits on a hybrid host enables hugetlb in the
# unified root; put the root back as it was so other tools (crun) see the
# host unchanged.
unified=/sys/fs/cgroup/unified/cgroup.subtree_control
unified_before=$(cat "$unified" 2>/dev/null || true)

status=0
cargo build --workspace --all-targets || exit 1
# --init runs a static binary inside containers whose images have no libc.
BERTH_INIT_PATH="$(scripts/build-init.sh)" || exit 1
export BERTH_INIT_PATH
cargo test --workspace --no-fail-fast "$@" || status=$?

# The run's cgroup parent is shared by every test, so no test removes it:
# rmdir succeeds only when no container cgroup is left inside.
for d in /sys/fs/cgroup/*/"berth-test-${BERTH_TEST_RUN}" /sys/fs/cgroup/"berth-test-${BERTH_TEST_RUN}"; do
  [ -d "$d" ] && rmdir "$d" 2>/dev/null
done

if [ -f "$unified" ] && ! grep -qw hugetlb <<<"$unified_before" && grep -qw hugetlb "$unified"; then
  echo "-hugetlb" > "$unified" 2>/dev/null || true
fi

if ! cargo run -q -p berth-testkit --bin berth-leakcheck -- "$BERTH_TEST_RUN"; then
  status=1
fi
exit "$status"
