/* Spec conformance of the virtio-iommu request handler
 * (devices/virtio-iommu/viommu.c) against the virtio specification,
 * "IOMMU device" (device-types/iommu/description.tex). Each table row is a
 * sequence of requests with the status expected for each; row names cite
 * the clause (section) they check. Buffers are malloc'd to their exact size
 * so ASan catches any access outside them. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "acpi.h"
#include "devices.h"
#include "viommu.h"

#define UNWRITTEN (-1)
#define EP_A 0x08	/* 00:01.0 */
#define EP_B 0x10	/* 00:02.0 */
#define EP_C 0x18	/* 00:03.0, has an extra reserved region */
#define EP_C_RESV_START 0x100000ULL
#define EP_C_RESV_END 0x1fffffULL

enum variant {
	V_DEFAULT,
	V_NO_BYPASS_NEG,	/* driver did not accept BYPASS_CONFIG */
	V_NO_MAP_UNMAP_NEG,	/* driver did not accept MAP_UNMAP */
	V_NO_PROBE,		/* device does not offer PROBE */
	V_SMALL,		/* max_domains 2, max_mappings 3 */
	V_RANGES,		/* input_range 48 bits, domains 1..100 */
	V_NO_RANGE_FEATURES,	/* INPUT_RANGE and DOMAIN_RANGE not offered */
};

struct op {
	uint8_t type;		/* VIRTIO_IOMMU_T_*, or anything else */
	uint32_t domain, endpoint, flags;
	uint64_t vs, ve, ps;
	uint8_t resv;		/* written into the request's reserved[0] */
	uint8_t head_resv;	/* written into head.reserved[0] */
	int out_delta;		/* readable part: size - (struct - tail) */
	int in_delta;		/* writable part: size - (tail [+ probe_size]) */
	int expect;		/* status, or UNWRITTEN */
};

#define MAXOPS 8
struct row {
	const char *name;
	enum variant var;
	struct op ops[MAXOPS];
};

#define T_ATTACH VIRTIO_IOMMU_T_ATTACH
#define T_DETACH VIRTIO_IOMMU_T_DETACH
#define T_MAP VIRTIO_IOMMU_T_MAP
#define T_UNMAP VIRTIO_IOMMU_T_UNMAP
#define T_PROBE VIRTIO_IOMMU_T_PROBE
#define S_OK VIRTIO_IOMMU_S_OK
#define S_IOERR VIRTIO_IOMMU_S_IOERR
#define S_UNSUPP VIRTIO_IOMMU_S_UNSUPP
#define S_INVAL VIRTIO_IOMMU_S_INVAL
#define S_RANGE VIRTIO_IOMMU_S_RANGE
#define S_NOENT VIRTIO_IOMMU_S_NOENT
#define S_NOMEM VIRTIO_IOMMU_S_NOMEM
#define RW (VIRTIO_IOMMU_MAP_F_READ | VIRTIO_IOMMU_MAP_F_WRITE)
#define BYP VIRTIO_IOMMU_ATTACH_F_BYPASS

#define ATT(d, e, ...) { .type = T_ATTACH, .domain = d, .endpoint = e, __VA_ARGS__ }
#define DET(d, e, ...) { .type = T_DETACH, .domain = d, .endpoint = e, __VA_ARGS__ }
#define MAP(d, s, e, p, f, ...) { .type = T_MAP, .domain = d, .vs = s, .ve = e, .ps = p, .flags = f, __VA_ARGS__ }
#define UNMAP(d, s, e, ...) { .type = T_UNMAP, .domain = d, .vs = s, .ve = e, __VA_ARGS__ }
#define PROBE(e, ...) { .type = T_PROBE, .endpoint = e, __VA_ARGS__ }

