# Boot L2 under the project's VMM: 2 vCPUs visible, init reached, poweroff
# gives exit 0; --cpus ...,dedicated=on leaves HLT to the guest.
. /scenarios/lib.sh
run_l2_retry /tmp/boot.log 200 boot --cpus 2 --memory 256M --stats
rc=$?
check "vmm exits 0 after guest poweroff" [ $rc -eq 0 ]
check "L2 init marker printed" grep -q L2-INIT-MARKER /tmp/boot.log
# The kernel's polled console output goes through KVM's coalesced ring
# (vmm/serial.c), init's through the interrupt-driven path: both arrive,
# in order.
check "console: the kernel's lines, then init's, in order" \
	awk '/Run \/init as init process/ { k = NR } /L2-INIT-MARKER/ { m = NR } END { exit !(k && m && k < m) }' /tmp/boot.log
check "2 vCPUs visible in L2" grep -q "L2-CPUS: 2" /tmp/boot.log
check "no kernel warning at boot" sh -c "! grep -q 'WARNING:' /tmp/boot.log"
# hlt_exits LOG: the HLT exits --stats counted over the guest's life.
hlt_exits() {
	tr -d '\r' <"$1" | sed -n 's/^vcpus: KVM exits [0-9]*, HLT \([0-9]*\).*/\1/p' | tail -1
}
h=$(hlt_exits /tmp/boot.log)
echo "L1: HLT exits of the default boot: ${h:-none counted}"
check "--stats: an idle guest's vCPUs exit on HLT by default" [ "${h:-0}" -gt 0 ]
# The VMM decompresses the bzImage and randomises its place (KASLR): the
# kernel does not run at its link address (the VMM never picks that slot).
text=$(tr -d '\r' </tmp/boot.log | sed -n 's/^L2-TEXT: \([0-9a-f]*\)$/\1/p')
echo "L1: bzImage _text at $text"
check "bzImage: kernel text randomised (KASLR), not at the link address" \
	[ -n "$text" ] && [ "$text" != ffffffff81000000 ]
# KVM here gives L2 the TSC rate L1 started with: it must be the one L1
# settled on, or L2 loses its timer for minutes (docs/runner.md).
echo "L1: TSC rate at start and refined (MHz): $(l1_tsc_rates)"
check "L1's TSC rate at start agrees with its refined rate (250 ppm)" l1_tsc_agrees
# The same kernel as an ELF vmlinux, entered at startup_64 (no decompressor).
if [ -f "$VMLINUX" ]; then
	bz=$KERNEL
	KERNEL=$VMLINUX
	run_l2_retry /tmp/boot-elf.log 150 boot --cpus 2 --memory 256M
	rc=$?
	KERNEL=$bz
	check "vmlinux: vmm exits 0 after guest poweroff" [ $rc -eq 0 ]
	check "vmlinux: L2 init marker printed" grep -q L2-INIT-MARKER /tmp/boot-elf.log
	check "vmlinux: 2 vCPUs visible in L2" grep -q "L2-CPUS: 2" /tmp/boot-elf.log
	check "vmlinux: kernel at its link address" grep -q "L2-TEXT: ffffffff81000000" /tmp/boot-elf.log
	# nokaslr on the command line: the bzImage stays at its link address.
	L2_CMDLINE_EXTRA=nokaslr
	# ... and its one vCPU taken as owning its CPU: HLT stays in the guest.
	run_l2_retry /tmp/boot-nokaslr.log 150 boot --cpus 1,dedicated=on --memory 256M --stats
	rc=$?
	L2_CMDLINE_EXTRA=
	check "nokaslr: vmm exits 0" [ $rc -eq 0 ]
	h=$(hlt_exits /tmp/boot-nokaslr.log)
	echo "L1: HLT exits of the dedicated=on boot: ${h:-none counted}"
	check "dedicated=on: no HLT exit (KVM_X86_DISABLE_EXITS_HLT)" [ "$h" = 0 ]
	check "dedicated=on: said so in --stats" grep -q "dedicated=on: HLT and PAUSE stay in the guest" /tmp/boot-nokaslr.log
	check "nokaslr: bzImage kernel at its link address" grep -q "L2-TEXT: ffffffff81000000" /tmp/boot-nokaslr.log
else
	check "the image carries /images/vmlinux (scripts/build-kernel.sh keeps it)" false
fi
finish
