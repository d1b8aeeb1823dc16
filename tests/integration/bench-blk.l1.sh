# needs: qemu
# l1-cpus: 2
# 16384 x 4 KiB O_DIRECT reads of a 64 MiB virtio-blk disk in L2 (dd), ours
# and QEMU 7.2, without and with a virtio-iommu (strict and lazy), in one L1
# with two CPUs (the poller needs a CPU besides the vCPU's; every
# configuration gets both). Ours behind the vIOMMU twice: served on kicks
# (--iommu poll=off: ours-strict, ours-lazy) and with the request queue
# polled as it is by default (--iommu, poll=auto: the -poll names; before
# poll=auto existed these ran a fixed poll=2000).
# The disk file sits on L1's tmpfs (no O_DIRECT there): both VMMs read it
# through L1's page cache, so the figures compare the virtio and IOMMU paths.
# Behind the vIOMMU our disk offers no indirect descriptors by default (one
# MAP+UNMAP less per read); ours-strict-poll-ind turns them back on, and
# qemu-strict-noind turns QEMU's off, so both choices are measured both ways.
# The -pio configurations put our queue notify registers in an I/O BAR
# (--virtio-notify pio): a cheaper exit per kick here.
# BENCH_SET=core (scenario bench-blk-core) runs only what the targets name
# (ours and QEMU without vIOMMU, strict, lazy; ours polled) and three rounds.
. /scenarios/lib.sh
BENCH_SET=${BENCH_SET:-all}
ROUNDS=${ROUNDS:-2}
truncate -s 64M /tmp/bench.img
L2B="console=ttyS0 scenario=bench-blk"

one() {	# one NAME CMDLINE_EXTRA COMMAND...
	name=$1
	shift 2
	bench_try "$name" /tmp/b-$name.log 's/.*L2-DD-MS: \([0-9]*\).*/\1/p' "$@"
	echo "BENCH blk $name: ms=${FIG:-none}" | tee -a /tmp/bench-results
	grep 'virtio-iommu: requestq\|virtio-iommu: poller' /tmp/b-$name.log || true
}
ours() {
	n=$1 x=$2
	shift 2
	one "$n" "$x" vmm --kernel $KERNEL --initramfs $L2INITRD --cmdline "$L2B $x" --memory 256M --serial tty "$@"
}
qemu_run() {
	n=$1 x=$2
	shift 2
	one "$n" "$x" qemu -enable-kvm -cpu host -m 256 -nographic -no-reboot -nodefaults -serial stdio \
		-kernel $KERNEL -initrd $L2INITRD -append "$L2B $x" "$@"
}
: >/tmp/bench-results
# BENCH_SET=poll (scenario bench-blk-poll): strict as by default (poll=auto)
# against the fixed window it replaced (poll=2000), alternating.
if [ "$BENCH_SET" = poll ]; then
	for round in $(seq 1 "$ROUNDS"); do
		ours ours-strict-poll "iommu.strict=1" --iommu --stats --disk path=/tmp/bench.img,direct=off,iommu=on
		ours ours-strict-poll2000 "iommu.strict=1" --iommu poll=2000 --stats \
			--disk path=/tmp/bench.img,direct=off,iommu=on
	done
	check "every configuration measured" [ "$(grep -c 'ms=none' /tmp/bench-results)" -eq 0 ]
	finish
fi
for round in $(seq 1 "$ROUNDS"); do
	ours ours-noiommu "" --disk path=/tmp/bench.img,direct=off
	ours ours-strict "iommu.strict=1" --iommu poll=off --disk path=/tmp/bench.img,direct=off,iommu=on
	ours ours-lazy "iommu.strict=0" --iommu poll=off --disk path=/tmp/bench.img,direct=off,iommu=on
	ours ours-strict-poll "iommu.strict=1" --iommu --stats --disk path=/tmp/bench.img,direct=off,iommu=on
	ours ours-lazy-poll "iommu.strict=0" --iommu --disk path=/tmp/bench.img,direct=off,iommu=on
	qemu_run qemu-noiommu "" -M pc -drive file=/tmp/bench.img,if=virtio,format=raw,cache=writeback
	qemu_run qemu-strict "iommu.strict=1" -M q35 -device virtio-iommu-pci \
		-drive file=/tmp/bench.img,if=none,id=d0,format=raw,cache=writeback \
		-device virtio-blk-pci,drive=d0,iommu_platform=on,disable-legacy=on
	qemu_run qemu-lazy "iommu.strict=0" -M q35 -device virtio-iommu-pci \
		-drive file=/tmp/bench.img,if=none,id=d0,format=raw,cache=writeback \
		-device virtio-blk-pci,drive=d0,iommu_platform=on,disable-legacy=on
	[ "$BENCH_SET" = core ] && continue
	ours ours-strict-poll-ind "iommu.strict=1" --iommu \
		--disk path=/tmp/bench.img,direct=off,iommu=on,indirect=on
	ours ours-noiommu-pio "" --virtio-notify pio --disk path=/tmp/bench.img,direct=off
	ours ours-strict-pio "iommu.strict=1" --virtio-notify pio --iommu poll=off --disk path=/tmp/bench.img,direct=off,iommu=on
	ours ours-strict-poll-pio "iommu.strict=1" --virtio-notify pio --iommu \
		--disk path=/tmp/bench.img,direct=off,iommu=on
	qemu_run qemu-strict-noind "iommu.strict=1" -M q35 -device virtio-iommu-pci \
		-drive file=/tmp/bench.img,if=none,id=d0,format=raw,cache=writeback \
		-device virtio-blk-pci,drive=d0,iommu_platform=on,disable-legacy=on,indirect_desc=off
done
check "every configuration measured" [ "$(grep -c 'ms=none' /tmp/bench-results)" -eq 0 ]
finish
