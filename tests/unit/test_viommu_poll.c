/* test_viommu_dev.c again with the request queue polled (--iommu poll=50000):
 * every request of those tests may now be answered by the poller thread, and
 * test_polling checks that requests posted without a kick are served and
 * that kicks are asked for again once the queue is idle; test_poll_priority
 * that the poller runs at idle priority, and goes back to normal priority
 * when held off its CPU. */
#define VIOMMU_TEST_POLL_US 50000
#include "test_viommu_dev.c"
