/* Translation of emulated devices' DMA through the virtio-iommu
 * (viommu_endpoint_dma_init): bypass rules and permissions from the spec
 * ("Device operations", "MAP request"), fault events ("Fault reporting"),
 * cache invalidation by UNMAP/DETACH (the dma_space generation), and that no
 * host address outside guest RAM is ever returned. Guest RAM is a malloc'd
 * guest_mem: 1 MiB low, 64 KiB high at 4 GiB. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "devices.h"
#include "dma.h"
#include "viommu.h"

#define LOW (1ULL << 20)
#define HIGH (64ULL << 10)
#define EP 0x08
#define RW (VIRTIO_IOMMU_MAP_F_READ | VIRTIO_IOMMU_MAP_F_WRITE)
#define R VIRTIO_IOMMU_MAP_F_READ
#define W VIRTIO_IOMMU_MAP_F_WRITE

struct fx {
	struct guest_mem mem;
	struct viommu *v;
	struct dma_space s;
	int notified;
};

static void on_fault(void *opaque)
{
	struct fx *f = opaque;
	__atomic_add_fetch(&f->notified, 1, __ATOMIC_RELAXED);
}

static struct fx *fx_new(const struct viommu_params *p)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->mem.host = malloc(LOW + HIGH);
	f->mem.size = LOW + HIGH;
	f->mem.low_size = LOW;
	f->mem.high_size = HIGH;
	f->v = viommu_new(p);
	assert_non_null(f->v);
	f->s.mem = &f->mem;
	assert_int_equal(viommu_endpoint_dma_init(f->v, EP, &f->s), 0);
	assert_non_null(f->s.translate);
	assert_non_null(f->s.gen);
	viommu_set_fault_notify(f->v, on_fault, f);
	return f;
}

static void fx_free(struct fx *f)
{
	viommu_free(f->v);
	free(f->mem.host);
	free(f);
}

/* Send a request built from a raw struct (tail excluded) through the
 * handler; returns the status. */
static int req(struct viommu *v, const void *r, size_t len)
{
	uint8_t tail[4];
	struct iovec out = { (void *)r, len }, in = { tail, 4 };
	uint32_t w;
	return viommu_handle_request(v, &out, 1, &in, 1, &w);
}

static int attach(struct viommu *v, uint32_t dom, uint32_t ep, uint32_t flags)
{
	struct virtio_iommu_req_attach r = { .head.type = VIRTIO_IOMMU_T_ATTACH, .domain = dom,
					     .endpoint = ep, .flags = flags };
	return req(v, &r, offsetof(typeof(r), tail));
}

static int detach(struct viommu *v, uint32_t dom, uint32_t ep)
{
	struct virtio_iommu_req_detach r = { .head.type = VIRTIO_IOMMU_T_DETACH, .domain = dom,
					     .endpoint = ep };
	return req(v, &r, offsetof(typeof(r), tail));
}

static int map(struct viommu *v, uint32_t dom, uint64_t vs, uint64_t ve, uint64_t ps, uint32_t fl)
{
	struct virtio_iommu_req_map r = { .head.type = VIRTIO_IOMMU_T_MAP, .domain = dom,
					  .virt_start = vs, .virt_end = ve, .phys_start = ps,
					  .flags = fl };
	return req(v, &r, offsetof(typeof(r), tail));
}

static int unmap(struct viommu *v, uint32_t dom, uint64_t vs, uint64_t ve)
{
	struct virtio_iommu_req_unmap r = { .head.type = VIRTIO_IOMMU_T_UNMAP, .domain = dom,
					    .virt_start = vs, .virt_end = ve };
	return req(v, &r, offsetof(typeof(r), tail));
}

