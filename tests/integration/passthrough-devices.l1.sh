# VFIO passthrough of two more kinds of device, together in one L2, no
# vIOMMU (both on the one identity IOAS), each named by its sysfs
# directory: L1's e1000e NIC (MSI-X, an I/O BAR, an expansion ROM) and its
# AHCI controller with a SATA disk (MSI: a device with no MSI-X). L2's
# e1000e driver gets a DHCP lease through the NIC from the user-mode
# network in L0; L2's ahci driver reads the disk, which L1 read first.
# Then both again behind the virtio-iommu (guest strict).
. /scenarios/lib.sh
. /scenarios/passthrough-lib.sh

nic=$(pci_find 0x020000)
ahci=$(pci_find 0x010601)
check "L1 has a NIC and an AHCI controller to pass through" [ -n "$nic" -a -n "$ahci" ]
# The disk as L1 sees it, before the controller goes to vfio-pci.
wait_for "[ -b /dev/sda ]" 30
l1md5=$(dd if=/dev/sda bs=64k 2>/dev/null | md5sum | cut -d' ' -f1)
echo "L1: the SATA disk reads $l1md5"
pci_rebind "$nic" vfio-pci
pci_rebind "$ahci" vfio-pci
check "both on vfio-pci, with VFIO cdevs" \
	wait_for "ls $nic/vfio-dev/vfio* $ahci/vfio-dev/vfio* >/dev/null 2>&1" 30

run_l2_retry /tmp/devs.log 300 passthrough-devices --cpus 1 --memory 256M --stats \
	--device path="$nic" --device path="$ahci"
rc=$?
check "vmm exits 0" [ $rc -eq 0 ]
check "two passthrough devices in one guest" \
	sh -c "[ \$(grep -c 'vmm: vfio vfio[0-9]*: .* at 00:' /tmp/devs.log) = 2 ]"
check "both on one identity IOAS, guest RAM mapped once (--stats)" \
	grep -q 'vfio: identity IOAS (guest RAM at IOVA = GPA) built 1 time, 2 devices attached' /tmp/devs.log
check "NIC: L2's e1000e driver has it, link up" \
	sh -c "grep -q 'L2-NIC: e1000e' /tmp/devs.log && grep -q 'L2-NIC-CARRIER: 1' /tmp/devs.log"
check "NIC: a DHCP lease through it (DMA both ways, interrupts)" \
	grep -q "L2-DHCP: .*lease of [0-9.]* obtained" /tmp/devs.log
check "NIC: MSI-X interrupts, and they came" \
	sh -c "tr -d '\r' </tmp/devs.log | awk '/^L2-IRQ: .*PCI-MSIX.*eth0/ && \$3 > 0 { f = 1 } END { exit !f }'"
# The NIC's extended capabilities (QEMU's e1000e has AER and a Device
# Serial Number): L2 finds each one L1 finds, at the same offset, the
# serial number the same, but those the VMM hides.
want=$(pci_ecaps "$(pci_ecfg "$nic")" guest)
got=$(pci_ecaps "$(tr -d '\r' </tmp/devs.log | sed -n 's/^L2-NIC-ECFG: \([0-9a-f]*\).*/\1/p' | head -1)")
offered=$(tr -d '\r' </tmp/devs.log | sed -n "s/^vfio $(ls "$nic/vfio-dev"): extended capabilities offered: //p" | head -1)
echo "L1: NIC extended capabilities, L1's ($(pci_ecaps "$(pci_ecfg "$nic")")) as a guest should see them: $want; L2 sees: ${got:-none}; --stats: ${offered:-?} offered"
check "NIC: L2 sees its extended capabilities as L1 does, serial number included" \
	[ -n "$want" -a "$got" = "$want" ]
check "NIC: --stats counts them" [ "$offered" = "$(echo $got | wc -w)" ]
r=$(sed -n 's/.*L2-SATA-MD5: \([0-9a-f]*\).*/\1/p' /tmp/devs.log | head -1)
echo "L1 read $l1md5, L2 read ${r:-nothing}"
check "SATA: L2 reads the disk as L1 did" [ -n "$r" -a "$r" = "$l1md5" ]
check "SATA: the AHCI controller's MSI (it has no MSI-X), and interrupts came" \
	sh -c "tr -d '\r' </tmp/devs.log | awk '/^L2-IRQ: .*PCI-MSI-.*ahci/ && \$3 > 0 { f = 1 } END { exit !f }'"

# The same two behind the virtio-iommu, guest strict: every DMA buffer of
# both drivers mapped and unmapped through it (each device in its own
# guest domain, so its own IOAS), each MAP one IOAS_MAP.
L2_CMDLINE_EXTRA="iommu.strict=1"
run_l2_retry /tmp/devs-iommu.log 300 passthrough-devices --cpus 1 --memory 256M --stats --iommu \
	--device path="$nic",iommu=on --device path="$ahci",iommu=on
rc=$?
L2_CMDLINE_EXTRA=
check "behind the virtio-iommu: vmm exits 0" [ $rc -eq 0 ]
check "behind the virtio-iommu: a DHCP lease through the NIC" \
	grep -q "L2-DHCP: .*lease of [0-9.]* obtained" /tmp/devs-iommu.log
r=$(sed -n 's/.*L2-SATA-MD5: \([0-9a-f]*\).*/\1/p' /tmp/devs-iommu.log | head -1)
check "behind the virtio-iommu: L2 reads the disk as L1 did" [ -n "$r" -a "$r" = "$l1md5" ]
viommu_counts /tmp/devs-iommu.log
domains=$(sed -n 's/.*domain IOAS created \([0-9]*\) .*/\1/p' /tmp/devs-iommu.log | tail -1)
echo "L1: guest MAP $maps -> IOAS_MAP $ioas_map; domain IOASes $domains"
check "behind the virtio-iommu: guest MAPs == IOAS_MAP calls (> 0)" \
	[ "${ioas_map:-0}" -gt 0 -a "$maps" = "$ioas_map" ]
check "behind the virtio-iommu: a domain IOAS for each device" [ "${domains:-0}" -ge 2 ]

pci_rebind "$nic" e1000e
pci_rebind "$ahci" ahci
check "L1 takes both back" wait_for "[ -d $nic/net ] && [ -b /dev/sda ]" 30
finish
