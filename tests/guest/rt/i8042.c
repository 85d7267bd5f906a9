/* The i8042 for the test guests: see i8042.h. Polled port I/O, no state but the
 * settings from i8042_init() and the caller's rings. */
#include "i8042.h"

#define PORT_DATA   0x60
#define PORT_STATUS 0x64
#define STS_OBF	    0x01
#define STS_IBF	    0x02
#define STS_AUX	    0x20

static const char *guest_name = "i8042";
static unsigned poll_limit = 10000;

void i8042_init(const char *guest, unsigned limit)
{
	guest_name = guest;
	poll_limit = limit;
}

static void wait_write(void)
{
	for (unsigned i = 0; i < poll_limit && (inb(PORT_STATUS) & STS_IBF); i++)
		cpu_relax();
}

void i8042_command(uint8_t cmd)
{
	wait_write();
	outb(PORT_STATUS, cmd);
}

void i8042_write(uint8_t b)
{
	wait_write();
	outb(PORT_DATA, b);
}

void i8042_write_aux(uint8_t b)
{
	i8042_command(0xD4);
	i8042_write(b);
}

void i8042_write_ctr(uint8_t ctr)
{
	i8042_command(0x60);
	i8042_write(ctr);
}

void i8042_flush(void)
{
	for (int i = 0; i < 32 && (inb(PORT_STATUS) & STS_OBF); i++)
		inb(PORT_DATA);
}

int i8042_read(void)
{
	for (unsigned i = 0; i < poll_limit; i++)
		if (inb(PORT_STATUS) & STS_OBF)
			return inb(PORT_DATA);
	return -1;
}

int i8042_read_port(bool aux)
{
	for (unsigned i = 0; i < poll_limit; i++) {
		uint8_t st = inb(PORT_STATUS);

		if (!(st & STS_OBF))
			continue;
		if (!(st & STS_AUX) == !aux)
			return inb(PORT_DATA);
		inb(PORT_DATA);
	}
	return -1;
}

void i8042_want(const char *what, uint8_t expected)
{
	int b = i8042_read();

	if (b != expected)
		rt_fail(guest_name, "%s: got %d, wanted 0x%x", what, b, expected);
}

static void ring_put(struct i8042_ring *r, uint8_t b)
{
	if (r && r->head - r->tail < sizeof(r->bytes))
		r->bytes[r->head++ % sizeof(r->bytes)] = b;
}

void i8042_drain(struct i8042_ring *kbd, struct i8042_ring *aux)
{
	for (int i = 0; i < 64; i++) {
		uint8_t st = inb(PORT_STATUS);
		uint8_t b;

		if (!(st & STS_OBF))
			break;
		b = inb(PORT_DATA);
		ring_put(st & STS_AUX ? aux : kbd, b);
	}
}

bool i8042_ring_empty(const struct i8042_ring *r)
{
	return r->head == r->tail;
}

int i8042_ring_get(struct i8042_ring *r)
{
	uint8_t b;

	if (i8042_ring_empty(r))
		return -1;
	b = r->bytes[r->tail % sizeof(r->bytes)];
	r->tail++;
	return b;
}
