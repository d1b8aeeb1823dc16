/* libFuzzer target: arbitrary bytes as a sequence of virtio-iommu requests
 * (split into device-readable and device-writable segments of exact-size
 * heap buffers, so ASan sees any access outside them), interleaved with
 * translations for emulated endpoints, config writes and resets. After each
 * step the device model's invariants are checked and every translation
 * result must lie inside guest RAM.
 *
 * Record format (all little endian, short input reads as zeroes):
 *   op:u8
 *   op%8 == 0,1: raw request: nseg_out:u8 out_len:u8 in_len:u16 bytes[out_len]
 *   op%8 == 2,3: structured request: type:u8 then fields, lengths adjusted
 *   op%8 == 4:   translate: ep:u8 iova:u64 len:u16 acc:u8
 *   op%8 == 5:   config write of the bypass byte / driver features
 *   op%8 == 6:   drain faults
 *   op%8 == 7:   device reset (rarely: system reset) */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "devices.h"
#include "viommu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM (256u << 10)

struct in_stream {
	const uint8_t *p;
	size_t n;
};

static uint64_t take(struct in_stream *s, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++) {
		uint8_t b = 0;
		if (s->n) {
			b = *s->p++;
			s->n--;
		}
		v |= (uint64_t)b << (8 * i);
	}
	return v;
}

static struct guest_mem mem;
static const uint32_t eps[] = { 0x08, 0x10, 0x18, 0x20 };

static void check_ptr(void *p, uint64_t run, uint64_t len)
{
	if (!p)
		return;
	if ((uint8_t *)p < mem.host || run == 0 || run > len ||
	    (uint8_t *)p + run > mem.host + mem.size)
		abort();
	/* Touch it: ASan would object to anything outside the RAM buffer. */
	((volatile uint8_t *)p)[0] ^= 0;
	((volatile uint8_t *)p)[run - 1] ^= 0;
}

/* Send out[0..out_len) split into nseg segments, in_len writable bytes in
 * two segments. */
