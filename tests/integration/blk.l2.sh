# First boot: write a random 4 MiB pattern at 1 MiB on vda, tag sector 0,
# reboot. Second boot: read it back and power off.
# Each boot leaves a line in the virtio-console's host file (--console
# file=): the file must hold both after the reboot.
if [ "$(dd if=/dev/vda bs=16 count=1 2>/dev/null)" = "LEANVMM-PATTERN!" ]; then
	echo "HVC-BOOT-2" >/dev/hvc0
	echo "L2-READ-MD5: $(dd if=/dev/vda bs=1M skip=1 count=4 2>/dev/null | md5sum | cut -d' ' -f1)"
	exit 0
fi
echo "HVC-BOOT-1" >/dev/hvc0
dd if=/dev/urandom of=/tmp/pat bs=1M count=4 2>/dev/null
dd if=/tmp/pat of=/dev/vda bs=1M seek=1 conv=fsync 2>/dev/null
printf 'LEANVMM-PATTERN!' | dd of=/dev/vda bs=16 count=1 conv=fsync 2>/dev/null
echo "L2-WRITE-MD5: $(md5sum </tmp/pat | cut -d' ' -f1)"
echo "L2-RO-READ: $(dd if=/dev/vdb bs=22 count=1 2>/dev/null)"
if echo x | dd of=/dev/vdb conv=fsync 2>/dev/null; then
	echo "L2-RO-WRITE: accepted"
else
	echo "L2-RO-WRITE: refused"
fi
sync
reboot -f