static void *tr(struct fx *f, uint64_t iova, uint64_t len, enum dma_access acc, uint64_t *run,
		int *fault)
{
	*run = 0;
	*fault = 0;
	void *p = f->s.translate(&f->s, iova, len, acc, run, fault);
	if (p) {
		/* Whatever comes back lies inside guest RAM. */
		assert_true((uint8_t *)p >= f->mem.host);
		assert_true(*run > 0 && *run <= len);
		assert_true((uint8_t *)p + *run <= f->mem.host + f->mem.size);
	} else {
		assert_true(*fault == -EFAULT || *fault == -EPERM);
	}
	return p;
}

static void expect_fault(struct fx *f, uint8_t reason, uint32_t flags, uint64_t addr)
{
	struct virtio_iommu_fault e;
	assert_true(viommu_pop_fault(f->v, &e));
	assert_int_equal(e.reason, reason);
	assert_int_equal(e.flags, flags);
	assert_int_equal(e.endpoint, EP);
	assert_int_equal(e.address, addr);
	/* "Fault reporting (device)": reserved and reserved1 zero */
	assert_int_equal(e.reserved[0] | e.reserved[1] | e.reserved[2], 0);
	assert_int_equal(e.reserved2[0] | e.reserved2[1] | e.reserved2[2] | e.reserved2[3], 0);
}

static void expect_no_fault(struct fx *f)
{
	struct virtio_iommu_fault e;
	assert_false(viommu_pop_fault(f->v, &e));
}

#define FR VIRTIO_IOMMU_FAULT_F_READ
#define FW VIRTIO_IOMMU_FAULT_F_WRITE
#define FA VIRTIO_IOMMU_FAULT_F_ADDRESS

/* "Device operations (device)": unattached endpoints that are not in
 * bypass mode do not access guest memory; the fault says DOMAIN. */
static void test_unattached_blocked(void **st)
{
	struct fx *f = fx_new(NULL);
	uint64_t run;
	int fault;
	assert_null(tr(f, 0x1000, 16, DMA_READ, &run, &fault));
	assert_int_equal(fault, -EFAULT);
	expect_fault(f, VIRTIO_IOMMU_FAULT_R_DOMAIN, FR | FA, 0x1000);
	assert_null(tr(f, 0x2000, 16, DMA_WRITE, &run, &fault));
	expect_fault(f, VIRTIO_IOMMU_FAULT_R_DOMAIN, FW | FA, 0x2000);
	expect_no_fault(f);
	assert_int_equal(f->notified, 2);
	fx_free(f);
}

/* "Device operations": config bypass = 1 -> unattached endpoints bypass
 * (identity), also when the driver did not accept BYPASS_CONFIG. */
static void test_bypass_config(void **st)
{
	struct viommu_params p;
	viommu_params_default(&p);
	p.bypass = 1;
	struct fx *f = fx_new(&p);
	viommu_set_driver_features(f->v, 1ULL << VIRTIO_IOMMU_F_MAP_UNMAP);
	uint64_t run;
	int fault;
	uint8_t *h = tr(f, 0x2000, 0x100, DMA_WRITE, &run, &fault);
	assert_ptr_equal(h, f->mem.host + 0x2000);
	assert_int_equal(run, 0x100);
	/* Identity, but never outside RAM: clipped at the end of low RAM,
	 * refused in the hole, high RAM found at 4 GiB. */
	h = tr(f, LOW - 0x1000, 0x2000, DMA_READ, &run, &fault);
	assert_ptr_equal(h, f->mem.host + LOW - 0x1000);
	assert_int_equal(run, 0x1000);
	assert_null(tr(f, LOW, 0x10, DMA_READ, &run, &fault));
	assert_int_equal(fault, -EFAULT);
	expect_fault(f, VIRTIO_IOMMU_FAULT_R_UNKNOWN, FR | FA, LOW);
	assert_null(tr(f, 0xfee00000, 4, DMA_WRITE, &run, &fault));
	expect_fault(f, VIRTIO_IOMMU_FAULT_R_UNKNOWN, FW | FA, 0xfee00000);
	h = tr(f, 1ULL << 32, 0x20000, DMA_READ, &run, &fault);
	assert_ptr_equal(h, f->mem.host + LOW);
	assert_int_equal(run, HIGH);
	assert_null(tr(f, UINT64_MAX, 1, DMA_READ, &run, &fault));
	expect_fault(f, VIRTIO_IOMMU_FAULT_R_UNKNOWN, FR | FA, UINT64_MAX);
	fx_free(f);

	/* Driver turns bypass on, then off: cached translations die. */
	f = fx_new(NULL);
	uint64_t g0 = dma_gen(&f->s);
	uint8_t one = 1, zero = 0;
	viommu_config_write(f->v, offsetof(struct virtio_iommu_config, bypass), &one, 1);
	assert_true(dma_gen(&f->s) != g0);
	assert_non_null(tr(f, 0x3000, 8, DMA_READ, &run, &fault));
	assert_non_null(tr(f, 0x3000, 8, DMA_READ, &run, &fault));	/* cached */
	uint64_t g1 = dma_gen(&f->s);
	viommu_config_write(f->v, offsetof(struct virtio_iommu_config, bypass), &zero, 1);
	assert_true(dma_gen(&f->s) != g1);
	assert_null(tr(f, 0x3000, 8, DMA_READ, &run, &fault));
	expect_fault(f, VIRTIO_IOMMU_FAULT_R_DOMAIN, FR | FA, 0x3000);
	fx_free(f);
}