static const struct row rows[] = {
	/* ---- ATTACH ---- */
	{ "ATTACH request: attach creates the domain -> OK", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0, 0xfff, 0, RW, .expect = S_OK) } },
	{ "ATTACH request (device): reserved not zero -> INVAL", V_DEFAULT,
	  { ATT(1, EP_A, .resv = 1, .expect = S_INVAL), MAP(1, 0, 0xfff, 0, RW, .expect = S_NOENT) } },
	{ "ATTACH request (device): unrecognised flags bit -> INVAL", V_DEFAULT,
	  { ATT(1, EP_A, .flags = 2, .expect = S_INVAL), ATT(1, EP_A, .flags = 0x80000000u, .expect = S_INVAL) } },
	{ "ATTACH request (device): F_BYPASS without BYPASS_CONFIG negotiated is unrecognised -> INVAL",
	  V_NO_BYPASS_NEG, { ATT(1, EP_A, .flags = BYP, .expect = S_INVAL) } },
	{ "ATTACH request (device): endpoint does not exist -> NOENT", V_DEFAULT,
	  { ATT(1, 0x1234, .expect = S_NOENT), MAP(1, 0, 0xfff, 0, RW, .expect = S_NOENT) } },
	{ "Device operations: domain outside domain_range -> RANGE", V_DEFAULT,
	  { ATT(0x10000, EP_A, .expect = S_RANGE), ATT(0xffff, EP_A, .expect = S_OK) } },
	{ "Device operations: domain below domain_range.start -> RANGE", V_RANGES,
	  { ATT(0, EP_A, .expect = S_RANGE), ATT(101, EP_A, .expect = S_RANGE), ATT(100, EP_A, .expect = S_OK) } },
	{ "Device operations: without DOMAIN_RANGE any domain is valid", V_NO_RANGE_FEATURES,
	  { ATT(0xffffffffu, EP_A, .expect = S_OK), MAP(0xffffffffu, 0, 0xfff, 0, RW, .expect = S_OK) } },
	{ "ATTACH request: several endpoints in one domain -> OK", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), ATT(1, EP_B, .expect = S_OK), DET(1, EP_A, .expect = S_OK),
	    MAP(1, 0, 0xfff, 0, RW, .expect = S_OK) } },
	{ "ATTACH request (device): F_BYPASS inconsistent with an existing domain -> INVAL", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), ATT(1, EP_B, .flags = BYP, .expect = S_INVAL) } },
	{ "ATTACH request (device): no F_BYPASS on an existing bypass domain -> INVAL", V_DEFAULT,
	  { ATT(1, EP_A, .flags = BYP, .expect = S_OK), ATT(1, EP_B, .expect = S_INVAL),
	    ATT(1, EP_B, .flags = BYP, .expect = S_OK) } },
	{ "ATTACH request (device): bypass attach to a domain holding mappings -> INVAL", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0, 0xfff, 0, RW, .expect = S_OK),
	    ATT(1, EP_B, .flags = BYP, .expect = S_INVAL) } },
	{ "ATTACH request (device): attached elsewhere -> implicit DETACH then ATTACH", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0, 0xfff, 0, RW, .expect = S_OK),
	    ATT(2, EP_A, .expect = S_OK),
	    /* domain 1 lost its last endpoint: it ceased to exist */
	    MAP(1, 0, 0xfff, 0, RW, .expect = S_NOENT), DET(1, EP_A, .expect = S_INVAL),
	    DET(2, EP_A, .expect = S_OK) } },
	{ "ATTACH request: move keeps the old domain while it has endpoints", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), ATT(1, EP_B, .expect = S_OK),
	    MAP(1, 0, 0xfff, 0, RW, .expect = S_OK), ATT(2, EP_A, .expect = S_OK),
	    MAP(1, 0, 0xfff, 0, RW, .expect = S_INVAL) } },
	{ "ATTACH request: re-attach to the same domain keeps its mappings", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0, 0xfff, 0, RW, .expect = S_OK),
	    ATT(1, EP_A, .expect = S_OK), MAP(1, 0, 0xfff, 0, RW, .expect = S_INVAL) } },
	{ "ATTACH request (device): endpoint properties incompatible with the domain -> UNSUPP", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK),
	    MAP(1, EP_C_RESV_START, EP_C_RESV_START + 0xfff, 0, RW, .expect = S_OK),
	    ATT(1, EP_C, .expect = S_UNSUPP), ATT(2, EP_C, .expect = S_OK) } },
	{ "ATTACH: too many domains -> NOMEM", V_SMALL,
	  { ATT(1, EP_A, .expect = S_OK), ATT(2, EP_B, .expect = S_OK), ATT(3, EP_C, .expect = S_NOMEM),
	    ATT(2, EP_C, .expect = S_OK) } },
	/* ---- DETACH ---- */
	{ "DETACH request: detach removes the domain with its last endpoint", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0, 0xfff, 0, RW, .expect = S_OK),
	    DET(1, EP_A, .expect = S_OK), MAP(1, 0, 0xfff, 0, RW, .expect = S_NOENT),
	    ATT(1, EP_A, .expect = S_OK), MAP(1, 0, 0xfff, 0, RW, .expect = S_OK) } },
	{ "DETACH request (device): endpoint does not exist -> NOENT", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), DET(1, 0x4242, .expect = S_NOENT) } },
	{ "DETACH request (device): endpoint not attached -> INVAL", V_DEFAULT,
	  { DET(1, EP_A, .expect = S_INVAL) } },
	{ "DETACH request (device): endpoint attached to another domain -> INVAL", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), ATT(2, EP_B, .expect = S_OK), DET(2, EP_A, .expect = S_INVAL),
	    DET(1, EP_A, .expect = S_OK) } },
	{ "DETACH request (device): reserved is ignored", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), DET(1, EP_A, .resv = 0xff, .expect = S_OK) } },
	{ "DETACH: domain outside domain_range -> RANGE", V_DEFAULT,
	  { DET(0x20000, EP_A, .expect = S_RANGE) } },
	/* ---- MAP ---- */
	{ "MAP request (device): domain does not exist -> NOENT", V_DEFAULT,
	  { MAP(7, 0, 0xfff, 0, RW, .expect = S_NOENT) } },
	{ "MAP request (device): unrecognised flags bit -> INVAL", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0, 0xfff, 0, RW | 8, .expect = S_INVAL),
	    MAP(1, 0, 0xfff, 0, 0x100, .expect = S_INVAL), MAP(1, 0, 0xfff, 0, RW, .expect = S_OK) } },
	{ "MAP request (driver): MMIO flag without VIRTIO_IOMMU_F_MMIO -> INVAL", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0, 0xfff, 0, RW | VIRTIO_IOMMU_MAP_F_MMIO, .expect = S_INVAL) } },
	{ "MAP request: flags READ only, WRITE only and none are valid", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0, 0xfff, 0, VIRTIO_IOMMU_MAP_F_READ, .expect = S_OK),
	    MAP(1, 0x1000, 0x1fff, 0, VIRTIO_IOMMU_MAP_F_WRITE, .expect = S_OK),
	    MAP(1, 0x2000, 0x2fff, 0, 0, .expect = S_OK) } },
	{ "MAP request (device): a mapping already exists in the range -> INVAL", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0x10000, 0x1ffff, 0, RW, .expect = S_OK),
	    MAP(1, 0x10000, 0x1ffff, 0, RW, .expect = S_INVAL),
	    MAP(1, 0xf000, 0x10fff, 0, RW, .expect = S_INVAL),
	    MAP(1, 0x1f000, 0x20fff, 0, RW, .expect = S_INVAL),
	    MAP(1, 0, 0xfffff, 0, RW, .expect = S_INVAL),
	    MAP(1, 0xf000, 0xffff, 0, RW, .expect = S_OK), MAP(1, 0x20000, 0x20fff, 0, RW, .expect = S_OK) } },
	{ "MAP request (device): virt_start not page aligned -> RANGE", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0x800, 0x1fff, 0, RW, .expect = S_RANGE) } },
	{ "MAP request (device): phys_start not page aligned -> RANGE", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0x1000, 0x1fff, 0x10, RW, .expect = S_RANGE) } },
	{ "MAP request (device): virt_end + 1 not page aligned -> RANGE", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0x1000, 0x1ffe, 0, RW, .expect = S_RANGE),
	    MAP(1, 0x1000, 0x1000, 0, RW, .expect = S_RANGE) } },
	{ "MAP request (driver): virt_end below virt_start -> INVAL", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0x2000, 0xfff, 0, RW, .expect = S_INVAL) } },
	{ "Device operations: MAP outside input_range -> RANGE", V_RANGES,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0xfffffffff000ULL, 0x1000000000fffULL, 0, RW, .expect = S_RANGE),
	    MAP(1, 0xfffffffff000ULL, 0xffffffffffffULL, 0, RW, .expect = S_OK) } },
	{ "MAP request: top of the 64-bit space (virt_end + 1 wraps to 0)", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0xfffffffffffff000ULL, UINT64_MAX, 0x1000, RW, .expect = S_OK),
	    UNMAP(1, 0xfffffffffffff000ULL, UINT64_MAX, .expect = S_OK) } },
	{ "MAP request: physical range wrapping past 2^64 -> RANGE", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0, 0x1fff, 0xfffffffffffff000ULL, RW, .expect = S_RANGE) } },
	{ "MAP request (device): bypass domain -> INVAL", V_DEFAULT,
	  { ATT(1, EP_A, .flags = BYP, .expect = S_OK), MAP(1, 0, 0xfff, 0, RW, .expect = S_INVAL) } },
	{ "Property RESV_MEM (device): MAP overlapping the MSI region -> INVAL", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0xfee00000, 0xfee00fff, 0, RW, .expect = S_INVAL),
	    MAP(1, 0xfe000000, 0xfeffffff, 0, RW, .expect = S_INVAL),
	    MAP(1, 0, UINT64_MAX, 0, RW, .expect = S_INVAL),
	    MAP(1, 0xfed00000, 0xfedfffff, 0, RW, .expect = S_OK),
	    MAP(1, 0xfef00000, 0xfef00fff, 0, RW, .expect = S_OK) } },
	{ "Property RESV_MEM (device): MAP overlapping a backend region of an attached endpoint -> INVAL", V_DEFAULT,
	  { ATT(1, EP_C, .expect = S_OK), MAP(1, EP_C_RESV_END - 0xfff, EP_C_RESV_END, 0, RW, .expect = S_INVAL),
	    MAP(1, EP_C_RESV_END + 1, EP_C_RESV_END + 0x1000, 0, RW, .expect = S_OK) } },
	{ "MAP: too many mappings -> NOMEM", V_SMALL,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0, 0xfff, 0, RW, .expect = S_OK),
	    MAP(1, 0x1000, 0x1fff, 0, RW, .expect = S_OK), MAP(1, 0x2000, 0x2fff, 0, RW, .expect = S_OK),
	    MAP(1, 0x3000, 0x3fff, 0, RW, .expect = S_NOMEM), UNMAP(1, 0, 0xfff, .expect = S_OK),
	    MAP(1, 0x3000, 0x3fff, 0, RW, .expect = S_OK) } },
	{ "MAP request: only available when MAP_UNMAP negotiated -> UNSUPP", V_NO_MAP_UNMAP_NEG,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0, 0xfff, 0, RW, .expect = S_UNSUPP),
	    UNMAP(1, 0, 0xfff, .expect = S_UNSUPP) } },
	{ "Device operations: MAP domain outside domain_range -> RANGE", V_DEFAULT,
	  { MAP(0x10000, 0, 0xfff, 0, RW, .expect = S_RANGE) } },
	/* ---- UNMAP ---- */
	{ "UNMAP request (device): range not covered by a mapping -> OK (example 1)", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), UNMAP(1, 0, 4, .expect = S_OK), UNMAP(1, 0, UINT64_MAX, .expect = S_OK) } },
	{ "UNMAP request (device): would split a mapping -> RANGE, nothing removed (example 4)", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0, 0x1fff, 0, RW, .expect = S_OK),
	    UNMAP(1, 0, 0xfff, .expect = S_RANGE), UNMAP(1, 0x1000, 0x1fff, .expect = S_RANGE),
	    UNMAP(1, 0x800, 0x3fff, .expect = S_RANGE),
	    MAP(1, 0, 0xfff, 0, RW, .expect = S_INVAL), UNMAP(1, 0, 0x1fff, .expect = S_OK),
	    MAP(1, 0, 0xfff, 0, RW, .expect = S_OK) } },
	{ "UNMAP request: straddling split fails even when another mapping is covered", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0, 0xfff, 0, RW, .expect = S_OK),
	    MAP(1, 0x1000, 0x2fff, 0, RW, .expect = S_OK), UNMAP(1, 0, 0x1fff, .expect = S_RANGE),
	    MAP(1, 0, 0xfff, 0, RW, .expect = S_INVAL) } },
	{ "UNMAP request: several mappings and gaps (examples 3, 5, 7)", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0, 0xfff, 0, RW, .expect = S_OK),
	    MAP(1, 0x1000, 0x1fff, 0, RW, .expect = S_OK), MAP(1, 0x5000, 0x5fff, 0, RW, .expect = S_OK),
	    UNMAP(1, 0, 0xfff, .expect = S_OK), MAP(1, 0, 0xfff, 0, RW, .expect = S_OK),
	    UNMAP(1, 0, 0x5fff, .expect = S_OK), MAP(1, 0, 0x5fff, 0, RW, .expect = S_OK) } },
	{ "UNMAP request: full 64-bit range unmap [0, 2^64-1] -> OK", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0, 0xfff, 0, RW, .expect = S_OK),
	    MAP(1, 0xfffffffffffff000ULL, UINT64_MAX, 0, RW, .expect = S_OK),
	    UNMAP(1, 0, UINT64_MAX, .expect = S_OK), MAP(1, 0, 0xfff, 0, RW, .expect = S_OK),
	    MAP(1, 0xfffffffffffff000ULL, UINT64_MAX, 0, RW, .expect = S_OK) } },
	{ "UNMAP request (device): domain does not exist -> NOENT", V_DEFAULT,
	  { UNMAP(3, 0, 0xfff, .expect = S_NOENT) } },
	{ "UNMAP request (device): reserved not zero -> INVAL (not performed)", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), MAP(1, 0, 0xfff, 0, RW, .expect = S_OK),
	    UNMAP(1, 0, 0xfff, .resv = 1, .expect = S_INVAL), MAP(1, 0, 0xfff, 0, RW, .expect = S_INVAL) } },
	{ "UNMAP request (device): bypass domain -> INVAL", V_DEFAULT,
	  { ATT(1, EP_A, .flags = BYP, .expect = S_OK), UNMAP(1, 0, 0xfff, .expect = S_INVAL) } },
	{ "UNMAP: virt_end below virt_start -> INVAL", V_DEFAULT,
	  { ATT(1, EP_A, .expect = S_OK), UNMAP(1, 0x2000, 0x1000, .expect = S_INVAL) } },
	{ "Device operations: UNMAP outside input_range -> RANGE", V_RANGES,
	  { ATT(1, EP_A, .expect = S_OK), UNMAP(1, 0, UINT64_MAX, .expect = S_RANGE),
	    UNMAP(1, 0, 0xffffffffffffULL, .expect = S_OK) } },
	/* ---- PROBE ---- */
	{ "PROBE request: known endpoint -> OK", V_DEFAULT, { PROBE(EP_A, .expect = S_OK) } },
	{ "PROBE request (device): endpoint does not exist -> NOENT", V_DEFAULT,
	  { PROBE(0x999, .expect = S_NOENT) } },
	{ "PROBE request (device): properties smaller than probe_size -> INVAL", V_DEFAULT,
	  { PROBE(EP_A, .in_delta = -8, .expect = S_INVAL), PROBE(EP_A, .in_delta = -(int)512, .expect = S_INVAL) } },
	{ "PROBE request: properties larger than probe_size are accepted", V_DEFAULT,
	  { PROBE(EP_A, .in_delta = 64, .expect = S_OK) } },
	{ "PROBE request (device): reserved is ignored", V_DEFAULT,
	  { PROBE(EP_A, .resv = 0xff, .expect = S_OK) } },
	{ "PROBE request (device): PROBE not offered -> not written, used length 0", V_NO_PROBE,
	  { PROBE(EP_A, .expect = UNWRITTEN) } },
	/* ---- Framing ---- */
	{ "Device operations: unrecognised type -> not written, used length 0", V_DEFAULT,
	  { { .type = 0, .expect = UNWRITTEN }, { .type = 6, .expect = UNWRITTEN },
	    { .type = 0xff, .expect = UNWRITTEN } } },
	{ "Device operations (device): head reserved is ignored", V_DEFAULT,
	  { ATT(1, EP_A, .head_resv = 0x5a, .expect = S_OK) } },
	{ "Device operations: tail cannot be found (writable < 4) -> not written", V_DEFAULT,
	  { ATT(1, EP_A, .in_delta = -1, .expect = UNWRITTEN), ATT(1, EP_A, .in_delta = -4, .expect = UNWRITTEN),
	    PROBE(EP_A, .in_delta = -(512 + 1), .expect = UNWRITTEN),
	    /* and nothing was done */
	    MAP(1, 0, 0xfff, 0, RW, .expect = S_NOENT) } },
	{ "Device operations: readable part shorter than the head -> IOERR", V_DEFAULT,
	  { ATT(1, EP_A, .out_delta = -17, .expect = S_IOERR), ATT(1, EP_A, .out_delta = -20, .expect = S_IOERR) } },
	{ "Device operations: readable part too short for the request -> IOERR, nothing done", V_DEFAULT,
	  { ATT(1, EP_A, .out_delta = -1, .expect = S_IOERR), ATT(1, EP_A, .expect = S_OK),
	    MAP(1, 0, 0xfff, 0, RW, .out_delta = -1, .expect = S_IOERR),
	    MAP(1, 0, 0xfff, 0, RW, .out_delta = -4, .expect = S_IOERR),
	    UNMAP(1, 0, 0xfff, .out_delta = -4, .expect = S_IOERR),
	    DET(1, EP_A, .out_delta = -1, .expect = S_IOERR),
	    PROBE(EP_A, .out_delta = -1, .expect = S_IOERR),
	    MAP(1, 0, 0xfff, 0, RW, .expect = S_OK) } },
	{ "Device operations: longer readable part is accepted (extra ignored)", V_DEFAULT,
	  { ATT(1, EP_A, .out_delta = 16, .expect = S_OK), MAP(1, 0, 0xfff, 0, RW, .out_delta = 3, .expect = S_OK),
	    PROBE(EP_A, .out_delta = 100, .expect = S_OK) } },
	{ "Device operations: longer writable part, tail at its end", V_DEFAULT,
	  { ATT(1, EP_A, .in_delta = 8, .expect = S_OK), MAP(1, 0, 0xfff, 0, RW, .in_delta = 1, .expect = S_OK),
	    UNMAP(1, 0, 0xfff, .in_delta = 100, .expect = S_OK) } },
};

