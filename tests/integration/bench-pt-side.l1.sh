# needs: qemu
# l1-cpus: 2
# l1-nvme: 2
# Passthrough without a vIOMMU, ours and QEMU side by side
# (scripts/bench-passthrough.sh --side): L1 has two NVMe controllers and two
# CPUs; each round boots both guests at once, ours with one controller on
# one CPU, QEMU with the other on the other (the VMM's threads and the
# device's interrupts in L1 alike), and swaps the two slots the next round.
# Once both guests are ready, both are told to go at the same moment and
# read 4 KiB blocks for SIDE_SECONDS by their own clocks: both count their
# reads under the same minutes of the nested TCG, whose pace drifts from
# second to second more than the two VMMs differ (docs/performance.md).
# Prints "SIDE: round R slot S ours N T qemu N T" (reads, seconds).
. /scenarios/lib.sh
. /scenarios/passthrough-lib.sh
secs=${SIDE_SECONDS:-10}
rounds=${ROUNDS:-12}
set -- $(for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/class")" = 0x010802 ] && basename "$d"
done)
[ $# -ge 2 ] || { echo "L1: two NVMe controllers needed, $# found"; exit 1; }
bdf0=$1 bdf1=$2
for b in $bdf0 $bdf1; do
	pci_rebind "/sys/bus/pci/devices/$b" vfio-pci
done
cdev() { ls "/sys/bus/pci/devices/$1/vfio-dev"; }
cl="console=ttyS0 scenario=bench-pt-side side_s=$secs"
# side_mode (L1's command line, from bench-passthrough.sh --side MODE): how
# each VMM treats an idle vCPU. default: as it comes (HLT exits);
# dedicated: each told its vCPU owns the CPU (HLT stays in the guest);
# ours-dedicated: ours told so, QEMU as it comes.
mode=$(sed -n 's/.*side_mode=\([a-z-]*\).*/\1/p' /proc/cmdline)
ours_cpus=1 qemu_pm=
case "${mode:-default}" in
default) ;;
dedicated) ours_cpus=1,dedicated=on qemu_pm="-overcommit cpu-pm=on" ;;
ours-dedicated) ours_cpus=1,dedicated=on ;;
*) echo "L1: side_mode=$mode is not default, dedicated or ours-dedicated"; exit 1 ;;
esac
echo "L1: side by side, idle vCPUs: ${mode:-default} (ours --cpus $ours_cpus, QEMU ${qemu_pm:-as it comes})"

# irqs_to BDF CPU: the device's VFIO interrupts in L1 to CPU.
irqs_to() {
	for q in $(grep "vfio-.*($1)" /proc/interrupts | sed 's/^ *\([0-9]*\):.*/\1/'); do
		echo "$2" >"/proc/irq/$q/smp_affinity_list" 2>/dev/null
	done
}

# start_ours, start_qemu: one guest in the background (pid po, pq), its VMM
# and every thread of it on its slot's L1 CPU, its console on a FIFO.
start_ours() {
	taskset -c "$so" timeout 300 vmm --kernel "$KERNEL" --initramfs "$L2INITRD" \
		--cmdline "$cl" --serial tty --cpus "$ours_cpus" --memory 256M \
		--device "path=/dev/vfio/devices/$(cdev "$bo")" \
		</tmp/side-in-o >/tmp/side-o.log 2>&1 3>&- 4>&- &
	po=$!
}
start_qemu() {
	# shellcheck disable=SC2086 # qemu_pm: none, or a flag and its value
	taskset -c "$sq" timeout 300 qemu -M q35 -enable-kvm -cpu host -m 256 -smp 1 $qemu_pm \
		-nographic -no-reboot -nodefaults -serial stdio -kernel "$KERNEL" \
		-initrd "$L2INITRD" -append "$cl" -device vfio-pci,host="$bq" \
		</tmp/side-in-q >/tmp/side-q.log 2>&1 3>&- 4>&- &
	pq=$!
}

# side_round R SLOT: ours on controller/CPU SLOT, QEMU on the other.
side_round() {
	so=$2 sq=$((1 - $2))
	eval bo=\$bdf$so bq=\$bdf$sq
	rm -f /tmp/side-in-o /tmp/side-in-q /tmp/side-o.log /tmp/side-q.log
	mkfifo /tmp/side-in-o /tmp/side-in-q
	exec 3<>/tmp/side-in-o 4<>/tmp/side-in-q
	# Slot 0's VMM starts first (the order alternates with the slots).
	if [ "$so" = 0 ]; then start_ours; start_qemu; else start_qemu; start_ours; fi
	if wait_for "grep -qs L2-SIDE-READY /tmp/side-o.log && grep -qs L2-SIDE-READY /tmp/side-q.log" 150; then
		irqs_to "$bo" "$so"
		irqs_to "$bq" "$sq"
		# The guest of slot 0 hears it first (microseconds apart).
		if [ "$so" = 0 ]; then echo go >&3; echo go >&4; else echo go >&4; echo go >&3; fi
	else
		echo "L1: round $1: a guest did not get ready; their last lines:"
		tail -5 /tmp/side-o.log /tmp/side-q.log
		kill "$po" "$pq" 2>/dev/null
	fi
	wait "$po"
	wait "$pq"
	exec 3>&- 4>&-
	o=$(tr -d '\r' </tmp/side-o.log | sed -n 's/^L2-SIDE: \([0-9]* [0-9.]*\)$/\1/p' | tail -1)
	q=$(tr -d '\r' </tmp/side-q.log | sed -n 's/^L2-SIDE: \([0-9]* [0-9.]*\)$/\1/p' | tail -1)
	echo "SIDE: round $1 slot $so ours ${o:-failed} qemu ${q:-failed}"
	[ -n "$o" ] && [ -n "$q" ]
}

for r in $(seq 1 "$rounds"); do
	side_round "$r" $(((r + 1) % 2)) || side_round "$r" $(((r + 1) % 2)) || true
done
