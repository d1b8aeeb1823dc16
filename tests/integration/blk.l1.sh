# virtio-blk: a pattern written by L2 survives a guest reboot, reads back
# identical, and is what the host file holds; a read-only disk refuses writes.
. /scenarios/lib.sh
truncate -s 16M /tmp/disk.img
truncate -s 1M /tmp/ro.img
echo "read-only-disk-content" | dd of=/tmp/ro.img conv=notrunc 2>/dev/null
# L1's /tmp is tmpfs, where O_DIRECT is refused: direct=off says so.
run_l2 /tmp/blk.log 400 blk --cpus 1 --memory 256M --console file=/tmp/hvc.log \
	--disk path=/tmp/disk.img,direct=off --disk path=/tmp/ro.img,readonly=on,direct=off
rc=$?
w=$(sed -n 's/.*L2-WRITE-MD5: \([0-9a-f]*\).*/\1/p' /tmp/blk.log | head -1)
r=$(sed -n 's/.*L2-READ-MD5: \([0-9a-f]*\).*/\1/p' /tmp/blk.log | head -1)
h=$(dd if=/tmp/disk.img bs=1M skip=1 count=4 2>/dev/null | md5sum | cut -d' ' -f1)
echo "write=$w read-after-reboot=$r host=$h"
check "vmm exits 0 after reboot + poweroff" [ $rc -eq 0 ]
check "guest rebooted (two boots seen)" [ "$(grep -c L2-INIT-MARKER /tmp/blk.log)" -eq 2 ]
check "pattern written in L2" [ -n "$w" ]
check "pattern read back after reboot matches" [ "$w" = "$r" ]
check "host file holds the pattern" [ "$w" = "$h" ]
check "read-only disk: guest write refused" grep -q "L2-RO-WRITE: refused" /tmp/blk.log
check "read-only disk: content readable" grep -q "L2-RO-READ: read-only-disk-content" /tmp/blk.log
check "read-only disk: host file unchanged" grep -q read-only-disk-content /tmp/ro.img
echo "L1: the console file after the reboot: $(tr '\n' ' ' </tmp/hvc.log)"
check "--console file=: kept across the guest's reboot (both boots' lines)" \
	sh -c "grep -q HVC-BOOT-1 /tmp/hvc.log && grep -q HVC-BOOT-2 /tmp/hvc.log"
# One writer per file: the same file as two writable disks is refused
# before the guest runs.
timeout 60 vmm --kernel "$KERNEL" --initramfs "$L2INITRD" --memory 128M \
	--disk path=/tmp/disk.img,direct=off --disk path=/tmp/disk.img,direct=off \
	</dev/null >/tmp/twice.log 2>&1
rc=$?
sed 's/^/  twice| /' /tmp/twice.log
check "one file as two writable disks: exit 2, said naming --disk" \
	sh -c "[ $rc -eq 2 ] && grep -q -- '--disk path=/tmp/disk.img: in use by another --disk' /tmp/twice.log"
finish
