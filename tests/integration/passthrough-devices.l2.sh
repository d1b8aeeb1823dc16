# Two passthrough devices in L2 (passthrough-devices.l1.sh): the NIC
# (e1000e, L1's user-mode network behind it) brings its link up and gets a
# DHCP lease from QEMU's slirp in L0 (DMA both ways, interrupts); the SATA
# disk behind the AHCI controller is read whole. Each says which interrupt
# kind its driver got (PCI-MSIX, PCI-MSI or IO-APIC).
i=0
while ! ip link show eth0 >/dev/null 2>&1 && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
ip link show eth0 >/dev/null 2>&1 || { echo "L2-NIC: no eth0"; ls /sys/bus/pci/devices; }
echo "L2-NIC: $(basename "$(readlink /sys/class/net/eth0/device/driver)")"
# Its extended capabilities as L2 sees them (L1 walks the list).
echo "L2-NIC-ECFG: $(od -An -tx1 -v -j256 -N512 /sys/class/net/eth0/device/config | tr -d ' \n')"
ip link set eth0 up
i=0
while [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" != 1 ] && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
echo "L2-NIC-CARRIER: $(cat /sys/class/net/eth0/carrier 2>/dev/null)"
udhcpc -i eth0 -n -q -t 5 -T 2 -s /bin/true 2>&1 | sed 's/^/L2-DHCP: /'
echo "L2-NIC-PACKETS: rx $(cat /sys/class/net/eth0/statistics/rx_packets) tx $(cat /sys/class/net/eth0/statistics/tx_packets)"
grep eth0 /proc/interrupts | tr -s ' ' | sed 's/^/L2-IRQ: /'	# (freed at link down)
ip link set eth0 down
i=0
while [ ! -b /dev/sda ] && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
echo "L2-SATA: $(basename "$(readlink -f /sys/block/sda/device/../../../..)" 2>/dev/null) $(cat /sys/block/sda/size 2>/dev/null) sectors"
echo "L2-SATA-MD5: $(dd if=/dev/sda bs=64k iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
grep ahci /proc/interrupts | tr -s ' ' | sed 's/^/L2-IRQ: /'
