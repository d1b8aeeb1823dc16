/* The virtio-iommu device model (virtio spec, "IOMMU device"): domains,
 * endpoints, the request handler, translation for emulated devices, fault
 * events. Knows nothing of virtqueues or PCI: virtio-iommu-dev.c glues it to
 * the transport, and a backend (backend.h) mirrors it onto the host.
 *
 * Threads: requests are handled by one thread at a time (the caller
 * serialises them; the glue holds the virtio device lock). Translation
 * (viommu_endpoint_dma_init's hook) may run concurrently on any thread:
 * a rwlock per viommu protects the domains, and a small per-thread cache of
 * recent mappings, validated by the endpoint's generation counter, keeps the
 * common case lock-free. */
#ifndef VIOMMU_VIOMMU_H
#define VIOMMU_VIOMMU_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>
#include <linux/virtio_iommu.h>
#include "backend.h"
#include "dma.h"

/* x86 MSI doorbell window, reported by PROBE for every endpoint. */
#define VIOMMU_MSI_START 0xfee00000ULL
#define VIOMMU_MSI_END 0xfeefffffULL

#define VIOMMU_MAX_RESV 16		/* extra reserved regions per endpoint */
#define VIOMMU_MAX_WRITABLE (1u << 20)	/* larger writable parts are refused */

struct viommu_params {
	uint64_t features;		/* offered VIRTIO_IOMMU_F_* bits */
	uint64_t page_size_mask;
	uint64_t input_start, input_end;
	uint32_t domain_start, domain_end;
	uint32_t probe_size;
	uint8_t bypass;			/* initial (and system reset) value, 0 or 1 */
	uint32_t max_domains;		/* NOMEM beyond */
	uint64_t max_mappings;		/* NOMEM beyond (all domains together) */
	unsigned fault_queue_len;	/* pending fault events kept */
};

/* Offered by default: INPUT_RANGE, DOMAIN_RANGE, MAP_UNMAP, PROBE,
 * BYPASS_CONFIG (not MMIO, not the legacy BYPASS). */
#define VIOMMU_DEFAULT_FEATURES ((1ULL << VIRTIO_IOMMU_F_INPUT_RANGE) | \
				 (1ULL << VIRTIO_IOMMU_F_DOMAIN_RANGE) | \
				 (1ULL << VIRTIO_IOMMU_F_MAP_UNMAP) | \
				 (1ULL << VIRTIO_IOMMU_F_PROBE) | \
				 (1ULL << VIRTIO_IOMMU_F_BYPASS_CONFIG))

/* Defaults: the features above, 4 KiB granule (every larger power of two
 * as a hint), input range the whole 64-bit space, domains 0..65535,
 * probe_size for 1 + VIOMMU_MAX_RESV RESV_MEM properties, bypass 0, 65536
 * domains, 4M mappings, 64 pending faults. */
void viommu_params_default(struct viommu_params *p);

struct viommu;

/* NULL p: defaults. */
struct viommu *viommu_new(const struct viommu_params *p);
void viommu_free(struct viommu *v);

/* Register an endpoint (its ID is the PCI BDF the VIOT names). be_ep: the
 * backend's handle for a passthrough endpoint, NULL for an emulated one.
 * -EEXIST if the ID is taken, -ENOMEM. */
int viommu_add_endpoint(struct viommu *v, uint32_t endpoint_id, void *be_ep);
/* Renumber an endpoint (its BDF became known after its dma_space was set
 * up). -ENOENT, -EEXIST. */
int viommu_set_endpoint_id(struct viommu *v, uint32_t old_id, uint32_t new_id);
/* The registered endpoint IDs (for the VIOT); returns the count, fills at
 * most max. */
unsigned viommu_endpoint_ids(struct viommu *v, uint32_t *ids, unsigned max);

/* Features: offered by the device / accepted by the driver. Until the
 * driver's are set, the offered ones are assumed. */
