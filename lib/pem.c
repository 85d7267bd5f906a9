#include "lib/pem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *pem_read(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(PEM_MAX);
	n = buf ? fread(buf, 1, PEM_MAX - 1, f) : 0;
	fclose(f);
	if (!buf || n == 0 || n == PEM_MAX - 1) {
		snprintf(err, errlen, "%s: empty or larger than %d bytes", path, PEM_MAX - 1);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}
