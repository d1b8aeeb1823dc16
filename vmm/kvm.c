/* The KVM virtual machine: VM and vCPU file descriptors, guest RAM, CPUID and
 * MSRs, the in-kernel irqchip, MSI routes with irqfd, ioeventfds, and the vCPU
 * threads that dispatch port-I/O and MMIO exits to the buses. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "evloop.h"
#include "kvm.h"
#include "vm.h"

struct vm the_vm = { .kvm_fd = -1, .vm_fd = -1 };

struct vcpu {
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
};

static __thread struct kvm_run *this_run;

/* ---- memory slots ---- */

static uint32_t next_slot;

int vm_alloc_memslot(void)
{
	return next_slot++;
}

int vm_set_memslot(uint32_t slot, uint64_t gpa, uint64_t size, void *host, bool readonly)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.flags = readonly ? KVM_MEM_READONLY : 0,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)host,
	};

	if (ioctl(the_vm.vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return -errno;
	return 0;
}

/* ---- interrupts ---- */

int vm_irq_line(unsigned gsi, int level)
{
	struct kvm_irq_level l = { .irq = gsi, .level = level };

	if (ioctl(the_vm.vm_fd, KVM_IRQ_LINE, &l) < 0)
		return -errno;
	return 0;
}

int vm_irq_line_shared(unsigned gsi, bool level)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static unsigned asserted[24];	/* devices holding each IOAPIC pin up */
	int r = 0;

	if (gsi >= 24)
		return -EINVAL;
	pthread_mutex_lock(&lock);
	if (level ? asserted[gsi]++ == 0 : asserted[gsi] && --asserted[gsi] == 0) {
		r = vm_irq_line(gsi, level);
		r = r < 0 ? r : 1;
	}
	pthread_mutex_unlock(&lock);
	return r;
}

/* KVM replaces the whole routing table at once, so keep a copy: the default
 * irqchip pins (GSI 0-23) plus one MSI entry per allocated route. */
#define MAX_GSI 1024
static pthread_mutex_t routes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct msi_route *routes[MAX_GSI];
static unsigned next_gsi = 24;

static int routes_commit(void)
{
	struct kvm_irq_routing *t;
	unsigned n = 0;
	int ret = 0;

	t = calloc(1, sizeof(*t) + (24 + 2 + MAX_GSI) * sizeof(t->entries[0]));
	if (!t)
		return -ENOMEM;
	for (unsigned pin = 0; pin < 24; pin++) {
		/* ISA IRQ 0 (the PIT) is wired to IOAPIC pin 2, as the MADT's
		 * interrupt source override says; pin 2 has no other source. */
		if (pin != 2)
			t->entries[n++] = (struct kvm_irq_routing_entry){
				.gsi = pin, .type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC,
					       .pin = pin == 0 ? 2 : pin } };
		/* The PIC serves the legacy ISA lines, except the cascade. */
		if (pin < 16 && pin != 2)
			t->entries[n++] = (struct kvm_irq_routing_entry){
				.gsi = pin, .type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = { .irqchip = pin < 8 ? KVM_IRQCHIP_PIC_MASTER
								  : KVM_IRQCHIP_PIC_SLAVE,
					       .pin = pin % 8 } };
	}
	for (unsigned gsi = 24; gsi < next_gsi; gsi++) {
		struct msi_route *r = routes[gsi];

		if (!r || !r->enabled)
			continue;
		t->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_MSI,
			.u.msi = { .address_lo = (uint32_t)r->addr,
				   .address_hi = (uint32_t)(r->addr >> 32),
				   .data = r->data } };
	}
	t->nr = n;
	if (ioctl(the_vm.vm_fd, KVM_SET_GSI_ROUTING, t) < 0)
		ret = -errno;
	free(t);
	return ret;
}

int msi_route_alloc(struct msi_route *r)
{
	struct kvm_irqfd irqfd = { 0 };
	int ret;

	memset(r, 0, sizeof(*r));
	r->irqfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->irqfd < 0)
		return -errno;
	pthread_mutex_lock(&routes_lock);
	if (next_gsi >= MAX_GSI) {
		pthread_mutex_unlock(&routes_lock);
		close(r->irqfd);
		return -ENOSPC;
	}
	r->gsi = next_gsi++;
	routes[r->gsi] = r;
	pthread_mutex_unlock(&routes_lock);
	irqfd.fd = r->irqfd;
	irqfd.gsi = r->gsi;
	if (ioctl(the_vm.vm_fd, KVM_IRQFD, &irqfd) < 0) {
		ret = -errno;
		pthread_mutex_lock(&routes_lock);
		routes[r->gsi] = NULL;
		/* The number goes back if it was the last handed out (a guest
		 * re-enabling MSI-X retries a failed vector each time). */
		if ((unsigned)r->gsi + 1 == next_gsi)
			next_gsi--;
		pthread_mutex_unlock(&routes_lock);
		close(r->irqfd);
		return ret;
	}
	return 0;
}

