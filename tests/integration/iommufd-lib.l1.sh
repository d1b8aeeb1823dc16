# The iommufd library against the real kernel iommufd in L1: the selftest
# mock (CONFIG_IOMMUFD_TEST) and, when present, the NVMe that init bound to
# vfio-pci (/dev/vfio/devices/vfio0). Exit status: iommufd_test's.
# IOMMUFD_EXPECT_VIOMMU=1 in the environment if the kernel carries vIOMMU.
echo "L1: kernel $(uname -r), /dev/iommu: $(ls -l /dev/iommu 2>&1)"
ls /dev/vfio/devices 2>/dev/null | sed 's/^/L1: vfio cdev: /'
# The runner's kernel carries kernel-patches/ (vIOMMU, vDEVICE, vEVENTQ):
# the feature probe must find them.
export IOMMUFD_EXPECT_VIOMMU=1
timeout 240 iommufd_test
rc=$?
echo "iommufd_test exit status $rc"
exit $rc