static struct viommu *make(enum variant var)
{
	struct viommu_params p;
	viommu_params_default(&p);
	if (var == V_NO_PROBE)
		p.features &= ~(1ULL << VIRTIO_IOMMU_F_PROBE);
	if (var == V_SMALL) {
		p.max_domains = 2;
		p.max_mappings = 3;
	}
	if (var == V_RANGES) {
		p.input_end = (1ULL << 48) - 1;
		p.domain_start = 1;
		p.domain_end = 100;
	}
	if (var == V_NO_RANGE_FEATURES)
		p.features &= ~(1ULL << VIRTIO_IOMMU_F_INPUT_RANGE | 1ULL << VIRTIO_IOMMU_F_DOMAIN_RANGE);
	struct viommu *v = viommu_new(&p);
	assert_non_null(v);
	uint64_t drv = p.features;
	if (var == V_NO_BYPASS_NEG)
		drv &= ~(1ULL << VIRTIO_IOMMU_F_BYPASS_CONFIG);
	if (var == V_NO_MAP_UNMAP_NEG)
		drv &= ~(1ULL << VIRTIO_IOMMU_F_MAP_UNMAP);
	viommu_set_driver_features(v, drv);
	assert_int_equal(viommu_add_endpoint(v, EP_A, NULL), 0);
	assert_int_equal(viommu_add_endpoint(v, EP_B, NULL), 0);
	assert_int_equal(viommu_add_endpoint(v, EP_C, NULL), 0);
	assert_int_equal(viommu_add_endpoint(v, EP_C, NULL), -EEXIST);
	assert_int_equal(viommu_endpoint_add_resv(v, EP_C, EP_C_RESV_START, EP_C_RESV_END,
						  VIRTIO_IOMMU_RESV_MEM_T_RESERVED), 0);
	return v;
}