int msi_route_update(struct msi_route *r, uint64_t addr, uint32_t data, bool enabled)
{
	int ret = 0;

	pthread_mutex_lock(&routes_lock);
	if (r->addr != addr || r->data != data || r->enabled != enabled) {
		r->addr = addr;
		r->data = data;
		r->enabled = enabled;
		ret = routes_commit();
	}
	pthread_mutex_unlock(&routes_lock);
	return ret;
}

void msi_route_fire(struct msi_route *r)
{
	uint64_t one = 1;

	if (write(r->irqfd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, an interrupt is pending. */
	}
}

static int irqfd_attach(struct msi_route *r, bool on)
{
	struct kvm_irqfd irqfd = { .fd = r->irqfd, .gsi = r->gsi,
				   .flags = on ? 0 : KVM_IRQFD_FLAG_DEASSIGN };

	return ioctl(the_vm.vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}

int msi_route_hold(struct msi_route *r)
{
	if (r->held)
		return 0;
	int ret = irqfd_attach(r, false);
	if (!ret)
		r->held = true;
	return ret;
}

bool msi_route_pending(const struct msi_route *r)
{
	struct pollfd p = { .fd = r->irqfd, .events = POLLIN };

	return r->held && poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

void msi_route_drop_held(struct msi_route *r)
{
	uint64_t cnt;

	if (r->held && read(r->irqfd, &cnt, sizeof(cnt)) < 0) {
		/* EAGAIN: nothing held */
	}
}

int msi_route_release(struct msi_route *r)
{
	uint64_t cnt;

	if (!r->held)
		return 0;
	/* Take what is held, attach, then raise it through KVM (which would
	 * inject for an eventfd signalled before attach, but keep its count
	 * until the next signal or detach). */
	bool pending = read(r->irqfd, &cnt, sizeof(cnt)) == sizeof(cnt) && cnt;
	int ret = irqfd_attach(r, true);
	if (ret) {
		if (pending)	/* stays held, and pending */
			msi_route_fire(r);
		return ret;
	}
	r->held = false;
	if (pending)
		msi_route_fire(r);
	return pending;
}

void msi_route_free(struct msi_route *r)
{
	struct kvm_irqfd irqfd = { .fd = r->irqfd, .gsi = r->gsi,
				   .flags = KVM_IRQFD_FLAG_DEASSIGN };

	if (r->irqfd < 0)
		return;
	if (!r->held)
		ioctl(the_vm.vm_fd, KVM_IRQFD, &irqfd);
	pthread_mutex_lock(&routes_lock);
	routes[r->gsi] = NULL;
	r->enabled = false;
	routes_commit();
	pthread_mutex_unlock(&routes_lock);
	close(r->irqfd);
	r->irqfd = -1;
}

int vm_ioeventfd(uint64_t addr, unsigned len, bool pio, int fd, bool assign)
{
	struct kvm_ioeventfd io = {
		.addr = addr,
		.len = len,
		.fd = fd,
		.flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	if (ioctl(the_vm.vm_fd, KVM_IOEVENTFD, &io) < 0)
		return -errno;
	return 0;
}

/* ---- the KVM-VFIO device ---- */

static int kvm_vfio_fd = -1;

int vm_vfio_file(int fd, bool add)
{
	static bool noted;
	int32_t file = fd;
	struct kvm_device_attr a = {
		.group = KVM_DEV_VFIO_FILE,
		.attr = add ? KVM_DEV_VFIO_FILE_ADD : KVM_DEV_VFIO_FILE_DEL,
		.addr = (uintptr_t)&file,
	};

	if (the_vm.vm_fd < 0)
		return 0;
	if (kvm_vfio_fd < 0) {
		struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VFIO };

		if (!add || noted)
			return 0;
		if (ioctl(the_vm.vm_fd, KVM_CREATE_DEVICE, &cd) < 0) {
			noted = true;
			fprintf(stderr, "vmm: note: KVM has no VFIO device (KVM_CREATE_DEVICE: %s): "
				"passthrough devices work, but KVM is not told of them (guest "
				"memory types and WBINVD as for coherent DMA)\n", strerror(errno));
			return 0;
		}
		kvm_vfio_fd = cd.fd;	/* close-on-exec, as KVM makes it */
	}
	if (ioctl(kvm_vfio_fd, KVM_SET_DEVICE_ATTR, &a) < 0)
		return -errno;
	return 1;
}

/* ---- coalesced port writes ---- */

static struct kvm_coalesced_mmio_ring *coalesced_ring;
static unsigned coalesced_max;
static pthread_mutex_t coalesced_lock = PTHREAD_MUTEX_INITIALIZER;

int vm_coalesce_pio(uint16_t port, unsigned len, bool on)
{
	struct kvm_coalesced_mmio_zone z = { .addr = port, .size = len, .pio = 1 };

	if (!coalesced_ring)
		return -ENOTSUP;
	if (ioctl(the_vm.vm_fd, on ? KVM_REGISTER_COALESCED_MMIO : KVM_UNREGISTER_COALESCED_MMIO,
		  &z) < 0)
		return -errno;
	return 0;
}

void vm_coalesced_drain(void)
{
	struct kvm_coalesced_mmio_ring *r = coalesced_ring;

	if (!r || __atomic_load_n(&r->first, __ATOMIC_RELAXED) ==
		  __atomic_load_n(&r->last, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&coalesced_lock);
	for (;;) {
		uint32_t first = r->first;
		if (first == __atomic_load_n(&r->last, __ATOMIC_ACQUIRE) || first >= coalesced_max)
			break;
		struct kvm_coalesced_mmio *e = &r->coalesced_mmio[first];
		uint8_t data[8];
		uint32_t len = e->len <= sizeof(data) ? e->len : sizeof(data);

		memcpy(data, e->data, len);
		io_bus_access(e->pio ? &the_vm.pio : &the_vm.mmio, e->phys_addr, data, len, true);
		__atomic_store_n(&r->first, (first + 1) % coalesced_max, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&coalesced_lock);
}

/* The ring is one page of every vCPU's kvm_run mapping (the same page for
 * all); KVM_CHECK_EXTENSION of KVM_CAP_COALESCED_MMIO gives its offset. */
static void coalesced_setup(struct vcpu *v)
{
	long page = sysconf(_SC_PAGESIZE);
	int off = ioctl(the_vm.kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_MMIO);

	if (off <= 0 || ioctl(the_vm.kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_PIO) <= 0 ||
	    (long)(off + 1) * page > the_vm.vcpu_mmap_size)
		return;
	coalesced_max = (page - sizeof(struct kvm_coalesced_mmio_ring)) /
			sizeof(struct kvm_coalesced_mmio);
	coalesced_ring = (void *)((char *)v->run + (long)off * page);
}

/* ---- exits ---- */

bool vm_guest_msg_ok(void)
{
	static unsigned said;
	unsigned n = __atomic_load_n(&said, __ATOMIC_RELAXED);

	if (n > VM_GUEST_MSG_BUDGET)
		return false;	/* (no count past it: it must not wrap) */
	n = __atomic_fetch_add(&said, 1, __ATOMIC_RELAXED);
	if (n == VM_GUEST_MSG_BUDGET)
		fprintf(stderr, "vmm: further messages the guest causes are not said\n");
	return n < VM_GUEST_MSG_BUDGET;
}

static void kick_handler(int sig)
{
	(void)sig;
	if (this_run)
		this_run->immediate_exit = 1;
}

void vm_request_exit(enum vm_exit_reason why)
{
	/* The first reason wins: a reboot request racing a poweroff must not
	 * turn into a reboot loop. */
	if (!__sync_bool_compare_and_swap(&the_vm.exit_reason, VM_RUNNING, why))
		return;	/* the first signalled everyone; main may be joining them */
	for (unsigned i = 0; i < the_vm.ncpus; i++)
		if (the_vm.vcpus && the_vm.vcpus[i] && the_vm.vcpus[i]->thread)
			pthread_kill(the_vm.vcpus[i]->thread, SIGUSR1);
	evloop_stop(why);
}

static int handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *p = (uint8_t *)run + run->io.data_offset;
	bool wr = run->io.direction == KVM_EXIT_IO_OUT;

	for (uint32_t i = 0; i < run->io.count; i++, p += run->io.size)
		io_bus_access(&the_vm.pio, run->io.port, p, run->io.size, wr);
	return 0;
}

static void dump_regs(struct vcpu *v)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		return;
	fprintf(stderr, "vmm: vcpu%u rip=%#llx rsp=%#llx cr0=%#llx cr3=%#llx cr4=%#llx efer=%#llx\n",
		v->id, r.rip, r.rsp, s.cr0, s.cr3, s.cr4, s.efer);
}

/* ---- VMM_DEBUG_STALL=SECONDS: a debugging aid for guests that stop
 * making progress. Every SECONDS a thread kicks the vCPUs out of KVM_RUN
 * and each prints its registers, pending events and local APIC state. ---- */

static volatile int dump_gen;

static uint32_t lapic_reg(const struct kvm_lapic_state *l, unsigned off)
{
	uint32_t v;
	memcpy(&v, l->regs + off, 4);
	return v;
}

static void dump_stall(struct vcpu *v)
{
	struct kvm_regs r;
	struct kvm_lapic_state l;
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
	struct kvm_msrs *m = calloc(1, sizeof(*m) + 2 * sizeof(m->entries[0]));
	char irr[8 * 9 + 1] = "", isr[8 * 9 + 1] = "";

	if (!m)
		return;
	m->nmsrs = 2;
	m->entries[0].index = 0x10;	/* TSC */
	m->entries[1].index = 0x6e0;	/* TSC deadline */
	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_LAPIC, &l) < 0 ||
	    ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0 || ioctl(v->fd, KVM_GET_MP_STATE, &mp) < 0 ||
	    ioctl(v->fd, KVM_GET_MSRS, m) < 2) {
		free(m);
		return;
	}
	for (int i = 7; i >= 0; i--) {
		snprintf(irr + strlen(irr), 10, "%08x", lapic_reg(&l, 0x200 + i * 16));
		snprintf(isr + strlen(isr), 10, "%08x", lapic_reg(&l, 0x100 + i * 16));
	}
	fprintf(stderr, "vmm: stall-dump vcpu%u rip=%#llx rflags=%#llx mp=%u inj=%u/%#x shadow=%u "
		"tpr=%#x ppr=%#x lvtt=%#x tmict=%#x tmcct=%#x tsc=%llu deadline=%llu\n"
		"vmm: stall-dump vcpu%u irr=%s isr=%s\n",
		v->id, r.rip, r.rflags, mp.mp_state, ev.interrupt.injected, ev.interrupt.nr,
		ev.interrupt.shadow, lapic_reg(&l, 0x80), lapic_reg(&l, 0xa0), lapic_reg(&l, 0x320),
		lapic_reg(&l, 0x380), lapic_reg(&l, 0x390), (unsigned long long)m->entries[0].data,
		(unsigned long long)m->entries[1].data, v->id, irr, isr);
	free(m);
}

static void *stall_watch(void *arg)
{
	unsigned secs = (unsigned)(uintptr_t)arg;

	for (;;) {
		sleep(secs);
		dump_gen++;
		for (unsigned i = 0; i < the_vm.ncpus; i++)
			if (the_vm.vcpus[i] && the_vm.vcpus[i]->thread)
				pthread_kill(the_vm.vcpus[i]->thread, SIGUSR1);
	}
	return NULL;
}

/* ---- VMM_DEBUG_EXITS=MS: a profiling aid for boot time. Every MS
 * milliseconds a thread prints the exits of that interval by kind and the
 * busiest ports and MMIO pages (lines `vmm: exits ...`). Counting is a
 * relaxed increment per exit, and only when the variable is set. ---- */

#define EXPROF_KINDS 8	/* io, mmio, hlt, intr, other, coalesced writes */
static bool exprof_on;
static uint32_t exprof_kind[EXPROF_KINDS], exprof_port[65536];
static uint32_t exprof_mmio_page[256];	/* by (gpa >> 12) & 255 */
static uint64_t exprof_mmio_addr[256];

/* Index of the largest of n counters (0 when all are 0). */
static unsigned busiest(const uint32_t *c, unsigned n)
{
	unsigned best = 0;

	for (unsigned i = 1; i < n; i++)
		if (c[i] > c[best])
			best = i;
	return best;
}

static void exprof_count(unsigned kind, uint64_t addr)
{
	__atomic_fetch_add(&exprof_kind[kind], 1, __ATOMIC_RELAXED);
	if (kind == 0)
		__atomic_fetch_add(&exprof_port[addr & 0xffff], 1, __ATOMIC_RELAXED);
	else if (kind == 1) {
		__atomic_fetch_add(&exprof_mmio_page[(addr >> 12) & 255], 1, __ATOMIC_RELAXED);
		exprof_mmio_addr[(addr >> 12) & 255] = addr & ~0xfffULL;
	}
}

/* KVM's own counters of vCPU 0 (binary stats), exits it handled in the
 * kernel included: the deltas of these few are printed per interval. */
static const char *const kstat_names[] = { "exits", "pf_taken", "pf_fixed", "halt_exits",
					   "irq_exits", "insn_emulation", "irq_injections" };
#define NKSTAT (sizeof(kstat_names) / sizeof(kstat_names[0]))
static int kstat_fd = -1;
static off_t kstat_off[NKSTAT];

static void kstat_open(void)
{
	struct kvm_stats_header h;
	int fd = ioctl(the_vm.vcpus[0]->fd, KVM_GET_STATS_FD, NULL);

	if (fd < 0 || pread(fd, &h, sizeof(h), 0) != sizeof(h))
		return;
	size_t dsz = sizeof(struct kvm_stats_desc) + h.name_size;
	char *d = malloc(dsz * h.num_desc);

	if (!d || pread(fd, d, dsz * h.num_desc, h.desc_offset) != (ssize_t)(dsz * h.num_desc)) {
		free(d);
		close(fd);
		return;
	}
	for (unsigned k = 0; k < NKSTAT; k++) {
		kstat_off[k] = -1;
		for (unsigned i = 0; i < h.num_desc; i++) {
			struct kvm_stats_desc *e = (void *)(d + i * dsz);
			if (!strcmp(e->name, kstat_names[k]))
				kstat_off[k] = h.data_offset + e->offset;
		}
	}
	free(d);
	kstat_fd = fd;
}

/* Append to line[] at n, never past its end. */
#define APPEND(...) do {							\
		if (n < (int)sizeof(line))					\
			n += snprintf(line + n, sizeof(line) - n, __VA_ARGS__);	\
	} while (0)

