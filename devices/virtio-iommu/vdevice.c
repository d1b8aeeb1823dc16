/* Host vIOMMU, vDEVICEs and vEVENTQ for the virtio-iommu's passthrough
 * endpoints (see vdevice.h). */
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/virtio_iommu.h>

#include "iommufd.h"
#include "viommu.h"
#include "vdevice.h"

struct hw_ep {
	uint32_t endpoint_id;	/* = the vDEVICE's virt_id */
	uint32_t dev_id;
	uint32_t vdevice_id;
};

struct viommu_hw {
	pthread_mutex_t lock;
	struct iommufd_ctx *ictx;
	struct viommu *v;
	uint32_t hwpt_id, viommu_id, veventq_id;
	uint32_t viommu_type, veventq_type;
	int event_fd;
	struct hw_ep eps[VIOMMU_HW_MAX_ENDPOINTS];
	unsigned n_eps;
	bool have_seq;
	uint32_t last_seq;
	struct viommu_hw_stats st;
	int destroy_rc;
};

/* Upstream's SMMUv3 vEVENTQ record data: the hardware event, with the
 * StreamID field (bits 63:32 of the first word) holding the vSID. */
#define HW_VIOMMU_ARM_SMMUV3 1u
#define HW_VEVENTQ_ARM_SMMUV3 1u
#define HW_SMMUV3_EVT_LEN 32u
#define HW_SELFTEST_EVT_LEN 4u

/* The vEVENTQ type that goes with a vIOMMU type; 0 if it has none we can
 * parse (the kernel would refuse type 0 anyway). */
static uint32_t veventq_type_for(uint32_t viommu_type)
{
	switch (viommu_type) {
	case VIOMMU_HW_TYPE_SELFTEST:
		return VIOMMU_HW_VEVENTQ_SELFTEST;
	case HW_VIOMMU_ARM_SMMUV3:
		return HW_VEVENTQ_ARM_SMMUV3;
	default:
		return 0;
	}
}

static uint32_t event_data_len(uint32_t veventq_type)
{
	switch (veventq_type) {
	case VIOMMU_HW_VEVENTQ_SELFTEST:
		return HW_SELFTEST_EVT_LEN;
	case HW_VEVENTQ_ARM_SMMUV3:
		return HW_SMMUV3_EVT_LEN;
	default:
		return 0;
	}
}

static atomic_bool reported_absent;

int viommu_hw_create(struct viommu_hw **out, struct iommufd_ctx *ictx, struct viommu *v,
		     uint32_t first_dev_id, uint32_t ioas_id, uint32_t viommu_type)
{
	struct iommufd_features f;
	struct viommu_hw *h;
	int rc;

	if (!out || !ictx || !v)
		return -EINVAL;
	rc = iommufd_probe_features(ictx, &f);
	if (rc)
		return rc;
	if (!f.viommu || !f.vdevice) {
		if (!atomic_exchange(&reported_absent, true))
			fprintf(stderr, "vmm: virtio-iommu: kernel has no iommufd vIOMMU/vDEVICE; "
				"using the IOAS path\n");
		return -EOPNOTSUPP;
	}

	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	pthread_mutex_init(&h->lock, NULL);
	h->ictx = ictx;
	h->v = v;
	h->viommu_type = viommu_type;
	h->event_fd = -1;

	rc = iommufd_hwpt_alloc(ictx, first_dev_id, ioas_id, IOMMU_HWPT_ALLOC_NEST_PARENT,
				&h->hwpt_id);
	if (rc)
		goto fail;
	rc = iommufd_viommu_alloc(ictx, first_dev_id, h->hwpt_id, viommu_type, NULL, 0,
				  &h->viommu_id);
	if (rc)
		goto fail;

	if (f.veventq) {
		uint32_t qtype = veventq_type_for(viommu_type);
		int fd = -1;

		/* Type 0 is refused by the kernel with EOPNOTSUPP: no events. */
		rc = iommufd_veventq_alloc(ictx, h->viommu_id, qtype, VIOMMU_HW_VEVENTQ_DEPTH,
					   &h->veventq_id, &fd);
		if (rc == 0) {
			h->event_fd = fd;
			h->veventq_type = qtype;
		} else if (rc != -ENOTTY && rc != -EOPNOTSUPP) {
			goto fail;
		}
		rc = 0;
	}
	*out = h;
	return 0;

fail:
	/* Keep the failing call's errno; undo quietly. */
	if (h->viommu_id)
		iommufd_destroy(ictx, h->viommu_id);
	if (h->hwpt_id)
		iommufd_destroy(ictx, h->hwpt_id);
	pthread_mutex_destroy(&h->lock);
	free(h);
	return rc;
}

