#!/bin/sh
# Build and run the IOVA map / translation microbenchmark
# (tests/bench/bench_iova_lookup.c): ns per lookup, insert, remove at 1k,
# 100k and 1M mappings; translation through the virtio-iommu (cached and
# not); MAP+UNMAP request round trips through the handler.
set -e
cd "$(dirname "$0")/.."
out=${O:-build}/bench
khdr=$(scripts/build-kernel.sh --print)/headers/include
[ -e "$khdr/linux/virtio_iommu.h" ] || scripts/build-kernel.sh --headers >/dev/null
mkdir -p "$out"
${CC:-cc} -std=gnu11 -O2 -g -D_GNU_SOURCE -isystem "$khdr" -Ivmm -Iacpi \
	-Idevices/virtio-iommu -o "$out/bench_iova_lookup" tests/bench/bench_iova_lookup.c \
	devices/virtio-iommu/iova_map.c devices/virtio-iommu/viommu.c vmm/dma.c -lpthread
exec "$out/bench_iova_lookup" "$@"
