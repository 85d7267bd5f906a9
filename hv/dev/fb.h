/* The linear framebuffer of vdi-hv: guest RAM-like memory at VM_FB_GPA that the guest
 * draws into (no registers, no mode setting), a PNG screendump, and change detection
 * for the VNC server. Not a VGA: the guest learns the geometry from screen_info or its
 * command line. */
#ifndef VDI_HV_DEV_FB_H
#define VDI_HV_DEV_FB_H

#include <stdint.h>

#include "display/source.h"

struct vm;
struct fb;

#define FB_MIN_DIM 64u
#define FB_MAX_DIM 4096u
/* Side of the square tiles fb_collect_changes() reports, in pixels. */
#define FB_TILE 64u

/* Returns a new width x height, 32 bpp framebuffer (XRGB8888, little-endian: blue in
 * byte 0, the top byte ignored), stride width * 4, mapped at VM_FB_GPA as its own KVM
 * memory slot with dirty-page logging. Width and height are 64..4096 and the size at
 * most VM_FB_MAX; otherwise, or when the slot cannot be added, logs why and returns
 * NULL. Free with fb_free(). */
struct fb *fb_create(struct vm *vm, unsigned width, unsigned height);
/* Frees the framebuffer and its memory. vm.h cannot remove a memory slot, so call it
 * only once the vCPUs have stopped for good. */
void fb_free(struct fb *fb);

unsigned fb_width(const struct fb *fb);
unsigned fb_height(const struct fb *fb);
/* Bytes per line. */
unsigned fb_stride(const struct fb *fb);
uint64_t fb_gpa(const struct fb *fb);
/* Bytes mapped: stride * height rounded up to 64 KiB (the unit of screen_info.lfb_size
 * for VESA framebuffers, so the loader's value is exact). */
uint64_t fb_size(const struct fb *fb);
/* The frame as the guest draws it, stride / 4 pixels a line. The guest may be
 * writing while the caller reads. */
const uint32_t *fb_pixels(const struct fb *fb);

/* Parses a "WIDTHxHEIGHT" geometry (as given to --fb, e.g. "1024x768") and checks the
 * bounds fb_create() enforces. Returns 0 or -EINVAL. */
int fb_parse_geometry(const char *s, unsigned *width, unsigned *height);

/* Writes the current frame as an 8-bit RGB PNG to path: to a temporary file in the same
 * directory, then renamed over path, so a reader never sees half a file and a failed
 * dump leaves nothing behind (and an existing file at path untouched). Safe from any
 * thread. Returns 0 or -errno. */
int fb_screendump(struct fb *fb, const char *path);

/* For the VNC server: fetches (and clears) the KVM dirty log of the slot and calls
 * changed() once for each FB_TILE x FB_TILE tile (clipped at the right and bottom
 * edges) whose pixels differ from what the previous call saw, by comparing the tiles
 * on dirty pages against a shadow copy, with the smallest rectangle in the tile that
 * holds every changed pixel. Only guest writes are tracked. Callers are
 * serialised by a lock, so it may run on any thread, vCPUs running or not. Returns the
 * number of tiles reported or -errno (then nothing was reported). */
int fb_collect_changes(struct fb *fb, display_changed_fn *changed, void *arg);

/* The framebuffer as the display serves it: its geometry, its pixels and
 * fb_collect_changes(). */
void fb_display_source(struct fb *fb, struct display_source *src);

#endif
