# VFIO passthrough of L1's NVMe to L2, no vIOMMU (DMA through one identity
# IOAS). Data goes both ways: L1 writes a pattern through its own nvme
# driver before handing the device to vfio-pci, L2 reads it; L2 writes its
# own pattern (with two vCPUs, and reads it back from the second too),
# reboots (the VMM re-executes and resets the device), checks it again,
# resets the function itself (FLR) and checks it once more, and powers off;
# L1 takes the device back and reads L2's pattern.
# Expansion ROM: L2 reads the controller's ROM (run-nested.sh gives L1's
# NVMe one) as L1 reads it, and with romfile= the file's instead.
# Bad input: a path that is not a VFIO cdev; a romfile= that is missing; a
# function named in sysfs that vfio-pci does not drive (the NIC). The last
# boot names the NVMe by its sysfs directory, as cloud-hypervisor does.
. /scenarios/lib.sh
. /scenarios/passthrough-lib.sh

nvme_find
echo "L1: NVMe at $NVME_BDF"
nvme_rebind nvme
check "L1 nvme driver sees the disk" wait_for "[ -b /dev/nvme0n1 ]" 60
dd if=/dev/urandom of=/tmp/l1pat bs=1M count=2 2>/dev/null
dd if=/tmp/l1pat of=/dev/nvme0n1 bs=1M seek=8 conv=fsync 2>/dev/null
l1w=$(md5sum </tmp/l1pat | cut -d' ' -f1)
rom=/sys/bus/pci/devices/$NVME_BDF/rom
echo 1 >"$rom"
l1rom="$(md5sum <"$rom" | cut -d' ' -f1) $(wc -c <"$rom")"
echo 0 >"$rom"
echo "L1: its NVMe's expansion ROM: $l1rom (md5, bytes)"
check "L1's NVMe has an expansion ROM" [ "${l1rom#* }" -gt 0 ]
nvme_rebind vfio-pci
check "device back on vfio-pci" wait_for "[ -e /dev/vfio/devices/vfio0 ]" 30

# bad_device NAME MESSAGE DEVICE-ARG: the VMM given --device DEVICE-ARG
# must exit 2 before the guest runs, saying MESSAGE (a grep pattern).
bad_device() {
	timeout 60 vmm --kernel "$KERNEL" --initramfs "$L2INITRD" --memory 128M \
		--device "$3" </dev/null >/tmp/bad.log 2>&1
	bd_rc=$?
	sed 's/^/  bad| /' /tmp/bad.log
	check "--device $1: exit 2 with a message" \
		sh -c "[ $bd_rc -eq 2 ] && grep -q -- \"\$0\" /tmp/bad.log" "$2"
}

# Bad input: /dev/null is not a VFIO device; a path that is not there.
bad_device "path=/dev/null" "--device path=/dev/null: not a VFIO device cdev" path=/dev/null
bad_device "path=<missing>" "--device path=/dev/vfio/devices/nonexistent: cannot open" \
	path=/dev/vfio/devices/nonexistent

# Bad input: romfile= names no file. Said with the flag, exit 2, and the
# device is left as it was (the runs below use it).
bad_device "...,romfile=<missing>" \
	"--device path=/dev/vfio/devices/vfio0: romfile=/nonexistent.rom: No such file" \
	path=/dev/vfio/devices/vfio0,romfile=/nonexistent.rom

# Bad input: a function in sysfs that is not bound to vfio-pci (L1's NIC).
nic=$(pci_find 0x020000)
bad_device "path=<sysfs dir of a NIC on its own driver>" \
	"--device path=$nic: the function is bound to e1000e, not vfio-pci" path="$nic"