/* "MAP request": PA = VA - virt_start + phys_start; runs stop at the end
 * of the mapping; READ needs F_READ, WRITE needs F_WRITE. */
static void test_mapped_and_permissions(void **st)
{
	struct fx *f = fx_new(NULL);
	uint64_t run;
	int fault;
	assert_int_equal(attach(f->v, 1, EP, 0), 0);
	assert_int_equal(map(f->v, 1, 0x10000000, 0x10003fff, 0x4000, RW), 0);
	assert_int_equal(map(f->v, 1, 0x10004000, 0x10004fff, 0x9000, R), 0);
	assert_int_equal(map(f->v, 1, 0x10005000, 0x10005fff, 0xa000, W), 0);
	assert_int_equal(map(f->v, 1, 0x10006000, 0x10006fff, 0xb000, 0), 0);
	for (int i = 0; i < 3; i++) {	/* miss, then cache hits */
		uint8_t *h = tr(f, 0x10001000, 0x10000, DMA_WRITE, &run, &fault);
		assert_ptr_equal(h, f->mem.host + 0x5000);
		assert_int_equal(run, 0x3000);
	}
	assert_ptr_equal(tr(f, 0x10004010, 8, DMA_READ, &run, &fault), f->mem.host + 0x9010);
	assert_null(tr(f, 0x10004010, 8, DMA_WRITE, &run, &fault));
	assert_int_equal(fault, -EPERM);
	expect_fault(f, VIRTIO_IOMMU_FAULT_R_MAPPING, FW | FA, 0x10004010);
	assert_ptr_equal(tr(f, 0x10005000, 8, DMA_WRITE, &run, &fault), f->mem.host + 0xa000);
	assert_null(tr(f, 0x10005000, 8, DMA_READ, &run, &fault));
	assert_int_equal(fault, -EPERM);
	expect_fault(f, VIRTIO_IOMMU_FAULT_R_MAPPING, FR | FA, 0x10005000);
	assert_null(tr(f, 0x10006000, 8, DMA_READ, &run, &fault));
	assert_null(tr(f, 0x10006000, 8, DMA_WRITE, &run, &fault));
	expect_fault(f, VIRTIO_IOMMU_FAULT_R_MAPPING, FR | FA, 0x10006000);
	expect_fault(f, VIRTIO_IOMMU_FAULT_R_MAPPING, FW | FA, 0x10006000);
	/* Unmapped IOVA in an attached domain: MAPPING fault. */
	assert_null(tr(f, 0x20000000, 8, DMA_READ, &run, &fault));
	assert_int_equal(fault, -EFAULT);
	expect_fault(f, VIRTIO_IOMMU_FAULT_R_MAPPING, FR | FA, 0x20000000);
	assert_null(tr(f, 0x10000000, 0, DMA_READ, &run, &fault));	/* len 0 */
	expect_no_fault(f);

	/* Through the shared dma_translate(): runs across mappings become
	 * iovecs; a read-only one in the middle fails a write. */
	struct iovec iov[4];
	assert_int_equal(dma_translate(&f->s, 0x10003ff0, 0x20, DMA_READ, iov, 4), 2);
	assert_ptr_equal(iov[0].iov_base, f->mem.host + 0x7ff0);
	assert_int_equal(iov[0].iov_len, 0x10);
	assert_ptr_equal(iov[1].iov_base, f->mem.host + 0x9000);
	assert_int_equal(iov[1].iov_len, 0x10);
	assert_int_equal(dma_translate(&f->s, 0x10003ff0, 0x20, DMA_WRITE, iov, 4), -EPERM);
	expect_fault(f, VIRTIO_IOMMU_FAULT_R_MAPPING, FW | FA, 0x10004000);
	fx_free(f);
}

