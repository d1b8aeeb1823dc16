# pt_lat DEV COUNT: read COUNT 4 KiB blocks of DEV with O_DIRECT (one at a
# time, as the passthrough benchmark does) under this kernel's block and IRQ
# tracepoints, and print one "LAT:" line splitting a read's time, mean µs:
# issue (block_rq_issue) -> the NVMe's interrupt handler: the device and the
# interrupt's way to this kernel; handler -> completion (block_rq_complete);
# completion -> the next issue: this kernel's own path (waking dd, back to
# user space, the next read syscall, building and submitting the command);
# and the time the CPU spent idle. Sourced by bench-pt-lat (L1 and L2).
pt_lat() {
	pl_t=/sys/kernel/tracing
	[ -d $pl_t/events ] || mount -t tracefs nodev $pl_t
	echo 0 >$pl_t/tracing_on
	echo 8192 >$pl_t/buffer_size_kb
	echo >$pl_t/trace
	for e in block/block_rq_issue block/block_rq_complete irq/irq_handler_entry sched/sched_switch; do
		echo 1 >$pl_t/events/$e/enable
	done
	# Warm up: the first reads fault in dd and map its buffer.
	dd if="$1" of=/dev/null bs=4k count=64 iflag=direct 2>/dev/null
	echo >$pl_t/trace
	echo 1 >$pl_t/tracing_on
	pl_0=$(cut -d' ' -f1 /proc/uptime)
	dd if="$1" of=/dev/null bs=4k count="$2" iflag=direct 2>/dev/null
	pl_1=$(cut -d' ' -f1 /proc/uptime)
	echo 0 >$pl_t/tracing_on
	for e in block/block_rq_issue block/block_rq_complete irq/irq_handler_entry sched/sched_switch; do
		echo 0 >$pl_t/events/$e/enable
	done
	awk -v secs="$(awk "BEGIN { print $pl_1 - $pl_0 }")" '
	{
		ts = -1
		for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) { ts = substr($i, 1, length($i) - 1) * 1e6; break }
		if (ts < 0) next
	}
	/ block_rq_issue:/ { if (done) { cpu += ts - done; ncpu++ } issued = ts; irq = 0; done = 0; n++ }
	/ irq_handler_entry:/ && /name=nvme/ { if (issued && !irq) { dev += ts - issued; ndev++; irq = ts } }
	/ block_rq_complete:/ { if (irq) { hnd += ts - irq; nhnd++ } done = ts; issued = 0 }
	/ sched_switch:/ {
		if ($0 ~ /next_comm=swapper/) idle0 = ts
		else if (idle0) { idle += ts - idle0; idle0 = 0 }
	}
	END {
		if (!ndev || !ncpu) { print "LAT: no reads in the trace"; exit 1 }
		printf "LAT: %d reads in %.2f s (%.0f us each): issue->irq %.0f us, irq->complete %.0f us, complete->next issue %.0f us, idle %.0f us\n",
			n, secs, secs * 1e6 / n, dev / ndev, nhnd ? hnd / nhnd : 0, cpu / ncpu, idle / n
	}' $pl_t/trace
	echo >$pl_t/trace
}