static size_t req_size(uint8_t type)
{
	switch (type) {
	case T_ATTACH:
		return offsetof(struct virtio_iommu_req_attach, tail);
	case T_DETACH:
		return offsetof(struct virtio_iommu_req_detach, tail);
	case T_MAP:
		return offsetof(struct virtio_iommu_req_map, tail);
	case T_UNMAP:
		return offsetof(struct virtio_iommu_req_unmap, tail);
	case T_PROBE:
		return sizeof(struct virtio_iommu_req_probe);
	default:
		return sizeof(struct virtio_iommu_req_head) + 16;
	}
}

/* Build and send one request; check status, used length and tail. Returns
 * the handler's result. `in_out` (optional) receives the writable part. */
static int send_op(struct viommu *v, const struct op *o, uint8_t **in_out, size_t *in_len_out)
{
	uint8_t raw[256];
	memset(raw, 0, sizeof(raw));
	struct virtio_iommu_req_head *h = (void *)raw;
	h->type = o->type;
	h->reserved[0] = o->head_resv;
	switch (o->type) {
	case T_ATTACH: {
		struct virtio_iommu_req_attach *r = (void *)raw;
		r->domain = o->domain;
		r->endpoint = o->endpoint;
		r->flags = o->flags;
		r->reserved[0] = o->resv;
		break;
	}
	case T_DETACH: {
		struct virtio_iommu_req_detach *r = (void *)raw;
		r->domain = o->domain;
		r->endpoint = o->endpoint;
		r->reserved[0] = o->resv;
		break;
	}
	case T_MAP: {
		struct virtio_iommu_req_map *r = (void *)raw;
		r->domain = o->domain;
		r->virt_start = o->vs;
		r->virt_end = o->ve;
		r->phys_start = o->ps;
		r->flags = o->flags;
		break;
	}
	case T_UNMAP: {
		struct virtio_iommu_req_unmap *r = (void *)raw;
		r->domain = o->domain;
		r->virt_start = o->vs;
		r->virt_end = o->ve;
		r->reserved[0] = o->resv;
		break;
	}
	case T_PROBE: {
		struct virtio_iommu_req_probe *r = (void *)raw;
		r->endpoint = o->endpoint;
		r->reserved[0] = o->resv;
		break;
	}
	}
	size_t out_len = req_size(o->type) + o->out_delta;
	struct virtio_iommu_config c;
	viommu_get_config(v, &c);
	size_t in_len = 4 + (o->type == T_PROBE ? c.probe_size : 0) + o->in_delta;
	/* Exact-size buffers; a zero-length one still gets a valid pointer. */
	uint8_t *ob = malloc(out_len + 1), *ib = malloc(in_len + 1);
	memcpy(ob, raw, out_len);
	memset(ib, 0xAA, in_len);
	/* Split the readable part in two segments, the writable in two. */
	struct iovec out[2] = { { ob, out_len / 2 }, { ob + out_len / 2, out_len - out_len / 2 } };
	struct iovec in[2] = { { ib, in_len / 3 }, { ib + in_len / 3, in_len - in_len / 3 } };
	uint32_t written = 12345;
	int r = viommu_handle_request(v, out, 2, in, 2, &written);
	if (r == UNWRITTEN) {
		assert_int_equal(written, 0);
		for (size_t i = 0; i < in_len; i++)
			assert_int_equal(ib[i], 0xAA);
	} else {
		assert_int_equal(written, in_len);
		struct virtio_iommu_req_tail t;
		memcpy(&t, ib + in_len - 4, 4);
		assert_int_equal(t.status, r);
		/* "SHOULD set field reserved of the tail to zero" */
		assert_int_equal(t.reserved[0] | t.reserved[1] | t.reserved[2], 0);
	}
	free(ob);
	if (in_out) {
		*in_out = ib;
		*in_len_out = in_len;
	} else {
		free(ib);
	}
	return r;
}

