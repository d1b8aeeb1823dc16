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
result() {	# result CONFIG LOG
	s=$(sed -n 's/.*L2-BENCH: \([0-9.]*\) s.*/\1/p' "$2" | tail -1)
	echo "BENCH: $1 ${s:-failed}"
}
# pin_threads: once the VMM's poller exists, vcpu0 -> CPU 0, viommu-poll -> CPU 1.
pin_threads() {
	i=0
	while [ $i -lt 120 ]; do
		for t in /proc/$(pidof vmm 2>/dev/null)/task/*; do
			[ "$(cat "$t/comm" 2>/dev/null)" = viommu-poll ] || continue
			for u in /proc/$(pidof vmm)/task/*; do
				case $(cat "$u/comm") in
				vcpu0) taskset -p -c 0 "$(basename "$u")" >/dev/null ;;
				viommu-poll) taskset -p -c 1 "$(basename "$u")" >/dev/null ;;
				esac
			done
			echo "L1: pinned vcpu0 to CPU 0, viommu-poll to CPU 1"
			return 0
		done
		sleep 1
		i=$((i + 1))
	done
	echo "L1: no poller thread to pin"
}
for i in 1 2; do
	run_l2 /tmp/b-ours.log 1200 bench-passthrough --cpus 1 --memory 256M \
		--device path=/dev/vfio/devices/vfio0
	result ours-no-viommu /tmp/b-ours.log
	L2_CMDLINE_EXTRA="iommu.strict=1"
	run_l2 /tmp/b-ours-iommu.log 1200 bench-passthrough \
		--cpus 1 --memory 256M --iommu --stats --device path=/dev/vfio/devices/vfio0,iommu=on
	L2_CMDLINE_EXTRA=
	result ours-viommu-strict /tmp/b-ours-iommu.log
	grep '^virtio-iommu' /tmp/b-ours-iommu.log
	L2_CMDLINE_EXTRA="iommu.strict=1"
	run_l2 /tmp/b-ours-poll.log 1200 bench-passthrough --cpus 1 --memory 256M \
		--iommu poll=2000 --stats --device path=/dev/vfio/devices/vfio0,iommu=on
	L2_CMDLINE_EXTRA=
	result ours-viommu-strict-poll /tmp/b-ours-poll.log
	grep '^virtio-iommu' /tmp/b-ours-poll.log
	# The same with the vCPU thread pinned to CPU 0 (where L1's device
	# interrupts go) and the poller to CPU 1, as a user would pin them.
	pin_threads &
	L2_CMDLINE_EXTRA="iommu.strict=1"
	run_l2 /tmp/b-ours-pin.log 1200 bench-passthrough --cpus 1 --memory 256M \
		--iommu poll=2000 --stats --device path=/dev/vfio/devices/vfio0,iommu=on
	L2_CMDLINE_EXTRA=
	wait
	result ours-viommu-strict-poll-pinned /tmp/b-ours-pin.log
	grep '^virtio-iommu' /tmp/b-ours-pin.log
	if [ -x /bin/qemu ]; then
		timeout 1200 qemu -M q35 -enable-kvm -cpu host -m 256 -smp 1 -nographic -no-reboot -nodefaults -serial stdio \
			-kernel "$KERNEL" -initrd "$L2INITRD" -append "$cl" \
			-device vfio-pci,host="$NVME_BDF" </dev/null >/tmp/b-qemu.log 2>&1
		result qemu-no-viommu /tmp/b-qemu.log
		timeout 1200 qemu -M q35 -enable-kvm -cpu host -m 256 -smp 1 -nographic -no-reboot -nodefaults -serial stdio \
			-kernel "$KERNEL" -initrd "$L2INITRD" -append "$cl iommu.strict=1" \
			-device virtio-iommu-pci -device vfio-pci,host="$NVME_BDF" \
			</dev/null >/tmp/b-qemu-iommu.log 2>&1
		result qemu-viommu-strict /tmp/b-qemu-iommu.log
		grep -q L2-BENCH /tmp/b-qemu-iommu.log || tail -20 /tmp/b-qemu-iommu.log
	fi
done
