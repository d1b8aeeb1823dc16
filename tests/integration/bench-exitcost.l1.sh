# needs: qemu
# What one L2 exit costs, by kind (tests/l1/exitcost.c run inside L2):
# port I/O against MMIO, to userspace and (kick) to an ioeventfd, under
# our VMM and under QEMU 7.2, in this L1. A measurement, with checks only
# that every figure came out. Run by scripts/bench-exitcost.sh.
. /scenarios/lib.sh
cat "$L2INITRD" /images/l2-tools.cpio >/tmp/l2x.cpio
dd if=/dev/zero of=/tmp/ec.img bs=1M count=1 2>/dev/null
L2INITRD=/tmp/l2x.cpio
run_l2 /tmp/ec-ours.log 600 bench-exitcost --memory 256M --disk path=/tmp/ec.img
check "ours: every exit kind timed" [ "$(grep -c '^EXITCOST' /tmp/ec-ours.log)" -eq 5 ]
run_l2 /tmp/ec-ours-pio.log 600 bench-exitcost --memory 256M --disk path=/tmp/ec.img --virtio-notify pio
check "ours, --virtio-notify pio: the port kick timed" grep -q '^EXITCOST pio-kick' /tmp/ec-ours-pio.log
timeout 600 qemu -enable-kvm -cpu host -m 256 -M pc -nographic -no-reboot -nodefaults -serial stdio \
	-kernel "$KERNEL" -initrd /tmp/l2x.cpio -append "console=ttyS0 scenario=bench-exitcost" \
	-drive file=/tmp/ec.img,if=none,id=d0,format=raw -device virtio-blk-pci,drive=d0,disable-legacy=on \
	</dev/null 2>&1 | tee /tmp/ec-qemu.log | sed 's/^/  L2| /'
check "QEMU: every exit kind but the kick timed" [ "$(grep -c '^EXITCOST' /tmp/ec-qemu.log)" -ge 4 ]
for f in /tmp/ec-ours.log /tmp/ec-ours-pio.log /tmp/ec-qemu.log; do
	sed -n "s/^EXITCOST \([a-z-]*\): ns_per_exit=\([0-9]*\).*/BENCH exitcost ${f#/tmp/ec-} \1 \2/p" "$f" | sed 's/\.log / /'
done
finish
