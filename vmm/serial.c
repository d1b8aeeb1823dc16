/* A 16550A UART at COM1 (0x3F8, IRQ 4): output to the terminal (or a file),
 * input from stdin through the event loop. Enough of the chip for Linux's
 * 8250 driver to probe it as a 16550A and run it interrupt-driven. While
 * the THR-empty interrupt is off, writes to port 0 are coalesced by KVM
 * (replayed in order at the next exit), which halves the exits of the
 * kernel's polled console output. Output is buffered by line: one write()
 * per line (or per OUT_SIZE bytes) instead of one per character, each of
 * which woke the reader of a pipe; a partial line (a prompt) goes out
 * after at most OUT_DELAY_NS. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <termios.h>
#include <unistd.h>
#include "devices.h"
#include "evloop.h"
#include "vm.h"

#define UART_IER_RDI 0x01
#define UART_IER_THRI 0x02
#define UART_IIR_NO_INT 0x01
#define UART_IIR_THRI 0x02
#define UART_IIR_RDI 0x04
#define UART_IIR_FIFO 0xc0
#define UART_LCR_DLAB 0x80
#define UART_MCR_LOOP 0x10
#define UART_LSR_DR 0x01
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40
#define UART_FCR_ENABLE 0x01
#define UART_FCR_CLEAR_RX 0x02
#define RX_SIZE 1024
#define OUT_SIZE 4096
#define OUT_DELAY_NS 2000000	/* a partial line waits at most 2 ms */

static struct {
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	bool thri_pending;	/* THR empty interrupt not yet acknowledged */
	uint8_t rx[RX_SIZE];
	unsigned rx_head, rx_len;
	bool irq_level;
	int out_fd, in_fd;
	bool in_polled;
	bool coalesce;		/* KVM may buffer THR writes (vm_coalesce_pio) */
	uint8_t out[OUT_SIZE];	/* output not yet written to out_fd */
	size_t out_len;
	int out_timer;		/* timerfd: flushes a partial line; -1: none */
} uart = { .lock = PTHREAD_MUTEX_INITIALIZER, .out_fd = -1, .in_fd = -1, .out_timer = -1 };

static uint8_t uart_iir(void)
{
	if ((uart.ier & UART_IER_RDI) && uart.rx_len)
		return UART_IIR_RDI;
	if ((uart.ier & UART_IER_THRI) && uart.thri_pending)
		return UART_IIR_THRI;
	return UART_IIR_NO_INT;
}

static void uart_update_irq(void)
{
	bool level = uart_iir() != UART_IIR_NO_INT;

	/* OUT2 gates the interrupt on a PC. */
	if (!(uart.mcr & 0x08))
		level = false;
	if (level != uart.irq_level) {
		uart.irq_level = level;
		vm_irq_line(IRQ_COM1, level);
	}
}

static void stdin_ready(void *opaque, uint32_t events);

