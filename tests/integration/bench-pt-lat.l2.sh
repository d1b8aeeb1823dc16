# bench-pt-lat in L2: the passthrough NVMe's reads, split by phase
# (pt-lat-lib.sh); bench_count=N on the command line reads N.
. /scenarios/pt-lat-lib.sh
n=$(sed -n 's/.*bench_count=\([0-9]*\).*/\1/p' /proc/cmdline)
i=0
while [ ! -b /dev/nvme0n1 ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
[ -b /dev/nvme0n1 ] || { echo "L2-NVME: missing"; exit 1; }
pt_lat /dev/nvme0n1 "${n:-2048}"
# Shut the controller down while its IOMMU still works (see
# passthrough-iommu.l2.sh).
for d in /sys/bus/pci/drivers/nvme/0000:*; do
	[ -e "$d" ] && echo "$(basename "$d")" >/sys/bus/pci/drivers/nvme/unbind
done