/* The host never sees an address outside guest RAM, whatever the guest
 * mapped (phys in the PCI hole, straddling the end of RAM, past it). */
static void test_never_outside_ram(void **st)
{
	struct fx *f = fx_new(NULL);
	uint64_t run;
	int fault;
	assert_int_equal(attach(f->v, 1, EP, 0), 0);
	assert_int_equal(map(f->v, 1, 0x0, 0xffff, 0xc0000000, RW), 0);	/* MMIO hole */
	assert_int_equal(map(f->v, 1, 0x10000, 0x11fff, LOW - 0x1000, RW), 0);	/* straddles */
	assert_int_equal(map(f->v, 1, 0x20000, 0x3ffff, (1ULL << 32) + HIGH - 0x1000, RW), 0);
	assert_int_equal(map(f->v, 1, 0x40000, 0x40fff, 0xfffffffffffff000ULL, RW), 0);
	assert_null(tr(f, 0x10, 8, DMA_READ, &run, &fault));
	assert_int_equal(fault, -EFAULT);
	expect_fault(f, VIRTIO_IOMMU_FAULT_R_UNKNOWN, FR | FA, 0x10);
	assert_ptr_equal(tr(f, 0x10000, 0x2000, DMA_READ, &run, &fault), f->mem.host + LOW - 0x1000);
	assert_int_equal(run, 0x1000);
	assert_null(tr(f, 0x11000, 8, DMA_READ, &run, &fault));
	assert_ptr_equal(tr(f, 0x20000, 0x2000, DMA_READ, &run, &fault),
			 f->mem.host + LOW + HIGH - 0x1000);
	assert_int_equal(run, 0x1000);
	assert_null(tr(f, 0x21000, 8, DMA_READ, &run, &fault));
	assert_null(tr(f, 0x40ff8, 8, DMA_WRITE, &run, &fault));
	struct iovec iov[4];
	assert_int_equal(dma_translate(&f->s, 0x10000, 0x2000, DMA_READ, iov, 4), -EFAULT);
	fx_free(f);
}

/* "DETACH request (device)": after DETACH the endpoint cannot access the
 * domain's mappings; UNMAP likewise. The dma_space generation moves on
 * UNMAP/DETACH/ATTACH (ring caches), not on MAP. */