static void uart_poll_input(bool on)
{
	if (uart.in_fd < 0 || on == uart.in_polled)
		return;
	if (on && evloop_add(uart.in_fd, EPOLLIN, stdin_ready, NULL) < 0) {
		/* epoll takes no regular file (nor /dev/null): no input. A
		 * file of commands the guest would never see is said once. */
		struct stat st;
		if (fstat(uart.in_fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size)
			fprintf(stderr, "vmm: --serial: standard input is a regular file, which "
				"cannot be watched: the guest gets no input from it (pipe it in)\n");
		uart.in_fd = -1;
		return;
	}
	if (!on)
		evloop_del(uart.in_fd);
	uart.in_polled = on;
}

static void stdin_ready(void *opaque, uint32_t events)
{
	uint8_t buf[RX_SIZE];
	ssize_t n;

	pthread_mutex_lock(&uart.lock);
	size_t room = RX_SIZE - uart.rx_len;

	n = room ? read(uart.in_fd, buf, room) : 0;
	if (n <= 0) {
		/* Full (resume when the guest drains it) or end of input. */
		if (room == 0 || n == 0 || (errno != EAGAIN && errno != EINTR))
			uart_poll_input(false);
		if (n == 0 && room)
			uart.in_fd = -1;
	}
	for (ssize_t i = 0; i < n; i++)
		uart.rx[(uart.rx_head + uart.rx_len++) % RX_SIZE] = buf[i];
	uart_update_irq();
	pthread_mutex_unlock(&uart.lock);
}

/* Write out the buffered output; uart.lock held. */
static void uart_out_flush(void)
{
	size_t done = 0;

	while (done < uart.out_len) {
		ssize_t n = write(uart.out_fd, uart.out + done, uart.out_len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			/* A terminal sharing stdin's non-blocking flag, full:
			 * wait for it (up to a second), do not drop. */
			struct pollfd p = { .fd = uart.out_fd, .events = POLLOUT };
			int pr;

			do	/* (another vCPU's exit request interrupts it) */
				pr = poll(&p, 1, 1000);
			while (pr < 0 && errno == EINTR);
			if (pr == 1)
				continue;
		}
		if (n <= 0)
			break;	/* the output is gone: drop what is left */
		done += n;
	}
	uart.out_len = 0;
}

static void uart_out(uint8_t c)
{
	if (uart.out_fd < 0)
		return;
	if (uart.out_timer < 0) {	/* no timer: unbuffered */
		uart.out[0] = c;
		uart.out_len = 1;
		uart_out_flush();
		return;
	}
	if (uart.out_len == 0) {
		struct itimerspec its = { .it_value = { 0, OUT_DELAY_NS } };

		timerfd_settime(uart.out_timer, 0, &its, NULL);
	}
	uart.out[uart.out_len++] = c;
	if (c == '\n' || uart.out_len == OUT_SIZE)
		uart_out_flush();
}

static void out_timer_fired(void *opaque, uint32_t events)
{
	uint64_t n;

	if (read(uart.out_timer, &n, sizeof(n)) < 0) {
		/* EAGAIN: re-armed meanwhile; flushing early is harmless */
	}
	pthread_mutex_lock(&uart.lock);
	uart_out_flush();
	pthread_mutex_unlock(&uart.lock);
}

void serial_flush(void)
{
	pthread_mutex_lock(&uart.lock);
	if (uart.out_fd >= 0)
		uart_out_flush();
	pthread_mutex_unlock(&uart.lock);
}

static uint8_t uart_msr(void)
{
	if (uart.mcr & UART_MCR_LOOP)	/* loopback: modem outputs feed inputs */
		return ((uart.mcr & 0x08) << 4) | ((uart.mcr & 0x04) << 4) |
		       ((uart.mcr & 0x01) << 5) | ((uart.mcr & 0x02) << 3);
	return 0xb0;	/* DCD, DSR, CTS */
}

static void uart_io(void *opaque, uint64_t off, void *data, unsigned len, bool is_write)
{
	uint8_t *v = data;
	bool dlab;

	if (len != 1) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&uart.lock);
	dlab = uart.lcr & UART_LCR_DLAB;
	if (is_write) {
		switch (off) {
		case 0:
			if (dlab) {
				uart.dll = *v;
			} else if (uart.mcr & UART_MCR_LOOP) {
				if (uart.rx_len < RX_SIZE)
					uart.rx[(uart.rx_head + uart.rx_len++) % RX_SIZE] = *v;
				uart.thri_pending = true;
			} else {
				uart_out(*v);
				uart.thri_pending = true;
			}
			break;
		case 1:
			if (dlab) {
				uart.dlm = *v;
			} else {
				/* Enabling THRI with an empty THR raises it. */
				if (!(uart.ier & UART_IER_THRI) && (*v & UART_IER_THRI))
					uart.thri_pending = true;
				/* Polled output (THRI off, as the kernel's console
				 * writes) needs nothing back from a THR write, so KVM
				 * may buffer those; interrupt-driven output waits for
				 * the THRI each write raises, so they must exit. */
				if (uart.coalesce && (uart.ier ^ *v) & UART_IER_THRI) {
					bool on = !(*v & UART_IER_THRI);
					int e = vm_coalesce_pio(PORT_COM1, 1, on);
					/* A zone that cannot come back leaves the
					 * writes exiting, which is always correct. */
					if (e && on)
						uart.coalesce = false;
					else if (e)
						fprintf(stderr, "vmm: serial: THR writes stay "
							"coalesced: %s\n", strerror(-e));
				}
				uart.ier = *v & 0x0f;
			}
			break;
		case 2:
			uart.fcr = *v & (UART_FCR_ENABLE | 0xc0);
			if (*v & UART_FCR_CLEAR_RX) {
				uart.rx_len = uart.rx_head = 0;
				uart_poll_input(true);	/* room again */
			}
			break;
		case 3:
			uart.lcr = *v;
			break;
		case 4:
			uart.mcr = *v & 0x1f;
			break;
		case 7:
			uart.scr = *v;
			break;
		}
	} else {
		switch (off) {
		case 0:
			if (dlab) {
				*v = uart.dll;
			} else if (uart.rx_len) {
				*v = uart.rx[uart.rx_head];
				uart.rx_head = (uart.rx_head + 1) % RX_SIZE;
				uart.rx_len--;
				if (uart.rx_len == 0)
					uart_poll_input(true);
			} else {
				*v = 0;
			}
			break;
		case 1:
			*v = dlab ? uart.dlm : uart.ier;
			break;
		case 2:
			*v = uart_iir();
			if (*v == UART_IIR_THRI)
				uart.thri_pending = false;
			if (uart.fcr & UART_FCR_ENABLE)
				*v |= UART_IIR_FIFO;
			break;
		case 3:
			*v = uart.lcr;
			break;
		case 4:
			*v = uart.mcr;
			break;
		case 5:
			*v = UART_LSR_THRE | UART_LSR_TEMT | (uart.rx_len ? UART_LSR_DR : 0);
			break;
		case 6:
			*v = uart_msr();
			break;
		case 7:
			*v = uart.scr;
			break;
		default:
			*v = 0xff;
		}
	}
	uart_update_irq();
	pthread_mutex_unlock(&uart.lock);
}

