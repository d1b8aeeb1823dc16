#!/usr/bin/env bash
# The cost of one L2 exit by kind (port I/O, MMIO to userspace, MMIO to an
# ioeventfd), timed inside L2 under our VMM and under QEMU 7.2, in one L1
# run of the nested runner (tests/integration/bench-exitcost.l1.sh). Prints
# ns per exit. Run on an otherwise idle machine.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
log=$(mktemp /tmp/bench-exitcost.XXXXXX)
"$top/scripts/run-nested.sh" bench-exitcost --with-qemu --timeout 1500 --keep-log "$log" >/dev/null || true
grep '^BENCH exitcost' "$log" || { tail -30 "$log"; exit 1; }