static void *exprof_thread(void *arg)
{
	static const char *names[EXPROF_KINDS] = { "io", "mmio", "hlt", "intr", "other", "coal" };
	unsigned ms = (unsigned)(uintptr_t)arg;
	struct timespec t0, t;
	uint64_t kprev[NKSTAT] = { 0 };

	clock_gettime(CLOCK_MONOTONIC, &t0);
	kstat_open();
	for (;;) {
		char line[768];
		int n;

		usleep(ms * 1000);
		clock_gettime(CLOCK_MONOTONIC, &t);
		n = 0;
		APPEND("vmm: exits t=%ld",
			     (long)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000));
		for (unsigned k = 0; k < EXPROF_KINDS; k++) {
			uint32_t c = __atomic_exchange_n(&exprof_kind[k], 0, __ATOMIC_RELAXED);
			if (c && names[k])
				APPEND(" %s=%u", names[k], c);
		}
		/* The four busiest ports and two busiest MMIO pages. */
		for (int top = 0; top < 4; top++) {
			unsigned best = busiest(exprof_port, 65536);
			if (!exprof_port[best])
				break;
			APPEND(" port%#x=%u", best, exprof_port[best]);
			exprof_port[best] = 0;
		}
		for (int top = 0; top < 2; top++) {
			unsigned best = busiest(exprof_mmio_page, 256);
			if (!exprof_mmio_page[best])
				break;
			APPEND(" mmio%#llx=%u",
				      (unsigned long long)exprof_mmio_addr[best], exprof_mmio_page[best]);
			exprof_mmio_page[best] = 0;
		}
		for (unsigned k = 0; kstat_fd >= 0 && k < NKSTAT; k++) {
			uint64_t v;

			if (kstat_off[k] < 0 || pread(kstat_fd, &v, 8, kstat_off[k]) != 8)
				continue;
			if (v != kprev[k])
				APPEND(" k.%s=%llu", kstat_names[k],
					      (unsigned long long)(v - kprev[k]));
			kprev[k] = v;
		}
		memset(exprof_port, 0, sizeof(exprof_port));
		memset(exprof_mmio_page, 0, sizeof(exprof_mmio_page));
		fprintf(stderr, "%s\n", line);
	}
	return NULL;
}

