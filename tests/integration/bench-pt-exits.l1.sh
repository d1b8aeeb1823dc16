# needs: qemu
# l1-cpus: 2
# Diagnostic (named bench-* so scripts/test.sh skips it): which L2 exits
# L1's KVM takes per 4 KiB read of the passthrough NVMe, ours and QEMU's,
# without and behind the virtio-iommu (guest strict). Each configuration
# reads COUNT blocks (default 2048) with L1's kvm:kvm_exit,
# kvm:kvm_entry, kvm:kvm_userspace_exit and kvm:kvm_msr tracepoints on; the
# trace is then summed (exits by reason, time in L1 from each exit to the
# next entry by reason, time in L2, exits to the VMM, MSR accesses), less a
# boot of the same VMM that reads one block, per read. Same L2 kernel,
# initramfs and guest command line as bench-passthrough.
. /scenarios/lib.sh
. /scenarios/passthrough-lib.sh
nvme_find
COUNT=${COUNT:-2048}
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
	for e in kvm_exit kvm_entry kvm_userspace_exit kvm_msr; do
		echo 1 >$T/events/kvm/$e/enable
	done
	echo 1 >$T/tracing_on
	timeout 300 "$@" </dev/null >/tmp/x-$n.log 2>&1
	echo 0 >$T/tracing_on
	fig=$(sed -n 's/.*L2-BENCH: \([0-9.]*\) s.*/\1/p' /tmp/x-$n.log | tail -1)
	echo "EXITS: $n: ${fig:-no figure} s for $COUNT reads; lost events: $(grep -c LOST $T/trace)"
	# Sums, one "KEY VALUE" a line: exits and L1 time (exit to the next
	# entry, us) by reason, L2 time (entry to the next exit), exits to the
	# VMM, MSR accesses by index.
	awk '
	{
		ts = -1
		for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) { ts = substr($i, 1, length($i) - 1) * 1e6; break }
		if (ts < 0) next
	}
	/ kvm_exit:/ {
		for (i = 1; i < NF; i++) if ($i == "reason") r = $(i + 1)
		n["exits " r]++; n["exits all"]++
		if (ent) n["us L2"] += ts - ent
		ex = ts; ent = 0
	}
	/ kvm_entry:/ { if (ex) { n["us L1 " r] += ts - ex; n["us L1 all"] += ts - ex }; ent = ts; ex = 0 }
	/ kvm_userspace_exit:/ { n["exits to-vmm"]++ }
	/ kvm_msr:/ { for (i = 1; i < NF; i++) if ($i ~ /^msr_(read|write)$/) n[$i " " $(i + 1)]++ }
	END { for (k in n) printf "%s %d\n", k, n[k] }' $T/trace | sort >/tmp/sum-$n
}
# per_read NAME BASE: NAME's sums less BASE's (the boot), per read.
per_read() {
	awk -v n="$1" -v c="$COUNT" '
	{ k = $1; for (i = 2; i < NF; i++) k = k " " $i }
	FNR == NR { b[k] = $NF; next }
	{ v = ($NF - b[k]) / c; if (v >= 0.05 || v <= -0.05) printf "EXITS: %s: %s %.2f/read\n", n, k, v }' \
		/tmp/sum-$2 /tmp/sum-$1
}
# PIN: a command put before the VMM's (taskset for the CPU 0 runs).
PIN=
ours() {	# ours NAME GUEST_CMDLINE_EXTRA VMM_ARGS...
	n=$1 x=$2
	shift 2
	traced "$n" $PIN vmm --kernel "$KERNEL" --initramfs "$L2INITRD" --cmdline "$cl $x" \
		--serial tty --cpus 1 --memory 256M "$@"
}
qemu_pt() {	# qemu_pt NAME GUEST_CMDLINE_EXTRA QEMU_ARGS...
	n=$1 x=$2
	shift 2
	traced "$n" $PIN qemu -M q35 -enable-kvm -cpu host -m 256 -smp 1 -nographic -no-reboot \
		-nodefaults -serial stdio -kernel "$KERNEL" -initrd "$L2INITRD" -append "$cl $x" "$@"
}
reads() {	# reads N: the configurations that follow read N blocks
	COUNT=$1 cl="console=ttyS0 scenario=bench-passthrough bench_count=$1"
}
# The boot's own exits are in every configuration; a boot that reads one
# block measures them. CPU 0: every thread of the VMM where L1 steers the
# NVMe's interrupts, so no wake-up crosses L1's CPUs.
n_reads=$COUNT
reads 1
ours ours-boot-only "" --device path=$pt
reads $n_reads
ours ours-none "" --device path=$pt
PIN="taskset -c 0"
ours ours-none-cpu0 "" --device path=$pt
PIN=
ours ours-strict iommu.strict=1 --iommu --stats --device path=$pt,iommu=on
ours ours-strict-pio iommu.strict=1 --iommu --virtio-notify pio --stats --device path=$pt,iommu=on
if [ -x /bin/qemu ]; then
	reads 1
	qemu_pt qemu-boot-only "" -device vfio-pci,host="$NVME_BDF"
	reads $n_reads
	qemu_pt qemu-none "" -device vfio-pci,host="$NVME_BDF"
	PIN="taskset -c 0"
	qemu_pt qemu-none-cpu0 "" -device vfio-pci,host="$NVME_BDF"
	PIN=
	qemu_pt qemu-strict iommu.strict=1 -device virtio-iommu-pci -device vfio-pci,host="$NVME_BDF"
fi
for c in ours-none ours-none-cpu0 ours-strict ours-strict-pio; do per_read $c ours-boot-only; done
if [ -x /bin/qemu ]; then
	for c in qemu-none qemu-none-cpu0 qemu-strict; do per_read $c qemu-boot-only; done
fi
echo "0 passed, 0 failed"
