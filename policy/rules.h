/* The parts of access rules that need parsing and arithmetic: client addresses and
 * networks (IPv4 and IPv6 CIDR) and weekly time windows with a UTC offset. Pure
 * functions; the caller passes the time. */
#ifndef VDI_POLICY_RULES_H
#define VDI_POLICY_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

/* Parses a numeric IPv4 or IPv6 address (no zone, no port); an IPv4-mapped IPv6
 * address ("::ffff:10.1.2.3") becomes the IPv4 address. Returns 0 or -EINVAL. */
int policy_addr_parse(const char *text, struct policy_addr *out);

/* Parses "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128). Bits
 * beyond the prefix must be zero ("10.1.2.3/8" is refused as a likely typo). Returns
 * 0 or -EINVAL. */
int policy_cidr_parse(const char *text, struct policy_cidr *out);

/* True when addr lies in net (same family). */
bool policy_cidr_contains(const struct policy_cidr *net, const struct policy_addr *addr);

/* Parses one window: DAYS HH:MM-HH:MM, DAYS being a day ("Mon"), a range ("Mon-Fri",
 * "Fri-Mon" wraps), or "*" for every day; days are the English three-letter names,
 * any case. The end may be "24:00"; an end before the start runs overnight ("Mon-Fri
 * 22:00-06:00" covers Monday night to Saturday 06:00). Start and end must differ.
 * Returns 0 or -EINVAL. */
int policy_window_parse(const char *text, struct policy_window *out);

/* Parses windows separated by commas ("Mon-Fri 07:00-19:00, Sat 09:00-13:00") into
 * out (room for max). Returns the count, -EINVAL, or -E2BIG. */
int policy_windows_parse(const char *text, struct policy_window *out, size_t max);

/* True when Unix time now, seen utc_offset minutes east of UTC, is inside w. */
bool policy_window_contains(const struct policy_window *w, int64_t now, int utc_offset);

#endif
