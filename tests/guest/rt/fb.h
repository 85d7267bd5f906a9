/* The linear framebuffer as the framebuffer and desktop guests find it: vdi-hv's at
 * FB_VDI_BASE, 32 bpp, its size from "fb=WxH" on the command line. Not a drawing
 * library: each guest draws for itself. */
#ifndef FB_H
#define FB_H

#include "rt.h"

#define FB_VDI_BASE  0xC0000000UL
#define FB_MAX_BYTES (64u << 20)

/* Reads "fb=WxH" from the command line into *w and *h (kept when there is none). A
 * malformed size, or one that needs more than FB_MAX_BYTES, fails the guest `guest`. */
void fb_geometry(const char *guest, unsigned *w, unsigned *h);

/* Whether fb[0] and fb[last] keep what is written there: video memory at both ends. */
bool fb_is_memory(volatile uint32_t *fb, uint64_t last);

#endif