static void test_table(void **st)
{
	unsigned failures = 0;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *row = &rows[i];
		struct viommu *v = make(row->var);
		for (unsigned k = 0; k < MAXOPS && row->ops[k].type | row->ops[k].expect; k++) {
			int r = send_op(v, &row->ops[k], NULL, NULL);
			if (r != row->ops[k].expect) {
				print_error("FAIL [%s] request #%u (type %u): status %d, expected %d\n",
					    row->name, k, row->ops[k].type, r, row->ops[k].expect);
				failures++;
			}
		}
		/* Unknown type rows have type 0 with expect -1: handled above
		 * by the | in the loop condition. */
		viommu_free(v);
	}
	print_message("%zu spec rows checked\n", sizeof(rows) / sizeof(rows[0]));
	assert_int_equal(failures, 0);
}

/* "PROBE request" / "Property RESV_MEM": the MSI doorbell first, then the
 * endpoint's extra regions, each (length + 4) bytes after the previous one,
 * the rest of probe_size zeroed. */
static void test_probe_properties(void **st)
{
	struct viommu *v = make(V_DEFAULT);
	struct virtio_iommu_config c;
	viommu_get_config(v, &c);
	assert_true(c.probe_size >= 3 * sizeof(struct virtio_iommu_probe_resv_mem));
	/* A backend hole overlapping the MSI window is clipped around it. */
	assert_int_equal(viommu_endpoint_add_resv(v, EP_C, 0xfe000000, 0xfeffffff,
						  VIRTIO_IOMMU_RESV_MEM_T_RESERVED), 0);
	struct op o = PROBE(EP_C, .in_delta = 32, .expect = S_OK);
	uint8_t *ib;
	size_t in_len;
	assert_int_equal(send_op(v, &o, &ib, &in_len), S_OK);
	struct virtio_iommu_probe_resv_mem p[4];
	memcpy(p, ib, sizeof(p));
	struct {
		uint8_t subtype;
		uint64_t start, end;
	} want[4] = {
		{ VIRTIO_IOMMU_RESV_MEM_T_MSI, 0xfee00000, 0xfeefffff },
		{ VIRTIO_IOMMU_RESV_MEM_T_RESERVED, EP_C_RESV_START, EP_C_RESV_END },
		{ VIRTIO_IOMMU_RESV_MEM_T_RESERVED, 0xfe000000, 0xfedfffff },
		{ VIRTIO_IOMMU_RESV_MEM_T_RESERVED, 0xfef00000, 0xfeffffff },
	};
	for (int i = 0; i < 4; i++) {
		assert_int_equal(p[i].head.type, VIRTIO_IOMMU_PROBE_T_RESV_MEM);
		/* "MUST write the size of a property without the header" */
		assert_int_equal(p[i].head.length, sizeof(p[i]) - sizeof(p[i].head));
		assert_int_equal(p[i].subtype, want[i].subtype);
		assert_int_equal(p[i].reserved[0] | p[i].reserved[1] | p[i].reserved[2], 0);
		assert_int_equal(p[i].start, want[i].start);
		assert_int_equal(p[i].end, want[i].end);
	}
	/* "fill the remaining bytes of properties with zeroes" */
	for (size_t i = sizeof(p); i < in_len - 4; i++)
		assert_int_equal(ib[i], 0);
	free(ib);

	/* An endpoint with no extra region: exactly one MSI property. */
	o.endpoint = EP_A;
	o.in_delta = 0;
	assert_int_equal(send_op(v, &o, &ib, &in_len), S_OK);
	assert_int_equal(in_len, c.probe_size + 4);
	memcpy(p, ib, sizeof(p[0]));
	assert_int_equal(p[0].subtype, VIRTIO_IOMMU_RESV_MEM_T_MSI);
	for (size_t i = sizeof(p[0]); i < in_len - 4; i++)
		assert_int_equal(ib[i], 0);
	free(ib);

	/* Too small: "SHOULD NOT write any property" -> INVAL. */
	o.in_delta = -24;
	assert_int_equal(send_op(v, &o, &ib, &in_len), S_INVAL);
	for (size_t i = 0; i < in_len - 4; i++)
		assert_int_equal(ib[i], 0);
	free(ib);
	viommu_free(v);
}

