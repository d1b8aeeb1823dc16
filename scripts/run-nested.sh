#!/usr/bin/env bash
# The nested-virt runner: boot L1 (QEMU TCG with emulated AMD SVM, so L1 has
# a working /dev/kvm; a q35 machine with an emulated Intel IOMMU, an NVMe and
# an e1000e NIC and an AHCI controller with a disk to pass through), run one scenario inside it, print what L1
# and L2 printed, exit 0 if the scenario passed.
#
#   scripts/run-nested.sh SCENARIO [--timeout S] [--with-qemu] [--keep-log F]
#                         [--l1-cpus N]
#
# SCENARIO names tests/integration/SCENARIO.l1.sh (run in L1) and, if
# present, SCENARIO.l2.sh (run in L2 by its /init). Every wait is bounded: L1
# is killed after --timeout seconds (default 600) and the run fails.
# L1 has one vCPU unless the scenario's l1.sh says "# l1-cpus: N" (or
# --l1-cpus N is given): see docs/runner.md on why one is the default.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
scenario=${1:?usage: run-nested.sh SCENARIO [--timeout S] [--with-qemu]}
shift
timeout_s=600
with_qemu=""
log=""
l1_cpus=""
while [ $# -gt 0 ]; do
	case $1 in
	--timeout) timeout_s=$2; shift 2 ;;
	--with-qemu) with_qemu=--with-qemu; shift ;;
	--keep-log) log=$2; shift 2 ;;
	--l1-cpus) l1_cpus=$2; shift 2 ;;
	*) echo "run-nested: unknown option $1" >&2; exit 2 ;;
	esac
done
[ -f "$top/tests/integration/$scenario.l1.sh" ] || {
	echo "run-nested: no scenario tests/integration/$scenario.l1.sh" >&2; exit 2; }
[ -n "$l1_cpus" ] || l1_cpus=$(sed -n 's/^# l1-cpus: \([0-9]*\)$/\1/p' \
	"$top/tests/integration/$scenario.l1.sh" | head -1)
l1_cpus=${l1_cpus:-1}
# A scenario saying "# l1-nvme: 2" gets a second NVMe controller (its own
# 64 MiB file, serial leanvmm1): two guests side by side, one device each.
l1_nvme=$(sed -n 's/^# l1-nvme: \([0-9]*\)$/\1/p' "$top/tests/integration/$scenario.l1.sh" | head -1)
case $l1_cpus in
[1-8]) ;;
*) echo "run-nested: --l1-cpus: '$l1_cpus' is not a number from 1 to 8" >&2; exit 2 ;;
esac

kdir=$("$top/scripts/build-kernel.sh" | tail -1)
make -s -C "$top" >/dev/null
"$top/scripts/build-selftests.sh" >/dev/null
"$top/scripts/build-images.sh" $with_qemu >/dev/null
img=$top/build/images/l1.cpio
[ -n "$with_qemu" ] && img=$top/build/images/l1-qemu.cpio