# Bad input: a function whose IOMMU group holds another device on a host
# driver (q35's built-in AHCI at 00:1f.2 shares its group with the SMBus
# controller on i801_smbus). On vfio-pci, but iommufd cannot own the
# group's DMA: said naming the other device and its driver, exit 2.
grp=
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/class")" = 0x010601 ] && [ "$(ls "$d/iommu_group/devices" | wc -l)" -ge 2 ] &&
		[ "$(basename "$(readlink "$d/driver")")" = ahci ] && { grp=$d; break; }
done
check "L1 has an AHCI controller sharing its IOMMU group" [ -n "$grp" ]
pci_rebind "$grp" vfio-pci
bad_device "path=<a function whose IOMMU group has a device on a host driver>" \
	"--device path=$grp: its IOMMU group [0-9]* also holds 0000:[0-9a-f:.]*, bound to [a-z]" \
	path="$grp"
pci_rebind "$grp" ahci
check "... and the AHCI controller goes back to ahci" [ "$(basename "$(readlink "$grp/driver")")" = ahci ]

# A clean run of this L2 (two boots) takes well under a minute. Now and
# then an L2 under TCG stops getting timer ticks for minutes (RCU stall
# reports with its clock jumping; docs/runner.md). An attempt that did not
# reach the end of the second boot is said loudly and run once more, after
# L1 clears the tag so that L2 starts again from its first boot; a hang of
# our own would fail both attempts.
for try in 1 2; do
	run_l2 /tmp/pt.log 200 passthrough --cpus 2 --memory 256M --stats \
		--device path=/dev/vfio/devices/vfio0
	rc=$?
	grep -q L2-READ-MD5 /tmp/pt.log && break
	echo "L1: RETRY passthrough: attempt $try ended (rc $rc) before L2's second boot finished"
	[ $try = 2 ] && break
	nvme_rebind nvme
	wait_for "[ -b /dev/nvme0n1 ]" 60
	dd if=/dev/zero of=/dev/nvme0n1 bs=1M seek=15 count=1 conv=fsync 2>/dev/null
	nvme_rebind vfio-pci
	wait_for "[ -e /dev/vfio/devices/vfio0 ]" 30
done
check "vmm exits 0 after reboot + poweroff" [ $rc -eq 0 ]
check "guest rebooted (two boots seen)" [ "$(grep -c L2-INIT-MARKER /tmp/pt.log)" -eq 2 ]
check "nvme driver bound in L2 (both boots)" [ "$(grep -c 'L2-NVME: ready' /tmp/pt.log)" -eq 2 ]
r1=$(sed -n 's/.*L2-READ-L1-MD5: \([0-9a-f]*\).*/\1/p' /tmp/pt.log | head -1)
w2=$(sed -n 's/.*L2-WRITE-MD5: \([0-9a-f]*\).*/\1/p' /tmp/pt.log | head -1)
r2=$(sed -n 's/.*L2-READ-MD5: \([0-9a-f]*\).*/\1/p' /tmp/pt.log | head -1)
echo "L1 wrote $l1w, L2 read $r1; L2 wrote $w2, L2 read after reboot $r2"
check "L2 reads what L1 wrote" [ -n "$r1" -a "$r1" = "$l1w" ]
check "L2 wrote a pattern" [ -n "$w2" ]
check "L2 reads its pattern back after reboot" [ "$w2" = "$r2" ]
f2=$(sed -n 's/.*L2-FLR-READ-MD5: \([0-9a-f]*\).*/\1/p' /tmp/pt.log | head -1)
check "guest-initiated function-level reset, then the device works again" \
	sh -c "grep -q 'L2-FLR: method flr' /tmp/pt.log && grep -q 'L2-FLR: reset done' /tmp/pt.log && [ '$f2' = '$w2' ]"
c1=$(sed -n 's/.*L2-CPU1-READ-MD5: \([0-9a-f]*\).*/\1/p' /tmp/pt.log | head -1)
check "L2 reads its pattern from its second vCPU (that CPU's queue and MSI-X vector)" \
	[ -n "$c1" -a "$c1" = "$w2" ]
