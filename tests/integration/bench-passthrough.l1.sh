# needs: qemu
# l1-cpus: 2
# Passthrough benchmark (scripts/bench-passthrough.sh runs it; test.sh does
# not): 16384 x 4 KiB O_DIRECT reads of the passthrough NVMe in L2, under our
# VMM without and with the virtio-iommu (guest strict mode), and under QEMU
# (legacy VFIO group) the same two ways when /bin/qemu is there; ours also
# with the request queue polled (--iommu poll). One vCPU, 256 MiB each, in
# an L1 with two CPUs (the poller's and the vCPU's; every configuration
# gets both). Prints "BENCH: <config> <seconds>" lines.
. /scenarios/lib.sh
. /scenarios/passthrough-lib.sh
nvme_find
cl="console=ttyS0 scenario=bench-passthrough"
# attempt CONFIG LOG COMMAND...: run a configuration (bounded at 300 s; a
# normal one takes under 90), and once more if it gave no figure: in the
# 2-CPU L1 an L2 now and then stops getting timer interrupts (docs/runner.md,
# "Multi-CPU L1"). Prints "BENCH: CONFIG SECONDS" (or "failed").
attempt() {
	c=$1 log=$2
	shift 2
	for try in 1 2; do
		[ "$c" = "${c%-pinned}" ] || pin_threads &
		timeout 300 "$@" </dev/null >"$log" 2>&1
		wait
		s=$(sed -n 's/.*L2-BENCH: \([0-9.]*\) s.*/\1/p' "$log" | tr -d '\r' | tail -1)
		[ -n "$s" ] && break
		echo "L1: $c gave no figure (attempt $try); its last lines:"
		tail -5 "$log"
	done
	echo "BENCH: $c ${s:-failed}"
	grep '^virtio-iommu' "$log"
}
ours() {	# ours CONFIG GUEST_CMDLINE_EXTRA VMM_ARGS...
	c=$1 x=$2
	shift 2
	attempt "$c" "/tmp/b-$c.log" vmm --kernel "$KERNEL" --initramfs "$L2INITRD" \
		--cmdline "$cl $x" --serial tty --cpus 1 --memory 256M "$@"
}
qemu_pt() {	# qemu_pt CONFIG GUEST_CMDLINE_EXTRA QEMU_ARGS...
	c=$1 x=$2
	shift 2
	attempt "$c" "/tmp/b-$c.log" qemu -M q35 -enable-kvm -cpu host -m 256 -smp 1 -nographic \
		-no-reboot -nodefaults -serial stdio -kernel "$KERNEL" -initrd "$L2INITRD" \
		-append "$cl $x" "$@"
}
pt=/dev/vfio/devices/vfio0
for i in 1 2; do
	ours ours-no-viommu "" --device path=$pt
	ours ours-viommu-strict iommu.strict=1 --iommu --stats --device path=$pt,iommu=on
	ours ours-viommu-strict-poll iommu.strict=1 --iommu poll=2000 --stats --device path=$pt,iommu=on
	# The same with the vCPU thread pinned to CPU 0 (where L1's device
	# interrupts go) and the poller to CPU 1, as a user would pin them.
	ours ours-viommu-strict-poll-pinned iommu.strict=1 --iommu poll=2000 --stats \
		--device path=$pt,iommu=on
	if [ -x /bin/qemu ]; then
		qemu_pt qemu-no-viommu "" -device vfio-pci,host="$NVME_BDF"
		qemu_pt qemu-viommu-strict iommu.strict=1 -device virtio-iommu-pci \
			-device vfio-pci,host="$NVME_BDF"
	fi
done
