# needs: qemu
# Temporary diagnostic (named bench-* so scripts/test.sh skips it): where
# L2's boot time goes, ours vs QEMU 7.2 -M pc. Each boot runs under
# `boottime --timeline`, which prefixes every console line with the ms since
# launch at which it arrived; the kernel's printk timestamps
# (CONFIG_PRINTK_TIME=y) are in the lines. Same kernel, initramfs and
# command line as bench-boot. Configurations take turns, RUNS rounds (QEMU
# in the first QEMU_RUNS only); then ours once more with VMM_DEBUG_EXITS;
# INITCALL_DEBUG=1 adds a boot of ours and of QEMU with initcall_debug.
# `vmm-old` (and `vmm-slowlz4`), if the image has them (builds of another VMM placed in
# build/l1/ by hand), they are timed beside the current one.
. /scenarios/lib.sh
RUNS=${RUNS:-4}
QEMU_RUNS=${QEMU_RUNS:-1}
CMD="console=ttyS0 scenario=bench-boot"
Q='qemu -enable-kvm -cpu host -m 256 -nographic -no-reboot -nodefaults -serial stdio'

once() {	# once NAME ENV COMMAND...
	n=$1 env=$2
	shift 2
	eval "$env timeout 120 boottime --timeline L2-INIT-MARKER -- $*" </dev/null >/tmp/tl-$n 2>&1
	echo "L1: $n: $(grep '^BOOTTIME-MS' /tmp/tl-$n)"
}
ours() { echo "--kernel $1 --initramfs $L2INITRD --cmdline '$CMD' --memory 256M --serial tty"; }
r=1
while [ $r -le "$RUNS" ]; do
	command -v vmm-old >/dev/null && once old-$r "" vmm-old $(ours $KERNEL)
	once ours-$r "" vmm $(ours $KERNEL)
	once ours-guestdec-$r VMM_GUEST_DECOMPRESS=1 vmm $(ours $KERNEL)
	once ours-vmlinux-$r "" vmm $(ours $VMLINUX)
	[ $r -le "${QEMU_RUNS:-2}" ] && once qemu-pc-$r "" $Q -M pc -kernel $KERNEL -initrd $L2INITRD -append "'$CMD'"
	r=$((r + 1))
done
# Exit profiles (VMM_DEBUG_EXITS: per 250 ms, the exits by kind and port,
# and KVM's own counters of vCPU 0, in-kernel exits included).
for v in vmm vmm-slowlz4; do
	command -v $v >/dev/null && once prof-$v VMM_DEBUG_EXITS=250 $v $(ours $KERNEL)
done
once prof-vmlinux VMM_DEBUG_EXITS=250 vmm $(ours $VMLINUX)
if [ -n "${INITCALL_DEBUG:-}" ]; then
	# initcall_debug's lines are KERN_DEBUG: loglevel=8 to see them.
	CMD="$CMD initcall_debug loglevel=8"
	once ours-initcall "" vmm $(ours $KERNEL)
	once qemu-pc-initcall "" $Q -M pc -kernel $KERNEL -initrd $L2INITRD -append "'$CMD'"
fi
for f in /tmp/tl-*; do
	echo "===== ${f#/tmp/tl-}"
	cat "$f"
done
check "ours reached the marker" grep -q '^BOOTTIME-MS: [0-9]' /tmp/tl-ours-1
finish