check "the second queue's MSI-X interrupts reach the second vCPU" \
	sh -c "tr -d '\r' </tmp/pt.log | tr -s ' ' | awk '/^L2-IRQ: .*nvme0q2/ && \$4 > 0 { f = 1 } END { exit !f }'"
# Host MSI-X vectors as the guest uses them (--stats): the NVMe offers 65;
# the one-vCPU guest's nvme driver unmasks a couple, and only those (from
# vector 0 up) are enabled on the host.
hv=$(sed -n 's/.*MSI-X host vectors: at most \([0-9]*\) of \([0-9]*\) enabled; grown \([0-9]*\) times in place.*/\1 \2 \3/p' /tmp/pt.log | tail -1)
echo "L1: MSI-X host vectors (most enabled at once, of, times grown in place): ${hv:-none}"
set -- $hv
check "MSI-X: the host enables the vectors the guest uses, not all it offers, growing in place" \
	[ "${1:-0}" -ge 1 -a "${1:-0}" -lt "${2:-0}" -a "${3:-0}" -ge 1 ]
# MSI-X masking (passthrough.l2.sh): a read's completion that came while
# L2 had the function masked waited, showed in the PBA, and came at
# unmask; unmasking with nothing pending brought nothing.
set -- $(tr -d '\r' </tmp/pt.log | sed -n 's/^L2-MSIX-MASK: interrupts \([0-9]*\) masked \([0-9]*\) unmasked \([0-9]*\) pba \([0-9a-fA-Fx]*\) \([0-9a-fA-Fx]*\).*/\1 \2 \3 \4 \5/p' | head -1)
echo "L1: L2's nvme interrupts $1, while masked ${2:-?}, after unmask ${3:-?}; PBA while masked ${4:-?}, after ${5:-?}"
check "MSI-X: no interrupt reaches L2 while the function is masked" [ -n "$2" -a "$1" = "$2" ]
check "MSI-X: the PBA shows the completion's vector pending while masked, clear after" \
	[ -n "$5" -a "$((${4:-0}))" != 0 -a "$((${5:-1}))" = 0 ]
check "MSI-X: the held interrupt arrives at unmask (the read completes)" [ "${3:-0}" -gt "${2:-0}" ]
check "MSI-X: --stats counts what was held and delivered at unmask" \
	grep -q 'held while masked and delivered at unmask [1-9]' /tmp/pt.log
set -- $(tr -d '\r' </tmp/pt.log | sed -n 's/^L2-MSIX-CYCLES: 20 interrupts \([0-9]*\) then \([0-9]*\).*/\1 \2/p' | head -1)
echo "L1: L2's nvme interrupts across 20 mask/unmask cycles: ${1:-?} -> ${2:-?}"
check "MSI-X: unmasking with nothing pending brings no interrupt (20 cycles)" [ -n "$2" -a "$1" = "$2" ]
# The expansion ROM, through our ROM BAR: what L1 reads of it, and the
# guest's reads counted (--stats).
r=$(sed -n 's/.*L2-ROM: \([0-9a-f]* [0-9]*\).*/\1/p' /tmp/pt.log | head -1)
echo "L1: L2 read the expansion ROM as: ${r:-nothing}"
check "L2 reads the device's expansion ROM as L1 does" [ -n "$r" -a "$r" = "$l1rom" ]
check "--stats: the ROM is the device's, and the guest read it" \
	grep -q 'expansion ROM: 32 KiB BAR from the device, 32768 bytes of content, [1-9][0-9]* guest reads' /tmp/pt.log
# KVM was told of the device (the KVM-VFIO device), on each boot of the
# VMM (it re-executes on the guest's reboot).
check "the device was added to KVM's VFIO device on both boots" \
	[ "$(grep -c 'known to KVM (KVM-VFIO device): yes' /tmp/pt.log)" -ge 2 ]

