#include "lib/hostport.h"

#include <errno.h>
#include <string.h>

int hostport_split(const char *text, char *host, size_t hostlen, unsigned *port)
{
	const char *colon = text ? strrchr(text, ':') : NULL;
	const char *name = text;
	size_t len;
	unsigned long p = 0;

	if (!colon || !colon[1])
		return -EINVAL;
	len = (size_t)(colon - text);
	if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
		name++;
		len -= 2;
	} else if (memchr(text, ':', len) || memchr(text, '[', len) || memchr(text, ']', len)) {
		return -EINVAL;
	}
	if (len == 0 || len >= hostlen)
		return -EINVAL;
	for (const char *c = colon + 1; *c; c++) {
		if (*c < '0' || *c > '9' || c - colon > 5)
			return -EINVAL;
		p = p * 10 + (unsigned long)(*c - '0');
	}
	if (p > 65535)
		return -EINVAL;
	memcpy(host, name, len);
	host[len] = '\0';
	*port = (unsigned)p;
	return 0;
}
