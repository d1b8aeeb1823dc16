# needs: qemu
# Boot time from launching the VMM to L2's init marker, read from the
# console stream by boottime (no polling), ours vs QEMU 7.2 in this L1 with
# the same kernel and initramfs; and the VMM's memory overhead (RSS minus the
# guest RAM it touched) at that moment. RUNS runs each, medians.
. /scenarios/lib.sh
RUNS=${RUNS:-5}
CMD="console=ttyS0 scenario=bench-boot"

median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "none"}'; }

measure() {	# measure NAME COMMAND...: RUNS boots, median ms and overhead KiB
	name=$1
	shift
	: >/tmp/t-$name
	: >/tmp/m-$name
	i=0
	while [ $i -lt "$RUNS" ]; do
		timeout 120 boottime --quiet --ram-mib 256 L2-INIT-MARKER -- "$@" </dev/null >/tmp/out-$name 2>&1
		sed -n 's/^BOOTTIME-MS: \([0-9]*\)$/\1/p' /tmp/out-$name >>/tmp/t-$name
		sed -n 's/^VMM-OVERHEAD-KB: \([0-9]*\)$/\1/p' /tmp/out-$name >>/tmp/m-$name
		i=$((i + 1))
		# A configuration that cannot boot this kernel is said once.
		if [ "$(wc -l </tmp/t-$name)" -eq 0 ]; then
			echo "BENCH boot $name: did not reach the marker; last lines:"
			tail -5 /tmp/out-$name
			break
		fi
	done
	echo "BENCH boot $name: runs=$(wc -l </tmp/t-$name) median_ms=$(median </tmp/t-$name) all=$(tr '\n' ' ' </tmp/t-$name) overhead_kib=$(median </tmp/m-$name)"
}

measure ours vmm --kernel $KERNEL --initramfs $L2INITRD --cmdline "$CMD" --memory 256M --serial tty
measure qemu-pc qemu -M pc -enable-kvm -cpu host -m 256 -nographic -no-reboot -nodefaults -serial stdio \
	-kernel $KERNEL -initrd $L2INITRD -append "$CMD"
measure qemu-q35 qemu -M q35 -enable-kvm -cpu host -m 256 -nographic -no-reboot -nodefaults -serial stdio \
	-kernel $KERNEL -initrd $L2INITRD -append "$CMD"
measure qemu-microvm qemu -M microvm -enable-kvm -cpu host -m 256 -nographic -no-reboot -nodefaults -serial stdio \
	-kernel $KERNEL -initrd $L2INITRD -append "$CMD"
# The same build as an uncompressed ELF: ours enters it at startup_64,
# QEMU through its PVH note (no firmware-loaded decompressor either).
if [ -f "$VMLINUX" ]; then
	measure ours-vmlinux vmm --kernel $VMLINUX --initramfs $L2INITRD --cmdline "$CMD" --memory 256M --serial tty
	measure qemu-pc-vmlinux qemu -M pc -enable-kvm -cpu host -m 256 -nographic -no-reboot -nodefaults -serial stdio \
		-kernel $VMLINUX -initrd $L2INITRD -append "$CMD"
	measure qemu-microvm-vmlinux qemu -M microvm -enable-kvm -cpu host -m 256 -nographic -no-reboot -nodefaults -serial stdio \
		-kernel $VMLINUX -initrd $L2INITRD -append "$CMD"
fi
check "ours booted in every run" [ "$(wc -l </tmp/t-ours)" -eq "$RUNS" ]
check "QEMU (pc) booted in every run" [ "$(wc -l </tmp/t-qemu-pc)" -eq "$RUNS" ]
finish
