# needs: qemu
# Boot time from launching the VMM to L2's init marker, read from the
# console stream by boottime (no polling), ours vs QEMU 7.2 in this L1 with
# the same kernel and initramfs; and the VMM's memory overhead (RSS minus the
# guest RAM it touched) at that moment. RUNS runs each, medians.
. /scenarios/lib.sh
RUNS=${RUNS:-5}
CMD="console=ttyS0 scenario=bench-boot"

median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "none"}'; }

# The configurations take turns (run 1 of each, then run 2 of each, ...), so
# a slow minute of the machine is shared out rather than landing on one.
# config NAME 'COMMAND': remember a configuration (COMMAND is eval'ed at
# each boot, quotes and all).
NAMES=
config() {
	n=$1
	NAMES="$NAMES $n"
	printf '%s\n' "$2" >/tmp/cmd-$n
	: >/tmp/t-$n
	: >/tmp/m-$n
}
once() {	# once NAME: one boot, its time and overhead appended
	n=$1
	eval "timeout 120 boottime --quiet --ram-mib 256 L2-INIT-MARKER -- $(cat /tmp/cmd-$n)" \
		</dev/null >/tmp/out-$n 2>&1
	t=$(sed -n 's/^BOOTTIME-MS: \([0-9]*\)$/\1/p' /tmp/out-$n)
	if [ -z "$t" ]; then
		echo "L1: $n did not reach the marker; last lines:"
		tail -5 /tmp/out-$n
		return
	fi
	echo "$t" >>/tmp/t-$n
	sed -n 's/^VMM-OVERHEAD-KB: \([0-9]*\)$/\1/p' /tmp/out-$n >>/tmp/m-$n
}

Q='qemu -enable-kvm -cpu host -m 256 -nographic -no-reboot -nodefaults -serial stdio'
config ours 'vmm --kernel $KERNEL --initramfs $L2INITRD --cmdline "$CMD" --memory 256M --serial tty'
config qemu-pc "$Q"' -M pc -kernel $KERNEL -initrd $L2INITRD -append "$CMD"'
config qemu-q35 "$Q"' -M q35 -kernel $KERNEL -initrd $L2INITRD -append "$CMD"'
config qemu-microvm "$Q"' -M microvm -kernel $KERNEL -initrd $L2INITRD -append "$CMD"'
# The same build as an uncompressed ELF: ours enters it at startup_64,
# QEMU through its PVH note (no firmware-loaded decompressor either).
if [ -f "$VMLINUX" ]; then
	config ours-vmlinux 'vmm --kernel $VMLINUX --initramfs $L2INITRD --cmdline "$CMD" --memory 256M --serial tty'
	config qemu-pc-vmlinux "$Q"' -M pc -kernel $VMLINUX -initrd $L2INITRD -append "$CMD"'
	config qemu-microvm-vmlinux "$Q"' -M microvm -kernel $VMLINUX -initrd $L2INITRD -append "$CMD"'
fi
i=0
while [ $i -lt "$RUNS" ]; do
	for n in $NAMES; do
		once $n
	done
	i=$((i + 1))
done
for n in $NAMES; do
	echo "BENCH boot $n: runs=$(wc -l </tmp/t-$n) median_ms=$(median </tmp/t-$n) all=$(tr '\n' ' ' </tmp/t-$n) overhead_kib=$(median </tmp/m-$n)"
done
check "ours booted in every run" [ "$(wc -l </tmp/t-ours)" -eq "$RUNS" ]
check "QEMU (pc) booted in every run" [ "$(wc -l </tmp/t-qemu-pc)" -eq "$RUNS" ]
finish
