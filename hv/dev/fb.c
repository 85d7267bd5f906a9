/* Linear framebuffer device: memory mapped into the guest as its own KVM slot with
 * dirty logging, PNG screendumps and change detection for the VNC server (dirty pages,
 * then tiles compared with a shadow copy, then the changed pixels' box in a tile).
 * No I/O ports or MMIO registers: geometry is fixed when the VM is created. */
#include "hv/dev/fb.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <png.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hv/vm.h"
#include "lib/log.h"

#define FB_PAGE_SHIFT 12
#define FB_SIZE_ALIGN 0x10000ULL /* screen_info.lfb_size counts 64 KiB units */

struct fb {
	struct vm *vm;
	unsigned width, height, stride;
	uint64_t size; /* bytes mapped at VM_FB_GPA */
	uint8_t *mem;  /* the guest's view, size bytes */
	int slot;

	pthread_mutex_t lock; /* serialises fb_collect_changes(): guards the fields below */
	uint8_t *shadow;      /* the frame as the last fb_collect_changes() saw it */
	uint64_t *dirty;      /* KVM dirty bitmap, one bit per page of mem */
	size_t dirty_words;
};

struct fb *fb_create(struct vm *vm, unsigned width, unsigned height)
{
	struct fb *fb;
	uint64_t bytes, size;
	int slot;

	if (width < FB_MIN_DIM || width > FB_MAX_DIM || height < FB_MIN_DIM ||
	    height > FB_MAX_DIM) {
		log_warnx("fb: geometry %ux%u out of range (%u..%u each way)", width, height,
			  FB_MIN_DIM, FB_MAX_DIM);
		return NULL;
	}
	bytes = (uint64_t)width * 4 * height;
	size = (bytes + FB_SIZE_ALIGN - 1) & ~(FB_SIZE_ALIGN - 1);
	if (size > VM_FB_MAX) {
		log_warnx("fb: %ux%u needs %llu bytes, more than the %llu available", width, height,
			  (unsigned long long)size, (unsigned long long)VM_FB_MAX);
		return NULL;
	}

	fb = calloc(1, sizeof(*fb));
	if (!fb) {
		log_warn("fb: allocating the device");
		return NULL;
	}
	fb->vm = vm;
	fb->width = width;
	fb->height = height;
	fb->stride = width * 4;
	fb->size = size;
	fb->dirty_words = (size_t)(((size >> FB_PAGE_SHIFT) + 63) / 64);

	fb->mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (fb->mem == MAP_FAILED) {
		log_warn("fb: mapping %llu bytes of video memory", (unsigned long long)size);
		goto out_free_fb;
	}
	/* The guest memory starts zeroed, and so does the shadow: they agree. */
	fb->shadow = calloc(1, bytes);
	fb->dirty = calloc(fb->dirty_words, sizeof(*fb->dirty));
	if (!fb->shadow || !fb->dirty) {
		log_warn("fb: allocating the shadow frame");
		goto out_free_shadow;
	}
	if (pthread_mutex_init(&fb->lock, NULL) != 0) {
		log_warnx("fb: cannot initialise the lock");
		goto out_free_shadow;
	}
	slot = vm_add_memory_slot(vm, VM_FB_GPA, fb->mem, size, true);
	if (slot < 0) {
		log_warnx("fb: adding the memory slot at 0x%llx: %s", (unsigned long long)VM_FB_GPA,
			  strerror(-slot));
		goto out_destroy_lock;
	}
	fb->slot = slot;
	log_info("fb: %ux%u 32 bpp at 0x%llx, %llu KiB, slot %d", width, height,
		 (unsigned long long)VM_FB_GPA, (unsigned long long)(size >> 10), slot);
	return fb;

out_destroy_lock:
	pthread_mutex_destroy(&fb->lock);
out_free_shadow:
	free(fb->dirty);
	free(fb->shadow);
	munmap(fb->mem, size);
out_free_fb:
	free(fb);
	return NULL;
}

void fb_free(struct fb *fb)
{
	if (!fb)
		return;
	pthread_mutex_destroy(&fb->lock);
	free(fb->dirty);
	free(fb->shadow);
	munmap(fb->mem, fb->size);
	free(fb);
}

unsigned fb_width(const struct fb *fb)
{
	return fb->width;
}

unsigned fb_height(const struct fb *fb)
{
	return fb->height;
}

unsigned fb_stride(const struct fb *fb)
{
	return fb->stride;
}