/* "Device configuration layout". */
static void test_config(void **st)
{
	struct viommu *v = make(V_DEFAULT);
	struct virtio_iommu_config c;
	viommu_get_config(v, &c);
	/* "MUST set at least one bit in page_size_mask" */
	assert_true(c.page_size_mask != 0);
	assert_int_equal(c.page_size_mask & -c.page_size_mask, 0x1000);
	assert_int_equal(c.input_range.start, 0);
	assert_true(c.input_range.end == UINT64_MAX);
	assert_int_equal(c.domain_range.start, 0);
	assert_int_equal(c.domain_range.end, 0xffff);
	assert_int_equal(c.bypass, 0);
	assert_int_equal(sizeof(c), 40);

	/* Byte-wise reads match the struct; beyond it reads zero. */
	uint8_t b[48];
	for (unsigned i = 0; i < sizeof(b); i++)
		viommu_config_read(v, i, &b[i], 1);
	assert_memory_equal(b, &c, sizeof(c));
	for (unsigned i = sizeof(c); i < sizeof(b); i++)
		assert_int_equal(b[i], 0);

	/* Only bypass is writable, only with BYPASS_CONFIG, bit 0 kept. */
	uint64_t junk = ~0ULL;
	viommu_config_write(v, 0, &junk, 8);
	viommu_config_write(v, 8, &junk, 8);
	viommu_get_config(v, &c);
	assert_int_equal(c.page_size_mask & -c.page_size_mask, 0x1000);
	assert_true(c.input_range.start == 0);
	uint32_t w = 0xffffffff;
	viommu_config_write(v, offsetof(struct virtio_iommu_config, bypass), &w, 4);
	viommu_get_config(v, &c);
	assert_int_equal(c.bypass, 1);	/* "MUST NOT present a value different than 0 or 1" */
	assert_int_equal(c.reserved[0] | c.reserved[1] | c.reserved[2], 0);
	uint8_t zero = 0;
	viommu_config_write(v, offsetof(struct virtio_iommu_config, bypass), &zero, 1);
	viommu_get_config(v, &c);
	assert_int_equal(c.bypass, 0);
	/* a 4-byte write at probe_size covering bypass */
	uint64_t eight = 0x0000000100000000ULL;
	viommu_config_write(v, offsetof(struct virtio_iommu_config, probe_size), &eight, 8);
	viommu_get_config(v, &c);
	assert_int_equal(c.bypass, 1);
	assert_int_equal(c.probe_size, 512);

	/* Not negotiated: the write is ignored. */
	viommu_set_driver_features(v, viommu_device_features(v) & ~(1ULL << VIRTIO_IOMMU_F_BYPASS_CONFIG));
	viommu_config_write(v, offsetof(struct virtio_iommu_config, bypass), &zero, 1);
	viommu_get_config(v, &c);
	assert_int_equal(c.bypass, 1);
	/* "bypass SHOULD NOT change on device reset, but SHOULD be restored
	 * to its initial value on system reset" */
	viommu_reset(v);
	viommu_get_config(v, &c);
	assert_int_equal(c.bypass, 1);
	viommu_system_reset(v);
	viommu_get_config(v, &c);
	assert_int_equal(c.bypass, 0);
	viommu_free(v);

	/* The VMM may start with bypass = 1 ("MAY initialize bypass to 1"). */
	struct viommu_params p;
	viommu_params_default(&p);
	p.bypass = 1;
	v = viommu_new(&p);
	viommu_get_config(v, &c);
	assert_int_equal(c.bypass, 1);
	/* No PROBE offered: probe_size reads 0. */
	viommu_free(v);
	p.features &= ~(1ULL << VIRTIO_IOMMU_F_PROBE);
	v = viommu_new(&p);
	viommu_get_config(v, &c);
	assert_int_equal(c.probe_size, 0);
	/* "Feature bits (device)": MAP_UNMAP offered, not both BYPASS kinds */
	uint64_t f = viommu_device_features(v);
	assert_true(f & (1ULL << VIRTIO_IOMMU_F_MAP_UNMAP));
	assert_false((f & (1ULL << VIRTIO_IOMMU_F_BYPASS)) && (f & (1ULL << VIRTIO_IOMMU_F_BYPASS_CONFIG)));
	viommu_free(v);
}

