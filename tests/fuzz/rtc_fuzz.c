/* libFuzzer harness for the CMOS RTC (hv/dev/rtc.c): the input is a script of two-byte
 * steps, guest reads and writes of ports 0x70 and 0x71 of width 1, 2 or 4, run against
 * the real device with a fake VM. Checked against a model: the index port reads back the
 * index without the NMI bit; clock registers read as valid BCD within their ranges,
 * status registers as the fixed "no update in progress, 24-hour BCD, valid" values; NVRAM
 * (0x0E..0x7F but the century) keeps what was written and nothing else changes; every
 * byte of a wider read holds the value. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hv/dev/rtc.h"
#include "hv/vm.h"
#include "lib/log.h"

static struct io_region region;
static bool registered;
static int fake_vm_storage;
static struct vm *const fake_vm = (struct vm *)&fake_vm_storage;

int vm_register_pio(struct vm *vm, const struct io_region *r)
{
	if (vm != fake_vm || registered || r->io_base != 0x70 || r->io_len != 2)
		abort();
	region = *r;
	registered = true;
	return 0;
}

static void check_bcd(uint8_t v, int lo, int hi)
{
	int n = (v >> 4) * 10 + (v & 15);

	if ((v >> 4) > 9 || (v & 15) > 9 || n < lo || n > hi)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t nvram[128] = {0}, index = 0;
	struct rtc *rtc;

	log_set_level(LOG_LEVEL_ERR);
	registered = false;
	rtc = rtc_create(fake_vm);
	if (!rtc || !registered)
		abort();
	for (size_t i = 0; i + 2 <= size; i += 2) {
		uint8_t op = data[i], arg = data[i + 1], v[4];
		unsigned port = op & 1, len = 1u << (op >> 2 & 3);

		if (len == 8)
			len = 1;
		if (op & 2) {
			region.io_write(region.io_opaque, port, &arg, len);
			if (port == 0)
				index = arg & 0x7F;
			else if (index >= 0x0E)
				nvram[index] = arg;
			continue;
		}
		memset(v, 0xA5, sizeof(v));
		region.io_read(region.io_opaque, port, v, len);
		for (unsigned k = 1; k < len; k++)
			if (v[k] != v[0])
				abort();
		if (port == 0) {
			if (v[0] != index)
				abort();
			continue;
		}
		switch (index) {
		case 0x00:
		case 0x02: check_bcd(v[0], 0, 59); break;
		case 0x04: check_bcd(v[0], 0, 23); break;
		case 0x06: check_bcd(v[0], 1, 7); break;
		case 0x07: check_bcd(v[0], 1, 31); break;
		case 0x08: check_bcd(v[0], 1, 12); break;
		case 0x09: check_bcd(v[0], 0, 99); break;
		case 0x32: check_bcd(v[0], 19, 99); break;
		case 0x0A:
			if (v[0] & 0x80) /* update in progress: never */
				abort();
			break;
		case 0x0B:
			if (!(v[0] & 0x02) || (v[0] & 0x04)) /* 24-hour, BCD */
				abort();
			break;
		case 0x0D:
			if (!(v[0] & 0x80))
				abort();
			break;
		default:
			if (v[0] != nvram[index])
				abort();
		}
	}
	rtc_free(rtc);
	return 0;
}
