#!/usr/bin/env bash
# Passthrough benchmark in the nested runner: 16384 x 4 KiB O_DIRECT reads of
# L1's NVMe passed through to L2, ours without / with the virtio-iommu
# (strict: as by default, i.e. polled with poll=auto; on kicks, poll=off;
# with a fixed poll=2000; on port-write kicks, --virtio-notify pio), and
# QEMU the same two ways (two rounds each). Prints the BENCH lines, the virtio-iommu/iommufd counters
# and median host call latencies, then the best-of-rounds ratios.
#   scripts/bench-passthrough.sh [--keep-log FILE]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
log=$(mktemp /tmp/bench-passthrough.XXXXXX)
[ "${1:-}" = --keep-log ] && log=$2
"$top/scripts/run-nested.sh" bench-passthrough --with-qemu --timeout 3000 --keep-log "$log" \
	>/dev/null || true
grep -E 'BENCH:|virtio-iommu' "$log" | tr -d '\r'
best() { tr -d '\r' <"$log" | sed -n "s/^BENCH: $1 \([0-9.]*\)$/\1/p" | sort -n | head -1; }
on=$(best ours-no-viommu) os=$(best ours-viommu-strict) op=$(best ours-viommu-strict-poll) opp=$(best ours-viommu-strict-pio)
oa=$(best ours-viommu-strict-auto)
qn=$(best qemu-no-viommu) qs=$(best qemu-viommu-strict)
[ -n "$on" ] && [ -n "$os" ] && [ -n "$op" ] && [ -n "$oa" ] && [ -n "$qn" ] && [ -n "$qs" ] ||
	echo "bench-passthrough: a configuration has no figure (log: $log)"
awk -v on="$on" -v os="$os" -v op="$op" -v opp="$opp" -v oa="$oa" -v qn="$qn" -v qs="$qs" '
function q(a, b) { return (a > 0 && b > 0) ? sprintf("%.2fx", a / b) : "n/a" }
function pair(t) { return (t > 0 && on > 0) ? sprintf("%.0f us", (t - on) / 16384 * 1e6) : "n/a" }
BEGIN {
	printf "best of rounds (s): ours none %s, strict (default) %s, on kicks %s, poll=2000 %s, pio kicks %s; QEMU none %s, strict %s\n", on, oa, os, op, opp, qn, qs
	printf "no vIOMMU throughput, ours / QEMU: %s (target >= 1.0)\n", q(qn, on)
	printf "strict throughput, ours / QEMU: default %s; on kicks %s, poll=2000 %s, pio kicks %s (target >= 1.5)\n", q(qs, oa), q(qs, os), q(qs, op), q(qs, opp)
	printf "MAP+UNMAP pair per read, (strict - none) / 16384: default %s; on kicks %s, poll=2000 %s, pio kicks %s\n", pair(oa), pair(os), pair(op), pair(opp)
}'
# Per round (both figures from the same minutes of the same L1).
nth() { tr -d '\r' <"$log" | sed -n "s/^BENCH: $1 \([0-9.]*\)$/\1/p" | sed -n "${2}p"; }
for round in 1 2; do
	awk -v qs="$(nth qemu-viommu-strict $round)" -v os="$(nth ours-viommu-strict $round)" \
		-v op="$(nth ours-viommu-strict-poll $round)" -v opp="$(nth ours-viommu-strict-pio $round)" \
		-v oa="$(nth ours-viommu-strict-auto $round)" \
		-v qn="$(nth qemu-no-viommu $round)" -v on="$(nth ours-no-viommu $round)" -v r="$round" '
	function q(a, b) { return (a > 0 && b > 0) ? sprintf("%.2fx", a / b) : "n/a" }
	BEGIN { printf "round %s, throughput ours / QEMU: none %s; strict: default %s, on kicks %s, poll=2000 %s, pio kicks %s\n",
		r, q(qn, on), q(qs, oa), q(qs, os), q(qs, op), q(qs, opp) }'
done
