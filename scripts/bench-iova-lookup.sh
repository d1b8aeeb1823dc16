#!/bin/sh
# Build and run the IOVA map microbenchmark (tests/bench/bench_iova_lookup.c):
# ns per lookup / insert / remove at 1k, 100k and 1M mappings.
set -e
cd "$(dirname "$0")/.."
out=${O:-build}/bench
mkdir -p "$out"
${CC:-cc} -std=gnu11 -O2 -g -D_GNU_SOURCE -Idevices/virtio-iommu \
	-o "$out/bench_iova_lookup" tests/bench/bench_iova_lookup.c devices/virtio-iommu/iova_map.c
exec "$out/bench_iova_lookup" "$@"
