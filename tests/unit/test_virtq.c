/* Unit tests for vmm/virtq.c and vmm/dma.c: split rings built by hand in a
 * fake guest memory (a plain heap buffer, so ASan sees any access outside
 * it), well-formed and malformed descriptor chains, EVENT_IDX, and IOMMU
 * translation through a dma_space hook. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <linux/virtio_ring.h>

#include "dma.h"
#include "virtq.h"

#define MEM_SIZE (4u << 20)
#define QSZ 16
#define DESC_GPA 0x1000
#define AVAIL_GPA 0x2000
#define USED_GPA 0x3000
#define IND_GPA 0x4000
#define BUF_GPA 0x10000

static struct guest_mem mem;
static struct dma_space dma;
static struct virtq vq;
static struct virtq_elem elem;

static struct vring_desc *desc(unsigned table_gpa, unsigned i)
{
	return (struct vring_desc *)(mem.host + table_gpa) + i;
}

static void set_desc_at(unsigned table_gpa, unsigned i, uint64_t addr, uint32_t len,
			uint16_t flags, uint16_t next)
{
	struct vring_desc *d = desc(table_gpa, i);

	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

static void set_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	set_desc_at(DESC_GPA, i, addr, len, flags, next);
}

static struct vring_avail *avail(void) { return (struct vring_avail *)(mem.host + AVAIL_GPA); }
static struct vring_used *used(void) { return (struct vring_used *)(mem.host + USED_GPA); }

static void avail_add(uint16_t head)
{
	struct vring_avail *a = avail();

	a->ring[a->idx % QSZ] = head;
	a->idx++;
}

static uint16_t *used_event(void) { return &avail()->ring[QSZ]; }
static uint16_t *avail_event(void) { return (uint16_t *)&used()->ring[QSZ]; }

static void start_queue(uint16_t size, bool indirect, bool event_idx)
{
	memset(&vq, 0, sizeof(vq));
	vq.size = size;
	vq.dma = &dma;
	vq.desc_addr = DESC_GPA;
	vq.avail_addr = AVAIL_GPA;
	vq.used_addr = USED_GPA;
	vq.indirect = indirect;
	vq.event_idx = event_idx;
	assert_int_equal(virtq_start(&vq), 0);
	assert_true(vq.ready);
}

static int setup(void **state)
{
	mem.host = malloc(MEM_SIZE);
	assert_non_null(mem.host);
	memset(mem.host, 0, MEM_SIZE);
	mem.size = mem.low_size = MEM_SIZE;
	mem.high_size = 0;
	dma = (struct dma_space){ .mem = &mem };
	start_queue(QSZ, true, false);
	return 0;
}

static int teardown(void **state)
{
	free(mem.host);
	mem.host = NULL;
	return 0;
}

/* The chain at head was refused: it must be in the used ring, length 0. */
static void assert_returned(uint16_t head, unsigned used_pos)
{
	assert_int_equal(used()->idx, used_pos + 1);
	assert_int_equal(used()->ring[used_pos].id, head);
	assert_int_equal(used()->ring[used_pos].len, 0);
}

static void test_empty(void **state)
{
	assert_int_equal(virtq_pop(&vq, &elem), 0);
}

static void test_normal_chain(void **state)
{
	set_desc(0, BUF_GPA, 16, VRING_DESC_F_NEXT, 1);
	set_desc(1, BUF_GPA + 0x1000, 512, VRING_DESC_F_NEXT, 2);
	set_desc(2, BUF_GPA + 0x2000, 1, VRING_DESC_F_WRITE, 0);
	avail_add(0);
	assert_int_equal(virtq_pop(&vq, &elem), 1);
	assert_int_equal(elem.head, 0);
	assert_int_equal(elem.n_out, 2);
	assert_int_equal(elem.n_in, 1);
	assert_int_equal(elem.out_len, 528);
	assert_int_equal(elem.in_len, 1);
	assert_ptr_equal(elem.iov[0].iov_base, mem.host + BUF_GPA);
	assert_int_equal(elem.iov[0].iov_len, 16);
	assert_ptr_equal(elem.iov[1].iov_base, mem.host + BUF_GPA + 0x1000);
	assert_ptr_equal(elem.iov[2].iov_base, mem.host + BUF_GPA + 0x2000);
	assert_int_equal(virtq_pop(&vq, &elem), 0);

	virtq_push(&vq, 0, 1);
	assert_int_equal(used()->idx, 1);
	assert_int_equal(used()->ring[0].id, 0);
	assert_int_equal(used()->ring[0].len, 1);
}