uint64_t viommu_device_features(const struct viommu *v);
void viommu_set_driver_features(struct viommu *v, uint64_t features);

/* struct virtio_iommu_config. Writes only reach `bypass`, and only when
 * VIRTIO_IOMMU_F_BYPASS_CONFIG was accepted (bit 0 is kept). A write that
 * clears `bypass` returns -EIO when the backend could not block an
 * unattached endpoint (it may still reach guest RAM): the device then
 * needs a reset. */
void viommu_config_read(struct viommu *v, uint32_t off, void *data, unsigned len);
int viommu_config_write(struct viommu *v, uint32_t off, const void *data, unsigned len);
/* Whether an unattached endpoint is still left unblocked by such a write
 * (a reset and every later bypass write try it again). */
bool viommu_unblocked_endpoints(struct viommu *v);
/* Device reset: every endpoint detached, every domain gone, pending faults
 * dropped; `bypass` kept. System reset also restores `bypass`. */
void viommu_reset(struct viommu *v);
void viommu_system_reset(struct viommu *v);

/* Serve one request. out: the device-readable part (head + request
 * fields), in: the device-writable part (PROBE properties, then the tail,
 * which is always its last 4 bytes). *written: bytes written into `in` (the
 * used length).
 *
 * Returns the status written (VIRTIO_IOMMU_S_*), or -1 when nothing was
 * written (*written = 0): the writable part cannot hold a tail or is larger
 * than VIOMMU_MAX_WRITABLE, the type is unknown, or PROBE is not offered
 * (the spec's "SHOULD NOT write the buffer and SHOULD set the used length
 * to zero"). A readable part too short for its head or request is IOERR;
 * a longer one is accepted (the extra bytes are ignored). Bytes of the
 * writable part before the tail that carry no property are zeroed. */
int viommu_handle_request(struct viommu *v, const struct iovec *out, unsigned n_out,
			  const struct iovec *in, unsigned n_in, uint32_t *written);

/* Fault events waiting for the eventq (single consumer). peek copies the
 * oldest without removing it; pop removes it. Both return false when none. */
bool viommu_peek_fault(struct viommu *v, struct virtio_iommu_fault *f);
bool viommu_pop_fault(struct viommu *v, struct virtio_iommu_fault *f);
/* Called (without viommu locks held) after a fault was queued. */
void viommu_set_fault_notify(struct viommu *v, void (*fn)(void *opaque), void *opaque);

struct viommu_stats {
	uint64_t req[VIRTIO_IOMMU_T_PROBE + 1];	/* [0]: unknown type */
	uint64_t status[VIRTIO_IOMMU_S_NOMEM + 1];	/* by status written */
	uint64_t unwritten;		/* returned without a status */
	uint64_t faults;		/* fault events queued */
	uint64_t faults_dropped;	/* queue full */
	uint64_t faults_delivered;	/* written to the eventq (glue) */
	uint64_t translate_miss;	/* translations that took the lock */
	uint64_t domains, mappings;	/* live now */
};
void viommu_get_stats(struct viommu *v, struct viommu_stats *st);
void viommu_dump_stats(struct viommu *v, FILE *f);
void viommu_count_delivered(struct viommu *v);

/* The PCI function of the virtio-iommu itself (set by the glue once
 * registered); viommu_bdf() and viommu_pci_ranges() (vmm/devices.h) give it
 * and the endpoint ranges to the VIOT builder. */
void viommu_set_bdf(struct viommu *v, uint16_t bdf);

/* Check internal consistency (tests, fuzzing): every domain's map is a
 * valid tree, counts add up, every domain has an endpoint, endpoints and
 * domains point at each other. 0 or a negative code. */
int viommu_selfcheck(struct viommu *v);

/* Configuration as currently presented (tests, the VIOT builder). */
void viommu_get_config(struct viommu *v, struct virtio_iommu_config *c);

#endif
