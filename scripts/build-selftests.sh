#!/usr/bin/env bash
# Build the kernel's iommufd selftests (tools/testing/selftests/iommu, with
# the vIOMMU/vDEVICE/vEVENTQ coverage from kernel-patches/) as static
# programs, for the L1 image:
#   build/l1/iommufd-selftest   kselftest "iommufd"
#   build/l1/iommufd-fail-nth   kselftest "iommufd_fail_nth"
# scripts/build-images.sh copies build/l1/* into L1's /bin, and
# tests/integration/kernel-selftests.l1.sh runs them there.
#
# The sources and uAPI headers come from the kernel cache (the Debian 6.12
# tarball with kernel-patches/ applied), prepared by
# scripts/build-kernel.sh --headers, which is cheap once cached. The cache
# tree is only read: objects go to build/selftests/iommu.
#   scripts/build-selftests.sh
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
kdir=$("$top/scripts/build-kernel.sh" --headers | tail -1)
src=$kdir/src/tools/testing/selftests/iommu
out=$top/build/selftests/iommu
[ -d "$src" ] || { echo "build-selftests: no $src" >&2; exit 1; }

mkdir -p "$out" "$top/build/l1"
make -s -C "$src" OUTPUT="$out" \
	KHDR_INCLUDES="-isystem $kdir/headers/include" LDFLAGS=-static
install -m 0755 "$out/iommufd" "$top/build/l1/iommufd-selftest"
install -m 0755 "$out/iommufd_fail_nth" "$top/build/l1/iommufd-fail-nth"
echo "$top/build/l1/iommufd-selftest"
echo "$top/build/l1/iommufd-fail-nth"
