/* libFuzzer harness for the relay's ticket line (hostd/ticketline.c): the first byte is
 * the ticket buffer's size (an exact-size heap buffer, so ASan sees a write past it), the
 * rest what a client sent, copied to an exact-size buffer. Checked: a parsed line ends in
 * '\n' within TICKET_LINE_MAX bytes and starts with the prefix; the ticket is what lies
 * between prefix and newline (less a '\r'), non-empty, with no NUL or '\r'; "need more"
 * only before any newline and below TICKET_LINE_MAX bytes; and every shorter prefix of
 * the input that ends before the newline asks for more, as the relay reads in pieces. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hostd/ticketline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const size_t prefix = sizeof(TICKET_LINE_PREFIX) - 1;
	size_t room, len;
	char *ticket, *in;
	const char *nl;
	ssize_t r;

	if (size < 1)
		return 0;
	room = (size_t)data[0] + 1;
	len = size - 1;
	ticket = malloc(room);
	in = malloc(len ? len : 1);
	if (!ticket || !in)
		abort();
	memcpy(in, data + 1, len);
	r = ticket_line_parse(in, len, ticket, room);
	nl = memchr(in, '\n', len < TICKET_LINE_MAX ? len : TICKET_LINE_MAX);
	if (r == 0) {
		if (nl || len >= TICKET_LINE_MAX)
			abort();
	} else if (r > 0) {
		size_t end = (size_t)r - 1, n;

		if (!nl || (size_t)r != (size_t)(nl - in) + 1 || (size_t)r > TICKET_LINE_MAX)
			abort();
		if (memcmp(in, TICKET_LINE_PREFIX, prefix) != 0)
			abort();
		if (end > 0 && in[end - 1] == '\r')
			end--;
		n = end - prefix;
		if (n == 0 || n >= room || strlen(ticket) != n || memcmp(ticket, in + prefix, n))
			abort();
		if (memchr(ticket, '\r', n))
			abort();
		for (size_t k = 0; k < (size_t)r - 1; k++)
			if (ticket_line_parse(in, k, ticket, room) != 0)
				abort();
	} else if (r != -EINVAL) {
		abort();
	}
	free(in);
	free(ticket);
	return 0;
}
