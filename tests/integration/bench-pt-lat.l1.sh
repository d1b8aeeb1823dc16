# needs: qemu
# l1-cpus: 2
# Diagnostic (named bench-* so scripts/test.sh skips it): where a 4 KiB
# direct read of the passthrough NVMe spends its time, without a vIOMMU, in
# L2 under ours and under QEMU (ROUNDS rounds, default 8, which goes first
# alternating) and in L1 itself reading the device with its own nvme
# driver (before and after). Each reads COUNT blocks (default 2048) under
# that kernel's block and IRQ tracepoints (pt-lat-lib.sh) and prints a
# "LAT:" line; the end prints each phase's median per configuration.
# Same guest kernel, initramfs, vCPU and memory as bench-passthrough.
. /scenarios/lib.sh
. /scenarios/passthrough-lib.sh
. /scenarios/pt-lat-lib.sh
nvme_find
COUNT=${COUNT:-2048}
cl="console=ttyS0 scenario=bench-pt-lat bench_count=$COUNT"
pt=/dev/vfio/devices/vfio0
: >/tmp/lat.all
l1_direct() {
	nvme_rebind nvme >/dev/null
	wait_for "[ -b /dev/nvme0n1 ]" 60 || { echo "L1: no /dev/nvme0n1"; return 1; }
	pt_lat /dev/nvme0n1 "$COUNT" | sed 's/^LAT:/LAT: l1-direct/' | tee -a /tmp/lat.all
	nvme_rebind vfio-pci >/dev/null
	wait_for "[ -e $pt ]" 30 || { echo "L1: $pt did not come back"; return 1; }
}
run() {	# run CONFIG COMMAND...: one L2, its LAT line tagged with CONFIG
	c=$1
	shift
	timeout 300 "$@" </dev/null >/tmp/lat-$c.log 2>&1
	l=$(grep -a '^LAT:' /tmp/lat-$c.log | tr -d '\r' | sed "s/^LAT:/LAT: $c/")
	[ -n "$l" ] || { echo "L1: $c gave no LAT line; its last lines:"; tail -15 /tmp/lat-$c.log; return; }
	echo "$l" | tee -a /tmp/lat.all
}
ours() { run ours-no-viommu vmm --kernel "$KERNEL" --initramfs "$L2INITRD" --cmdline "$cl" \
	--serial tty --cpus 1 --memory 256M --device path=$pt; }
qemu_pt() { run qemu-no-viommu qemu -M q35 -enable-kvm -cpu host -m 256 -smp 1 -nographic \
	-no-reboot -nodefaults -serial stdio -kernel "$KERNEL" -initrd "$L2INITRD" -append "$cl" \
	-device vfio-pci,host="$NVME_BDF"; }
l1_direct
for i in $(seq 1 "${ROUNDS:-8}"); do
	if [ $((i % 2)) = 1 ]; then ours; qemu_pt; else qemu_pt; ours; fi
done
l1_direct
# Medians per configuration and phase (µs).
awk '
function median(s,   a, n, i, j, t) {
	n = split(s, a, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
	c = $2; if (!(c in seen)) { seen[c] = 1; order[++nc] = c }
	for (i = 1; i <= NF; i++) {
		if ($i == "each):") per[c] = per[c] " " substr($(i - 2), 2)
		if ($i == "issue->irq") dev[c] = dev[c] " " $(i + 1)
		if ($i == "irq->complete") hnd[c] = hnd[c] " " $(i + 1)
		if ($i == "issue") cpu[c] = cpu[c] " " $(i + 1)
		if ($i == "idle") idle[c] = idle[c] " " $(i + 1)
	}
}
END {
	for (k = 1; k <= nc; k++) { c = order[k]
		printf "LAT-MEDIAN: %s (%d runs): %.0f us a read: issue->irq %.0f, irq->complete %.0f, complete->next issue %.0f, idle %.0f\n",
			c, split(per[c], x, " "), median(per[c]), median(dev[c]), median(hnd[c]), median(cpu[c]), median(idle[c]) }
}' /tmp/lat.all