uint64_t fb_gpa(const struct fb *fb)
{
	(void)fb;
	return VM_FB_GPA;
}

uint64_t fb_size(const struct fb *fb)
{
	return fb->size;
}

const uint32_t *fb_pixels(const struct fb *fb)
{
	return (const uint32_t *)fb->mem;
}

static int parse_dim(const char **s, unsigned *out)
{
	unsigned v = 0;
	const char *p = *s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (unsigned)(*p - '0');
		if (v > FB_MAX_DIM)
			return -EINVAL;
	}
	if (v < FB_MIN_DIM)
		return -EINVAL;
	*s = p;
	*out = v;
	return 0;
}

int fb_parse_geometry(const char *s, unsigned *width, unsigned *height)
{
	unsigned w, h;

	if (!s || parse_dim(&s, &w) < 0 || *s++ != 'x' || parse_dim(&s, &h) < 0 || *s)
		return -EINVAL;
	*width = w;
	*height = h;
	return 0;
}

/* libpng writes through write(2) so a failure keeps its errno. */
struct png_sink {
	int fd;
	int err; /* errno of the failed write, or 0 */
};

static void sink_write(png_structp png, png_bytep data, png_size_t len)
{
	struct png_sink *sink = png_get_io_ptr(png);

	while (len) {
		ssize_t n = write(sink->fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			sink->err = n < 0 ? errno : EIO;
			png_error(png, "write failed");
		}
		data += n;
		len -= (size_t)n;
	}
}

static void sink_flush(png_structp png)
{
	(void)png;
}

static void png_on_error(png_structp png, png_const_charp msg)
{
	log_warnx("fb: png: %s", msg);
	png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	log_debug("fb: png: %s", msg);
}

/* Encodes the frame into sink->fd. row holds width * 3 bytes. On a libpng error
 * (including a failed write) returns -sink->err, or -EIO when it is not a write error.
 * Nothing here is modified between setjmp() and a longjmp() but what sink points to. */
static int write_png(const struct fb *fb, struct png_sink *sink, uint8_t *row)
{
	png_structp png;
	png_infop info;

	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_on_error, png_on_warning);
	if (!png)
		return -ENOMEM;
	info = png_create_info_struct(png);
	if (!info) {
		png_destroy_write_struct(&png, NULL);
		return -ENOMEM;
	}
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		return sink->err ? -sink->err : -EIO;
	}
	png_set_write_fn(png, sink, sink_write, sink_flush);
	/* Screendumps are taken on request while the guest runs: favour speed. */
	png_set_compression_level(png, 1);
	png_set_IHDR(png, info, fb->width, fb->height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
		     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (unsigned y = 0; y < fb->height; y++) {
		const uint8_t *src = fb->mem + (size_t)y * fb->stride;

		/* XRGB8888 little-endian: bytes B, G, R, X. */
		for (unsigned x = 0; x < fb->width; x++) {
			row[3 * x] = src[4 * x + 2];
			row[3 * x + 1] = src[4 * x + 1];
			row[3 * x + 2] = src[4 * x];
		}
		png_write_row(png, row);
	}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	return 0;
}

int fb_screendump(struct fb *fb, const char *path)
{
	static atomic_uint serial;
	struct png_sink sink = {.fd = -1};
	char tmp[PATH_MAX];
	uint8_t *row;
	int n, err;

	if (!path || !*path)
		return -EINVAL;
	row = malloc((size_t)fb->width * 3);
	if (!row)
		return -ENOMEM;
	/* A name of our own next to path; a stale one left by a crashed process with the
	 * same pid is stepped over. */
	for (int attempt = 0; attempt < 8; attempt++) {
		n = snprintf(tmp, sizeof(tmp), "%s.%ld.%u.tmp", path, (long)getpid(),
			     atomic_fetch_add(&serial, 1));
		if (n < 0 || (size_t)n >= sizeof(tmp)) {
			err = -ENAMETOOLONG;
			goto out_free_row;
		}
		sink.fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (sink.fd >= 0 || errno != EEXIST)
			break;
	}
	if (sink.fd < 0) {
		err = -errno;
		log_warn("fb: screendump: creating %s", tmp);
		goto out_free_row;
	}
	err = write_png(fb, &sink, row);
	if (close(sink.fd) < 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) < 0) {
		err = -errno;
		log_warn("fb: screendump: renaming %s to %s", tmp, path);
	}
	if (err) {
		unlink(tmp);
		log_warnx("fb: screendump to %s failed: %s", path, strerror(-err));
	} else {
		log_info("fb: screendump %ux%u to %s", fb->width, fb->height, path);
	}
