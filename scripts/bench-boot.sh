#!/usr/bin/env bash
# Boot time and memory overhead, ours vs QEMU 7.2, in one L1 run of the
# nested runner (tests/integration/bench-boot.l1.sh). Prints the medians and
# the ratios. Run on an otherwise idle machine.
#   scripts/bench-boot.sh   (5 runs of each, fixed in the scenario)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
log=$(mktemp /tmp/bench-boot.XXXXXX)
"$top/scripts/run-nested.sh" bench-boot --with-qemu --timeout 1800 --keep-log "$log" >/dev/null || true
grep '^BENCH boot' "$log" || { tail -30 "$log"; exit 1; }
med() { sed -n "s/^BENCH boot $1: .*median_ms=\([0-9]*\).*/\1/p" "$log"; }
ratio() {	# ratio OURS PEER
	local o p
	o=$(med "$1") p=$(med "$2")
	[ -n "$p" ] && [ "$p" != none ] && [ -n "$o" ] && [ "$o" != none ] &&
		awk -v o="$o" -v p="$p" -v a="$1" -v b="$2" \
			'BEGIN {printf "boot: %s %d ms vs %s %d ms: ratio %.2f\n", a, o, b, p, o / p}'
	return 0
}
# bzImage against bzImage (the target: <= 0.5 of QEMU's default, -M pc).
for peer in qemu-pc qemu-q35 qemu-microvm; do
	ratio ours $peer
done
# Our vmlinux boot against QEMU's default (bzImage) and against QEMU
# booting the same vmlinux through PVH.
for peer in qemu-pc qemu-pc-vmlinux qemu-microvm-vmlinux; do
	ratio ours-vmlinux $peer
done
sed -n 's/^BENCH boot \([a-z0-9-]*\): .*overhead_kib=\([0-9]*\).*/memory overhead (RSS - guest RAM touched) \1: \2 KiB/p' "$log"
