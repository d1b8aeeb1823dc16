# VFIO passthrough of L1's NVMe behind our virtio-iommu (iommu=on), guest in
# strict mode: the guest's own IOMMU driver maps and unmaps every DMA of
# its nvme driver, each MAP one IOMMU_IOAS_MAP on the domain's IOAS. Data
# round-trips both ways (L1 -> L2 -> L1), the --stats counters show guest
# MAPs == IOAS_MAP calls, and a second VMM asking for the same device while
# the first holds it is refused with a clear message. The device's
# expansion ROM is hidden here (rom=off).
. /scenarios/lib.sh
. /scenarios/passthrough-lib.sh

nvme_find
echo "L1: NVMe at $NVME_BDF"
nvme_rebind nvme
check "L1 nvme driver sees the disk" wait_for "[ -b /dev/nvme0n1 ]" 60
dd if=/dev/urandom of=/tmp/l1pat bs=1M count=2 2>/dev/null
dd if=/tmp/l1pat of=/dev/nvme0n1 bs=1M seek=8 conv=fsync 2>/dev/null
l1w=$(md5sum </tmp/l1pat | cut -d' ' -f1)
nvme_rebind vfio-pci
check "device back on vfio-pci" wait_for "[ -e /dev/vfio/devices/vfio0 ]" 30

export L2_CMDLINE_EXTRA="iommu.strict=1"
rm -f /tmp/pti.rc
# VMM_DEBUG_MSIX_NORESIZE: grow the host's MSI-X vectors by switching MSI-X
# off and on (what kernels without dynamic MSI-X need); the passthrough
# scenario covers growing in place.
( export VMM_DEBUG_MSIX_NORESIZE=1
  run_l2 /tmp/pti.log 900 passthrough-iommu --cpus 1 --memory 256M --iommu --stats \
	--device path=/dev/vfio/devices/vfio0,iommu=on,rom=off; echo $? >/tmp/pti.rc ) &
check "L2 booted" wait_for "grep -q L2-INIT-MARKER /tmp/pti.log" 300
# Guest RAM in transparent huge pages (L1's kernel has THP in madvise mode,
# the VMM marks guest RAM MADV_HUGEPAGE): the booted guest has touched
# megabytes of it by now.
thp=$(awk '/^AnonHugePages:/ { print $2 }' "/proc/$(pidof vmm)/smaps_rollup")
echo "L1: the VMM's AnonHugePages: ${thp:-none} kB"
check "guest RAM is backed by 2 MiB pages" [ "${thp:-0}" -ge 2048 ]
check "no 'guest RAM in 4 KiB pages' note" sh -c '! grep -q "guest RAM in 4 KiB pages" /tmp/pti.log'
# The VMM told KVM of the device: it holds a KVM-VFIO device (an anon inode
# KVM names kvm-vfio) and said nothing about KVM lacking one.
kv=$(ls -l "/proc/$(pidof vmm)/fd" 2>/dev/null | grep -c 'anon_inode:kvm-vfio')
echo "L1: the VMM's KVM-VFIO device fds: $kv"
check "the VMM holds one KVM-VFIO device" [ "$kv" = 1 ]
check "no 'KVM has no VFIO device' note" sh -c '! grep -q "KVM has no VFIO device" /tmp/pti.log'

# Bus mastering reaches the device as the guest sets it: on while L2's
# nvme driver runs, off once it has unbound (read from the device's own
# config space, while the VMM still runs; vfio-pci resets it on release).
master() { echo $(($(dd if=/sys/bus/pci/devices/$NVME_BDF/config bs=1 skip=4 count=1 2>/dev/null |
	od -An -tu1) & 4)); }
wait_for "grep -q 'L2-NVME: ready' /tmp/pti.log" 300
m=$(master)
check "bus master on in the device while L2's nvme driver runs" [ -n "$(pidof vmm)" -a "$m" = 4 ]

# A second VMM wanting the device while the first holds it.
timeout 120 vmm --kernel "$KERNEL" --initramfs "$L2INITRD" --memory 128M \
	--device path=/dev/vfio/devices/vfio0 </dev/null >/tmp/busy.log 2>&1
rc=$?
sed 's/^/  busy| /' /tmp/busy.log
check "second VMM on the same device: exit 2" [ $rc -eq 2 ]
check "second VMM on the same device: says it is busy" \
	grep -q -- "--device path=/dev/vfio/devices/vfio0: the device is busy" /tmp/busy.log

wait_for "grep -q 'L2-NVME: unbound' /tmp/pti.log" 900
m=$(master)
check "bus master off in the device once L2's nvme driver unbound (the VMM still running)" \
	[ -n "$(pidof vmm)" -a "$m" = 0 ]
