/* CMOS RTC: enough for a guest to read the date at boot. Time registers come from the
 * host clock (UTC, BCD, 24-hour mode), status registers say "update not in progress"
 * and "battery good"; writes to the clock are ignored and NVRAM bytes are kept. No
 * alarms and no periodic interrupt (guests keep time with kvm-clock, the PIT and the
 * LAPIC timer). */
#include "hv/dev/rtc.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "hv/vm.h"
#include "lib/log.h"

struct rtc {
	pthread_mutex_t rtc_lock;
	uint8_t rtc_index;
	uint8_t rtc_nvram[128];
};

static uint8_t bcd(int v)
{
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static uint8_t rtc_register(struct rtc *rtc, uint8_t index)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	switch (index) {
	case 0x00: return bcd(tm.tm_sec);
	case 0x02: return bcd(tm.tm_min);
	case 0x04: return bcd(tm.tm_hour);
	case 0x06: return bcd(tm.tm_wday + 1);
	case 0x07: return bcd(tm.tm_mday);
	case 0x08: return bcd(tm.tm_mon + 1);
	case 0x09: return bcd(tm.tm_year % 100);
	case 0x32: return bcd(19 + tm.tm_year / 100);
	case 0x0A: return 0x26; /* 32.768 kHz base, 1024 Hz rate, no update in progress */
	case 0x0B: return 0x02; /* 24-hour, BCD, no interrupts */
	case 0x0C: return 0x00; /* no interrupt flags */
	case 0x0D: return 0x80; /* valid RAM and time */
	default: return rtc->rtc_nvram[index & 0x7F];
	}
}

static void rtc_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct rtc *rtc = opaque;
	uint8_t v;

	pthread_mutex_lock(&rtc->rtc_lock);
	v = offset == 0 ? rtc->rtc_index : rtc_register(rtc, rtc->rtc_index);
	pthread_mutex_unlock(&rtc->rtc_lock);
	for (unsigned i = 0; i < len; i++)
		((uint8_t *)data)[i] = v;
}

static void rtc_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct rtc *rtc = opaque;
	uint8_t v = *(const uint8_t *)data;

	(void)len;
	pthread_mutex_lock(&rtc->rtc_lock);
	if (offset == 0)
		rtc->rtc_index = v & 0x7F; /* bit 7 is the NMI mask */
	else if (rtc->rtc_index >= 0x0E)
		rtc->rtc_nvram[rtc->rtc_index] = v;
	pthread_mutex_unlock(&rtc->rtc_lock);
}

struct rtc *rtc_create(struct vm *vm)
{
	struct rtc *rtc = calloc(1, sizeof(*rtc));
	int r;

	if (!rtc)
		return NULL;
	pthread_mutex_init(&rtc->rtc_lock, NULL);
	r = vm_register_pio(vm, &(struct io_region){.io_name = "rtc",
						    .io_base = 0x70,
						    .io_len = 2,
						    .io_read = rtc_read,
						    .io_write = rtc_write,
						    .io_opaque = rtc});
	if (r < 0) {
		errno = -r;
		log_warn("rtc: cannot register ports");
		rtc_free(rtc);
		return NULL;
	}
	return rtc;
}

void rtc_free(struct rtc *rtc)
{
	if (!rtc)
		return;
	pthread_mutex_destroy(&rtc->rtc_lock);
	free(rtc);
}