static void test_invalidation(void **st)
{
	struct fx *f = fx_new(NULL);
	uint64_t run;
	int fault;
	assert_int_equal(attach(f->v, 1, EP, 0), 0);
	assert_int_equal(map(f->v, 1, 0x1000, 0x1fff, 0x1000, RW), 0);
	assert_non_null(tr(f, 0x1000, 8, DMA_READ, &run, &fault));
	uint64_t g = dma_gen(&f->s);
	assert_int_equal(map(f->v, 1, 0x2000, 0x2fff, 0x2000, RW), 0);
	assert_int_equal(dma_gen(&f->s), g);
	assert_int_equal(unmap(f->v, 1, 0x5000, 0x5fff), 0);	/* nothing removed */
	assert_int_equal(dma_gen(&f->s), g);
	assert_int_equal(unmap(f->v, 1, 0x1000, 0x1fff), 0);
	assert_true(dma_gen(&f->s) != g);
	assert_null(tr(f, 0x1000, 8, DMA_READ, &run, &fault));
	expect_fault(f, VIRTIO_IOMMU_FAULT_R_MAPPING, FR | FA, 0x1000);
	assert_non_null(tr(f, 0x2000, 8, DMA_READ, &run, &fault));

	/* Move to domain 2 (implicit detach): domain 1's mappings are gone
	 * for this endpoint. */
	g = dma_gen(&f->s);
	assert_int_equal(attach(f->v, 2, EP, 0), 0);
	assert_true(dma_gen(&f->s) != g);
	assert_null(tr(f, 0x2000, 8, DMA_READ, &run, &fault));
	expect_fault(f, VIRTIO_IOMMU_FAULT_R_MAPPING, FR | FA, 0x2000);
	assert_int_equal(map(f->v, 2, 0x2000, 0x2fff, 0x7000, R), 0);
	assert_ptr_equal(tr(f, 0x2000, 8, DMA_READ, &run, &fault), f->mem.host + 0x7000);

	g = dma_gen(&f->s);
	assert_int_equal(detach(f->v, 2, EP), 0);
	assert_true(dma_gen(&f->s) != g);
	assert_null(tr(f, 0x2000, 8, DMA_READ, &run, &fault));
	expect_fault(f, VIRTIO_IOMMU_FAULT_R_DOMAIN, FR | FA, 0x2000);

	/* Bypass domain (ATTACH_F_BYPASS): identity. */
	assert_int_equal(attach(f->v, 3, EP, VIRTIO_IOMMU_ATTACH_F_BYPASS), 0);
	assert_ptr_equal(tr(f, 0x2000, 8, DMA_WRITE, &run, &fault), f->mem.host + 0x2000);
	/* Device reset detaches everything. */
	g = dma_gen(&f->s);
	viommu_reset(f->v);
	assert_true(dma_gen(&f->s) != g);
	assert_null(tr(f, 0x2000, 8, DMA_WRITE, &run, &fault));
	fx_free(f);
}

/* "Fault reporting": with no room the device may drop events; we count
 * them. Events from a backend go through the same queue. */
static void test_fault_queue_bounded(void **st)
{
	struct viommu_params p;
	viommu_params_default(&p);
	p.fault_queue_len = 4;
	struct fx *f = fx_new(&p);
	uint64_t run;
	int fault;
	for (int i = 0; i < 10; i++)
		assert_null(tr(f, 0x1000 * i, 8, DMA_READ, &run, &fault));
	struct viommu_stats s;
	viommu_get_stats(f->v, &s);
	assert_int_equal(s.faults, 4);
	assert_int_equal(s.faults_dropped, 6);
	struct virtio_iommu_fault e;
	assert_true(viommu_peek_fault(f->v, &e));
	assert_int_equal(e.address, 0);
	for (int i = 0; i < 4; i++)
		expect_fault(f, VIRTIO_IOMMU_FAULT_R_DOMAIN, FR | FA, 0x1000 * i);
	expect_no_fault(f);
	viommu_report_fault(f->v, VIRTIO_IOMMU_FAULT_R_MAPPING, FW, EP, 0x1234);
	expect_fault(f, VIRTIO_IOMMU_FAULT_R_MAPPING, FW, 0);	/* no ADDRESS flag: no address */
	fx_free(f);
}

/* Translation on other threads while requests change the domain: a
 * translation that runs wholly while B is unmapped must fail, one that runs
 * wholly while it is mapped must succeed (no request in flight), and A (never unmapped) always
 * translates right. */
