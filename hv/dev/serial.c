/* 16550A UART (COM1). Transmission completes instantly (bytes go into a 64 KiB output
 * buffer that the main thread writes to the console log, so a vCPU never waits
 * for a slow file; only a full buffer makes it write itself), so THRE is always set; reception is
 * buffered host-side in a 4 KiB ring that stands for the FIFO. The interrupt line follows the 8250
 * rules: receive data available, then transmitter empty, gated by MCR.OUT2; ISA lines are
 * edge-triggered, so the line is driven only when its level changes. Loopback mode answers the
 * probe Linux's 8250 driver runs. Not a general terminal: no flow control, no FIFO timing. */
#include "hv/dev/serial.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "hv/conslog.h"
#include "hv/vm.h"
#include "lib/log.h"

#define COM1_BASE 0x3F8
#define RX_SIZE	  4096
#define TX_SIZE	  65536

enum { REG_RBR_THR, REG_IER, REG_IIR_FCR, REG_LCR, REG_MCR, REG_LSR, REG_MSR, REG_SCR };

#define IER_RDI	     0x01
#define IER_THRI     0x02
#define LCR_DLAB     0x80
#define MCR_OUT2     0x08
#define MCR_LOOP     0x10
#define LSR_DR	     0x01
#define LSR_THRE     0x20
#define LSR_TEMT     0x40
#define IIR_NONE     0x01
#define IIR_THRI     0x02
#define IIR_RDI	     0x04
#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02

struct serial {
	struct vm *ser_vm;
	struct conslog *ser_out; /* NULL: output discarded */
	pthread_mutex_t ser_lock;
	uint8_t ser_ier, ser_lcr, ser_mcr, ser_scr, ser_fcr;
	uint8_t ser_dll, ser_dlm;
	bool ser_thre_pending; /* transmitter-empty interrupt not yet acknowledged */
	bool ser_irq_level;
	uint8_t ser_rx[RX_SIZE];
	size_t ser_rx_head, ser_rx_count;
	bool ser_warned_full;
	uint8_t ser_tx[TX_SIZE]; /* guest output not yet written to ser_out */
	size_t ser_tx_len;
	int ser_tx_wake;	      /* eventfd: readable while ser_tx has bytes */
	pthread_mutex_t ser_out_lock; /* one writer to ser_out at a time, in order */
};

static bool rx_ready(const struct serial *s)
{
	return s->ser_rx_count > 0;
}

static uint8_t iir(const struct serial *s)
{
	uint8_t fifo = (s->ser_fcr & FCR_ENABLE) ? 0xC0 : 0;

	if ((s->ser_ier & IER_RDI) && rx_ready(s))
		return fifo | IIR_RDI;
	if ((s->ser_ier & IER_THRI) && s->ser_thre_pending)
		return fifo | IIR_THRI;
	return fifo | IIR_NONE;
}

/* Called with the lock held after any state change. */
static void update_irq(struct serial *s)
{
	bool level = !(iir(s) & IIR_NONE) && (s->ser_mcr & MCR_OUT2) && !(s->ser_mcr & MCR_LOOP);

	if (level == s->ser_irq_level)
		return;
	s->ser_irq_level = level;
	vm_set_irq(s->ser_vm, VM_IRQ_COM1, level);
}

static void rx_push(struct serial *s, uint8_t byte)
{
	if (s->ser_rx_count == RX_SIZE)
		return;
	s->ser_rx[(s->ser_rx_head + s->ser_rx_count) % RX_SIZE] = byte;
	s->ser_rx_count++;
}

/* Takes the buffered output (ser_lock held) and writes it with the lock released, so
 * the vCPUs go on while it is written. Returns with ser_lock held. */
static void drain_locked(struct serial *s)
{
	uint8_t *copy;
	size_t len = s->ser_tx_len;

	if (len == 0)
		return;
	copy = malloc(len);
	if (copy)
		memcpy(copy, s->ser_tx, len);
	s->ser_tx_len = 0;
	pthread_mutex_lock(&s->ser_out_lock);
	pthread_mutex_unlock(&s->ser_lock);
	if (copy)
		conslog_write(s->ser_out, copy, len);
	pthread_mutex_unlock(&s->ser_out_lock);
	free(copy);
	pthread_mutex_lock(&s->ser_lock);
}

static void transmit(struct serial *s, uint8_t byte)
{
	uint64_t one = 1;

	if (s->ser_mcr & MCR_LOOP) {
		rx_push(s, byte);
		return;
	}
	if (!s->ser_out)
		return;
	if (s->ser_tx_len == TX_SIZE)
		drain_locked(s); /* the main thread is behind: write here, as a UART would stall */
	s->ser_tx[s->ser_tx_len++] = byte;
	if (s->ser_tx_len == 1 && write(s->ser_tx_wake, &one, sizeof(one)) < 0)
		drain_locked(s);
}

static uint8_t modem_status(const struct serial *s)
{
	uint8_t mcr = s->ser_mcr;

	if (!(mcr & MCR_LOOP))
		return 0xB0; /* DCD, DSR, CTS */
	/* Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD. */
	return (uint8_t)(((mcr & 0x01) << 5) | ((mcr & 0x02) << 3) | ((mcr & 0x04) << 4) |
			 ((mcr & 0x08) << 4));
}

