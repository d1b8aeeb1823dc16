# needs: qemu
# l1-cpus: 2
# Diagnostic (named bench-* so scripts/test.sh skips it): which L2 exits
# L1's KVM takes per 4 KiB read of the passthrough NVMe, ours and QEMU's,
# without and behind the virtio-iommu (guest strict). Each configuration
# reads COUNT blocks (default 2048) with L1's kvm:kvm_exit,
# kvm:kvm_userspace_exit and kvm:kvm_msr tracepoints on; the trace is then
# summed: exits by reason, MSR writes by index, exits to the VMM, each per
# read. Same L2 kernel, initramfs and guest command line as bench-passthrough.
. /scenarios/lib.sh
. /scenarios/passthrough-lib.sh
nvme_find
COUNT=${COUNT:-2048}
cl="console=ttyS0 scenario=bench-passthrough bench_count=$COUNT"
T=/sys/kernel/tracing
[ -d $T/events ] || mount -t tracefs nodev $T
[ -d $T/events/kvm ] || { echo "L1: no kvm tracepoints"; exit 1; }
echo 16384 >$T/buffer_size_kb
pt=/dev/vfio/devices/vfio0

traced() {	# traced NAME COMMAND...: run one L2 with the tracepoints on, sum the trace
	n=$1
	shift
	echo 0 >$T/tracing_on
	echo >$T/trace
	for e in kvm_exit kvm_userspace_exit kvm_msr; do echo 1 >$T/events/kvm/$e/enable; done
	echo 1 >$T/tracing_on
	timeout 300 "$@" </dev/null >/tmp/x-$n.log 2>&1
	echo 0 >$T/tracing_on
	fig=$(sed -n 's/.*L2-BENCH: \([0-9.]*\) s.*/\1/p' /tmp/x-$n.log | tail -1)
	echo "EXITS: $n: ${fig:-no figure} s for $COUNT reads; lost events: $(grep -c LOST $T/trace)"
	awk -v n="$n" -v c="$COUNT" '
	/kvm_exit:/ { for (i = 1; i < NF; i++) if ($i == "reason") { r[$(i + 1)]++; t++ } }
	/kvm_userspace_exit:/ { u++ }
	/kvm_msr:/ { for (i = 1; i < NF; i++) if ($i ~ /^msr_(read|write)$/) m[$i " " $(i + 1)]++ }
	END {
		printf "EXITS: %s: all %d (%.2f/read), to the VMM %d (%.2f/read)\n", n, t, t / c, u, u / c
		for (k in r) printf "EXITS: %s: reason %s %d (%.2f/read)\n", n, k, r[k], r[k] / c
		for (k in m) if (m[k] >= c / 8) printf "EXITS: %s: %s %d (%.2f/read)\n", n, k, m[k], m[k] / c
	}' $T/trace | sort
}
ours() {	# ours NAME GUEST_CMDLINE_EXTRA VMM_ARGS...
	n=$1 x=$2
	shift 2
	traced "$n" vmm --kernel "$KERNEL" --initramfs "$L2INITRD" --cmdline "$cl $x" \
		--serial tty --cpus 1 --memory 256M "$@"
}
qemu_pt() {	# qemu_pt NAME GUEST_CMDLINE_EXTRA QEMU_ARGS...
	n=$1 x=$2
	shift 2
	traced "$n" qemu -M q35 -enable-kvm -cpu host -m 256 -smp 1 -nographic -no-reboot \
		-nodefaults -serial stdio -kernel "$KERNEL" -initrd "$L2INITRD" -append "$cl $x" "$@"
}
# The boot's own exits are in every configuration; an idle boot (no reads)
# measures them.
COUNT0=$COUNT
COUNT=1 cl="console=ttyS0 scenario=bench-passthrough bench_count=1"
ours ours-boot-only "" --device path=$pt
COUNT=$COUNT0 cl="console=ttyS0 scenario=bench-passthrough bench_count=$COUNT"
ours ours-none "" --device path=$pt
ours ours-strict iommu.strict=1 --iommu --stats --device path=$pt,iommu=on
ours ours-strict-pio iommu.strict=1 --iommu --virtio-notify pio --stats --device path=$pt,iommu=on
if [ -x /bin/qemu ]; then
	qemu_pt qemu-none "" -device vfio-pci,host="$NVME_BDF"
	qemu_pt qemu-strict iommu.strict=1 -device virtio-iommu-pci -device vfio-pci,host="$NVME_BDF"
fi
echo "0 passed, 0 failed"
