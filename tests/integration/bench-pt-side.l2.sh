# Side by side (bench-pt-side.l1.sh): warm up, say ready, wait for L1's
# "go" on the console, then read 4 KiB blocks of the passthrough NVMe with
# O_DIRECT, 512 a dd, until side_s seconds have passed by this guest's
# clock; print "L2-SIDE: READS SECONDS", idle three seconds, power off.
secs=$(sed -n 's/.*side_s=\([0-9]*\).*/\1/p' /proc/cmdline)
i=0
while [ ! -b /dev/nvme0n1 ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
[ -b /dev/nvme0n1 ] || { echo "L2-NVME: missing"; exit 1; }
dd if=/dev/nvme0n1 of=/dev/null bs=4k count=512 iflag=direct 2>/dev/null
# centis: now = /proc/uptime's first field in hundredths of a second
# (no process started).
centis() {
	read -r up rest </proc/uptime
	now=$((${up%.*} * 100 + 1${up#*.} - 100))
}
echo "L2-SIDE-READY"
read -r go
centis
t0=$now
end=$((t0 + ${secs:-10} * 100))
n=0
while :; do
	dd if=/dev/nvme0n1 of=/dev/null bs=4k count=512 skip=$((n % 16384)) iflag=direct 2>/dev/null
	n=$((n + 512))
	centis
	[ "$now" -lt "$end" ] || break
done
echo "L2-SIDE: $n $(((now - t0) / 100)).$(printf %02d $(((now - t0) % 100)))"
# The other guest ends its last dd within a second or so: stay idle till
# then, so this one's shutdown (and its VMM's exit) does not run beside
# the other's reads.
sleep 3
for d in /sys/bus/pci/drivers/nvme/0000:*; do
	[ -e "$d" ] && echo "$(basename "$d")" >/sys/bus/pci/drivers/nvme/unbind
done
