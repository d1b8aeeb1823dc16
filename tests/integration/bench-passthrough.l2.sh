# 16384 x 4 KiB O_DIRECT reads of the passthrough NVMe, timed
# (bench_count=N on the command line reads N instead).
n=$(sed -n 's/.*bench_count=\([0-9]*\).*/\1/p' /proc/cmdline)
i=0
while [ ! -b /dev/nvme0n1 ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
[ -b /dev/nvme0n1 ] || { echo "L2-NVME: missing"; exit 1; }
t0=$(cut -d' ' -f1 /proc/uptime)
dd if=/dev/nvme0n1 of=/dev/null bs=4k count=${n:-16384} iflag=direct 2>/dev/null
t1=$(cut -d' ' -f1 /proc/uptime)
echo "L2-BENCH: $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") s"
# Shut the controller down while its IOMMU still works (see
# passthrough-iommu.l2.sh).
for d in /sys/bus/pci/drivers/nvme/0000:*; do
	[ -e "$d" ] && echo "$(basename "$d")" >/sys/bus/pci/drivers/nvme/unbind
done
