#!/usr/bin/env bash
# Boot time and memory overhead, ours vs QEMU 7.2, in one L1 run of the
# nested runner (tests/integration/bench-boot.l1.sh). Prints the medians and
# the ratios. Run on an otherwise idle machine.
#   scripts/bench-boot.sh [RUNS]   (RUNS is fixed at 5 in the scenario)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
log=$(mktemp /tmp/bench-boot.XXXXXX)
"$top/scripts/run-nested.sh" bench-boot --with-qemu --timeout 1800 --keep-log "$log" >/dev/null || true
grep '^BENCH boot' "$log" || { tail -30 "$log"; exit 1; }
med() { sed -n "s/^BENCH boot $1: .*median_ms=\([0-9]*\).*/\1/p" "$log"; }
ours=$(med ours)
for peer in qemu-pc qemu-q35 qemu-microvm; do
	p=$(med $peer)
	[ -n "$p" ] && [ "$p" != none ] && [ -n "$ours" ] &&
		awk -v o="$ours" -v p="$p" -v n="$peer" 'BEGIN {printf "boot: ours %d ms vs %s %d ms: ratio %.2f\n", o, n, p, o / p}'
done
sed -n 's/^BENCH boot \([a-z0-9-]*\): .*overhead_kib=\([0-9]*\).*/memory overhead (RSS - guest RAM touched) \1: \2 KiB/p' "$log"
