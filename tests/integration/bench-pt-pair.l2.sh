# bench-pt-pair in L2 (strict mode behind the virtio-iommu): time every MAP
# and UNMAP request from this kernel's side. In strict mode a read's DMA
# mapping queues a MAP request and waits for it in iotlb_sync_map, its
# unmapping queues an UNMAP and waits for it in iotlb_sync; both waits
# (viommu_sync_req: kick, then spin until the device has answered) are
# timed with kprobes at entry and return. Prints one "PAIR:" line with the
# median and 90th percentile of a MAP, an UNMAP and a read's MAP+UNMAP
# pair, in µs; bench_count=N on the command line reads N (default 2048).
n=$(sed -n 's/.*bench_count=\([0-9]*\).*/\1/p' /proc/cmdline)
i=0
while [ ! -b /dev/nvme0n1 ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
[ -b /dev/nvme0n1 ] || { echo "L2-NVME: missing"; exit 1; }
t=/sys/kernel/tracing
[ -d $t/events ] || mount -t tracefs nodev $t
echo 0 >$t/tracing_on
echo 8192 >$t/buffer_size_kb
echo 'p:pair/map viommu_iotlb_sync_map' >>$t/kprobe_events &&
	echo 'r:pair/map_done viommu_iotlb_sync_map' >>$t/kprobe_events &&
	echo 'p:pair/unmap viommu_iotlb_sync' >>$t/kprobe_events &&
	echo 'r:pair/unmap_done viommu_iotlb_sync' >>$t/kprobe_events ||
	{ echo "PAIR: no kprobes on viommu_iotlb_sync_map/viommu_iotlb_sync"; exit 1; }
echo 1 >$t/events/pair/enable
dd if=/dev/nvme0n1 of=/dev/null bs=4k count=64 iflag=direct 2>/dev/null
echo >$t/trace
echo 1 >$t/tracing_on
dd if=/dev/nvme0n1 of=/dev/null bs=4k count="${n:-2048}" iflag=direct 2>/dev/null
echo 0 >$t/tracing_on
echo 0 >$t/events/pair/enable
# One line per request: "map US", "unmap US", and "pair US" for an UNMAP
# that follows a MAP (one read's pair).
awk '
{
	ts = -1
	for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) { ts = substr($i, 1, length($i) - 1) * 1e6; break }
	if (ts < 0) next
}
/ map:/ { m0 = ts }
/ map_done:/ { if (m0) { m = ts - m0; print "map", m; m0 = 0 } }
/ unmap:/ { u0 = ts }
/ unmap_done:/ { if (u0) { u = ts - u0; print "unmap", u; if (m) print "pair", m + u; m = 0; u0 = 0 } }
' $t/trace >/tmp/pair.txt
q() {	# q KIND: "median p90 count" of KIND's durations
	sed -n "s/^$1 //p" /tmp/pair.txt | sort -n | awk '{ v[NR] = $1 }
	END { if (!NR) { print "0 0 0"; exit } printf "%.1f %.1f %d\n", v[int((NR + 1) / 2)], v[int(NR * 0.9 + 0.5)], NR }'
}
set -- $(q map) $(q unmap) $(q pair)
echo "PAIR: map median $1 p90 $2 (n=$3), unmap median $4 p90 $5 (n=$6), pair median $7 p90 $8 (n=$9) us"
# Shut the controller down while its IOMMU still works (see
# passthrough-iommu.l2.sh).
for d in /sys/bus/pci/drivers/nvme/0000:*; do
	[ -e "$d" ] && echo "$(basename "$d")" >/sys/bus/pci/drivers/nvme/unbind
done