# INTx: with pci=nomsi the guest's nvme driver falls back to the legacy
# interrupt (eventfd + KVM resample irqfd on the slot's GSI).
# This boot names the device by its sysfs directory, and gives the guest
# a ROM of ours (romfile=, 16 KiB).
sh /scenarios/mkrom.sh /tmp/alt.rom 16 "romfile= for the passthrough scenario"
alt="$(md5sum </tmp/alt.rom | cut -d' ' -f1) 16384"
# This run also traps every BAR access (mmap=off): no BAR in a memory slot,
# each doorbell write a pwrite on the region.
L2_CMDLINE_EXTRA="pci=nomsi"
run_l2 /tmp/pt-intx.log 200 passthrough --cpus 1 --memory 256M --stats \
	--device path=/sys/bus/pci/devices/$NVME_BDF,romfile=/tmp/alt.rom,mmap=off
rc=$?
L2_CMDLINE_EXTRA=
check "INTx: vmm exits 0" [ $rc -eq 0 ]
check "path=/sys/bus/pci/devices/BDF: the VMM opened the function's cdev (vfio0)" \
	grep -q 'vmm: vfio vfio0: 1b36:0010 at' /tmp/pt-intx.log
r=$(sed -n 's/.*L2-ROM: \([0-9a-f]* [0-9]*\).*/\1/p' /tmp/pt-intx.log | head -1)
check "romfile=: L2 reads the file as its device's ROM" [ -n "$r" -a "$r" = "$alt" ]
check "INTx: nvme uses the IO-APIC line" grep -q "L2-IRQ: .*IO-APIC.*nvme" /tmp/pt-intx.log
r3=$(sed -n 's/.*L2-READ-MD5: \([0-9a-f]*\).*/\1/p' /tmp/pt-intx.log | head -1)
check "INTx: L2 reads the pattern" [ -n "$r3" -a "$r3" = "$w2" ]
f3=$(sed -n 's/.*L2-FLR-READ-MD5: \([0-9a-f]*\).*/\1/p' /tmp/pt-intx.log | head -1)
st=$(tr -d '\r' </tmp/pt-intx.log | sed -n 's/^L2-INTX-STATUS: //p' | head -1)
echo "L1: L2's view of the NVMe's Interrupt Status (status register bit 3): ${st:-none}"
check "INTx: Interrupt Status shows the device's pending INTx while L2 has it disabled, clear once served" \
	[ "$st" = "before 0 held 8 after 0" ]
check "INTx: after a guest-initiated reset too" [ -n "$f3" -a "$f3" = "$w2" ]
bar_traps() { tr -d '\r' <"$1" | sed -n 's/.*, BAR traps \([0-9]*\),.*/\1/p' | tail -1; }
bar_slots() { tr -d '\r' <"$1" | sed -n 's/.*: BAR pieces in KVM memory slots: \([0-9]*\).*/\1/p' | tail -1; }
echo "L1: BAR pieces in memory slots / accesses trapped: mapped $(bar_slots /tmp/pt.log) / $(bar_traps /tmp/pt.log), mmap=off $(bar_slots /tmp/pt-intx.log) / $(bar_traps /tmp/pt-intx.log)"
check "BARs in KVM memory slots by default" [ "$(bar_slots /tmp/pt.log)" -ge 1 ]
check "mmap=off: no BAR in a memory slot, the guest's BAR accesses (doorbells) trap to the VMM" \
	[ "$(bar_slots /tmp/pt-intx.log)" = 0 -a "$(bar_traps /tmp/pt-intx.log)" -gt 100 ]

nvme_rebind nvme
check "L1 takes the device back" wait_for "[ -b /dev/nvme0n1 ]" 60
h=$(dd if=/dev/nvme0n1 bs=1M skip=16 count=4 2>/dev/null | md5sum | cut -d' ' -f1)
echo "L1 reads $h"
check "L1 reads what L2 wrote" [ "$h" = "$w2" ]
nvme_rebind vfio-pci
finish
