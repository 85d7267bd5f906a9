/* The framebuffer's size and presence: see fb.h. */
#include "fb.h"

/* One dimension, 64 to 4096 pixels. */
static bool parse_dim(const char **s, unsigned *v)
{
	const char *p = *s;

	*v = 0;
	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		*v = *v * 10 + (unsigned)(*p - '0');
		if (*v > 4096)
			return false;
	}
	*s = p;
	return *v >= 64;
}

void fb_geometry(const char *guest, unsigned *w, unsigned *h)
{
	const char *s = rt_cmdline();

	for (; *s; s++) {
		if ((s == rt_cmdline() || s[-1] == ' ') && s[0] == 'f' && s[1] == 'b' &&
		    s[2] == '=') {
			const char *p = s + 3;

			if (!parse_dim(&p, w) || *p++ != 'x' || !parse_dim(&p, h) ||
			    (*p && *p != ' '))
				rt_fail(guest, "bad geometry in cmdline '%s'", rt_cmdline());
			break;
		}
	}
	if ((uint64_t)*w * *h * 4 > FB_MAX_BYTES)
		rt_fail(guest, "%ux%u does not fit in %u bytes", *w, *h, FB_MAX_BYTES);
}

bool fb_is_memory(volatile uint32_t *fb, uint64_t last)
{
	fb[0] = 0x12345678;
	fb[last] = 0x9ABCDEF0;
	return fb[0] == 0x12345678 && fb[last] == 0x9ABCDEF0;
}
