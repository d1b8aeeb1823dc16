/* libFuzzer target: the virtqueue walk. The input becomes the contents of a
 * small guest memory holding a descriptor table, an avail ring (whose index
 * the input also sets) and indirect tables; the queue size, features and
 * ring addresses come from the first bytes. virtq_pop must return requests
 * or errors, never touch memory outside the guest RAM buffer (ASan), and
 * every segment it returns must lie inside guest RAM. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "dma.h"
#include "virtq.h"

#define MEM_SIZE (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *ram;
	static struct virtq_elem e;
	struct guest_mem mem;
	struct dma_space dma = { 0 };
	struct virtq vq;

	if (size < 8)
		return 0;
	if (!ram)
		ram = malloc(MEM_SIZE);
	memset(ram, 0, MEM_SIZE);
	memcpy(ram, data + 8, size - 8 < MEM_SIZE ? size - 8 : MEM_SIZE);
	mem = (struct guest_mem){ .host = ram, .size = MEM_SIZE, .low_size = MEM_SIZE };
	dma.mem = &mem;

	memset(&vq, 0, sizeof(vq));
	vq.size = 1u << (data[0] % 9);			/* 1 .. 256 */
	vq.indirect = data[1] & 1;
	vq.event_idx = data[1] & 2;
	vq.desc_addr = (uint64_t)data[2] << 8;		/* anywhere, even past RAM */
	vq.avail_addr = (uint64_t)data[3] << 8;
	vq.used_addr = ((uint64_t)data[4] << 8) | (data[1] & 0x80 ? 0x10000 : 0);
	vq.dma = &dma;
	if (virtq_start(&vq) < 0)
		return 0;
	for (int i = 0; i < 64; i++) {
		int r = virtq_pop(&vq, &e);

		if (r == 0)
			break;
		if (r < 0)
			continue;
		for (unsigned s = 0; s < e.n_out + e.n_in; s++) {
			uint8_t *b = e.iov[s].iov_base;

			if (b < ram || b + e.iov[s].iov_len > ram + MEM_SIZE)
				abort();	/* a segment outside guest RAM */
		}
		virtq_push(&vq, e.head, (uint32_t)e.in_len);
		virtq_should_notify(&vq);
	}
	return 0;
}