out_free_row:
	free(row);
	return err;
}

struct fb_box {
	unsigned x, y, w, h;
};

static bool page_dirty(const uint64_t *bitmap, uint64_t page)
{
	return bitmap[page / 64] >> (page % 64) & 1;
}

/* Whether any page under any line of the tile at (x0, y0), w x h, is dirty. */
static bool tile_dirty(const struct fb *fb, unsigned x0, unsigned y0, unsigned w, unsigned h)
{
	for (unsigned y = y0; y < y0 + h; y++) {
		uint64_t first = (uint64_t)y * fb->stride + (uint64_t)x0 * 4;
		uint64_t last = first + (uint64_t)w * 4 - 1;

		for (uint64_t p = first >> FB_PAGE_SHIFT; p <= last >> FB_PAGE_SHIFT; p++)
			if (page_dirty(fb->dirty, p))
				return true;
	}
	return false;
}

/* Compares the tile at (x0, y0), w x h, with the shadow, line by line, and brings the
 * shadow up to date where they differ. Returns whether anything changed, with the
 * smallest rectangle holding every changed pixel in *box. The guest may write on
 * meanwhile: the shadow takes only pixels inside the box, which the caller reports and
 * the VNC server reads afterwards, so nothing it absorbs goes unsent. */
static bool tile_update(struct fb *fb, unsigned x0, unsigned y0, unsigned w, unsigned h,
			struct fb_box *box)
{
	unsigned top = 0, bottom = 0, left = w, right = 0;

	for (unsigned y = y0; y < y0 + h; y++) {
		size_t off = (size_t)y * fb->stride + (size_t)x0 * 4;
		uint32_t *shadow = (uint32_t *)(void *)(fb->shadow + off);
		const uint32_t *mem = (const uint32_t *)(void *)(fb->mem + off);
		unsigned l = 0, r = w;

		if (memcmp(shadow, mem, (size_t)w * 4) == 0)
			continue;
		while (l < w && shadow[l] == mem[l])
			l++;
		if (l == w)
			continue; /* changed back while we looked */
		while (r > l + 1 && shadow[r - 1] == mem[r - 1])
			r--;
		memcpy(shadow + l, mem + l, (size_t)(r - l) * 4);
		if (right == 0)
			top = y;
		bottom = y + 1;
		if (l < left)
			left = l;
		if (r > right)
			right = r;
	}
	if (right == 0)
		return false;
	*box = (struct fb_box){x0 + left, top, right - left, bottom - top};
	return true;
}

int fb_collect_changes(struct fb *fb, display_changed_fn *changed, void *arg)
{
	bool any = false;
	int err, count = 0;

	pthread_mutex_lock(&fb->lock);
	err = vm_get_dirty_log(fb->vm, fb->slot, fb->dirty);
	if (err < 0) {
		log_warnx("fb: fetching the dirty log of slot %d: %s", fb->slot, strerror(-err));
		pthread_mutex_unlock(&fb->lock);
		return err;
	}
	for (size_t i = 0; i < fb->dirty_words && !any; i++)
		any = fb->dirty[i] != 0;
	/* The guest may write on while we compare: such pages are dirty again in the next
	 * log, so the next call looks at them again. */
	for (unsigned y = 0; any && y < fb->height; y += FB_TILE) {
		unsigned h = fb->height - y < FB_TILE ? fb->height - y : FB_TILE;

		for (unsigned x = 0; x < fb->width; x += FB_TILE) {
			unsigned w = fb->width - x < FB_TILE ? fb->width - x : FB_TILE;

			struct fb_box box;

			if (tile_dirty(fb, x, y, w, h) && tile_update(fb, x, y, w, h, &box)) {
				changed(arg, box.x, box.y, box.w, box.h);
				count++;
			}
		}
	}
	pthread_mutex_unlock(&fb->lock);
	return count;
}

static int collect_changes(void *opaque, display_changed_fn *changed, void *arg)
{
	return fb_collect_changes(opaque, changed, arg);
}

void fb_display_source(struct fb *fb, struct display_source *src)
{
	*src = (struct display_source){.src_width = fb->width,
				       .src_height = fb->height,
				       .src_stride = fb->stride,
				       .src_pixels = fb_pixels(fb),
				       .src_collect_changes = collect_changes,
				       .src_opaque = fb};
}
