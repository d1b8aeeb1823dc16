# needs: qemu
# l1-cpus: 2
# Benchmark (scripts/bench-passthrough.sh --pair runs it; test.sh skips
# bench-*): what one guest MAP+UNMAP pair costs, request by request, as the
# guest sees it (bench-pt-pair.l2.sh: kprobes on the strict-mode waits of
# the Linux virtio-iommu driver), for 2048 reads of the passthrough NVMe
# behind the virtio-iommu, guest iommu.strict=1: ours as by default
# (--iommu, poll=auto), ours served on kicks (poll=off), and QEMU 7.2
# (virtio-iommu-pci + vfio-pci), ROUNDS rounds (default 4), the order
# rotating. Prints "PAIR: CONFIG ..." lines (medians, µs) and, for ours,
# the VMM's counters and median IOAS_MAP / IOAS_UNMAP times.
. /scenarios/lib.sh
. /scenarios/passthrough-lib.sh
nvme_find
cl="console=ttyS0 scenario=bench-pt-pair bench_count=${COUNT:-2048} iommu.strict=1"
pt=/dev/vfio/devices/vfio0
run() {	# run CONFIG COMMAND...
	c=$1
	shift
	bench_try "$c" "/tmp/p-$c.log" 's/.*PAIR: \(map median.*\)/\1/p' "$@"
	echo "PAIR: $c ${FIG:-failed}" | tr -d '\r'
	grep -a '^virtio-iommu' "/tmp/p-$c.log" | tr -d '\r'
}
ours() { c=$1; shift
	run "$c" vmm --kernel "$KERNEL" --initramfs "$L2INITRD" --cmdline "$cl" \
		--serial tty --cpus 1 --memory 256M --stats "$@" --device path=$pt,iommu=on; }
qemu_pt() { run qemu-strict qemu -M q35 -enable-kvm -cpu host -m 256 -smp 1 -nographic \
	-no-reboot -nodefaults -serial stdio -kernel "$KERNEL" -initrd "$L2INITRD" -append "$cl" \
	-device virtio-iommu-pci -device vfio-pci,host="$NVME_BDF"; }
for i in $(seq 1 "${ROUNDS:-4}"); do
	case $((i % 3)) in
	1) ours ours-strict-default --iommu; ours ours-strict-kicks --iommu poll=off; qemu_pt ;;
	2) qemu_pt; ours ours-strict-default --iommu; ours ours-strict-kicks --iommu poll=off ;;
	0) ours ours-strict-kicks --iommu poll=off; qemu_pt; ours ours-strict-default --iommu ;;
	esac
done
