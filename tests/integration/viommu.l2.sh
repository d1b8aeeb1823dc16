# Inside L2: report the virtio-iommu driver, vda's IOMMU group and its
# domain type, then round-trip a 4 MiB pattern through vda.
if ls /sys/bus/virtio/drivers/virtio_iommu 2>/dev/null | grep -q virtio; then
	echo "L2-VIOMMU-DRIVER: bound"
fi
pci=$(readlink -f /sys/block/vda/device/..)
grp=$(basename "$(readlink -f "$pci/iommu_group")")
echo "L2-VDA-GROUP: $grp $(cat /sys/kernel/iommu_groups/$grp/type 2>/dev/null)"
dd if=/dev/urandom of=/tmp/pat bs=1M count=4 2>/dev/null
dd if=/tmp/pat of=/dev/vda bs=1M conv=fsync 2>/dev/null
echo "L2-WRITE-MD5: $(md5sum </tmp/pat | cut -d' ' -f1)"
echo 3 >/proc/sys/vm/drop_caches
echo "L2-READ-MD5: $(dd if=/dev/vda bs=1M count=4 2>/dev/null | md5sum | cut -d' ' -f1)"
# Virtio functions with an I/O BAR2 (the notify BAR of --virtio-notify pio).
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/vendor")" = 0x1af4 ] || continue
	set -- $(sed -n 3p "$d/resource")
	[ $(($3 & 0x100)) -ne 0 ] && echo "L2-NOTIFY-BAR: 2 io $(basename "$d")"
done
