# virtio-iommu with the VMM's own virtio-blk behind it (iommu=on): the
# guest's Linux driver binds, the disk gets an IOMMU group, and a pattern
# round-trips in strict mode, lazy mode and bypass (iommu.passthrough=1).
# The VMM's counters show the MAP/UNMAP requests it served. strict-pio:
# strict again with every virtio device's notify registers in an I/O BAR
# (--virtio-notify pio; the memory BAR's notify area then kicks nothing).
. /scenarios/lib.sh
for mode in strict lazy bypass strict-pio; do
	extra=
	case $mode in
	strict) L2_CMDLINE_EXTRA="iommu.strict=1"; want=DMA ;;
	lazy) L2_CMDLINE_EXTRA="iommu.strict=0"; want=DMA-FQ ;;
	bypass) L2_CMDLINE_EXTRA="iommu.passthrough=1"; want=identity ;;
	strict-pio) L2_CMDLINE_EXTRA="iommu.strict=1"; want=DMA; extra="--virtio-notify pio" ;;
	esac
	rm -f /tmp/vdisk.img
	truncate -s 16M /tmp/vdisk.img
	run_l2_retry /tmp/viommu-$mode.log 200 viommu --cpus 1 --memory 256M --iommu --stats \
		--disk path=/tmp/vdisk.img,direct=off,iommu=on $extra
	rc=$?
	log=/tmp/viommu-$mode.log
	w=$(sed -n 's/.*L2-WRITE-MD5: \([0-9a-f]*\).*/\1/p' $log | head -1)
	r=$(sed -n 's/.*L2-READ-MD5: \([0-9a-f]*\).*/\1/p' $log | head -1)
	h=$(dd if=/tmp/vdisk.img bs=1M count=4 2>/dev/null | md5sum | cut -d' ' -f1)
	maps=$(sed -n 's/.*virtio-iommu: requests:.* map \([0-9]*\).*/\1/p' $log | tail -1)
	unmaps=$(sed -n 's/.*virtio-iommu: requests:.* unmap \([0-9]*\).*/\1/p' $log | tail -1)
	attach=$(sed -n 's/.*virtio-iommu: requests: attach \([0-9]*\).*/\1/p' $log | tail -1)
	echo "$mode: write=$w read=$r host=$h attach=$attach map=$maps unmap=$unmaps"
	check "$mode: vmm exits 0" [ $rc -eq 0 ]
	check "$mode: virtio-iommu driver bound in L2" grep -q "L2-VIOMMU-DRIVER: bound" $log
	grp=$(tr -d '\r' <$log | sed -n 's/^L2-VDA-GROUP: [0-9]* \(.*\)$/\1/p')
	check "$mode: disk in an IOMMU group of type $want ($grp)" [ "$grp" = "$want" ]
	check "$mode: pattern read back matches" [ -n "$w" ] && [ "$w" = "$r" ]
	check "$mode: host file holds the pattern" [ "$w" = "$h" ]
	check "$mode: endpoint attached" [ "${attach:-0}" -ge 1 ]
	# The default poll=auto in this one-CPU L1: no poller, and not a word
	# about it (nothing was asked for); every request kicks.
	check "$mode: default polling off on one CPU, silently" sh -c \
		"tr -d '\r' <$log | grep -q 'poll off (one CPU online)' && ! grep -q 'virtio-iommu: poll=' $log"
	if [ $mode = strict-pio ]; then
		# Both devices' notify capabilities name BAR2, an I/O BAR.
		check "$mode: notify registers in I/O BARs" [ "$(grep -c "L2-NOTIFY-BAR: 2 io" $log)" -eq 2 ]
	else
		check "$mode: no I/O BAR without --virtio-notify pio" sh -c "! grep -q L2-NOTIFY-BAR $log"
	fi
	if [ $mode = bypass ]; then
		check "$mode: no MAP requests needed" [ "${maps:-1}" -eq 0 ]
	else
		check "$mode: MAP requests served" [ "${maps:-0}" -gt 0 ]
		check "$mode: UNMAP requests served" [ "${unmaps:-0}" -gt 0 ]
	fi
done
finish