#undef APPEND

static void *vcpu_thread(void *arg)
{
	int seen_gen = 0;
	struct vcpu *v = arg;
	sigset_t set;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", v->id);
	pthread_setname_np(pthread_self(), name);
	this_run = v->run;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	while (the_vm.exit_reason == VM_RUNNING) {
		int ret = ioctl(v->fd, KVM_RUN, 0);

		if (ret < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				v->run->immediate_exit = 0;
				if (seen_gen != dump_gen) {
					seen_gen = dump_gen;
					dump_stall(v);
				}
				continue;
			}
			fprintf(stderr, "vmm: vcpu%u: KVM_RUN: %s\n", v->id, strerror(errno));
			vm_request_exit(VM_ERROR);
			break;
		}
		if (exprof_on) {
			struct kvm_coalesced_mmio_ring *r = coalesced_ring;
			unsigned k = v->run->exit_reason == KVM_EXIT_IO ? 0
				   : v->run->exit_reason == KVM_EXIT_MMIO ? 1
				   : v->run->exit_reason == KVM_EXIT_HLT ? 2
				   : v->run->exit_reason == KVM_EXIT_INTR ? 3 : 4;

			exprof_count(k, k == 0 ? v->run->io.port : k == 1 ? v->run->mmio.phys_addr : 0);
			if (r && coalesced_max)
				__atomic_fetch_add(&exprof_kind[5],
						   (r->last + coalesced_max - r->first) % coalesced_max,
						   __ATOMIC_RELAXED);
		}
		/* Writes KVM buffered come before whatever this exit is. */
		vm_coalesced_drain();
		switch (v->run->exit_reason) {
		case KVM_EXIT_IO:
			handle_io(v);
			break;
		case KVM_EXIT_MMIO:
			io_bus_access(&the_vm.mmio, v->run->mmio.phys_addr, v->run->mmio.data,
				      v->run->mmio.len, v->run->mmio.is_write);
			break;
		case KVM_EXIT_SHUTDOWN:
			/* Triple fault: what a PC does is reset. */
			vm_request_exit(VM_REBOOT);
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			vm_request_exit(v->run->system_event.type == KVM_SYSTEM_EVENT_RESET
						? VM_REBOOT : VM_POWEROFF);
			break;
		case KVM_EXIT_HLT:
			break;
		case KVM_EXIT_INTR:
			break;
		case KVM_EXIT_FAIL_ENTRY:
			fprintf(stderr, "vmm: vcpu%u: entry failed, reason %#llx\n", v->id,
				(unsigned long long)v->run->fail_entry.hardware_entry_failure_reason);
			dump_regs(v);
			vm_request_exit(VM_ERROR);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			fprintf(stderr, "vmm: vcpu%u: KVM internal error, suberror %u\n", v->id,
				v->run->internal.suberror);
			dump_regs(v);
			vm_request_exit(VM_ERROR);
			break;
		default:
			fprintf(stderr, "vmm: vcpu%u: unhandled exit %u\n", v->id, v->run->exit_reason);
			dump_regs(v);
			vm_request_exit(VM_ERROR);
			break;
		}
	}
	vm_coalesced_drain();
	return NULL;
}

