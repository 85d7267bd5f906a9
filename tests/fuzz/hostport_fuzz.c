/* libFuzzer harness for "HOST:PORT" parsing (lib/hostport.c). The first byte is the size
 * of the host buffer (an exact-size heap buffer, so ASan sees a write past it), the rest
 * the text. Checked: a split host is non-empty, NUL-terminated within the buffer, has no
 * ':' unless the text was bracketed, and the port is at most 65535 and made of the
 * digits after the last colon; the result never depends on the buffer size except for
 * -EINVAL when the host does not fit; and the round trip holds: "host:port" (bracketed
 * when the host holds ':', '[' or ']') and "[host]:port" split to the same host and
 * port. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hostport.h"

static void round_trip(const char *host, unsigned port, bool brackets)
{
	size_t n = strlen(host) + 16;
	char *text = malloc(n), *again = malloc(n);
	unsigned p2 = 99999;

	if (!text || !again)
		abort();
	snprintf(text, n, brackets ? "[%s]:%u" : "%s:%u", host, port);
	if (hostport_split(text, again, n, &p2) != 0 || strcmp(again, host) || p2 != port)
		abort();
	free(again);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, *host, *big;
	size_t hostlen, tlen;
	unsigned port = 77777, bigport = 88888;
	int r, rbig;

	if (size < 1)
		return 0;
	hostlen = data[0];
	text = malloc(size);
	big = malloc(size + 1);
	host = malloc(hostlen ? hostlen : 1);
	if (!text || !big || !host)
		abort();
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	tlen = strlen(text);

	r = hostport_split(text, host, hostlen, &port);
	rbig = hostport_split(text, big, size + 1, &bigport);
	if ((r != 0 && r != -EINVAL) || (rbig != 0 && rbig != -EINVAL))
		abort();
	if (rbig == 0) {
		const char *colon = strrchr(text, ':');
		size_t hl = strlen(big);
		unsigned long digits;

		if (hl == 0 || hl >= size || bigport > 65535 || !colon)
			abort();
		if (strchr(big, ':') && text[0] != '[')
			abort();
		if (!colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1))
			abort();
		digits = strtoul(colon + 1, NULL, 10);
		if (digits != bigport)
			abort();
		/* fits or not: the only way the buffer size matters */
		if (hl < hostlen ? r != 0 || strcmp(host, big) || port != bigport : r != -EINVAL)
			abort();
		round_trip(big, bigport, strpbrk(big, ":[]") != NULL);
		round_trip(big, bigport, true);
	} else if (r != -EINVAL) {
		abort();
	}
	if (r != 0 && port != 77777)
		abort(); /* nothing written on failure */
	(void)tlen;
	if (hostport_split(NULL, big, size + 1, &port) != -EINVAL)
		abort();
	free(host);
	free(big);
	free(text);
	return 0;
}
