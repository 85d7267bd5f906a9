/* Address, network and time-window parsing and matching for access rules. */
#include "policy/rules.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int policy_addr_parse(const char *text, struct policy_addr *out)
{
	uint8_t buf[16];

	memset(out, 0, sizeof(*out));
	if (!text)
		return -EINVAL;
	if (inet_pton(AF_INET, text, buf) == 1) {
		out->pa_family = AF_INET;
		memcpy(out->pa_bytes, buf, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, text, buf) == 1) {
		if (!memcmp(buf, v4_mapped, sizeof(v4_mapped))) {
			out->pa_family = AF_INET;
			memcpy(out->pa_bytes, buf + 12, 4);
		} else {
			out->pa_family = AF_INET6;
			memcpy(out->pa_bytes, buf, 16);
		}
		return 0;
	}
	return -EINVAL;
}

int policy_cidr_parse(const char *text, struct policy_cidr *out)
{
	char addr[64], *end;
	const char *slash;
	long prefix;
	int bits, r;

	memset(out, 0, sizeof(*out));
	if (!text)
		return -EINVAL;
	slash = strchr(text, '/');
	if (!slash) {
		r = policy_addr_parse(text, &out->pc_net);
		out->pc_prefix = out->pc_net.pa_family == AF_INET ? 32 : 128;
		return r;
	}
	if ((size_t)(slash - text) >= sizeof(addr) || !slash[1])
		return -EINVAL;
	memcpy(addr, text, (size_t)(slash - text));
	addr[slash - text] = '\0';
	/* a mapped address must not turn "::ffff:10.0.0.0/104" into an IPv4 network */
	if (inet_pton(AF_INET, addr, out->pc_net.pa_bytes) == 1) {
		out->pc_net.pa_family = AF_INET;
	} else if (inet_pton(AF_INET6, addr, out->pc_net.pa_bytes) == 1) {
		out->pc_net.pa_family = AF_INET6;
	} else {
		return -EINVAL;
	}
	bits = out->pc_net.pa_family == AF_INET ? 32 : 128;
	if (slash[1] < '0' || slash[1] > '9')
		return -EINVAL;
	prefix = strtol(slash + 1, &end, 10);
	if (*end || prefix < 0 || prefix > bits)
		return -EINVAL;
	out->pc_prefix = (int)prefix;
	for (int i = (int)prefix; i < bits; i++)
		if (out->pc_net.pa_bytes[i / 8] & (0x80 >> (i % 8)))
			return -EINVAL; /* host bits set */
	return 0;
}

bool policy_cidr_contains(const struct policy_cidr *net, const struct policy_addr *addr)
{
	int full, rest;

	if (!net || !addr || net->pc_net.pa_family != addr->pa_family)
		return false;
	full = net->pc_prefix / 8;
	rest = net->pc_prefix % 8;
	if (memcmp(net->pc_net.pa_bytes, addr->pa_bytes, (size_t)full))
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));

		if ((net->pc_net.pa_bytes[full] & mask) != (addr->pa_bytes[full] & mask))
			return false;
	}
	return true;
}

static const char *const day_names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

/* Reads a day name at *p; returns 0..6 (Monday first) or -1. */
static int parse_day(const char **p)
{
	for (int d = 0; d < 7; d++)
		if (!strncasecmp(*p, day_names[d], 3)) {
			*p += 3;
			return d;
		}
	return -1;
}

/* Reads HH:MM at *p into minutes; 24:00 allowed only when end. */
static int parse_time(const char **p, bool end)
{
	const char *s = *p;
	int h, m;

	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] != ':' || s[3] < '0' ||
	    s[3] > '5' || s[4] < '0' || s[4] > '9')
		return -1;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (h > 24 || (h == 24 && (m || !end)))
		return -1;
	*p = s + 5;
	return h * 60 + m;
}

static void skip_spaces(const char **p)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
}

/* Parses one window from *p, leaving *p after it. */
static int parse_window(const char **p, struct policy_window *out)
{
	int first, last, start, end;

	skip_spaces(p);
	if (**p == '*') {
		(*p)++;
		out->pw_days = 0x7f;
	} else {
		first = parse_day(p);
		if (first < 0)
			return -EINVAL;
		last = first;
		if (**p == '-') {
			(*p)++;
			last = parse_day(p);
			if (last < 0)
				return -EINVAL;
		}
		out->pw_days = 0;
		for (int d = first;; d = (d + 1) % 7) {
			out->pw_days |= (uint8_t)(1 << d);
			if (d == last)
				break;
		}
	}
	if (**p != ' ' && **p != '\t')
		return -EINVAL;
	skip_spaces(p);
	start = parse_time(p, false);
	if (start < 0 || **p != '-')
		return -EINVAL;
	(*p)++;
	end = parse_time(p, true);
	if (end < 0 || end == start)
		return -EINVAL;
	out->pw_start = (uint16_t)start;
	out->pw_end = (uint16_t)end;
	skip_spaces(p);
	return 0;
}

int policy_window_parse(const char *text, struct policy_window *out)
{
	const char *p = text;

	memset(out, 0, sizeof(*out));
	if (!text || parse_window(&p, out) < 0 || *p)
		return -EINVAL;
	return 0;
}

int policy_windows_parse(const char *text, struct policy_window *out, size_t max)
{
	const char *p = text;
	size_t n = 0;

	if (!text)
		return -EINVAL;
	for (;;) {
		struct policy_window w;

		if (parse_window(&p, &w) < 0)
			return -EINVAL;
		if (n == max)
			return -E2BIG;
		out[n++] = w;
		if (!*p)
			return (int)n;
		if (*p != ',')
			return -EINVAL;
		p++;
	}
}

bool policy_window_contains(const struct policy_window *w, int64_t now, int utc_offset)
{
	int64_t local = now + (int64_t)utc_offset * 60;
	int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
	int minute = (int)((local - days * 86400) / 60);
	int today = (int)(((days + 3) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
	int yesterday = (today + 6) % 7;
	bool on_today = w->pw_days & (1 << today);
	bool on_yesterday = w->pw_days & (1 << yesterday);

	if (w->pw_start < w->pw_end)
		return on_today && minute >= w->pw_start && minute < w->pw_end;
	/* overnight: the evening part today, the morning part of yesterday's window */
	return (on_today && minute >= w->pw_start) || (on_yesterday && minute < w->pw_end);
}