/* Backend restrictions narrow what the driver sees. */
static void test_restrict(void **st)
{
	struct viommu *v = make(V_DEFAULT);
	struct virtio_iommu_config c;
	assert_int_equal(viommu_restrict(v, 0x40201000ULL, 0x1000, (1ULL << 39) - 1), 0);
	viommu_get_config(v, &c);
	assert_int_equal(c.page_size_mask, 0x40201000ULL);
	assert_int_equal(c.input_range.start, 0x1000);
	assert_int_equal(c.input_range.end, (1ULL << 39) - 1);
	/* A coarser granule wins. */
	assert_int_equal(viommu_restrict(v, ~0xffffULL, 0, UINT64_MAX), 0);
	viommu_get_config(v, &c);
	assert_int_equal(c.page_size_mask & -c.page_size_mask, 0x10000);
	assert_int_equal(viommu_restrict(v, 0x1000, 1ULL << 40, UINT64_MAX), -EINVAL);
	/* MAP now checks the 64 KiB granule and the narrowed range. */
	struct op ops[] = {
		ATT(1, EP_A, .expect = S_OK),
		MAP(1, 0x10000, 0x10fff, 0, RW, .expect = S_RANGE),
		MAP(1, 0x10000, 0x1ffff, 0, RW, .expect = S_OK),
		MAP(1, 0, 0xffff, 0, RW, .expect = S_RANGE),
		MAP(1, 1ULL << 39, (1ULL << 39) + 0xffff, 0, RW, .expect = S_RANGE),
	};
	for (unsigned i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		assert_int_equal(send_op(v, &ops[i], NULL, NULL), ops[i].expect);
	viommu_free(v);
}

/* ---- A recording backend ---- */

struct mock_be {
	char log[4096];
	int fail_map, fail_attach, fail_create, fail_unmap, fail_detach;
	int domains_live;
};

static void logf_(struct mock_be *b, const char *fmt, ...)
{
	va_list ap;
	size_t n = strlen(b->log);
	va_start(ap, fmt);
	vsnprintf(b->log + n, sizeof(b->log) - n, fmt, ap);
	va_end(ap);
}

static int mb_create(void *be, uint32_t domain, bool bypass, void **dom_priv)
{
	struct mock_be *b = be;
	if (b->fail_create)
		return b->fail_create;
	*dom_priv = (void *)(uintptr_t)(0x1000 + domain);
	b->domains_live++;
	logf_(b, "create %u%s;", domain, bypass ? " bypass" : "");
	return 0;
}

static void mb_destroy(void *be, uint32_t domain, void *dom_priv)
{
	struct mock_be *b = be;
	assert_int_equal((uintptr_t)dom_priv, 0x1000 + domain);
	b->domains_live--;
	logf_(b, "destroy %u;", domain);
}

static int mb_attach(void *be, uint32_t ep, void *ep_priv, uint32_t domain, void *dom_priv)
{
	struct mock_be *b = be;
	assert_int_equal((uintptr_t)dom_priv, 0x1000 + domain);
	if (b->fail_attach)
		return b->fail_attach;
	logf_(b, "attach %x %u;", ep, domain);
	return 0;
}

static int mb_detach(void *be, uint32_t ep, void *ep_priv, bool bypass)
{
	struct mock_be *b = be;
	if (b->fail_detach)
		return b->fail_detach;
	logf_(be, "detach %x%s;", ep, bypass ? " bypass" : "");
	return 0;
}

static int mb_map(void *be, uint32_t domain, void *dom_priv, uint64_t iova, uint64_t last,
		  uint64_t gpa, uint32_t flags)
{
	struct mock_be *b = be;
	if (b->fail_map)
		return b->fail_map;
	logf_(b, "map %u %" PRIx64 "-%" PRIx64 ">%" PRIx64 ";", domain, iova, last, gpa);
	return 0;
}

static int mb_unmap(void *be, uint32_t domain, void *dom_priv, uint64_t iova, uint64_t last)
{
	struct mock_be *b = be;
	if (b->fail_unmap)
		return b->fail_unmap;
	logf_(b, "unmap %u %" PRIx64 "-%" PRIx64 ";", domain, iova, last);
	return 0;
}

static const struct viommu_backend_ops mock_ops = {
	.domain_create = mb_create, .domain_destroy = mb_destroy, .attach = mb_attach,
	.detach = mb_detach, .map = mb_map, .unmap = mb_unmap,
};

#define EP_PT 0x20	/* a passthrough endpoint */

static int sendq(struct viommu *v, struct op o)
{
	return send_op(v, &o, NULL, NULL);
}

static void test_backend_mirror(void **st)
{
	struct mock_be b = { 0 };
	struct viommu *v = make(V_DEFAULT);
	viommu_set_backend(v, &mock_ops, &b);
	assert_int_equal(viommu_add_endpoint(v, EP_PT, (void *)0x1), 0);

	/* Emulated endpoints only: the backend hears nothing. */
	assert_int_equal(sendq(v, (struct op)ATT(1, EP_A)), S_OK);
	assert_int_equal(sendq(v, (struct op)MAP(1, 0x1000, 0x1fff, 0x5000, RW)), S_OK);
	assert_string_equal(b.log, "");
	/* First passthrough endpoint: domain created, mappings replayed. */
	assert_int_equal(sendq(v, (struct op)ATT(1, EP_PT)), S_OK);
	assert_string_equal(b.log, "create 1;map 1 1000-1fff>5000;attach 20 1;");
	b.log[0] = 0;
	assert_int_equal(sendq(v, (struct op)MAP(1, 0x2000, 0x3fff, 0x8000, RW)), S_OK);
	assert_int_equal(sendq(v, (struct op)UNMAP(1, 0, 0x1fff)), S_OK);
	/* Nothing there: no backend call. Split: refused before the backend. */
	assert_int_equal(sendq(v, (struct op)UNMAP(1, 0x10000, 0x1ffff)), S_OK);
	assert_int_equal(sendq(v, (struct op)UNMAP(1, 0x2000, 0x2fff)), S_RANGE);
	assert_string_equal(b.log, "map 1 2000-3fff>8000;unmap 1 0-1fff;");
	b.log[0] = 0;
	/* Backend failures become statuses; the model stays consistent. */
	b.fail_map = -EFAULT;
	assert_int_equal(sendq(v, (struct op)MAP(1, 0x10000, 0x10fff, 0, RW)), VIRTIO_IOMMU_S_FAULT);
	b.fail_map = -EIO;
	assert_int_equal(sendq(v, (struct op)MAP(1, 0x10000, 0x10fff, 0, RW)), VIRTIO_IOMMU_S_DEVERR);
	b.fail_map = -ENOMEM;
	assert_int_equal(sendq(v, (struct op)MAP(1, 0x10000, 0x10fff, 0, RW)), S_NOMEM);
	b.fail_map = 0;
	assert_int_equal(sendq(v, (struct op)MAP(1, 0x10000, 0x10fff, 0, RW)), S_OK);
	b.fail_unmap = -EIO;
	assert_int_equal(sendq(v, (struct op)UNMAP(1, 0x10000, 0x10fff)), VIRTIO_IOMMU_S_DEVERR);
	assert_int_equal(sendq(v, (struct op)MAP(1, 0x10000, 0x10fff, 0, RW)), S_INVAL);	/* still mapped */
	b.fail_unmap = 0;
	b.log[0] = 0;
	/* Move the passthrough endpoint: the backend attach replaces. */
	assert_int_equal(sendq(v, (struct op)ATT(2, EP_PT)), S_OK);
	assert_string_equal(b.log, "create 2;attach 20 2;");
	b.log[0] = 0;
	/* Domain 1 still has EP_A: its backend object stays until it dies. */
	assert_int_equal(sendq(v, (struct op)DET(1, EP_A)), S_OK);
	assert_string_equal(b.log, "destroy 1;");
	b.log[0] = 0;
	/* A detach the backend cannot carry out: DEVERR, still attached. */
	b.fail_detach = -EIO;
	assert_int_equal(sendq(v, (struct op)DET(2, EP_PT)), VIRTIO_IOMMU_S_DEVERR);
	assert_string_equal(b.log, "");
	assert_int_equal(sendq(v, (struct op)MAP(2, 0, 0xfff, 0, RW)), S_OK);	/* domain lives */
	assert_int_equal(sendq(v, (struct op)UNMAP(2, 0, 0xfff)), S_OK);
	b.fail_detach = 0;
	b.log[0] = 0;
	assert_int_equal(sendq(v, (struct op)DET(2, EP_PT)), S_OK);
	assert_string_equal(b.log, "detach 20;destroy 2;");
	b.log[0] = 0;
	/* Attach failure: the new domain does not survive, status mapped. */
	b.fail_attach = -EOPNOTSUPP;
	assert_int_equal(sendq(v, (struct op)ATT(3, EP_PT)), S_UNSUPP);
	assert_int_equal(sendq(v, (struct op)MAP(3, 0, 0xfff, 0, RW)), S_NOENT);
	assert_int_equal(b.domains_live, 0);
	b.fail_attach = 0;
	b.fail_create = -ENOSPC;
	assert_int_equal(sendq(v, (struct op)ATT(3, EP_PT)), S_NOMEM);
	b.fail_create = 0;
	/* Bypass domain; bypass config changes reach unattached endpoints. */
	b.log[0] = 0;
	assert_int_equal(sendq(v, (struct op)ATT(4, EP_PT, .flags = BYP)), S_OK);
	assert_string_equal(b.log, "create 4 bypass;attach 20 4;");
	b.log[0] = 0;
	viommu_reset(v);
	assert_string_equal(b.log, "detach 20;destroy 4;");
	b.log[0] = 0;
	uint8_t one = 1;
	assert_int_equal(viommu_config_write(v, offsetof(struct virtio_iommu_config, bypass), &one, 1), 0);
	assert_string_equal(b.log, "detach 20 bypass;");
	assert_int_equal(b.domains_live, 0);
	/* Clearing bypass when the backend cannot block the endpoint: said,
	 * so that the device asks for a reset, and remembered: the same
	 * write again, and every reset, try again until the backend
	 * manages. */
	const uint32_t boff = offsetof(struct virtio_iommu_config, bypass);
	uint8_t zero = 0;
	b.fail_detach = -EIO;
	assert_int_equal(viommu_config_write(v, boff, &zero, 1), -EIO);
	assert_true(viommu_unblocked_endpoints(v));
	assert_int_equal(viommu_config_write(v, boff, &zero, 1), -EIO);
	viommu_reset(v);
	assert_true(viommu_unblocked_endpoints(v));
	b.fail_detach = 0;
	b.log[0] = 0;
	viommu_reset(v);
	assert_string_equal(b.log, "detach 20;");
	assert_false(viommu_unblocked_endpoints(v));
	b.log[0] = 0;
	assert_int_equal(viommu_config_write(v, boff, &zero, 1), 0);	/* nothing to do */
	assert_string_equal(b.log, "");
	/* Setting bypass where the backend can do neither leaves the
	 * endpoint blocked: safe, not said. */
	b.fail_detach = -EIO;
	assert_int_equal(viommu_config_write(v, boff, &one, 1), 0);
	assert_false(viommu_unblocked_endpoints(v));
	b.fail_detach = 0;
	b.log[0] = 0;
	assert_int_equal(viommu_config_write(v, boff, &zero, 1), 0);
	assert_int_equal(viommu_config_write(v, boff, &one, 1), 0);
	assert_string_equal(b.log, "detach 20;detach 20 bypass;");
	/* Joining a domain that has endpoints already: whatever the backend
	 * fails at (here copying the domain's mappings), the answer is
	 * UNSUPP, and the domain goes on as it was. */
	assert_int_equal(sendq(v, (struct op)ATT(5, EP_A)), S_OK);
	assert_int_equal(sendq(v, (struct op)MAP(5, 0, 0xfff, 0x5000, RW)), S_OK);
	b.fail_map = -EFAULT;
	assert_int_equal(sendq(v, (struct op)ATT(5, EP_PT)), S_UNSUPP);
	b.fail_map = 0;
	assert_int_equal(b.domains_live, 0);
	/* (here the attach itself: the host object made for it goes too) */
	b.fail_attach = -EIO;
	assert_int_equal(sendq(v, (struct op)ATT(5, EP_PT)), S_UNSUPP);
	b.fail_attach = 0;
	assert_int_equal(b.domains_live, 0);
	assert_int_equal(sendq(v, (struct op)UNMAP(5, 0, 0xfff)), S_OK);
	assert_int_equal(sendq(v, (struct op)DET(5, EP_A)), S_OK);
	/* A reset whose detach the backend cannot carry out: the domain is
	 * kept (its host object cannot go) but emptied, host side too. */
	assert_int_equal(sendq(v, (struct op)ATT(6, EP_PT)), S_OK);
	assert_int_equal(sendq(v, (struct op)MAP(6, 0x4000, 0x4fff, 0x9000, RW)), S_OK);
	b.log[0] = 0;
	b.fail_detach = -EIO;
	viommu_reset(v);
	b.fail_detach = 0;
	assert_string_equal(b.log, "unmap 6 0-ffffffffffffffff;");
	assert_int_equal(b.domains_live, 1);
	struct viommu_stats vs;
	viommu_get_stats(v, &vs);
	assert_int_equal(vs.mappings, 0);
	/* The guest's next ATTACH moves it; the kept domain goes. */
	b.log[0] = 0;
	assert_int_equal(sendq(v, (struct op)ATT(7, EP_PT)), S_OK);
	assert_string_equal(b.log, "create 7;attach 20 7;destroy 6;");
	assert_int_equal(b.domains_live, 1);
	viommu_free(v);
}

/* Counters and the VIOT helpers. */
static void test_stats_and_topology(void **st)
{
	struct viommu *v = make(V_DEFAULT);
	assert_int_equal(sendq(v, (struct op)ATT(1, EP_A)), S_OK);
	assert_int_equal(sendq(v, (struct op)MAP(1, 0, 0xfff, 0, RW)), S_OK);
	assert_int_equal(sendq(v, (struct op)MAP(1, 0, 0xfff, 0, RW)), S_INVAL);
	assert_int_equal(sendq(v, (struct op){ .type = 9, .expect = UNWRITTEN }), UNWRITTEN);
	struct viommu_stats s;
	viommu_get_stats(v, &s);
	assert_int_equal(s.req[T_ATTACH], 1);
	assert_int_equal(s.req[T_MAP], 2);
	assert_int_equal(s.req[0], 1);
	assert_int_equal(s.status[S_OK], 2);
	assert_int_equal(s.status[S_INVAL], 1);
	assert_int_equal(s.unwritten, 1);
	assert_int_equal(s.domains, 1);
	assert_int_equal(s.mappings, 1);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	viommu_dump_stats(v, f);
	fclose(f);
	assert_non_null(strstr(buf, "map 2"));
	free(buf);

	viommu_set_bdf(v, 0x20);
	assert_int_equal(viommu_bdf(v), 0x20);
	assert_int_equal(viommu_add_endpoint(v, 0x09, NULL), 0);
	assert_int_equal(viommu_add_endpoint(v, 0x0a, NULL), 0);
	assert_int_equal(viommu_set_endpoint_id(v, 0x0a, 0x11), 0);
	assert_int_equal(viommu_set_endpoint_id(v, 0x11, EP_A), -EEXIST);
	assert_int_equal(viommu_set_endpoint_id(v, 0x77, 0x78), -ENOENT);
	/* IDs: 0x08 0x09 0x10 0x11 0x18 -> [8-9] [0x10-0x11] [0x18] */
	struct acpi_pci_endpoint_range r[4];
	unsigned n = viommu_pci_ranges(v, r, 4);
	assert_int_equal(n, 3);
	assert_int_equal(r[0].bdf_start, 8);
	assert_int_equal(r[0].bdf_end, 9);
	assert_int_equal(r[1].bdf_start, 0x10);
	assert_int_equal(r[1].bdf_end, 0x11);
	assert_int_equal(r[2].bdf_start, 0x18);
	assert_int_equal(r[2].bdf_end, 0x18);
	assert_int_equal(viommu_pci_ranges(v, r, 1), 1);
	uint32_t ids[8];
	assert_int_equal(viommu_endpoint_ids(v, ids, 8), 5);
	viommu_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_probe_properties),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_restrict),
		cmocka_unit_test(test_backend_mirror),
		cmocka_unit_test(test_stats_and_topology),
	};
	return cmocka_run_group_tests_name("viommu", tests, NULL, NULL);
}
