/* What a display serves: a frame its producer draws into in place (the display reads it
 * without copying) and a way to learn which parts changed since the last look. The
 * display owns this interface; a VMM fills it in (vdi-hv's linear framebuffer:
 * fb_display_source() in hv/dev/fb.h). */
#ifndef VDI_DISPLAY_SOURCE_H
#define VDI_DISPLAY_SOURCE_H

#include <stdint.h>

/* Called once for each changed rectangle, in pixels. */
typedef void display_changed_fn(void *arg, unsigned x, unsigned y, unsigned w, unsigned h);

struct display_source {
	unsigned src_width, src_height; /* pixels */
	unsigned src_stride;		/* bytes per line */
	/* XRGB8888 little-endian (blue in byte 0, the top byte ignored); the producer
	 * may be writing while the display reads. */
	const uint32_t *src_pixels;
	/* Reports every rectangle that changed since the previous call through changed()
	 * and returns how many, or -errno (then nothing was reported). Called from the
	 * display thread only. */
	int (*src_collect_changes)(void *opaque, display_changed_fn *changed, void *arg);
	void *src_opaque;
};

#endif
