# Helpers of the passthrough scenarios (sourced in L1).

# nvme_find: set NVME_BDF to the first NVMe controller.
nvme_find() {
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/class")" = 0x010802 ] || continue
		NVME_BDF=$(basename "$d")
		return 0
	done
	return 1
}

# nvme_rebind DRIVER: move the NVMe to DRIVER (nvme or vfio-pci).
nvme_rebind() {
	d=/sys/bus/pci/devices/$NVME_BDF
	[ -e "$d/driver" ] && echo "$NVME_BDF" >"$d/driver/unbind"
	if [ "$1" = vfio-pci ]; then
		echo vfio-pci >"$d/driver_override"
	else
		echo >"$d/driver_override"
	fi
	echo "$NVME_BDF" >/sys/bus/pci/drivers_probe
	echo "L1: $NVME_BDF -> $(basename "$(readlink "$d/driver")")"
}