static void serial_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct serial *s = opaque;
	uint8_t v = 0;

	pthread_mutex_lock(&s->ser_lock);
	switch (offset) {
	case REG_RBR_THR:
		if (s->ser_lcr & LCR_DLAB) {
			v = s->ser_dll;
		} else if (rx_ready(s)) {
			v = s->ser_rx[s->ser_rx_head];
			s->ser_rx_head = (s->ser_rx_head + 1) % RX_SIZE;
			s->ser_rx_count--;
		}
		break;
	case REG_IER: v = (s->ser_lcr & LCR_DLAB) ? s->ser_dlm : s->ser_ier; break;
	case REG_IIR_FCR:
		v = iir(s);
		if ((v & 0x0F) == IIR_THRI)
			s->ser_thre_pending = false; /* reading IIR acknowledges THRE */
		break;
	case REG_LCR: v = s->ser_lcr; break;
	case REG_MCR: v = s->ser_mcr; break;
	case REG_LSR: v = LSR_THRE | LSR_TEMT | (rx_ready(s) ? LSR_DR : 0); break;
	case REG_MSR: v = modem_status(s); break;
	case REG_SCR: v = s->ser_scr; break;
	}
	update_irq(s);
	pthread_mutex_unlock(&s->ser_lock);
	for (unsigned i = 0; i < len; i++)
		((uint8_t *)data)[i] = i ? 0xFF : v;
}

static void serial_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct serial *s = opaque;
	uint8_t v = *(const uint8_t *)data;

	(void)len;
	pthread_mutex_lock(&s->ser_lock);
	switch (offset) {
	case REG_RBR_THR:
		if (s->ser_lcr & LCR_DLAB) {
			s->ser_dll = v;
			break;
		}
		s->ser_thre_pending = false;
		update_irq(s);
		transmit(s, v);
		s->ser_thre_pending = true; /* sent at once: empty again */
		break;
	case REG_IER:
		if (s->ser_lcr & LCR_DLAB) {
			s->ser_dlm = v;
			break;
		}
		if ((v & IER_THRI) && !(s->ser_ier & IER_THRI))
			s->ser_thre_pending = true;
		s->ser_ier = v & 0x0F;
		break;
	case REG_IIR_FCR:
		s->ser_fcr = v & 0xC9;
		if (v & FCR_CLEAR_RX)
			s->ser_rx_count = 0;
		break;
	case REG_LCR: s->ser_lcr = v; break;
	case REG_MCR: s->ser_mcr = v & 0x1F; break;
	case REG_SCR: s->ser_scr = v; break;
	default: /* LSR and MSR are read-only */ break;
	}
	update_irq(s);
	pthread_mutex_unlock(&s->ser_lock);
}

void serial_flush(struct serial *s)
{
	uint64_t n;

	if (read(s->ser_tx_wake, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&s->ser_lock);
	drain_locked(s);
	pthread_mutex_unlock(&s->ser_lock);
}

int serial_output_fd(const struct serial *s)
{
	return s->ser_tx_wake;
}

size_t serial_feed(struct serial *s, const void *buf, size_t len)
{
	size_t n;

	pthread_mutex_lock(&s->ser_lock);
	for (n = 0; n < len && s->ser_rx_count < RX_SIZE; n++)
		rx_push(s, ((const uint8_t *)buf)[n]);
	if (n < len && !s->ser_warned_full) {
		log_warnx("serial: guest is not reading its console; input held back");
		s->ser_warned_full = true;
	} else if (n == len) {
		s->ser_warned_full = false;
	}
	update_irq(s);
	pthread_mutex_unlock(&s->ser_lock);
	return n;
}

struct serial *serial_create(struct vm *vm, struct conslog *out)
{
	struct serial *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return NULL;
	s->ser_vm = vm;
	s->ser_out = out;
	s->ser_thre_pending = false;
	s->ser_dll = 12; /* 9600 baud */
	pthread_mutex_init(&s->ser_lock, NULL);
	pthread_mutex_init(&s->ser_out_lock, NULL);
	s->ser_tx_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->ser_tx_wake < 0) {
		log_warn("serial: eventfd");
		serial_free(s);
		return NULL;
	}
	r = vm_register_pio(vm, &(struct io_region){.io_name = "serial",
						    .io_base = COM1_BASE,
						    .io_len = 8,
						    .io_read = serial_read,
						    .io_write = serial_write,
						    .io_opaque = s});
	if (r < 0) {
		errno = -r;
		log_warn("serial: cannot register COM1");
		serial_free(s);
		return NULL;
	}
	return s;
}

void serial_free(struct serial *s)
{
	if (!s)
		return;
	if (s->ser_tx_wake >= 0) {
		serial_flush(s);
		close(s->ser_tx_wake);
	}
	pthread_mutex_destroy(&s->ser_out_lock);
	pthread_mutex_destroy(&s->ser_lock);
	free(s);
}
