# The passthrough NVMe behind the virtio-iommu in L2 (strict mode): read
# L1's pattern, write ours, read it back with O_DIRECT (so it comes from the
# device through fresh DMA mappings, not the page cache).
i=0
while [ ! -b /dev/nvme0n1 ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
[ -b /dev/nvme0n1 ] || { echo "L2-NVME: missing"; ls /sys/bus/pci/devices; exit 1; }
echo "L2-NVME: ready"
sleep 4		# L1 reads the device's bus-master bit meanwhile
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/class")" = 0x010802 ] || continue
	# The IOMMU translating it (the virtio-iommu registers as virtioN) and
	# its group's domain type (DMA = strict).
	g=$(basename "$(readlink "$d/iommu_group")")
	echo "L2-NVME-IOMMU: $(basename "$(readlink "$d/iommu")") group $g type $(cat "/sys/kernel/iommu_groups/$g/type" 2>/dev/null)"
done
# The VMM runs this one with rom=off: no ROM BAR, so Linux offers no rom
# file for the controller.
dev=$(readlink -f /sys/class/nvme/nvme0/device)
echo "L2-ROM: $([ -e "$dev/rom" ] && echo present || echo none)"
echo "L2-READ-L1-MD5: $(dd if=/dev/nvme0n1 bs=1M skip=8 count=2 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
dd if=/dev/urandom of=/tmp/pat bs=1M count=4 2>/dev/null
dd if=/tmp/pat of=/dev/nvme0n1 bs=1M seek=16 oflag=direct conv=fsync 2>/dev/null
echo "L2-WRITE-MD5: $(md5sum </tmp/pat | cut -d' ' -f1)"
echo "L2-READ-MD5: $(dd if=/dev/nvme0n1 bs=1M skip=16 count=4 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
# Timer health (the runner's L2 has lost its LAPIC timer before): local
# timer interrupts before and after a 1 s sleep, and the NVMe's vectors.
echo "L2-LOC: $(grep LOC: /proc/interrupts | tr -s ' ')"
sleep 1
echo "L2-LOC: $(grep LOC: /proc/interrupts | tr -s ' ') (after sleep 1)"
grep nvme /proc/interrupts | tr -s ' ' | sed 's/^/L2-IRQ: /'
# Hand the controller back before powering off: Linux resets virtio devices
# at shutdown, the virtio-iommu (probed first) before the NVMe, and a reset
# IOMMU blocks DMA, so the nvme driver's shutdown commands would wait for
# completions that cannot arrive. Unbinding shuts it down cleanly now.
for d in /sys/bus/pci/drivers/nvme/0000:*; do
	[ -e "$d" ] && echo "$(basename "$d")" >/sys/bus/pci/drivers/nvme/unbind
done
echo "L2-NVME: unbound"
sleep 4		# and again, now that the driver has turned it off
