# The passthrough NVMe in L2. First boot: read L1's pattern (2 MiB at 8 MiB),
# write our own (4 MiB at 16 MiB) and a tag (at 15 MiB), reboot. Second
# boot: read our pattern back, power off.
i=0
while [ ! -b /dev/nvme0n1 ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
[ -b /dev/nvme0n1 ] || { echo "L2-NVME: missing"; ls /sys/bus/pci/devices; exit 1; }
echo "L2-NVME: ready"
# The controller's expansion ROM, read the way Linux offers it (sysfs).
dev=$(readlink -f /sys/class/nvme/nvme0/device)
# cfg_wb OFFSET VALUE: write one byte of the controller's config space.
cfg_wb() { printf "\\$(printf %o "$2")" | dd of="$dev/config" bs=1 seek="$1" count=1 conv=notrunc 2>/dev/null; }
if [ -e "$dev/rom" ]; then
	echo 1 >"$dev/rom"
	echo "L2-ROM: $(md5sum <"$dev/rom" | cut -d' ' -f1) $(wc -c <"$dev/rom")"
	echo 0 >"$dev/rom"
else
	echo "L2-ROM: none"
fi
grep nvme /proc/interrupts | tr -s ' ' | sed 's/^/L2-IRQ: /'
if [ "$(dd if=/dev/nvme0n1 bs=1M skip=15 count=1 2>/dev/null | head -c 16)" = "LEANVMM-PT-TAG!!" ]; then
	echo "L2-READ-MD5: $(dd if=/dev/nvme0n1 bs=1M skip=16 count=4 2>/dev/null | md5sum | cut -d' ' -f1)"
	# On INTx: the status register's Interrupt Status is the device's.
	# Turn INTx off (command register), start a read, read the bit (the
	# completion's INTx pending but held), turn INTx on, let it finish.
	if grep -q "IO-APIC.*nvme" /proc/interrupts; then
		hi=$(od -An -tu1 -j5 -N1 "$dev/config" | tr -d ' ')
		intst() { echo $(($(od -An -tu1 -j6 -N1 "$dev/config") & 8)); }
		before=$(intst)
		cfg_wb 5 $((hi | 4))
		dd if=/dev/nvme0n1 of=/dev/null bs=4k count=1 skip=4096 iflag=direct 2>/dev/null &
		sleep 2
		during=$(intst)
		cfg_wb 5 "$hi"
		wait $!
		echo "L2-INTX-STATUS: before $before held $during after $(intst)"
	fi
	# Reset the function from the guest (sysfs reset: a function-level
	# reset through the PCI Express capability, which vfio-pci carries
	# out), then let the nvme driver take it again and read once more.
	b=$(basename "$dev")
	echo "$b" >/sys/bus/pci/drivers/nvme/unbind
	echo "L2-FLR: method $(cat "$dev/reset_method" 2>/dev/null)"
	echo 1 >"$dev/reset" && echo "L2-FLR: reset done"
	echo "$b" >/sys/bus/pci/drivers/nvme/bind
	i=0
	while [ ! -b /dev/nvme0n1 ] && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
	echo "L2-FLR-READ-MD5: $(dd if=/dev/nvme0n1 bs=1M skip=16 count=4 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
	exit 0
fi
echo "L2-READ-L1-MD5: $(dd if=/dev/nvme0n1 bs=1M skip=8 count=2 2>/dev/null | md5sum | cut -d' ' -f1)"
dd if=/dev/urandom of=/tmp/pat bs=1M count=4 2>/dev/null
dd if=/tmp/pat of=/dev/nvme0n1 bs=1M seek=16 conv=fsync 2>/dev/null
printf 'LEANVMM-PT-TAG!!' | dd of=/dev/nvme0n1 bs=1M seek=15 conv=fsync 2>/dev/null
echo "L2-WRITE-MD5: $(md5sum </tmp/pat | cut -d' ' -f1)"
# With a second vCPU, read the pattern back from it: the nvme driver gives
# each CPU its own queue, whose MSI-X vector is aimed at that CPU.
if [ "$(nproc)" -ge 2 ]; then
	echo "L2-CPU1-READ-MD5: $(taskset 2 dd if=/dev/nvme0n1 bs=1M skip=16 count=4 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
	grep nvme /proc/interrupts | tr -s ' ' | sed 's/^/L2-IRQ: /'
fi
# MSI-X masking behind the driver's back: mask the function (the mask bit
# of its MSI-X message control, through config space), start a read, look
# at the interrupt counts and the PBA (through /dev/mem), unmask, let the
# read finish; then mask and unmask twenty times with nothing in flight.
cap=$(od -An -tu1 -v -N256 "$dev/config" | awk '{ for (i = 1; i <= NF; i++) b[n++] = $i }
	END { p = b[52]; while (p && g++ < 48) { if (b[p] == 17) { print p; exit } p = b[p + 1] } }')
ctl=$((cap + 3))
orig=$(od -An -tu1 -j$ctl -N1 "$dev/config" | tr -d ' ')
pbaw=$(od -An -tu4 -j$((cap + 8)) -N4 "$dev/config" | tr -d ' ')
pba=$(($(sed -n "$(((pbaw & 7) + 1))p" "$dev/resource" | cut -d' ' -f1) + (pbaw & ~7)))
setctl() { cfg_wb $ctl "$1"; }
irqs() { grep nvme /proc/interrupts | awk '{ for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i } END { print s }'; }
setctl $((orig | 64))
before=$(irqs)
dd if=/dev/nvme0n1 of=/dev/null bs=4k count=1 skip=4096 iflag=direct 2>/dev/null &
sleep 2
during=$(irqs)
pba1=$(devmem $pba 64)
setctl "$orig"
wait $!
after=$(irqs)
pba2=$(devmem $pba 64)
echo "L2-MSIX-MASK: interrupts $before masked $during unmasked $after pba $pba1 $pba2"
b=$(irqs)
i=0
while [ $i -lt 20 ]; do setctl $((orig | 64)); setctl "$orig"; i=$((i + 1)); done
sleep 1
echo "L2-MSIX-CYCLES: 20 interrupts $b then $(irqs)"
sync
reboot -f
