# virtio-iommu with its request queue polled as by default (--iommu,
# poll=auto: an adaptive window): the guest's driver is told not to kick
# while the poller runs, so requests are answered without an exit. Strict
# mode: a pattern round-trips through the disk behind the IOMMU, and the
# VMM's counters show the window opened (grown from closed), requests the
# poller found by itself, and fewer kicks than requests. (A fixed window,
# poll=USEC, is covered by the unit tests, test_viommu_poll.)
#
# L1 has one CPU, so the VMM would refuse to poll (a poller there only takes
# time from the vCPU): force=on makes it poll anyway, yielding while it
# waits. This scenario used to run in a 2-CPU L1 for a CPU of the poller's
# own; under QEMU 7.2's TCG a 2-CPU L1 now and then corrupts or stops its
# L2, whatever VMM runs it (docs/runner.md, "Multi-CPU L1"), and CI lost
# both attempts of this scenario to that. What the poller buys on its own
# CPU is measured by the benchmarks, which still use two.
. /scenarios/lib.sh
L2_CMDLINE_EXTRA="iommu.strict=1"
check "L1 has one CPU" [ "$(nproc)" -eq 1 ]
# A normal run takes well under a minute. An attempt that did not reach L2's
# scenario end (the TCG stalls of docs/runner.md) is said loudly and tried
# once more, on a fresh disk; a hang of our own would fail both.
for try in 1 2; do
	truncate -s 0 /tmp/vdisk.img
	truncate -s 16M /tmp/vdisk.img
	run_l2 /tmp/poll.log 200 viommu --cpus 1 --memory 256M --iommu force=on --stats \
		--disk path=/tmp/vdisk.img,direct=off,iommu=on
	rc=$?
	grep -q L2-SCENARIO-EXIT /tmp/poll.log && break
	echo "L1: RETRY viommu-poll: attempt $try ended (rc $rc) before L2's scenario did"
done
log=/tmp/poll.log
w=$(sed -n 's/.*L2-WRITE-MD5: \([0-9a-f]*\).*/\1/p' $log | head -1)
r=$(sed -n 's/.*L2-READ-MD5: \([0-9a-f]*\).*/\1/p' $log | head -1)
h=$(dd if=/tmp/vdisk.img bs=1M count=4 2>/dev/null | md5sum | cut -d' ' -f1)
line=$(tr -d '\r' <$log | grep 'virtio-iommu: requestq kicks' | tail -1)
kicks=$(echo "$line" | sed -n 's/.*kicks \([0-9]*\).*/\1/p')
reqs=$(echo "$line" | sed -n 's/.*requests \([0-9]*\).*/\1/p')
polled=$(echo "$line" | sed -n 's/.*polled \([0-9]*\).*/\1/p')
window=$(echo "$line" | sed -n 's/.*poll auto: window \([0-9]*\) us.*/\1/p')
grown=$(echo "$line" | sed -n 's/.* grown \([0-9]*\).*/\1/p')
echo "poll: write=$w read=$r host=$h kicks=$kicks requests=$reqs polled=$polled window=${window}us grown=$grown"
check "vmm exits 0" [ $rc -eq 0 ]
check "virtio-iommu driver bound in L2" grep -q "L2-VIOMMU-DRIVER: bound" $log
check "poller not refused" sh -c "! grep -q 'ignored\|no poller thread' $log"
check "poller told it shares L1's one CPU" grep -q 'force=on on one online CPU' $log
check "pattern read back matches" [ -n "$w" ] && [ "$w" = "$r" ]
check "host file holds the pattern" [ "$w" = "$h" ]
check "the adaptive window opened (grown $grown times)" [ "${grown:-0}" -gt 0 ]
check "requests found by the poller without a kick ($polled)" [ "${polled:-0}" -gt 0 ]
check "fewer kicks than requests ($kicks < $reqs)" [ "${kicks:-1}" -lt "${reqs:-0}" ]
finish
