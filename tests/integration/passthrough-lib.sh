# Helpers of the passthrough scenarios (sourced in L1).

# pci_find CLASS: print the sysfs directory of the first PCI function of
# that class (0x010802 NVMe, 0x020000 Ethernet, 0x010601 AHCI).
pci_find() {
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/class")" = "$1" ] && { echo "$d"; return 0; }
	done
	return 1
}

# pci_rebind DIR DRIVER: move the function whose sysfs directory is DIR to
# DRIVER (vfio-pci through driver_override, or its own driver).
pci_rebind() {
	pr_bdf=$(basename "$1")
	[ -e "$1/driver" ] && echo "$pr_bdf" >"$1/driver/unbind"
	if [ "$2" = vfio-pci ]; then
		echo vfio-pci >"$1/driver_override"
	else
		echo >"$1/driver_override"
	fi
	echo "$pr_bdf" >/sys/bus/pci/drivers_probe
	echo "L1: $pr_bdf -> $(basename "$(readlink "$1/driver")")"
}

# nvme_find: set NVME_BDF to the first NVMe controller.
nvme_find() {
	d=$(pci_find 0x010802) || return 1
	NVME_BDF=$(basename "$d")
}

# nvme_rebind DRIVER: move the NVMe to DRIVER (nvme or vfio-pci).
nvme_rebind() {
	pci_rebind "/sys/bus/pci/devices/$NVME_BDF" "$1"
}

# viommu_counts LOG: from a VMM's --stats in LOG, set maps and unmaps (the
# guest's MAP and UNMAP requests) and ioas_map and ioas_unmap (the
# IOMMU_IOAS_MAP / IOMMU_IOAS_UNMAP calls they became).
viommu_counts() {
	maps=$(tr -d '\r' <"$1" | sed -n 's/^virtio-iommu: requests:.* map \([0-9]*\) .*/\1/p' | tail -1)
	unmaps=$(tr -d '\r' <"$1" | sed -n 's/^virtio-iommu: requests:.* unmap \([0-9]*\) .*/\1/p' | tail -1)
	ioas_map=$(tr -d '\r' <"$1" | sed -n 's/.*-> IOAS_MAP \([0-9]*\) .*/\1/p' | tail -1)
	ioas_unmap=$(tr -d '\r' <"$1" | sed -n 's/.*-> IOAS_UNMAP \([0-9]*\) .*/\1/p' | tail -1)
}

# pci_ecfg DIR: config space of the function from 0x100, 512 bytes as hex
# (two digits a byte), as pci_ecaps reads it.
pci_ecfg() {
	od -An -tx1 -v -j256 -N512 "$1/config" | tr -d ' \n'
}

# pci_ecaps HEX [guest]: the extended capabilities in HEX (pci_ecfg's
# form), "ID@OFFSET" each in chain order, the Device Serial Number's with
# "=SERIAL"; empty headers (ID 0) skipped. With "guest", those our VMM
# hides (SR-IOV, ARI, Resizable BAR, ATS, PRI, PASID) are left out too:
# what a guest should see of a function whose list this is.
pci_ecaps() {
	echo "$1" | awk -v guest="$2" '
	function hx(s,  i, v) {
		v = 0
		for (i = 1; i <= length(s); i++)
			v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
		return v
	}
	function byte(o) { return substr($0, (o - 256) * 2 + 1, 2) }
	function le(o, n,  s, i) { s = ""; for (i = n - 1; i >= 0; i--) s = s byte(o + i); return s }
	{
		split("0e 0f 10 13 15 1b 24", hid, " ")
		for (i in hid) hidden[hx(hid[i])] = 1
		off = 256
		while (off >= 256 && (off - 256) * 2 + 8 <= length($0) && n++ < 64) {
			h = hx(le(off, 4))
			if (h == 0)
				break
			id = h % 65536
			if (id && !(guest && hidden[id])) {
				s = sprintf("%04x@%03x", id, off)
				if (id == 3)
					s = s "=" le(off + 4, 8)
				out = out " " s
			}
			off = int(h / 1048576)
			off -= off % 4
		}
		print substr(out, 2)
	}'
}