static struct hw_ep *find_ep(struct viommu_hw *h, uint32_t endpoint_id)
{
	for (unsigned i = 0; i < h->n_eps; i++)
		if (h->eps[i].endpoint_id == endpoint_id)
			return &h->eps[i];
	return NULL;
}

int viommu_hw_add_endpoint(struct viommu_hw *h, uint32_t dev_id, uint32_t endpoint_id)
{
	uint32_t vdev_id;
	int rc;

	if (!h)
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	if (h->n_eps == VIOMMU_HW_MAX_ENDPOINTS) {
		rc = -ENOSPC;
		goto out;
	}
	/* The kernel checks both too; asking it keeps its errno (EEXIST) and
	 * its last-error text, so duplicates are left to it. */
	rc = iommufd_vdevice_alloc(h->ictx, h->viommu_id, dev_id, endpoint_id, &vdev_id);
	if (rc)
		goto out;
	h->eps[h->n_eps++] = (struct hw_ep){
		.endpoint_id = endpoint_id, .dev_id = dev_id, .vdevice_id = vdev_id,
	};
out:
	pthread_mutex_unlock(&h->lock);
	return rc;
}

int viommu_hw_del_endpoint(struct viommu_hw *h, uint32_t endpoint_id)
{
	struct hw_ep *ep;
	int rc;

	if (!h)
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	ep = find_ep(h, endpoint_id);
	if (!ep) {
		rc = -ENOENT;
		goto out;
	}
	rc = iommufd_destroy(h->ictx, ep->vdevice_id);
	/* Forget it unless the kernel still holds it (EBUSY: in use). */
	if (rc != -EBUSY)
		*ep = h->eps[--h->n_eps];
out:
	pthread_mutex_unlock(&h->lock);
	return rc;
}

int viommu_hw_event_fd(struct viommu_hw *h)
{
	return h ? h->event_fd : -1;
}

/* Sequence numbers count 0..INT_MAX and wrap to 0. */
static uint32_t seq_gap(uint32_t prev, uint32_t next)
{
	if (next > prev)
		return next - prev - 1;
	return (uint32_t)INT_MAX - prev + next;
}

/* One event's data: the endpoint it names (its virt_id). */
static bool event_virt_id(uint32_t qtype, const uint8_t *data, uint64_t *virt_id)
{
	if (qtype == VIOMMU_HW_VEVENTQ_SELFTEST) {
		uint32_t id;

		memcpy(&id, data, sizeof(id));
		*virt_id = id;
		return true;
	}
	if (qtype == HW_VEVENTQ_ARM_SMMUV3) {
		uint64_t w0;

		memcpy(&w0, data, sizeof(w0));
		*virt_id = le64toh(w0) >> 32;
		return true;
	}
	return false;
}

