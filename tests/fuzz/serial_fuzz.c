/* libFuzzer harness for the 16550A UART (hv/dev/serial.c): the input is a script of
 * two-byte steps, guest reads and writes of any COM1 register (of width 1, 2 or 4),
 * host input of any length and main-loop flushes, run against the real device with a
 * fake VM and a fake console log. A model of the UART checks what the guest sees:
 * received bytes come out in order (host input and loopback alike, none beyond the 4 KiB
 * buffer, none after a FIFO clear), LSR.DR tells whether one is waiting, IIR reports
 * received data only when enabled and waiting, the interrupt line is only driven when its
 * level changes and never while loopback or OUT2 says it must be low; and the console
 * log receives exactly the bytes the guest transmitted outside loopback, in order. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hv/conslog.h"
#include "hv/dev/serial.h"
#include "hv/vm.h"
#include "lib/log.h"

#define COM1   0x3F8
#define RX_MAX 4096

static struct io_region region;
static bool registered, irq_level;
static int fake_vm_storage;
static struct vm *const fake_vm = (struct vm *)&fake_vm_storage;

struct conslog {
	uint8_t *buf;
	size_t len, cap;
};

/* What the guest transmitted and what reached the log. */
static uint8_t *sent;
static size_t nsent, sent_cap;
static struct conslog log_out;

int vm_register_pio(struct vm *vm, const struct io_region *r)
{
	if (vm != fake_vm || registered || r->io_base != COM1 || r->io_len != 8)
		abort();
	region = *r;
	registered = true;
	return 0;
}

int vm_set_irq(struct vm *vm, unsigned gsi, bool level)
{
	if (vm != fake_vm || gsi != VM_IRQ_COM1 || level == irq_level)
		abort(); /* an edge line: driven only on a change */
	irq_level = level;
	return 0;
}

void conslog_write(struct conslog *cl, const void *buf, size_t len)
{
	if (cl != &log_out)
		abort();
	if (cl->len + len > cl->cap) {
		cl->cap = (cl->len + len) * 2;
		cl->buf = realloc(cl->buf, cl->cap);
		if (!cl->buf)
			abort();
	}
	memcpy(cl->buf + cl->len, buf, len);
	cl->len += len;
}

static void note_sent(uint8_t b)
{
	if (nsent == sent_cap) {
		sent_cap = sent_cap ? sent_cap * 2 : 1024;
		sent = realloc(sent, sent_cap);
		if (!sent)
			abort();
	}
	sent[nsent++] = b;
}

/* The model: the receive queue and the registers that decide what it means. */
static uint8_t rxq[RX_MAX];
static size_t rx_head, rx_count;
static uint8_t lcr, mcr, ier;

static void rx_push(uint8_t b)
{
	if (rx_count < RX_MAX)
		rxq[(rx_head + rx_count++) % RX_MAX] = b;
}

static uint8_t guest_read(unsigned reg, unsigned len)
{
	uint8_t v[4];

	memset(v, 0x5A, sizeof(v));
	region.io_read(region.io_opaque, reg, v, len);
	for (unsigned i = 1; i < len; i++)
		if (v[i] != 0xFF)
			abort();
	return v[0];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t feed[1024];
	struct serial *uart;
	size_t i = 0;

	log_set_level(LOG_LEVEL_ERR);
	registered = irq_level = false;
	nsent = log_out.len = 0;
	rx_head = rx_count = 0;
	lcr = mcr = ier = 0;
	uart = serial_create(fake_vm, size == 0 || data[0] & 1 ? &log_out : NULL);
	if (!uart || !registered)
		abort();
	bool logging = size == 0 || (data[0] & 1);
	if (size)
		i = 1;
	while (i + 2 <= size) {
		uint8_t op = data[i], arg = data[i + 1];
		unsigned reg = op & 7, len = 1u << (op >> 5 & 3);
		uint8_t v;

		i += 2;
		if (len == 8)
			len = 1;
		switch (op >> 3 & 3) {
		case 0: /* guest read */
			v = guest_read(reg, len);
			if (reg == 0 && !(lcr & 0x80)) {
				if (rx_count) {
					if (v != rxq[rx_head])
						abort();
					rx_head = (rx_head + 1) % RX_MAX;
					rx_count--;
				}
			} else if (reg == 5 && ((v & 1) != (rx_count > 0) || !(v & 0x60))) {
				abort();
			} else if (reg == 2 && (v & 0x0F) == 0x04 && (!rx_count || !(ier & 1))) {
				abort();
			} else if (reg == 2 && rx_count && (ier & 1) && (v & 0x0F) != 0x04) {
				abort();
			} else if (reg == 3 && v != lcr) {
				abort();
			}
			break;
		case 1: /* guest write */
			region.io_write(region.io_opaque, reg, &arg, len);
			if (reg == 0 && !(lcr & 0x80)) {
				if (mcr & 0x10)
					rx_push(arg);
				else if (logging)
					note_sent(arg);
			} else if (reg == 1 && !(lcr & 0x80)) {
				ier = arg & 0x0F;
			} else if (reg == 2 && (arg & 2)) {
				rx_count = 0;
			} else if (reg == 3) {
				lcr = arg;
			} else if (reg == 4) {
				mcr = arg & 0x1F;
			}
			break;
		case 2: { /* host input: arg * 17 bytes */
			size_t n = (size_t)arg * 17 % sizeof(feed), took;

			for (size_t k = 0; k < n; k++)
				feed[k] = (uint8_t)(op + k);
			took = serial_feed(uart, feed, n);
			if (took > n || took != (n < RX_MAX - rx_count ? n : RX_MAX - rx_count))
				abort();
			for (size_t k = 0; k < took; k++)
				rx_push(feed[k]);
			break;
		}
		case 3: serial_flush(uart); break;
		}
		/* the line is low in loopback and without OUT2 */
		if (irq_level && ((mcr & 0x10) || !(mcr & 0x08)))
			abort();
	}
	serial_free(uart); /* writes what is still buffered */
	if (log_out.len != nsent || (nsent && memcmp(log_out.buf, sent, nsent)))
		abort();
	return 0;
}
