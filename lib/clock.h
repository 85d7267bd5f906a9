/* Monotonic time (CLOCK_MONOTONIC) for intervals, deadlines and timeouts: it never jumps
 * when the wall clock is set. Wall-clock times (expiry dates, audit rows) use time(). */
#ifndef VDI_CLOCK_H
#define VDI_CLOCK_H

#include <stdint.h>

int64_t monotonic_ms(void);
double monotonic_seconds(void);

#endif
