# Helpers for L1 scenario scripts (sourced). Every wait here is bounded.

KERNEL=/images/bzImage
VMLINUX=/images/vmlinux	# the same build as an ELF, if the image has it
L2INITRD=/images/l2.cpio
fails=0
passes=0

# check NAME COMMAND...: run a check, print ok/not ok, count it.
check() {
	name=$1
	shift
	if "$@"; then
		echo "ok - $name"
		passes=$((passes + 1))
	else
		echo "not ok - $name"
		fails=$((fails + 1))
	fi
}

# finish: print the tally and exit non-zero if anything failed.
finish() {
	echo "$passes passed, $fails failed"
	[ "$fails" -eq 0 ]
	exit $?
}

# run_l2 LOG TIMEOUT_S SCENARIO [vmm args...]: boot L2 under our VMM with
# the given L2 scenario, output to LOG (and to the console, prefixed).
# Returns the VMM's exit status (143 when busybox's timeout killed it).
run_l2() {
	log=$1 t=$2 sc=$3
	shift 3
	# Stream L2's console as it comes (prefixed), keep it in LOG.
	( timeout "$t" vmm --kernel "$KERNEL" --initramfs "$L2INITRD" \
		--cmdline "console=ttyS0 scenario=$sc $L2_CMDLINE_EXTRA" \
		--serial tty "$@" </dev/null 2>&1; echo $? >/tmp/run_l2.rc ) | tee "$log" | sed 's/^/  L2| /'
	rc=$(cat /tmp/run_l2.rc)
	l2_unsplit "$log"
	return $rc
}

# l2_unsplit LOG: L2's kernel writes its messages to the console between
# any two bytes of a line user space is writing, e.g.
#   L2-FLR-READ-MD5:[   15.34] sh (59) used greatest stack depth: ...
#    6031aba132ef261d33ba0b0fd2d59e22
# Join such a line of ours (L2-...) back together, the kernel's part cut.
l2_unsplit() {
	awk '{ sub(/\r$/, "") }
	held != "" { $0 = held $0; held = "" }
	/^L2-/ && match($0, /\[ *[0-9]+\.[0-9]+\] /) > 1 { held = substr($0, 1, RSTART - 1); next }
	{ print }
	END { if (held != "") print held }' "$1" >"$1.unsplit" && mv "$1.unsplit" "$1"
}

# run_l2_retry LOG TIMEOUT_S SCENARIO [vmm args...]: run_l2, and once more
# when timeout had to kill the VMM (124 for coreutils' timeout, 143 for
# busybox's): now and then an L2 under TCG stops getting timer interrupts
# for minutes, mostly on its way to poweroff (docs/runner.md). Said loudly;
# a hang of our own fails both attempts.
run_l2_retry() {
	for rt_try in 1 2; do
		run_l2 "$@"
		rt_rc=$?
		case $rt_rc in 124 | 143) ;; *) return $rt_rc ;; esac
		echo "L1: RETRY $3: attempt $rt_try timed out after $2 s (rc $rt_rc)"
	done
	return $rt_rc
}

# l1_tsc_rates: "START REFINED" (MHz), L1's TSC rate as its kernel started
# with it (the runner's tsc_early_khz=, or L1's own early calibration) and
# as refined a few seconds later (empty when not refined).
l1_tsc_rates() {
	dmesg | awk '/tsc: Detected .* MHz (processor|TSC)/ { e = $(NF - 2) }
		/Refined TSC clocksource calibration/ { r = $(NF - 1) }
		END { print e, r }'
}

# l1_tsc_agrees: the two agree within KVM's 250 ppm tolerance (KVM in L1
# gives its guests the first; docs/runner.md, "L1's TSC rate").
l1_tsc_agrees() {
	l1_tsc_rates | awk '{ exit !($2 == "" || ($1 - $2 <= $2 / 4000 && $2 - $1 <= $2 / 4000)) }'
}

# wait_for COND_CMD TIMEOUT_S: poll once a second until COND_CMD succeeds.
wait_for() {
	i=0
	while [ $i -lt "$2" ]; do
		sh -c "$1" && return 0
		sleep 1
		i=$((i + 1))
	done
	return 1
}

# Bind the first NVMe controller to vfio-pci so /dev/vfio/devices/vfio0
# exists (the passthrough scenarios use it).
bind_nvme_vfio() {
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/class")" = 0x010802 ] || continue
		bdf=$(basename "$d")
		[ -e "$d/driver" ] && echo "$bdf" >"$d/driver/unbind"
		echo vfio-pci >"$d/driver_override"
		echo "$bdf" >/sys/bus/pci/drivers_probe
		echo "L1: $bdf bound to vfio-pci: $(ls /dev/vfio/devices 2>/dev/null)"
		NVME_BDF=$bdf
		return 0
	done
	return 0
}

# pin_threads (run in the background before starting a VMM with --iommu poll):
# once its poller exists, vcpu0 -> CPU 0 (where a multi-CPU L1 steers device
# interrupts), viommu-poll -> CPU 1. Gives up after 120 s.
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

# bench_try NAME LOG SED COMMAND...: run a benchmark configuration, stdin
# closed, output in LOG, bounded at 300 s; FIG gets what the sed script SED
# prints from LOG (the figure). Without a figure it is said, with LOG's last
# lines, and run once more: in a 2-CPU L1 an L2 now and then stops getting
# timer interrupts (docs/runner.md, "Multi-CPU L1"). A NAME ending in
# -pinned has its threads pinned (pin_threads).
bench_try() {
	bt_name=$1 bt_log=$2 bt_sed=$3
	shift 3
	for bt_try in 1 2; do
		[ "$bt_name" = "${bt_name%-pinned}" ] || pin_threads &
		timeout 300 "$@" </dev/null >"$bt_log" 2>&1
		wait
		FIG=$(sed -n "$bt_sed" "$bt_log" | tail -1)
		[ -n "$FIG" ] && return 0
		echo "L1: $bt_name gave no figure (attempt $bt_try); its last lines:"
		tail -15 "$bt_log"
	done
	return 1
}
