#!/usr/bin/env bash
# Passthrough benchmark in the nested runner: 16384 x 4 KiB O_DIRECT reads of
# L1's NVMe passed through to L2, ours without / with the virtio-iommu
# (strict; ours also with --iommu poll, threads floating and pinned), and
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
on=$(best ours-no-viommu) os=$(best ours-viommu-strict) op=$(best ours-viommu-strict-poll) opp=$(best ours-viommu-strict-poll-pinned)
qn=$(best qemu-no-viommu) qs=$(best qemu-viommu-strict)
[ -n "$on" ] && [ -n "$os" ] && [ -n "$op" ] && [ -n "$qn" ] && [ -n "$qs" ] || {
	echo "bench-passthrough: a configuration has no figure (log: $log)"; exit 1; }
awk -v on="$on" -v os="$os" -v op="$op" -v opp="${opp:-0}" -v qn="$qn" -v qs="$qs" 'BEGIN {
	printf "best of rounds (s): ours none %s, strict %s, strict+poll %s; QEMU none %s, strict %s\n", on, os, op, qn, qs
	printf "no vIOMMU throughput, ours / QEMU: %.2fx (target >= 1.0)\n", qn / on
	printf "strict throughput, ours / QEMU: %.2fx, polled %.2fx (target >= 1.5)\n", qs / os, qs / op
	if (opp > 0)
		printf "  polled, vCPU and poller pinned to their own CPUs: %.2fx (%s s)\n", qs / opp, opp
	printf "MAP+UNMAP pair per read, (strict - none) / 16384: %.0f us, polled %.0f us\n", (os - on) / 16384 * 1e6, (op - on) / 16384 * 1e6
}'
