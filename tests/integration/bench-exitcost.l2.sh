# Time one exit of each kind against the first modern virtio-pci function:
# its common configuration's device_feature_select register, queue 0's
# notify register in the memory BAR (offset 0x3000 in both VMMs' layouts),
# and, when the function has an I/O BAR (our --virtio-notify pio), queue
# 0's notify port there instead.
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/vendor")" = 0x1af4 ] || continue
	case $(cat "$d/device") in 0x104?) ;; *) continue ;; esac
	# BAR2's line of the resource file: start end flags (0x100: I/O).
	set -- $(sed -n 3p "$d/resource")
	if [ $(($3 & 0x100)) -ne 0 ]; then
		exitcost -n 300 -p $(($1)) "$d/resource0" 0
	elif [ -e "$d/resource4" ]; then
		# QEMU: the modern structures in BAR4, common config at 0.
		exitcost -n 300 "$d/resource4" 0 0x3000
	else
		exitcost -n 300 "$d/resource0" 0 0x3000
	fi
	break
done
echo "L2-EXITCOST-DONE"
