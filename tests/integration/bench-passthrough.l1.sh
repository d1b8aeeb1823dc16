# needs: qemu
# l1-cpus: 2
# Passthrough benchmark (scripts/bench-passthrough.sh runs it; test.sh does
# not): 16384 x 4 KiB O_DIRECT reads of the passthrough NVMe in L2, under our
# VMM without and with the virtio-iommu (guest strict mode), and under QEMU
# (legacy VFIO group) the same two ways when /bin/qemu is there. Ours
# behind the vIOMMU: as by default (--iommu: the request queue polled with
# an adaptive window, poll=auto), served on kicks (poll=off), with a fixed
# window (poll=2000), and on kicks that are port writes (--virtio-notify
# pio). One vCPU, 256 MiB each, in
# an L1 with two CPUs (the poller's and the vCPU's; every configuration
# gets both). Prints "BENCH: <config> <seconds>" lines.
. /scenarios/lib.sh
. /scenarios/passthrough-lib.sh
nvme_find
cl="console=ttyS0 scenario=bench-passthrough"
# attempt CONFIG LOG COMMAND...: one configuration (lib.sh bench_try);
# prints "BENCH: CONFIG SECONDS" (or "failed") and the VMM's counters.
attempt() {
	c=$1 log=$2
	shift 2
	bench_try "$c" "$log" 's/.*L2-BENCH: \([0-9.]*\) s.*/\1/p' "$@"
	echo "BENCH: $c ${FIG:-failed}"
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
# BENCH_SET=none (scenario bench-pt-none): only the two no-vIOMMU
# configurations, ROUNDS rounds, which of the two goes first alternating.
if [ "${BENCH_SET:-all}" = none ]; then
	for i in $(seq 1 "${ROUNDS:-6}"); do
		if [ $((i % 2)) = 1 ]; then
			ours ours-no-viommu "" --device path=$pt
			qemu_pt qemu-no-viommu "" -device vfio-pci,host="$NVME_BDF"
		else
			qemu_pt qemu-no-viommu "" -device vfio-pci,host="$NVME_BDF"
			ours ours-no-viommu "" --device path=$pt
		fi
	done
	exit 0
fi
for i in 1 2; do
	ours ours-no-viommu "" --device path=$pt
	ours ours-viommu-strict-auto iommu.strict=1 --iommu --stats --device path=$pt,iommu=on
	ours ours-viommu-strict iommu.strict=1 --iommu poll=off --stats --device path=$pt,iommu=on
	ours ours-viommu-strict-poll iommu.strict=1 --iommu poll=2000 --stats --device path=$pt,iommu=on
	# Strict again with the virtio-iommu's notify register in an I/O BAR
	# (--virtio-notify pio): every MAP/UNMAP kick a port write.
	ours ours-viommu-strict-pio iommu.strict=1 --iommu poll=off --virtio-notify pio --stats \
		--device path=$pt,iommu=on
	if [ -x /bin/qemu ]; then
		qemu_pt qemu-no-viommu "" -device vfio-pci,host="$NVME_BDF"
		qemu_pt qemu-viommu-strict iommu.strict=1 -device virtio-iommu-pci \
			-device vfio-pci,host="$NVME_BDF"
	fi
done