struct race {
	struct fx *f;
	/* phase % 4: 0 B mapped, 1 being unmapped, 2 unmapped, 3 being mapped */
	volatile uint64_t phase;
	volatile int stop;
	unsigned long checked_mapped, checked_unmapped, errors, errors_a, errors_u;
};

#define A_IOVA 0x100000000ULL
#define B_IOVA 0x200000000ULL

static void *racer(void *arg)
{
	struct race *r = arg;
	struct dma_space s = r->f->s;	/* its own copy, as a device has */
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		uint64_t run;
		int fault;
		void *a = s.translate(&s, A_IOVA + 0x10, 8, DMA_READ, &run, &fault);
		if (a != r->f->mem.host + 0x10010)
			__atomic_add_fetch(&r->errors_a, 1, __ATOMIC_RELAXED);
		uint64_t p1 = __atomic_load_n(&r->phase, __ATOMIC_SEQ_CST);
		void *b = s.translate(&s, B_IOVA + 0x20, 8, DMA_WRITE, &run, &fault);
		uint64_t p2 = __atomic_load_n(&r->phase, __ATOMIC_SEQ_CST);
		if (p1 != p2 || (p1 & 1))
			continue;	/* a request was in flight */
		if (p1 & 2) {
			if (b)
				__atomic_add_fetch(&r->errors_u, 1, __ATOMIC_RELAXED);
			__atomic_add_fetch(&r->checked_unmapped, 1, __ATOMIC_RELAXED);
		} else {
			if (b != r->f->mem.host + 0x20020)
				__atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
			__atomic_add_fetch(&r->checked_mapped, 1, __ATOMIC_RELAXED);
		}
	}
	return NULL;
}

static void test_concurrent_translate(void **st)
{
	struct fx *f = fx_new(NULL);
	struct race r = { .f = f };
	assert_int_equal(attach(f->v, 1, EP, 0), 0);
	assert_int_equal(map(f->v, 1, A_IOVA, A_IOVA + 0xfff, 0x10000, RW), 0);
	assert_int_equal(map(f->v, 1, B_IOVA, B_IOVA + 0xfff, 0x20000, RW), 0);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, racer, &r);
	for (int i = 0; i < 3000; i++) {
		__atomic_store_n(&r.phase, r.phase + 1, __ATOMIC_SEQ_CST);
		assert_int_equal(unmap(f->v, 1, B_IOVA, B_IOVA + 0xfff), 0);
		__atomic_store_n(&r.phase, r.phase + 1, __ATOMIC_SEQ_CST);
		/* Plenty of other mappings coming and going. */
		assert_int_equal(map(f->v, 1, 0x300000000ULL + i * 0x1000ULL,
				     0x300000000ULL + i * 0x1000ULL + 0xfff, 0x30000, R), 0);
		while (viommu_pop_fault(f->v, NULL))
			;
		__atomic_store_n(&r.phase, r.phase + 1, __ATOMIC_SEQ_CST);
		assert_int_equal(map(f->v, 1, B_IOVA, B_IOVA + 0xfff, 0x20000, RW), 0);
		__atomic_store_n(&r.phase, r.phase + 1, __ATOMIC_SEQ_CST);
		if (i % 8 == 0)
			sched_yield();
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	print_message("checked %lu mapped, %lu unmapped\n", r.checked_mapped, r.checked_unmapped);
	print_message("errors: A %lu, B unmapped %lu, B mapped %lu\n", r.errors_a, r.errors_u, r.errors);
	assert_int_equal(r.errors + r.errors_a + r.errors_u, 0);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unattached_blocked),
		cmocka_unit_test(test_bypass_config),
		cmocka_unit_test(test_mapped_and_permissions),
		cmocka_unit_test(test_never_outside_ram),
		cmocka_unit_test(test_invalidation),
		cmocka_unit_test(test_fault_queue_bounded),
		cmocka_unit_test(test_concurrent_translate),
	};
	return cmocka_run_group_tests_name("viommu_dma", tests, NULL, NULL);
}