bool vmm_rebooted;

static struct termios saved_tio;
static bool tio_saved;
static int saved_fl = -1;	/* stdin's file status flags before we took it */

static void console_restore(void)
{
	console_set_raw(false);
}

void console_take_stdin(void)
{
	if (saved_fl < 0) {
		saved_fl = fcntl(STDIN_FILENO, F_GETFL);
		if (saved_fl >= 0)
			fcntl(STDIN_FILENO, F_SETFL, saved_fl | O_NONBLOCK);
		/* However the VMM ends, the shell gets its terminal back. */
		atexit(console_restore);
	}
	console_set_raw(true);
}

void console_set_raw(bool on)
{
	struct termios t;

	if (!on && saved_fl >= 0) {
		/* O_NONBLOCK is on the open file the shell shares with us. */
		fcntl(STDIN_FILENO, F_SETFL, saved_fl);
		saved_fl = -1;
	}
	if (!isatty(STDIN_FILENO))
		return;
	if (on && !tio_saved) {
		if (tcgetattr(STDIN_FILENO, &saved_tio) < 0)
			return;
		tio_saved = true;
		t = saved_tio;
		t.c_lflag &= ~(ICANON | ECHO | ISIG);
		t.c_iflag &= ~(ICRNL | IXON);
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &t);
	} else if (!on && tio_saved) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
		tio_saved = false;
	}
}

int serial_init(enum console_mode mode, const char *file)
{
	switch (mode) {
	case CONSOLE_OFF:
		return 0;	/* no UART at all: the ports read as all-ones */
	case CONSOLE_NULL:
		uart.out_fd = -1;
		break;
	case CONSOLE_TTY:
		uart.out_fd = STDOUT_FILENO;
		uart.in_fd = STDIN_FILENO;
		console_take_stdin();
		break;
	case CONSOLE_FILE:
		uart.out_fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC |
				   (vmm_rebooted ? O_APPEND : O_TRUNC), 0644);
		if (uart.out_fd < 0) {
			int err = -errno;

			fprintf(stderr, "vmm: --serial: cannot open %s: %s\n", file, strerror(errno));
			return err;
		}
		break;
	}
	uart_poll_input(true);
	if (uart.out_fd >= 0) {
		uart.out_timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (uart.out_timer >= 0 && evloop_add(uart.out_timer, EPOLLIN, out_timer_fired, NULL)) {
			close(uart.out_timer);
			uart.out_timer = -1;
		}
	}
	int r = io_bus_register(&the_vm.pio, PORT_COM1, 8, uart_io, NULL);
	/* THR (and DLL) writes at port 0 go through KVM's coalesced ring while
	 * THRI is off (IER is 0 at reset): the guest's polled console output
	 * then costs one exit per LSR poll instead of two per character. */
	if (!r)
		uart.coalesce = vm_coalesce_pio(PORT_COM1, 1, true) == 0;
	return r;
}