static void send(struct viommu *v, const uint8_t *out_bytes, size_t out_len, unsigned nseg,
		 size_t in_len)
{
	uint8_t *ob = malloc(out_len ? out_len : 1);
	uint8_t *ib = malloc(in_len ? in_len : 1);
	struct iovec out[3], in[2];
	memcpy(ob, out_bytes, out_len);
	memset(ib, 0xEE, in_len);
	nseg = nseg % 3 + 1;
	size_t cut1 = out_len / 3, cut2 = 2 * out_len / 3;
	if (nseg == 1) {
		out[0] = (struct iovec){ ob, out_len };
	} else if (nseg == 2) {
		out[0] = (struct iovec){ ob, cut1 };
		out[1] = (struct iovec){ ob + cut1, out_len - cut1 };
	} else {
		out[0] = (struct iovec){ ob, cut1 };
		out[1] = (struct iovec){ ob + cut1, cut2 - cut1 };
		out[2] = (struct iovec){ ob + cut2, out_len - cut2 };
	}
	in[0] = (struct iovec){ ib, in_len / 2 };
	in[1] = (struct iovec){ ib + in_len / 2, in_len - in_len / 2 };
	uint32_t written = 0;
	int st = viommu_handle_request(v, out, nseg, in, 2, &written);
	if (st < 0 ? written != 0 : (written != in_len || ib[in_len - 4] != st))
		abort();
	if (st > VIRTIO_IOMMU_S_NOMEM)
		abort();
	free(ob);
	free(ib);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in_stream s = { data, size };
	if (!mem.host) {
		mem.host = malloc(RAM);
		mem.size = mem.low_size = RAM;
		mem.high_size = 0;
	}
	struct viommu_params p;
	viommu_params_default(&p);
	p.max_domains = 8;
	p.max_mappings = 64;
	p.fault_queue_len = 8;
	p.bypass = size & 1;
	if (size & 2)
		p.page_size_mask = 1;	/* byte granule: more MAPs get through */
	struct viommu *v = viommu_new(&p);
	struct dma_space ds[4];
	for (unsigned i = 0; i < 4; i++) {
		ds[i] = (struct dma_space){ .mem = &mem };
		if (i < 3)
			viommu_endpoint_dma_init(v, eps[i], &ds[i]);
		else
			viommu_add_endpoint(v, eps[i], NULL);
	}
	viommu_endpoint_add_resv(v, 0x18, 0x10000, 0x1ffff, VIRTIO_IOMMU_RESV_MEM_T_RESERVED);

	for (unsigned steps = 0; s.n && steps < 512; steps++) {
		uint8_t op = take(&s, 1);
		switch (op % 8) {
		case 0:
		case 1: {
			unsigned nseg = take(&s, 1);
			size_t out_len = take(&s, 1);
			size_t in_len = take(&s, 2) % 1200;
			uint8_t buf[256];
			memset(buf, 0, sizeof(buf));
			for (size_t i = 0; i < out_len; i++)
				buf[i] = take(&s, 1);
			send(v, buf, out_len, nseg, in_len);
			break;
		}
		case 2:
		case 3: {
			uint8_t buf[256];
			memset(buf, 0, sizeof(buf));
			uint8_t type = take(&s, 1) % 7;
			size_t len;
			buf[0] = type;
			switch (type) {
			case VIRTIO_IOMMU_T_ATTACH: {
				struct virtio_iommu_req_attach *r = (void *)buf;
				r->domain = take(&s, 1) % 12;
				r->endpoint = eps[take(&s, 1) % 4];
				r->flags = take(&s, 1) % 3 == 0 ? VIRTIO_IOMMU_ATTACH_F_BYPASS : 0;
				len = offsetof(struct virtio_iommu_req_attach, tail);
				break;
			}
			case VIRTIO_IOMMU_T_DETACH: {
				struct virtio_iommu_req_detach *r = (void *)buf;
				r->domain = take(&s, 1) % 12;
				r->endpoint = eps[take(&s, 1) % 4];
				len = offsetof(struct virtio_iommu_req_detach, tail);
				break;
			}
			case VIRTIO_IOMMU_T_MAP: {
				struct virtio_iommu_req_map *r = (void *)buf;
				r->domain = take(&s, 1) % 12;
				r->virt_start = take(&s, 3) << 12;
				r->virt_end = r->virt_start + ((take(&s, 1) + 1) << 12) - 1;
				r->phys_start = take(&s, 2) << 12;
				r->flags = take(&s, 1) % 5;
				len = offsetof(struct virtio_iommu_req_map, tail);
				break;
			}
			case VIRTIO_IOMMU_T_UNMAP: {
				struct virtio_iommu_req_unmap *r = (void *)buf;
				r->domain = take(&s, 1) % 12;
				r->virt_start = take(&s, 3) << 12;
				r->virt_end = take(&s, 1) == 0xff ? UINT64_MAX :
					      r->virt_start + ((take(&s, 2) + 1) << 12) - 1;
				len = offsetof(struct virtio_iommu_req_unmap, tail);
				break;
			}
			case VIRTIO_IOMMU_T_PROBE: {
				struct virtio_iommu_req_probe *r = (void *)buf;
				r->endpoint = eps[take(&s, 1) % 4];
				len = sizeof(*r);
				break;
			}
			default:
				len = 8;
			}
			int8_t d_out = take(&s, 1), d_in = take(&s, 1);
			if (d_out > 8 || d_out < -8)
				d_out = 0;
			if (d_in > 8 || d_in < -8)
				d_in = 0;
			ptrdiff_t in_len = 4 + (type == VIRTIO_IOMMU_T_PROBE ? (ptrdiff_t)p.probe_size : 0) + d_in;
			send(v, buf, (size_t)((ptrdiff_t)len + d_out), op >> 3,
			     in_len < 0 ? 0 : (size_t)in_len);
			break;
		}
		case 4: {
			struct dma_space *d = &ds[take(&s, 1) % 3];
			uint64_t iova = take(&s, 8);
			uint64_t len = take(&s, 2);
			enum dma_access acc = take(&s, 1) & 1 ? DMA_WRITE : DMA_READ;
			if (op & 8)
				iova &= 0xffffff;
			uint64_t run = 0;
			int fault = 0;
			void *h = d->translate(d, iova, len, acc, &run, &fault);
			if (!h && fault != -EFAULT && fault != -EPERM)
				abort();
			check_ptr(h, run, len);
			struct iovec iov[4];
			int n = len ? dma_translate(d, iova, len, acc, iov, 4) : 0;
			for (int i = 0; i < n; i++)
				check_ptr(iov[i].iov_base, iov[i].iov_len, len);
			break;
		}
		case 5: {
			uint8_t b = take(&s, 1);
			if (op & 8)
				viommu_set_driver_features(v, take(&s, 1));
			viommu_config_write(v, offsetof(struct virtio_iommu_config, bypass), &b, 1);
			break;
		}
		case 6:
			while (viommu_pop_fault(v, NULL))
				;
			break;
		default:
			if (op & 0x80)
				viommu_system_reset(v);
			else if (op & 0x40)
				viommu_reset(v);
			break;
		}
		if (viommu_selfcheck(v))
			abort();
	}
	viommu_free(v);
	return 0;
}
