#!/usr/bin/env bash
# Passthrough benchmark in the nested runner: 16384 x 4 KiB O_DIRECT reads of
# L1's NVMe passed through to L2, ours without / with the virtio-iommu
# (strict), and QEMU the same two ways (two rounds each). Prints the BENCH
# lines, the virtio-iommu/iommufd counters and median host call latencies.
#   scripts/bench-passthrough.sh [--keep-log FILE]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
log=$(mktemp /tmp/bench-passthrough.XXXXXX)
[ "${1:-}" = --keep-log ] && log=$2
"$top/scripts/run-nested.sh" bench-passthrough --with-qemu --timeout 3000 --keep-log "$log" \
	>/dev/null || true
grep -E 'BENCH:|virtio-iommu' "$log" | tr -d '\r'
