# devices/virtio-iommu/vdevice.c (vIOMMU, vDEVICEs, vEVENTQ -> virtio-iommu
# faults) against the real kernel iommufd in L1, with the selftest mock
# devices. Exit status: vdevice_test's.
echo "L1: kernel $(uname -r), /dev/iommu: $(ls -l /dev/iommu 2>&1)"
timeout 240 vdevice_test
rc=$?
echo "vdevice_test exit status $rc"
exit $rc
