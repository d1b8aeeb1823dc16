/* test_viommu_dev.c again with the request queue polled adaptively
 * (--iommu poll=auto, here with a 50 ms ceiling): test_poll_auto checks that
 * the window opens and grows while requests come close together, so the
 * poller answers them without kicks, and halves after a long pause. */
#define VIOMMU_TEST_POLL_US 50000
#define VIOMMU_TEST_POLL_AUTO
#include "test_viommu_dev.c"
