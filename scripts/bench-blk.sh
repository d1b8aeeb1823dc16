#!/usr/bin/env bash
# 4 KiB O_DIRECT reads in L2 (16384 x dd bs=4k), ours vs QEMU 7.2, without
# and with virtio-iommu (strict, lazy; ours also with --iommu poll), in one
# L1 run of the nested runner (tests/integration/bench-blk.l1.sh, two
# rounds; the best of each is used). --core: only the configurations the
# targets name, three rounds (bench-blk-core.l1.sh); the median is used.
# --poll: strict as by default (poll=auto) against a fixed poll=2000, three
# rounds (bench-blk-poll.l1.sh), with the virtio-iommu's counters.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
scenario=bench-blk
if [ "${1:-}" = --core ]; then
	scenario=bench-blk-core
elif [ "${1:-}" = --poll ]; then
	scenario=bench-blk-poll
elif [ -n "${1:-}" ]; then
	echo "usage: bench-blk.sh [--core|--poll]" >&2
	exit 2
fi
log=$(mktemp /tmp/bench-blk.XXXXXX)
"$top/scripts/run-nested.sh" $scenario --with-qemu --timeout 3600 --keep-log "$log" >/dev/null || true
grep '^BENCH blk' "$log" || { tail -30 "$log"; exit 1; }
if [ $scenario = bench-blk-poll ]; then
	tr -d '\r' <"$log" | grep 'virtio-iommu: requestq\|virtio-iommu: poller'
	paste <(tr -d '\r' <"$log" | sed -n 's/^BENCH blk ours-strict-poll: ms=\([0-9]*\)$/\1/p') \
		<(tr -d '\r' <"$log" | sed -n 's/^BENCH blk ours-strict-poll2000: ms=\([0-9]*\)$/\1/p') |
		awk '$1 > 0 && $2 > 0 { printf "round %d: strict poll=auto %s ms, poll=2000 %s ms, auto / fixed %.2f\n", ++n, $1, $2, $1 / $2 }'
	exit 0
fi
# The console log has CRLF line ends.
# best: the fastest round; with --core the median (of those that gave one).
pick() {
	if [ $scenario = bench-blk-core ]; then
		awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
	else
		head -1
	fi
}
best() { tr -d '\r' <"$log" | sed -n "s/^BENCH blk $1: ms=\([0-9]*\)$/\1/p" | sort -n | pick; }
for c in ours-noiommu ours-strict ours-lazy ours-strict-poll ours-lazy-poll ours-strict-poll-ind \
	ours-noiommu-pio ours-strict-pio ours-strict-poll-pio qemu-noiommu qemu-strict qemu-strict-noind qemu-lazy; do
	eval "${c//-/_}=$(best $c)"
	printf '%-20s %6s ms\n' "$c" "$(best $c)"
done
awk -v on="$ours_noiommu" -v os="$ours_strict" -v ol="$ours_lazy" -v qn="$qemu_noiommu" \
	-v osp="$ours_strict_poll" -v olp="$ours_lazy_poll" \
	-v osi="$ours_strict_poll_ind" -v qsn="$qemu_strict_noind" \
	-v onx="$ours_noiommu_pio" -v osx="$ours_strict_pio" -v ospx="$ours_strict_poll_pio" \
	-v qs="$qemu_strict" -v ql="$qemu_lazy" '
function r(a, b) { return (a > 0 && b > 0) ? sprintf("%.2f", a / b) : "n/a" }
BEGIN {
	printf "ours strict / ours no-vIOMMU: %s, polled %s (target <= 1.3)\n", r(os, on), r(osp, on)
	printf "  with indirect descriptors (indirect=on), polled: %s\n", r(osi, on)
	printf "  notify registers in an I/O BAR (--virtio-notify pio), / pio no-vIOMMU: %s, polled %s\n", r(osx, onx), r(ospx, onx)
	printf "ours lazy   / ours no-vIOMMU: %s, polled %s\n", r(ol, on), r(olp, on)
	printf "QEMU strict / QEMU no-vIOMMU: %s, indirect_desc=off %s\n", r(qs, qn), r(qsn, qn)
	printf "strict throughput, ours / QEMU: %sx, polled %sx (target >= 2)\n", r(qs, os), r(qs, osp)
	printf "  both without indirect descriptors, polled: %sx\n", r(qsn, osp)
	printf "  --virtio-notify pio: %sx, polled %sx\n", r(qs, osx), r(qs, ospx)
	printf "lazy throughput, ours / QEMU: %sx, polled %sx\n", r(ql, ol), r(ql, olp)
	printf "no-vIOMMU throughput, ours / QEMU: %sx, --virtio-notify pio %sx\n", r(qn, on), r(qn, onx)
}'
# Per round (both figures from the same minutes of the same L1).
nth() { tr -d '\r' <"$log" | sed -n "s/^BENCH blk $1: ms=\([0-9]*\)$/\1/p" | sed -n "${2}p"; }
rounds=$(tr -d '\r' <"$log" | grep -c '^BENCH blk ours-noiommu:' || true)
for round in $(seq 1 "$rounds"); do
	awk -v n="$(nth ours-noiommu $round)" -v s="$(nth ours-strict $round)" \
		-v p="$(nth ours-strict-poll $round)" -v pi="$(nth ours-strict-poll-ind $round)" \
		-v nx="$(nth ours-noiommu-pio $round)" -v sx="$(nth ours-strict-pio $round)" \
		-v px="$(nth ours-strict-poll-pio $round)" -v r="$round" \
		-v qn="$(nth qemu-noiommu $round)" -v qs="$(nth qemu-strict $round)" '
	function q(a, b) { return (a > 0 && b > 0) ? sprintf("%.2f", a / b) : "n/a" }
	BEGIN { printf "round %s, / ours no-vIOMMU: strict %s, polled %s, polled with indirect %s; pio: strict %s, polled %s\n",
		r, q(s, n), q(p, n), q(pi, n), q(sx, nx), q(px, nx)
		printf "round %s, throughput ours / QEMU: no vIOMMU %sx; strict %sx, polled %sx\n",
		r, q(qn, n), q(qs, s), q(qs, p) }'
done