work=$(mktemp -d /tmp/run-nested.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The NVMe's backing file: 64 MiB of zeroes, fresh each run. Its
# expansion ROM: 32 KiB of a known image (tests/integration/mkrom.sh; an
# EFI image, which L1's SeaBIOS leaves alone), which L2 reads through the
# passthrough device's ROM BAR.
truncate -s 64M "$work/nvme.img"
nvme2=()
if [ "${l1_nvme:-1}" = 2 ]; then
	truncate -s 64M "$work/nvme1.img"
	nvme2=(-drive "file=$work/nvme1.img,if=none,id=nvm1,format=raw"
		-device nvme,drive=nvm1,serial=leanvmm1)
fi
sh "$top/tests/integration/mkrom.sh" "$work/nvme.rom" 32 "lean-vmm runner NVMe expansion ROM"
# A SATA disk on an AHCI controller of its own (a device with MSI, for the
# passthrough-devices scenario): 4 MiB of a known text.
head -c 4194304 <(yes "lean-vmm runner SATA disk") >"$work/sata.img"
[ -n "$log" ] || log=$work/console.log

# RUNNER_MONITOR=PATH: L1's QEMU monitor on a unix socket (debugging a
# stuck L1: socat - unix-connect:PATH, then "info registers", "info lapic").
monitor=none
[ -n "${RUNNER_MONITOR:-}" ] && monitor=unix:$RUNNER_MONITOR,server,nowait
# RUNNER_L1_EXTRA="...": more of L1's kernel command line (e.g. nokaslr, so
# a RIP from "info registers" reads against System.map).

# L1's TSC is the host's (TCG reads it), and KVM in L1 takes its guests'
# TSC rate from L1's early calibration, which a busy host can throw off by
# hundreds of ppm; L1 later refines its own rate, and an L2 whose KVM rate
# then disagrees loses its timer for minutes (docs/runner.md, "L1's TSC
# rate"). So L1 is told the rate, measured here.
tsc_khz=$("$top/build/runner/tsc_khz" 2>/dev/null || true)
l1_tsc=${tsc_khz:+tsc_early_khz=$tsc_khz}

start=$(date +%s)
# run_l1: boot L1 once, its console to the terminal and to $log; sets rc.
run_l1() {
	set +e
	timeout --foreground -k 10 "$timeout_s" qemu-system-x86_64 \
		-accel tcg -cpu max -smp "$l1_cpus" -m 3072 \
		-M q35,kernel-irqchip=split,hpet=off -device intel-iommu,intremap=on \
		-nographic -no-reboot -serial stdio -display none \
		-monitor "$monitor" \
		-kernel "$kdir/bzImage" -initrd "$img" \
		-append "console=ttyS0 intel_iommu=on rdinit=/init scenario=$scenario quiet loglevel=4 no_timer_check panic=-1 $l1_tsc ${RUNNER_L1_EXTRA:-}" \
		-drive "file=$work/nvme.img,if=none,id=nvm0,format=raw" \
		-device nvme,drive=nvm0,serial=leanvmm0,romfile="$work/nvme.rom" \
		"${nvme2[@]}" \
		-netdev user,id=n0,restrict=on -device e1000e,netdev=n0 \
		-drive "file=$work/sata.img,if=none,id=sata0,format=raw" \
		-device ich9-ahci,id=ahci1 -device ide-hd,drive=sata0,bus=ahci1.0 \
		</dev/null 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	set -e
}
run_l1
# With several L1 CPUs, QEMU 7.2's multi-threaded TCG can run a stale int3
# left by Linux's code patching (docs/runner.md, "Multi-CPU L1"); kvm_hold
# limits the patching to one moment at L1's start, which can still be hit.
# Such an L1 died of the emulator, not of the scenario: boot it once more,
# loudly, on a fresh NVMe file.
if [ "$l1_cpus" -gt 1 ] && ! grep -q 'SCENARIO-RESULT:' "$log" && grep -q 'Oops: int3' "$log"; then
	echo "run-nested: $scenario: RETRY: L1 died of 'Oops: int3' (multi-threaded TCG); booting L1 again"
	cp "$log" "$log.first"
	rm -f "$work/nvme.img" "$work/nvme1.img"
	truncate -s 64M "$work/nvme.img"
	[ "${l1_nvme:-1}" = 2 ] && truncate -s 64M "$work/nvme1.img"
	run_l1
fi
end=$(date +%s)
result=$(sed -n 's/.*SCENARIO-RESULT: [^ ]* rc=\([0-9]*\).*/\1/p' "$log" | tail -1)
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	echo "run-nested: $scenario: TIMEOUT after ${timeout_s}s"
	exit 1
fi
if [ -z "$result" ]; then
	echo "run-nested: $scenario: L1 ended (qemu rc=$rc) without a result"
	exit 1
fi
echo "run-nested: $scenario: rc=$result in $((end - start))s"
[ "$result" = 0 ]