static void test_several_and_wrap(void **state)
{
	/* Push more than the ring size through to wrap the indices. */
	for (unsigned round = 0; round < 3 * QSZ; round++) {
		uint16_t head = round % QSZ;

		set_desc(head, BUF_GPA + 64 * head, 64, VRING_DESC_F_WRITE, 0);
		avail_add(head);
		assert_int_equal(virtq_pop(&vq, &elem), 1);
		assert_int_equal(elem.head, head);
		assert_int_equal(elem.n_in, 1);
		assert_int_equal(elem.n_out, 0);
		virtq_push(&vq, head, 64);
		assert_int_equal(used()->ring[round % QSZ].id, head);
	}
	assert_int_equal(used()->idx, 3 * QSZ);
}

static void test_indirect(void **state)
{
	set_desc_at(IND_GPA, 0, BUF_GPA, 16, VRING_DESC_F_NEXT, 1);
	set_desc_at(IND_GPA, 1, BUF_GPA + 0x100, 100, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	set_desc_at(IND_GPA, 2, BUF_GPA + 0x200, 1, VRING_DESC_F_WRITE, 0);
	set_desc(3, IND_GPA, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	avail_add(3);
	assert_int_equal(virtq_pop(&vq, &elem), 1);
	assert_int_equal(elem.head, 3);
	assert_int_equal(elem.n_out, 1);
	assert_int_equal(elem.n_in, 2);
	assert_int_equal(elem.in_len, 101);
	assert_ptr_equal(elem.iov[2].iov_base, mem.host + BUF_GPA + 0x200);
}

static void test_direct_then_indirect(void **state)
{
	set_desc_at(IND_GPA, 0, BUF_GPA + 0x100, 8, VRING_DESC_F_WRITE, 0);
	set_desc(0, BUF_GPA, 16, VRING_DESC_F_NEXT, 1);
	set_desc(1, IND_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	assert_int_equal(virtq_pop(&vq, &elem), 1);
	assert_int_equal(elem.n_out, 1);
	assert_int_equal(elem.n_in, 1);
}

/* Each malformed chain: the given error, the head back in the used ring. */
static void expect_bad(uint16_t head, int err)
{
	unsigned pos = used()->idx;

	avail_add(head);
	assert_int_equal(virtq_pop(&vq, &elem), err);
	assert_int_equal(elem.head, head);
	assert_returned(head, pos);
	/* The queue carries on. */
	assert_int_equal(virtq_pop(&vq, &elem), 0);
}

static void test_indirect_not_negotiated(void **state)
{
	start_queue(QSZ, false, false);
	set_desc_at(IND_GPA, 0, BUF_GPA, 16, 0, 0);
	set_desc(0, IND_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad(0, -EINVAL);
}

static void test_loop(void **state)
{
	set_desc(0, BUF_GPA, 16, VRING_DESC_F_NEXT, 1);
	set_desc(1, BUF_GPA, 16, VRING_DESC_F_NEXT, 0);
	expect_bad(0, -EINVAL);
	/* A descriptor pointing at itself. */
	set_desc(5, BUF_GPA, 16, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 5);
	expect_bad(5, -EINVAL);
}

static void test_loop_in_indirect(void **state)
{
	set_desc_at(IND_GPA, 0, BUF_GPA, 16, VRING_DESC_F_NEXT, 1);
	set_desc_at(IND_GPA, 1, BUF_GPA, 16, VRING_DESC_F_NEXT, 0);
	set_desc(0, IND_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	expect_bad(0, -EINVAL);
}

static void test_next_out_of_range(void **state)
{
	set_desc(0, BUF_GPA, 16, VRING_DESC_F_NEXT, QSZ);
	expect_bad(0, -EINVAL);
	set_desc(1, BUF_GPA, 16, VRING_DESC_F_NEXT, 0xFFFF);
	expect_bad(1, -EINVAL);
	/* In an indirect table: next beyond the table. */
	set_desc_at(IND_GPA, 0, BUF_GPA, 16, VRING_DESC_F_NEXT, 2);
	set_desc_at(IND_GPA, 1, BUF_GPA, 16, 0, 0);
	set_desc(2, IND_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	expect_bad(2, -EINVAL);
}

static void test_head_out_of_range(void **state)
{
	expect_bad(QSZ, -EINVAL);
	expect_bad(0xFFFF, -EINVAL);
}

static void test_too_many_descriptors(void **state)
{
	/* An indirect table longer than the queue. */
	for (unsigned i = 0; i < QSZ + 1; i++)
		set_desc_at(IND_GPA, i, BUF_GPA, 4, i < QSZ ? VRING_DESC_F_NEXT : 0, i + 1);
	set_desc(0, IND_GPA, (QSZ + 1) * 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad(0, -EINVAL);
	/* Direct descriptors plus an indirect table: over the queue size in
	 * total although each part fits. */
	for (unsigned i = 0; i < QSZ - 1; i++)
		set_desc_at(IND_GPA, i, BUF_GPA, 4, i < QSZ - 2 ? VRING_DESC_F_NEXT : 0, i + 1);
	set_desc(1, BUF_GPA, 4, VRING_DESC_F_NEXT, 2);
	set_desc(2, BUF_GPA, 4, VRING_DESC_F_NEXT, 3);
	set_desc(3, IND_GPA, (QSZ - 1) * 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad(1, -EINVAL);
	/* Exactly the queue size is fine. */
	set_desc(2, IND_GPA, (QSZ - 1) * 16, VRING_DESC_F_INDIRECT, 0);
	set_desc(1, BUF_GPA, 4, VRING_DESC_F_NEXT, 2);
	avail_add(1);
	assert_int_equal(virtq_pop(&vq, &elem), 1);
	assert_int_equal(elem.n_out, QSZ);
}

static void test_nested_indirect(void **state)
{
	set_desc_at(IND_GPA + 0x100, 0, BUF_GPA, 16, 0, 0);
	set_desc_at(IND_GPA, 0, IND_GPA + 0x100, 16, VRING_DESC_F_INDIRECT, 0);
	set_desc(0, IND_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad(0, -EINVAL);
}

static void test_indirect_bad_length(void **state)
{
	set_desc_at(IND_GPA, 0, BUF_GPA, 16, 0, 0);
	set_desc(0, IND_GPA, 0, VRING_DESC_F_INDIRECT, 0);
	expect_bad(0, -EINVAL);
	set_desc(1, IND_GPA, 24, VRING_DESC_F_INDIRECT, 0);
	expect_bad(1, -EINVAL);
	set_desc(2, IND_GPA, 15, VRING_DESC_F_INDIRECT, 0);
	expect_bad(2, -EINVAL);
	/* INDIRECT together with NEXT. */
	set_desc(3, IND_GPA, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 4);
	set_desc(4, BUF_GPA, 16, 0, 0);
	expect_bad(3, -EINVAL);
}

static void test_indirect_table_outside_ram(void **state)
{
	set_desc(0, MEM_SIZE - 16, 32, VRING_DESC_F_INDIRECT, 0);
	expect_bad(0, -EFAULT);
	set_desc(1, 0xFFFFFFFFFFFFFF00ULL, 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad(1, -EFAULT);
	set_desc(2, 0xFFFFFFFFFFFFFFF0ULL, 32, VRING_DESC_F_INDIRECT, 0);
	expect_bad(2, -EINVAL);		/* wraps around */
}

static void test_zero_length(void **state)
{
	set_desc(0, BUF_GPA, 0, 0, 0);
	expect_bad(0, -EINVAL);
	set_desc(1, BUF_GPA, 16, VRING_DESC_F_NEXT, 2);
	set_desc(2, BUF_GPA, 0, VRING_DESC_F_WRITE, 0);
	expect_bad(1, -EINVAL);
}

static void test_huge_buffer(void **state)
{
	set_desc(0, BUF_GPA, 0xFFFFFFFF, 0, 0);
	expect_bad(0, -EINVAL);
	/* Each under the limit, together over it (and outside RAM). */
	set_desc(1, 0, 0x30000000, VRING_DESC_F_NEXT, 2);
	set_desc(2, 0, 0x30000000, VRING_DESC_F_NEXT, 3);
	set_desc(3, 0, 0x30000000, VRING_DESC_F_NEXT, 4);
	set_desc(4, 0, 0x30000000, 0, 0);
	int pos = used()->idx;

	avail_add(1);
	int r = virtq_pop(&vq, &elem);
	assert_true(r == -EINVAL || r == -EFAULT);
	assert_returned(1, pos);
}

static void test_outside_ram(void **state)
{
	set_desc(0, MEM_SIZE, 16, 0, 0);
	expect_bad(0, -EFAULT);
	set_desc(1, MEM_SIZE - 8, 16, VRING_DESC_F_WRITE, 0);
	expect_bad(1, -EFAULT);
	set_desc(2, 0xFFFFFFFFFFFFFFF8ULL, 16, 0, 0);
	expect_bad(2, -EINVAL);
	set_desc(3, 0x100000000ULL, 16, 0, 0);	/* no high RAM */
	expect_bad(3, -EFAULT);
}

static void test_write_before_read(void **state)
{
	set_desc(0, BUF_GPA, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(1, BUF_GPA, 16, 0, 0);
	expect_bad(0, -EINVAL);
}

/* IOMMU hooks for the tests: pages swapped pairwise (so no two adjacent
 * pages are host-contiguous), a forbidden and an unmapped window. */
#define FORBIDDEN_GPA 0x280000ULL
#define UNMAPPED_GPA 0x300000ULL
static uint64_t test_gen;
static uint64_t ring_shift;	/* moved ring: IOVA -> GPA offset */

static void *swap_translate(struct dma_space *s, uint64_t iova, uint64_t len,
			    enum dma_access acc, uint64_t *run, int *fault)
{
	if (iova >= UNMAPPED_GPA && iova < UNMAPPED_GPA + 0x1000) {
		*fault = -EFAULT;
		return NULL;
	}
	if (iova >= FORBIDDEN_GPA && iova < FORBIDDEN_GPA + 0x1000 && acc == DMA_WRITE) {
		*fault = -EPERM;
		return NULL;
	}
	uint64_t gpa = iova;

	if (iova >= 0x100000 && iova < 0x200000)	/* the swapped region */
		gpa = iova ^ 0x1000;
	if (iova < 0x10000)
		gpa = iova + ring_shift;	/* rings */
	uint64_t r = 0x1000 - (iova & 0xFFF);

	if (r > len)
		r = len;
	void *p = gpa_to_hva(s->mem, gpa, r);

	if (!p) {
		*fault = -EFAULT;
		return NULL;
	}
	*run = r;
	return p;
}

static void use_iommu(void)
{
	dma.translate = swap_translate;
	dma.gen = &test_gen;
	start_queue(QSZ, true, false);
}

static void test_too_many_segments(void **state)
{
	use_iommu();
	/* 300 pages, none contiguous with the next on the host. */
	set_desc(0, 0x100000, 300 * 0x1000, 0, 0);
	expect_bad(0, -E2BIG);
	/* Fewer pages: fine, one iovec per page. */
	set_desc(1, 0x100000, 8 * 0x1000, 0, 0);
	avail_add(1);
	assert_int_equal(virtq_pop(&vq, &elem), 1);
	assert_int_equal(elem.n_out, 8);
	assert_int_equal(elem.out_len, 8 * 0x1000);
	assert_ptr_equal(elem.iov[0].iov_base, mem.host + 0x101000);
}

static void test_too_many_segments_direct(void **state)
{
	/* VIRTQ_MAX_SEGS + 1 descriptors in a big queue. */
	enum { N = VIRTQ_MAX_SEGS + 1 };

	memset(mem.host + DESC_GPA, 0, 0x1000);
	memset(mem.host + AVAIL_GPA, 0, 0x1000);
	memset(mem.host + USED_GPA, 0, 0x1000);
	vq.size = 512;
	vq.desc_addr = 0x20000;		/* 8 KiB table */
	vq.avail_addr = 0x24000;
	vq.used_addr = 0x25000;
	assert_int_equal(virtq_start(&vq), 0);
	for (unsigned i = 0; i < N; i++)
		set_desc_at(0x20000, i, BUF_GPA + i, 1, i + 1 < N ? VRING_DESC_F_NEXT : 0, i + 1);
	struct vring_avail *a = (struct vring_avail *)(mem.host + 0x24000);

	a->ring[0] = 0;
	a->idx = 1;
	assert_int_equal(virtq_pop(&vq, &elem), -E2BIG);
	assert_int_equal(((struct vring_used *)(mem.host + 0x25000))->idx, 1);
}

static void test_iommu_faults(void **state)
{
	use_iommu();
	set_desc(0, FORBIDDEN_GPA, 16, VRING_DESC_F_WRITE, 0);
	expect_bad(0, -EPERM);
	/* Reading the forbidden window is allowed. */
	set_desc(1, FORBIDDEN_GPA, 16, 0, 0);
	avail_add(1);
	assert_int_equal(virtq_pop(&vq, &elem), 1);
	set_desc(2, UNMAPPED_GPA + 0x800, 16, 0, 0);
	expect_bad(2, -EFAULT);
	/* A buffer that runs into the unmapped page. */
	set_desc(3, UNMAPPED_GPA - 8, 16, 0, 0);
	expect_bad(3, -EFAULT);
	/* An indirect table spread over two non-contiguous pages. */
	set_desc(4, 0x100FF0, 32, VRING_DESC_F_INDIRECT, 0);
	expect_bad(4, -EFAULT);
}

static void test_ring_retranslated(void **state)
{
	use_iommu();
	set_desc(0, BUF_GPA, 16, 0, 0);
	avail_add(0);
	assert_int_equal(virtq_pop(&vq, &elem), 1);
	virtq_push(&vq, 0, 0);

	/* The rings move to other pages behind the same IOVAs: copy them
	 * there, bump the generation, and the queue follows. */
	ring_shift = 0x80000;
	memcpy(mem.host + ring_shift, mem.host, 0x10000);
	memset(mem.host + AVAIL_GPA, 0xEE, 0x100);	/* stale copy: garbage */
	test_gen++;
	struct vring_avail *a = (struct vring_avail *)(mem.host + ring_shift + AVAIL_GPA);

	a->ring[a->idx % QSZ] = 0;
	a->idx++;
	assert_int_equal(virtq_pop(&vq, &elem), 1);
	virtq_push(&vq, 0, 7);
	struct vring_used *u = (struct vring_used *)(mem.host + ring_shift + USED_GPA);

	assert_int_equal(u->idx, 2);
	assert_int_equal(u->ring[1].len, 7);
	ring_shift = 0;
}

static void test_ring_unmapped(void **state)
{
	use_iommu();
	/* The rings' IOVAs now fault: the queue is broken, nothing is read. */
	ring_shift = MEM_SIZE;
	test_gen++;
	avail_add(0);
	assert_int_equal(virtq_pop(&vq, &elem), 0);
	assert_true(vq.broken);
	virtq_push(&vq, 0, 0);
	assert_false(virtq_should_notify(&vq));
	ring_shift = 0;
}

static void test_start_errors(void **state)
{
	vq.desc_addr = MEM_SIZE - 16;
	assert_int_equal(virtq_start(&vq), -EFAULT);
	assert_false(vq.ready);
	assert_int_equal(virtq_pop(&vq, &elem), 0);
	vq.desc_addr = DESC_GPA + 8;	/* misaligned */
	assert_int_equal(virtq_start(&vq), -EINVAL);
	vq.desc_addr = DESC_GPA;
	vq.used_addr = USED_GPA + 2;
	assert_int_equal(virtq_start(&vq), -EINVAL);
	vq.used_addr = USED_GPA;
	vq.size = 12;			/* not a power of two */
	assert_int_equal(virtq_start(&vq), -EINVAL);
	vq.size = 2048;
	assert_int_equal(virtq_start(&vq), -EINVAL);
	vq.size = QSZ;
	vq.avail_addr = 0xFFFFFFFFFFFFFFF0ULL;
	assert_int_equal(virtq_start(&vq), -EFAULT);
}

static void test_avail_idx_too_far(void **state)
{
	avail()->idx = QSZ + 1;
	assert_int_equal(virtq_pop(&vq, &elem), 0);
	assert_true(vq.broken);
	virtq_reset(&vq);
	assert_false(vq.ready);
	assert_int_equal(vq.size, QSZ);
}

static void test_notify_no_event_idx(void **state)
{
	set_desc(0, BUF_GPA, 16, 0, 0);
	avail_add(0);
	assert_int_equal(virtq_pop(&vq, &elem), 1);
	virtq_push(&vq, 0, 0);
	assert_true(virtq_should_notify(&vq));
	/* Nothing new since. */
	assert_false(virtq_should_notify(&vq));
	avail()->flags = VRING_AVAIL_F_NO_INTERRUPT;
	avail_add(0);
	assert_int_equal(virtq_pop(&vq, &elem), 1);
	virtq_push(&vq, 0, 0);
	assert_false(virtq_should_notify(&vq));
}

static void test_event_idx(void **state)
{
	start_queue(QSZ, true, true);
	set_desc(0, BUF_GPA, 16, 0, 0);

	/* Empty pop asks for a kick at the next index. */
	assert_int_equal(virtq_pop(&vq, &elem), 0);
	assert_int_equal(*avail_event(), 0);

	for (int i = 0; i < 4; i++)
		avail_add(0);
	assert_int_equal(virtq_pop(&vq, &elem), 1);
	assert_int_equal(*avail_event(), 1);

	/* First push always notifies. */
	virtq_push(&vq, 0, 0);
	assert_true(virtq_should_notify(&vq));

	/* The driver wants an interrupt once used idx passes 2 (used_event 2
	 * means: after the entry at index 2 is written). */
	*used_event() = 2;
	assert_int_equal(virtq_pop(&vq, &elem), 1);
	virtq_push(&vq, 0, 0);		/* used idx 2 */
	assert_false(virtq_should_notify(&vq));
	assert_int_equal(virtq_pop(&vq, &elem), 1);
	virtq_push(&vq, 0, 0);		/* used idx 3: entry 2 written */
	assert_true(virtq_should_notify(&vq));

	/* Two pushes between checks, crossing the event in the middle. */
	*used_event() = 3;
	assert_int_equal(virtq_pop(&vq, &elem), 1);
	virtq_push(&vq, 0, 0);		/* used idx 4 */
	avail_add(0);
	assert_int_equal(virtq_pop(&vq, &elem), 1);
	virtq_push(&vq, 0, 0);		/* used idx 5 */
	assert_true(virtq_should_notify(&vq));

	/* An event index far behind: no interrupt. */
	*used_event() = 1;
	avail_add(0);
	assert_int_equal(virtq_pop(&vq, &elem), 1);
	virtq_push(&vq, 0, 0);
	assert_false(virtq_should_notify(&vq));

	/* Queue drained: avail_event tracks last_avail. */
	assert_int_equal(virtq_pop(&vq, &elem), 0);
	assert_int_equal(*avail_event(), vq.last_avail);
}

/* What the driver does after adding one buffer: kick or not (the rule of
 * virtio 1.2, 2.7.13.4 / 2.7.10, as the Linux driver applies it). */
static bool driver_add_needs_kick(void)
{
	uint16_t old = avail()->idx;

	avail_add(0);
	if (vq.event_idx)
		return vring_need_event(*avail_event(), avail()->idx, old);
	return !(used()->flags & VRING_USED_F_NO_NOTIFY);
}

/* A polling device turns kicks off and back on; with and without
 * EVENT_IDX the driver must not kick while they are off, however many
 * buffers it adds, and must kick again once they are on. */
static void check_kick_suppression(bool event_idx)
{
	start_queue(QSZ, true, event_idx);
	set_desc(0, BUF_GPA, 16, 0, 0);
	assert_true(driver_add_needs_kick());
	assert_int_equal(virtq_pop(&vq, &elem), 1);

	assert_false(virtq_set_kick(&vq, false));
	for (unsigned round = 0; round < 3 * QSZ; round++) {
		/* Up to a full ring outstanding, then the device catches up. */
		for (unsigned i = 0; i < QSZ; i++)
			assert_false(driver_add_needs_kick());
		for (unsigned i = 0; i < QSZ; i++)
			assert_int_equal(virtq_pop(&vq, &elem), 1);
		assert_int_equal(virtq_pop(&vq, &elem), 0);
	}

	/* Back on with nothing waiting: the next buffer kicks. */
	assert_false(virtq_set_kick(&vq, true));
	assert_true(driver_add_needs_kick());
	assert_int_equal(virtq_pop(&vq, &elem), 1);

	/* Off, a buffer slips in, back on: reported as waiting. */
	virtq_set_kick(&vq, false);
	assert_false(driver_add_needs_kick());
	assert_true(virtq_set_kick(&vq, true));
	assert_int_equal(virtq_pop(&vq, &elem), 1);
	assert_int_equal(virtq_pop(&vq, &elem), 0);
	assert_true(driver_add_needs_kick());

	/* A reset forgets the setting. */
	virtq_set_kick(&vq, false);
	virtq_reset(&vq);
	assert_false(vq.no_kick);
}

static void test_kick_suppression(void **state)
{
	check_kick_suppression(false);
}

static void test_kick_suppression_event_idx(void **state)
{
	check_kick_suppression(true);
}

static void test_unpop(void **state)
{
	set_desc(0, BUF_GPA, 16, VRING_DESC_F_WRITE, 0);
	avail_add(0);
	assert_int_equal(virtq_pop(&vq, &elem), 1);
	virtq_unpop(&vq);
	assert_int_equal(virtq_pop(&vq, &elem), 1);
	assert_int_equal(elem.head, 0);
	assert_int_equal(virtq_pop(&vq, &elem), 0);
}

static void test_high_ram(void **state)
{
	/* RAM split around the hole: a buffer may not straddle it. */
	mem.low_size = 2u << 20;
	mem.high_size = MEM_SIZE - mem.low_size;
	start_queue(QSZ, true, false);
	set_desc(0, GUEST_HIGH_RAM_BASE + 0x1000, 64, 0, 0);
	avail_add(0);
	assert_int_equal(virtq_pop(&vq, &elem), 1);
	assert_ptr_equal(elem.iov[0].iov_base, mem.host + mem.low_size + 0x1000);
	set_desc(1, mem.low_size - 32, 64, 0, 0);
	expect_bad(1, -EFAULT);
	set_desc(2, GUEST_HIGH_RAM_BASE + mem.high_size - 32, 64, 0, 0);
	expect_bad(2, -EFAULT);
	set_desc(3, GUEST_HIGH_RAM_BASE - 32, 64, 0, 0);
	expect_bad(3, -EFAULT);
}

static void test_iov_helpers(void **state)
{
	char a[5], b[3], c[8], out[16];
	struct iovec iov[3] = { { a, 5 }, { b, 3 }, { c, 8 } };
	struct iovec sl[3];

	assert_int_equal(buf_to_iov(iov, 3, 0, "abcdefghijklmnopq", 17), 16);
	memset(out, 0, sizeof(out));
	assert_int_equal(iov_to_buf(iov, 3, 4, out, 6), 6);
	assert_memory_equal(out, "efghij", 6);
	assert_int_equal(iov_to_buf(iov, 3, 15, out, 6), 1);
	assert_int_equal(iov_to_buf(iov, 3, 20, out, 6), 0);
	assert_int_equal(buf_to_iov(iov, 3, 6, "XY", 2), 2);
	assert_memory_equal(b, "fXY", 3);

	unsigned k = iov_slice(iov, 3, 4, 6, sl, 3);
	assert_int_equal(k, 3);
	assert_ptr_equal(sl[0].iov_base, a + 4);
	assert_int_equal(sl[0].iov_len, 1);
	assert_int_equal(sl[1].iov_len, 3);
	assert_int_equal(sl[2].iov_len, 2);
	assert_int_equal(iov_slice(iov, 3, 4, 6, sl, 2), 2);
	assert_int_equal(iov_slice(iov, 3, 16, 6, sl, 3), 0);
}

static void test_dma_translate(void **state)
{
	struct iovec iov[4];

	assert_int_equal(dma_translate(&dma, BUF_GPA, 0, DMA_READ, iov, 4), -EINVAL);
	assert_int_equal(dma_translate(&dma, BUF_GPA, 100, DMA_READ, iov, 4), 1);
	assert_int_equal(dma_translate(&dma, BUF_GPA, 100, DMA_READ, iov, 0), -E2BIG);
	assert_int_equal(dma_translate(&dma, MEM_SIZE - 1, 2, DMA_READ, iov, 4), -EFAULT);
	assert_null(dma_map_contig(&dma, MEM_SIZE - 1, 2, DMA_READ));
	assert_ptr_equal(dma_map_contig(&dma, 8, 8, DMA_WRITE), mem.host + 8);

	dma.translate = swap_translate;
	/* Pages 0x100000/0x101000 swap: two runs. */
	assert_int_equal(dma_translate(&dma, 0x100800, 0x1000, DMA_READ, iov, 4), 2);
	assert_ptr_equal(iov[0].iov_base, mem.host + 0x101800);
	assert_int_equal(iov[0].iov_len, 0x800);
	assert_ptr_equal(iov[1].iov_base, mem.host + 0x100000);
	assert_null(dma_map_contig(&dma, 0x100800, 0x1000, DMA_READ));
	/* Outside the swapped region pages merge into one iovec. */
	assert_int_equal(dma_translate(&dma, 0x3A0000, 0x3000, DMA_READ, iov, 1), 1);
	assert_int_equal(iov[0].iov_len, 0x3000);
	assert_int_equal(dma_translate(&dma, FORBIDDEN_GPA, 8, DMA_WRITE, iov, 4), -EPERM);
	dma.translate = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_empty),
		T(test_normal_chain),
		T(test_several_and_wrap),
		T(test_indirect),
		T(test_direct_then_indirect),
		T(test_indirect_not_negotiated),
		T(test_loop),
		T(test_loop_in_indirect),
		T(test_next_out_of_range),
		T(test_head_out_of_range),
		T(test_too_many_descriptors),
		T(test_nested_indirect),
		T(test_indirect_bad_length),
		T(test_indirect_table_outside_ram),
		T(test_zero_length),
		T(test_huge_buffer),
		T(test_outside_ram),
		T(test_write_before_read),
		T(test_too_many_segments),
		T(test_too_many_segments_direct),
		T(test_iommu_faults),
		T(test_ring_retranslated),
		T(test_ring_unmapped),
		T(test_start_errors),
		T(test_avail_idx_too_far),
		T(test_notify_no_event_idx),
		T(test_event_idx),
		T(test_kick_suppression),
		T(test_kick_suppression_event_idx),
		T(test_unpop),
		T(test_high_ram),
		T(test_iov_helpers),
		T(test_dma_translate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