wait_for "[ -s /tmp/pti.rc ]" 900
check "--stats: bus mastering turned on and off by the guest" \
	grep -q 'bus master (the guest.s, on the device): off; turned on [1-9][0-9]*, off [1-9]' /tmp/pti.log
check "vmm exits 0" [ "$(cat /tmp/pti.rc)" = 0 ]
check "nvme driver bound in L2" grep -q "L2-NVME: ready" /tmp/pti.log
check "rom=off: the guest has no expansion ROM (no ROM BAR, --stats says none)" \
	sh -c "grep -q 'L2-ROM: none' /tmp/pti.log && grep -q 'expansion ROM: none' /tmp/pti.log"
# L2 names the NVMe's IOMMU (the virtio-iommu's PCI function) and its
# group's domain type: DMA (translated, strict), not identity or DMA-FQ.
check "the NVMe is behind the virtio-iommu in L2, strict DMA domain" \
	sh -c "grep L2-NVME-IOMMU: /tmp/pti.log | tr -d '\r' | grep -q ' type DMA\$'"
r1=$(sed -n 's/.*L2-READ-L1-MD5: \([0-9a-f]*\).*/\1/p' /tmp/pti.log | head -1)
w2=$(sed -n 's/.*L2-WRITE-MD5: \([0-9a-f]*\).*/\1/p' /tmp/pti.log | head -1)
r2=$(sed -n 's/.*L2-READ-MD5: \([0-9a-f]*\).*/\1/p' /tmp/pti.log | head -1)
echo "L1 wrote $l1w, L2 read $r1; L2 wrote $w2, read back (O_DIRECT) $r2"
check "L2 reads what L1 wrote" [ -n "$r1" -a "$r1" = "$l1w" ]
check "L2 reads its own pattern back" [ -n "$w2" -a "$w2" = "$r2" ]

viommu_counts /tmp/pti.log
echo "guest MAP $maps -> IOAS_MAP $ioas_map; guest UNMAP $unmaps -> IOAS_UNMAP $ioas_unmap"
check "guest MAPs reached iommufd (> 0)" [ "${ioas_map:-0}" -gt 0 ]
check "guest MAPs == IOAS_MAP calls" [ -n "$maps" -a "$maps" = "$ioas_map" ]
check "guest UNMAPs == IOAS_UNMAP calls" [ -n "$unmaps" -a "$unmaps" = "$ioas_unmap" ]
hv=$(sed -n 's/.*MSI-X host vectors: at most \([0-9]*\) of \([0-9]*\) enabled; grown [0-9]* times in place, \([0-9]*\) by re-enabling.*/\1 \2 \3/p' /tmp/pti.log | tail -1)
echo "L1: MSI-X host vectors (most enabled at once, of, times grown by re-enabling): ${hv:-none}"
set -- $hv
check "MSI-X grown by re-enabling: fewer host vectors than offered, data went both ways (above)" \
	[ "${1:-0}" -ge 1 -a "${1:-0}" -lt "${2:-0}" -a "${3:-0}" -ge 1 ]

# The host vIOMMU (kernel-patches/): each endpoint behind the virtio-iommu
# gets a vDEVICE named by its endpoint ID, or, where the host IOMMU cannot
# allocate the nesting-parent HWPT a vIOMMU sits on (QEMU 7.2's emulated
# VT-d in this L1 cannot), one line says so and DMA goes by the IOAS path
# (as the data checks above show). This L1's kernel carries the series, so
# "kernel has no vIOMMU" would be wrong here.
grep -E "vDEVICE|vIOMMU" /tmp/pti.log | sed 's/^/  vIOMMU| /'
check "host vIOMMU: the kernel's objects are found" \
	sh -c '! grep -q "kernel has no iommufd vIOMMU" /tmp/pti.log'
check "host vIOMMU: a vDEVICE for the NVMe's endpoint, or one line saying why not" \
	sh -c '[ "$(grep -c "vDEVICE [0-9]* (virt_id 0x" /tmp/pti.log)" = 1 ] ||
	       [ "$(grep -c "the host IOMMU cannot back a vIOMMU" /tmp/pti.log)" = 1 ]'

nvme_rebind nvme
check "L1 takes the device back" wait_for "[ -b /dev/nvme0n1 ]" 60
h=$(dd if=/dev/nvme0n1 bs=1M skip=16 count=4 2>/dev/null | md5sum | cut -d' ' -f1)
echo "L1 reads $h"
check "L1 reads what L2 wrote" [ "$h" = "$w2" ]
nvme_rebind vfio-pci
finish