int viommu_hw_process_events(struct viommu_hw *h)
{
	uint8_t buf[4096];
	int raised = 0;

	if (!h)
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	if (h->event_fd < 0) {
		pthread_mutex_unlock(&h->lock);
		return 0;
	}
	uint32_t dlen = event_data_len(h->veventq_type);

	for (;;) {
		ssize_t n = read(h->event_fd, buf, sizeof(buf));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			int err = -errno;

			pthread_mutex_unlock(&h->lock);
			return err;
		}
		if (n == 0)
			break;

		size_t off = 0;

		while (off + sizeof(struct iommufd_vevent_header) <= (size_t)n) {
			struct iommufd_vevent_header hdr;

			memcpy(&hdr, buf + off, sizeof(hdr));
			off += sizeof(hdr);
			if (hdr.flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS) {
				h->st.lost_records++;
				fprintf(stderr, "vmm: virtio-iommu: host vEVENTQ %u full, events lost "
					"(%llu times so far)\n", h->veventq_id,
					(unsigned long long)h->st.lost_records);
				continue;
			}
			if (off + dlen > (size_t)n || !dlen) {
				/* The kernel returns whole records: cannot happen
				 * with a type we know. */
				h->st.malformed++;
				off = (size_t)n;
				break;
			}
			if (h->have_seq)
				h->st.lost_events += seq_gap(h->last_seq, hdr.sequence);
			h->have_seq = true;
			h->last_seq = hdr.sequence;
			h->st.events++;

			uint64_t virt_id;
			struct hw_ep *ep = NULL;

			if (event_virt_id(h->veventq_type, buf + off, &virt_id) &&
			    virt_id <= UINT32_MAX)
				ep = find_ep(h, (uint32_t)virt_id);
			off += dlen;
			if (!ep) {
				h->st.unknown++;
				continue;
			}
			/* Neither the mock nor the generic record says what
			 * kind of fault or where: an R_UNKNOWN fault naming the
			 * endpoint is what the guest can be told. */
			viommu_report_fault(h->v, VIRTIO_IOMMU_FAULT_R_UNKNOWN, 0, ep->endpoint_id, 0);
			h->st.faults++;
			raised++;
		}
		if (off < (size_t)n)
			h->st.malformed++;
	}
	pthread_mutex_unlock(&h->lock);
	return raised;
}

void viommu_hw_get_stats(struct viommu_hw *h, struct viommu_hw_stats *st)
{
	pthread_mutex_lock(&h->lock);
	*st = h->st;
	pthread_mutex_unlock(&h->lock);
}

uint32_t viommu_hw_viommu_id(struct viommu_hw *h)
{
	return h ? h->viommu_id : 0;
}

uint32_t viommu_hw_hwpt_id(struct viommu_hw *h)
{
	return h ? h->hwpt_id : 0;
}

uint32_t viommu_hw_veventq_id(struct viommu_hw *h)
{
	return h ? h->veventq_id : 0;
}

uint32_t viommu_hw_vdevice_id(struct viommu_hw *h, uint32_t endpoint_id)
{
	uint32_t id = 0;

	if (!h)
		return 0;
	pthread_mutex_lock(&h->lock);
	struct hw_ep *ep = find_ep(h, endpoint_id);
	if (ep)
		id = ep->vdevice_id;
	pthread_mutex_unlock(&h->lock);
	return id;
}

static void destroy_one(struct viommu_hw *h, uint32_t id, int *first)
{
	int rc;

	if (!id)
		return;
	rc = iommufd_destroy(h->ictx, id);
	if (rc && !*first)
		*first = rc;
}

int viommu_hw_destroy_rc(struct viommu_hw *h)
{
	int first = 0;

	if (!h)
		return 0;
	pthread_mutex_lock(&h->lock);
	for (unsigned i = h->n_eps; i-- > 0;)
		destroy_one(h, h->eps[i].vdevice_id, &first);
	h->n_eps = 0;
	/* The vEVENTQ's file holds the object: close it, then destroy. */
	if (h->event_fd >= 0)
		close(h->event_fd);
	h->event_fd = -1;
	destroy_one(h, h->veventq_id, &first);
	destroy_one(h, h->viommu_id, &first);
	destroy_one(h, h->hwpt_id, &first);
	h->veventq_id = h->viommu_id = h->hwpt_id = 0;
	pthread_mutex_unlock(&h->lock);
	pthread_mutex_destroy(&h->lock);
	free(h);
	return first;
}

void viommu_hw_destroy(struct viommu_hw *h)
{
	(void)viommu_hw_destroy_rc(h);
}