/* ---- setup ---- */

static int kvm_check_caps(void)
{
	static const struct { int cap; const char *name; } need[] = {
		{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
		{ KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING" },
		{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD" },
		{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD" },
		{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
		{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
		{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	};

	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (ioctl(the_vm.kvm_fd, KVM_CHECK_EXTENSION, need[i].cap) <= 0) {
			fprintf(stderr, "vmm: this KVM lacks %s\n", need[i].name);
			return -ENOTSUP;
		}
	}
	return 0;
}

int kvm_vm_create(uint64_t ram_size, unsigned ncpus)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	int ret;

	the_vm.kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (the_vm.kvm_fd < 0) {
		ret = -errno;
		fprintf(stderr, "vmm: cannot open /dev/kvm: %s%s\n", strerror(errno),
			errno == ENOENT ? " (is KVM enabled and the kvm module loaded?)" : "");
		return ret;
	}
	if (ioctl(the_vm.kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		fprintf(stderr, "vmm: /dev/kvm speaks an unknown API version\n");
		return -ENOTSUP;
	}
	ret = kvm_check_caps();
	if (ret)
		return ret;
	the_vm.vm_fd = ioctl(the_vm.kvm_fd, KVM_CREATE_VM, 0);
	if (the_vm.vm_fd < 0) {
		ret = -errno;
		fprintf(stderr, "vmm: KVM_CREATE_VM: %s\n", strerror(errno));
		return ret;
	}
	the_vm.vcpu_mmap_size = ioctl(the_vm.kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (ioctl(the_vm.vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0 ||
	    ioctl(the_vm.vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &(uint64_t){ 0xfffbc000ULL }) < 0) {
		ret = -errno;
		fprintf(stderr, "vmm: KVM_SET_TSS_ADDR: %s\n", strerror(errno));
		return ret;
	}
	if (ioctl(the_vm.vm_fd, KVM_CREATE_IRQCHIP, 0) < 0 ||
	    ioctl(the_vm.vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		ret = -errno;
		fprintf(stderr, "vmm: creating the in-kernel irqchip: %s\n", strerror(errno));
		return ret;
	}
	ret = routes_commit();
	if (ret)
		return ret;

	ret = guest_mem_alloc(&the_vm.mem, ram_size);
	if (ret) {
		fprintf(stderr, "vmm: --memory: cannot allocate %llu MiB: %s\n",
			(unsigned long long)(ram_size >> 20), strerror(-ret));
		return ret;
	}
	ret = vm_set_memslot(vm_alloc_memslot(), 0, the_vm.mem.low_size, the_vm.mem.host, false);
	if (!ret && the_vm.mem.high_size)
		ret = vm_set_memslot(vm_alloc_memslot(), GUEST_HIGH_RAM_BASE, the_vm.mem.high_size,
				     the_vm.mem.host + the_vm.mem.low_size, false);
	if (ret) {
		fprintf(stderr, "vmm: KVM_SET_USER_MEMORY_REGION: %s\n", strerror(-ret));
		return ret;
	}
	/* 64-bit BARs go above RAM, 1 GiB aligned. */
	the_vm.mmio64_base = (GUEST_HIGH_RAM_BASE + the_vm.mem.high_size + (1ULL << 30) - 1) &
			     ~((1ULL << 30) - 1);
	io_bus_init(&the_vm.pio);
	io_bus_init(&the_vm.mmio);
	the_vm.ncpus = ncpus;
	the_vm.vcpus = calloc(ncpus, sizeof(*the_vm.vcpus));
	return the_vm.vcpus ? 0 : -ENOMEM;
}

static uint64_t exits_in_guest;	/* KVM_X86_DISABLE_EXITS_* granted */

void kvm_vm_dedicate(void)
{
	int offered = ioctl(the_vm.kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_DISABLE_EXITS);
	struct kvm_enable_cap cap = { .cap = KVM_CAP_X86_DISABLE_EXITS };

	/* MWAIT stays out: the guest's CPUID would have to offer it, and
	 * KVM offers it only where the host's MWAIT is safe to hand over. */
	if (offered > 0)
		cap.args[0] = offered & (KVM_X86_DISABLE_EXITS_HLT | KVM_X86_DISABLE_EXITS_PAUSE);
	if (!(cap.args[0] & KVM_X86_DISABLE_EXITS_HLT)) {
		fprintf(stderr, "vmm: --cpus dedicated=on: this KVM cannot leave HLT to the guest "
			"(KVM_CAP_X86_DISABLE_EXITS); idle vCPUs exit to KVM as usual\n");
		return;
	}
	if (ioctl(the_vm.vm_fd, KVM_ENABLE_CAP, &cap) < 0)
		fprintf(stderr, "vmm: --cpus dedicated=on: KVM_ENABLE_CAP(X86_DISABLE_EXITS): %s; "
			"idle vCPUs exit to KVM as usual\n", strerror(errno));
	else
		exits_in_guest = cap.args[0];
}

/* Add the cumulative statistics NAMES[i] of the vCPU behind FD (its
 * KVM_GET_STATS_FD, binary statistics since Linux 5.14) to SUM[i]. */
static int vcpu_stats_add(int fd, const char *const *names, uint64_t *sum, int n)
{
	struct kvm_stats_header h;
	int sfd = ioctl(fd, KVM_GET_STATS_FD, NULL);
	int ret = -EIO;
	char *descs = NULL;

	if (sfd < 0)
		return -errno;
	if (pread(sfd, &h, sizeof(h), 0) != sizeof(h))
		goto out;
	size_t dsize = sizeof(struct kvm_stats_desc) + h.name_size;

	descs = malloc(dsize * h.num_desc);
	if (!descs || pread(sfd, descs, dsize * h.num_desc, h.desc_offset) !=
		      (ssize_t)(dsize * h.num_desc))
		goto out;
	for (uint32_t i = 0; i < h.num_desc; i++) {
		const struct kvm_stats_desc *d = (const void *)(descs + i * dsize);
		uint64_t v;

		if ((d->flags & KVM_STATS_TYPE_MASK) != KVM_STATS_TYPE_CUMULATIVE || d->size != 1)
			continue;
		for (int k = 0; k < n; k++) {
			if (strncmp(d->name, names[k], h.name_size))
				continue;
			if (pread(sfd, &v, sizeof(v), h.data_offset + d->offset) != sizeof(v))
				goto out;
			sum[k] += v;
		}
	}
	ret = 0;
out:
	free(descs);
	close(sfd);
	return ret;
}

void kvm_print_stats(FILE *f)
{
	static const char *const names[] = { "exits", "halt_exits" };
	uint64_t sum[2] = { 0 };

	for (unsigned i = 0; i < the_vm.ncpus; i++) {
		int r = the_vm.vcpus[i] ? vcpu_stats_add(the_vm.vcpus[i]->fd, names, sum, 2) : 0;

		if (r) {
			fprintf(f, "vcpus: KVM's statistics unreadable: %s\n", strerror(-r));
			return;
		}
	}
	fprintf(f, "vcpus: KVM exits %" PRIu64 ", HLT %" PRIu64 "%s\n", sum[0], sum[1],
		exits_in_guest & KVM_X86_DISABLE_EXITS_HLT ?
		" (dedicated=on: HLT and PAUSE stay in the guest)" : "");
}

/* XCR0 starts with every user state component the guest's CPUID offers
 * (leaf 0xD.0) instead of x87 only. A guest OS sets its own XCR0 before it
 * uses XSAVE, through XSETBV, which KVM intercepts and which updates the
 * XSAVE area size it reports in CPUID 0xD.0 EBX. Under an emulated SVM
 * that does not intercept XSETBV (QEMU 7.2's TCG, the nested runner's L0)
 * KVM never sees the guest's XSETBV, and Linux then finds that size
 * inconsistent with the components it enabled (a WARN at boot) and, after
 * any exit, runs with KVM's idea of XCR0. Starting from the full set makes
 * both agree with what Linux enables; elsewhere it changes nothing the
 * guest can rely on. Best effort: a KVM that refuses it keeps x87 only. */
static void vcpu_set_xcr0(struct vcpu *v, const struct kvm_cpuid2 *c)
{
	struct kvm_xcrs xcrs = { .nr_xcrs = 1 };
	bool xsave = false, found = false;
	uint64_t mask = 0;

	for (unsigned i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == 1)
			xsave = e->ecx & (1u << 26);
		if (e->function == 0xd && e->index == 0) {
			mask = e->eax | (uint64_t)e->edx << 32;
			found = true;
		}
	}
	if (!xsave || !found || !(mask & 1))
		return;
	xcrs.xcrs[0].xcr = 0;
	xcrs.xcrs[0].value = mask;
	if (ioctl(v->fd, KVM_SET_XCRS, &xcrs) < 0 && v->id == 0)
		fprintf(stderr, "vmm: note: KVM_SET_XCRS(XCR0=%#llx): %s; XCR0 starts as x87 only\n",
			(unsigned long long)mask, strerror(errno));
}

/* CPUID as KVM supports it, with the per-vCPU APIC IDs filled in. */
static int vcpu_set_cpuid(struct vcpu *v)
{
	int nent = 256;
	struct kvm_cpuid2 *c;
	int ret = 0;

	for (;;) {
		c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
		if (!c)
			return -ENOMEM;
		c->nent = nent;
		if (ioctl(the_vm.kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			break;
		free(c);
		if (errno != E2BIG)
			return -errno;
		nent *= 2;
	}
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffff) | (v->id << 24) |
				 ((the_vm.ncpus > 1 ? the_vm.ncpus : 1) << 16);
			if (the_vm.ncpus > 1)
				e->edx |= 1u << 28;	/* HTT: the count above is valid */
			e->ecx |= 1u << 31;		/* running on a hypervisor */
			/* The in-kernel LAPIC emulates the TSC-deadline timer;
			 * a hardware-reduced platform has no PIT to calibrate
			 * the LAPIC timer with, so offer it. */
			if (ioctl(the_vm.kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
				e->ecx |= 1u << 24;
			break;
		case 0xb:
		case 0x1f:
			e->edx = v->id;
			break;
		case 0x8000001e:
			e->eax = v->id;
			break;
		}
	}
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
		ret = -errno;
	else
		vcpu_set_xcr0(v, c);
	free(c);
	return ret;
}

static int vcpu_set_msrs(struct vcpu *v)
{
	static const struct { uint32_t index; uint64_t data; } init[] = {
		{ 0x1a0, 1 },			/* IA32_MISC_ENABLE: fast strings */
		{ 0x2ff, (1u << 11) | 6 },	/* MTRR default type: enabled, WB */
		/* Every vCPU writes TSC = 0 at creation: KVM treats writes of
		 * the same value close together as one synchronised TSC, so
		 * the guest does not find its TSCs out of step. */
		{ 0x10, 0 },
	};
	struct kvm_msrs *m = calloc(1, sizeof(*m) + 3 * sizeof(m->entries[0]));
	int ret = 0;

	if (!m)
		return -ENOMEM;
	m->nmsrs = 3;
	for (int i = 0; i < 3; i++) {
		m->entries[i].index = init[i].index;
		m->entries[i].data = init[i].data;
	}
	/* KVM_SET_MSRS returns how many it set; an MSR this KVM refuses is
	 * not fatal to booting Linux. */
	if (ioctl(v->fd, KVM_SET_MSRS, m) < 0)
		ret = -errno;
	free(m);
	return ret;
}

int kvm_vcpus_create(void)
{
	for (unsigned i = 0; i < the_vm.ncpus; i++) {
		struct vcpu *v = calloc(1, sizeof(*v));
		int ret;

		if (!v)
			return -ENOMEM;
		v->id = i;
		v->fd = ioctl(the_vm.vm_fd, KVM_CREATE_VCPU, i);
		if (v->fd < 0) {
			ret = -errno;
			fprintf(stderr, "vmm: KVM_CREATE_VCPU %u: %s\n", i, strerror(errno));
			free(v);
			return ret;
		}
		v->run = mmap(NULL, the_vm.vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
		if (v->run == MAP_FAILED) {
			ret = -errno;
			free(v);
			return ret;
		}
		ret = vcpu_set_cpuid(v);
		if (!ret)
			ret = vcpu_set_msrs(v);
		if (ret) {
			fprintf(stderr, "vmm: vcpu%u setup: %s\n", i, strerror(-ret));
			return ret;
		}
		if (i == 0)
			coalesced_setup(v);
		the_vm.vcpus[i] = v;
	}
	return 0;
}

int kvm_vcpu_fd(unsigned i)
{
	return the_vm.vcpus[i]->fd;
}

int kvm_vcpus_start(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };
	sigset_t set;

	sigaction(SIGUSR1, &sa, NULL);
	/* Only vCPU threads take SIGUSR1. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	const char *prof = getenv("VMM_DEBUG_EXITS");
	if (prof && atoi(prof) > 0) {
		pthread_t t;
		exprof_on = true;
		fprintf(stderr, "vmm: exits: vCPUs starting\n");
		if (pthread_create(&t, NULL, exprof_thread, (void *)(uintptr_t)atoi(prof)) == 0)
			pthread_detach(t);
	}
	for (unsigned i = 0; i < the_vm.ncpus; i++) {
		int ret = pthread_create(&the_vm.vcpus[i]->thread, NULL, vcpu_thread, the_vm.vcpus[i]);

		if (ret)
			return -ret;
	}
	const char *dbg = getenv("VMM_DEBUG_STALL");
	if (dbg && atoi(dbg) > 0) {
		pthread_t t;
		if (pthread_create(&t, NULL, stall_watch, (void *)(uintptr_t)atoi(dbg)) == 0)
			pthread_detach(t);
	}
	return 0;
}

void kvm_vcpus_join(void)
{
	for (unsigned i = 0; i < the_vm.ncpus; i++)
		if (the_vm.vcpus[i] && the_vm.vcpus[i]->thread)
			pthread_join(the_vm.vcpus[i]->thread, NULL);
}
