#include "hostd/ticketline.h"

#include <errno.h>
#include <string.h>

ssize_t ticket_line_parse(const char *buf, size_t len, char *ticket, size_t ticket_size)
{
	const size_t prefix = sizeof(TICKET_LINE_PREFIX) - 1;
	const char *nl = memchr(buf, '\n', len < TICKET_LINE_MAX ? len : TICKET_LINE_MAX);
	size_t end, n;

	if (!nl)
		return len < TICKET_LINE_MAX ? 0 : -EINVAL;
	end = (size_t)(nl - buf);
	if (end > 0 && buf[end - 1] == '\r')
		end--;
	if (end <= prefix || memcmp(buf, TICKET_LINE_PREFIX, prefix) != 0)
		return -EINVAL;
	n = end - prefix;
	if (n >= ticket_size || memchr(buf + prefix, '\0', n) || memchr(buf + prefix, '\r', n))
		return -EINVAL;
	memcpy(ticket, buf + prefix, n);
	ticket[n] = '\0';
	return nl + 1 - buf;
}
