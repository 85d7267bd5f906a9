/* Unit tests for hv/dev/fb: geometry checks, PNG screendumps read back with libpng
 * (pixels, failures leaving no file behind) and change detection (tiles, and the changed
 * pixels' box in each). The device is the real code; only the two vm.h calls it makes
 * are faked here, with a dirty bitmap the tests set. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv/dev/fb.h"
#include "hv/vm.h"
#include "lib/log.h"

/* ---- The fake VM: records the slot, hands out the dirty bitmap the test sets ---- */

struct vm {
	int slots_added;
	uint64_t slot_gpa, slot_size;
	uint8_t *slot_hva;
	bool slot_log_dirty;
	int add_slot_error;  /* returned by vm_add_memory_slot when non-zero */
	int dirty_log_error; /* returned by vm_get_dirty_log when non-zero */
	int dirty_log_calls;
	uint64_t dirty[(VM_FB_MAX >> 12) / 64];
};

#define FAKE_SLOT 5

static struct vm fake_vm;

int vm_add_memory_slot(struct vm *vm, uint64_t gpa, void *hva, uint64_t size, bool log_dirty)
{
	if (vm->add_slot_error)
		return vm->add_slot_error;
	vm->slots_added++;
	vm->slot_gpa = gpa;
	vm->slot_hva = hva;
	vm->slot_size = size;
	vm->slot_log_dirty = log_dirty;
	return FAKE_SLOT;
}

int vm_get_dirty_log(struct vm *vm, int slot, uint64_t *bitmap)
{
	size_t words = (size_t)((vm->slot_size >> 12) + 63) / 64;

	vm->dirty_log_calls++;
	assert_int_equal(slot, FAKE_SLOT);
	if (vm->dirty_log_error)
		return vm->dirty_log_error;
	memcpy(bitmap, vm->dirty, words * sizeof(*bitmap));
	memset(vm->dirty, 0, sizeof(vm->dirty));
	return 0;
}

/* Marks the page under pixel (x, y) dirty, as KVM does when the guest writes it. */
static void guest_write(struct fb *fb, unsigned x, unsigned y, uint32_t v)
{
	uint64_t off = (uint64_t)y * fb_stride(fb) + (uint64_t)x * 4;

	memcpy(fake_vm.slot_hva + off, &v, 4);
	fake_vm.dirty[(off >> 12) / 64] |= 1ULL << ((off >> 12) % 64);
}

static void mark_all_dirty(void)
{
	memset(fake_vm.dirty, 0xFF, sizeof(fake_vm.dirty));
}

static int log_pipe[2] = {-1, -1};

static int setup(void **state)
{
	(void)state;
	memset(&fake_vm, 0, sizeof(fake_vm));
	if (pipe2(log_pipe, O_NONBLOCK) < 0)
		return -1;
	log_init("fb_test", LOG_LEVEL_INFO, false);
	log_set_fd(log_pipe[1]);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	log_set_fd(-1);
	close(log_pipe[0]);
	close(log_pipe[1]);
	return 0;
}

/* What was logged since the last call. */
static const char *logged(void)
{
	static char buf[16384];
	ssize_t n = read(log_pipe[0], buf, sizeof(buf) - 1);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* ---- Geometry ---- */

static void test_geometry_rejected(void **state)
{
	static const unsigned bad[][2] = {{63, 768},	   {1024, 63}, {4097, 768},
					  {1024, 4097},	   {0, 0},     {UINT32_MAX, 64},
					  {64, UINT32_MAX}};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		logged();
		assert_null(fb_create(&fake_vm, bad[i][0], bad[i][1]));
		assert_non_null(strstr(logged(), "out of range"));
	}
	assert_int_equal(fake_vm.slots_added, 0);
}

static void test_geometry_default(void **state)
{
	struct fb *fb;

	(void)state;
	fb = fb_create(&fake_vm, 1024, 768);
	assert_non_null(fb);
	assert_int_equal(fb_width(fb), 1024);
	assert_int_equal(fb_height(fb), 768);
	assert_int_equal(fb_stride(fb), 4096);
	assert_int_equal(fb_gpa(fb), VM_FB_GPA);
	assert_int_equal(fb_size(fb), 3 << 20);
	assert_int_equal(fake_vm.slots_added, 1);
	assert_int_equal(fake_vm.slot_gpa, VM_FB_GPA);
	assert_int_equal(fake_vm.slot_size, fb_size(fb));
	assert_ptr_equal(fake_vm.slot_hva, (const uint8_t *)fb_pixels(fb));
	assert_true(fake_vm.slot_log_dirty);
	assert_int_equal((uintptr_t)fake_vm.slot_hva % 4096, 0);
	/* Fresh video memory is black and writable end to end. */
	assert_int_equal(fb_pixels(fb)[0], 0);
	fake_vm.slot_hva[fb_size(fb) - 1] = 1;
	fb_free(fb);
}

static void test_geometry_limits(void **state)
{
	struct fb *fb;

	(void)state;
	fb = fb_create(&fake_vm, 800, 600);
	assert_non_null(fb);
	assert_int_equal(fb_stride(fb), 3200);
	assert_int_equal(fb_size(fb), 30 * 0x10000); /* 1,920,000 bytes in 64 KiB units */
	fb_free(fb);

	fb = fb_create(&fake_vm, 64, 64);
	assert_non_null(fb);
	assert_int_equal(fb_size(fb), 0x10000);
	fb_free(fb);

	fb = fb_create(&fake_vm, 4096, 4096);
	assert_non_null(fb);
	assert_int_equal(fb_size(fb), VM_FB_MAX);
	fb_free(fb);
	assert_int_equal(fake_vm.slots_added, 3);
}

static void test_slot_failure(void **state)
{
	(void)state;
	fake_vm.add_slot_error = -EEXIST;
	logged();
	assert_null(fb_create(&fake_vm, 1024, 768));
	assert_non_null(strstr(logged(), "memory slot"));
}

static void test_parse_geometry(void **state)
{
	static const char *const bad[] = {"",
					  "x",
					  "1024",
					  "1024x",
					  "x768",
					  "1024x768x",
					  "1024X768",
					  " 1024x768",
					  "1024x768 ",
					  "63x64",
					  "64x4097",
					  "-64x64",
					  "99999999999999999999x64"};
	unsigned w = 1, h = 1;

	(void)state;
	assert_int_equal(fb_parse_geometry("1024x768", &w, &h), 0);
	assert_int_equal(w, 1024);
	assert_int_equal(h, 768);
	assert_int_equal(fb_parse_geometry("64x4096", &w, &h), 0);
	assert_int_equal(w, 64);
	assert_int_equal(h, 4096);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		w = h = 1;
		assert_int_equal(fb_parse_geometry(bad[i], &w, &h), -EINVAL);
		assert_int_equal(w, 1);
		assert_int_equal(h, 1);
	}
	assert_int_equal(fb_parse_geometry(NULL, &w, &h), -EINVAL);
}

/* ---- Screendump ---- */

/* A pattern with every channel distinct, and garbage in the ignored top byte. */
static uint32_t pattern(unsigned x, unsigned y)
{
	return (uint32_t)((x * 7 + y) & 0xFF) << 24 | (x & 0xFF) << 16 | (y & 0xFF) << 8 |
	       ((x ^ y) * 13 & 0xFF);
}

static char tmpdir[64];

static void make_tmpdir(void)
{
	strcpy(tmpdir, "/tmp/fb_test.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
}

/* Number of entries in tmpdir besides . and .. */
static int tmpdir_entries(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void remove_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char p[512];

	assert_non_null(d);
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
		if (unlink(p) < 0)
			rmdir(p);
	}
	closedir(d);
	assert_int_equal(rmdir(tmpdir), 0);
}

/* Reads an 8-bit RGB, non-interlaced PNG; returns its pixels (free()) or NULL. */
static uint8_t *read_png(const char *path, unsigned *width, unsigned *height)
{
	png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png_create_info_struct(png);
	uint8_t *volatile pixels = NULL;
	png_uint_32 w, h;
	int depth, color, interlace;
	FILE *f = fopen(path, "rb");

	assert_non_null(f);
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_read_struct(&png, &info, NULL);
		fclose(f);
		free(pixels);
		return NULL;
	}
	png_init_io(png, f);
	png_read_info(png, info);
	png_get_IHDR(png, info, &w, &h, &depth, &color, &interlace, NULL, NULL);
	assert_int_equal(depth, 8);
	assert_int_equal(color, PNG_COLOR_TYPE_RGB);
	assert_int_equal(interlace, PNG_INTERLACE_NONE);
	pixels = malloc((size_t)w * h * 3);
	assert_non_null(pixels);
	for (png_uint_32 y = 0; y < h; y++)
		png_read_row(png, pixels + (size_t)y * w * 3, NULL);
	png_read_end(png, NULL);
	png_destroy_read_struct(&png, &info, NULL);
	fclose(f);
	*width = w;
	*height = h;
	return pixels;
}

static void fill_pattern(struct fb *fb)
{
	for (unsigned y = 0; y < fb_height(fb); y++)
		for (unsigned x = 0; x < fb_width(fb); x++) {
			uint32_t v = pattern(x, y);

			memcpy(fake_vm.slot_hva + (size_t)y * fb_stride(fb) + x * 4, &v, 4);
		}
}

static void check_png_pattern(const char *path, unsigned width, unsigned height)
{
	unsigned w = 0, h = 0;
	uint8_t *px = read_png(path, &w, &h);

	assert_non_null(px);
	assert_int_equal(w, width);
	assert_int_equal(h, height);
	for (unsigned y = 0; y < h; y++)
		for (unsigned x = 0; x < w; x++) {
			const uint8_t *p = px + ((size_t)y * w + x) * 3;
			uint32_t v = pattern(x, y);

			if (p[0] != (v >> 16 & 0xFF) || p[1] != (v >> 8 & 0xFF) ||
			    p[2] != (v & 0xFF))
				fail_msg("pixel (%u, %u) is %02x%02x%02x, want %06x", x, y, p[0],
					 p[1], p[2], v & 0xFFFFFF);
		}
	free(px);
}

static void test_screendump_pixels(void **state)
{
	struct fb *fb;
	char path[128];

	(void)state;
	make_tmpdir();
	snprintf(path, sizeof(path), "%s/shot.png", tmpdir);
	fb = fb_create(&fake_vm, 100, 70); /* not a multiple of anything handy */
	assert_non_null(fb);
	fill_pattern(fb);
	assert_int_equal(fb_screendump(fb, path), 0);
	check_png_pattern(path, 100, 70);
	assert_int_equal(tmpdir_entries(), 1); /* no temporary file left over */

	/* A second dump replaces the first. */
	memset(fake_vm.slot_hva, 0, fb_size(fb));
	assert_int_equal(fb_screendump(fb, path), 0);
	{
		unsigned w, h;
		uint8_t *px = read_png(path, &w, &h);

		assert_non_null(px);
		for (size_t i = 0; i < (size_t)w * h * 3; i++)
			assert_int_equal(px[i], 0);
		free(px);
	}
	assert_int_equal(tmpdir_entries(), 1);
	fb_free(fb);
	remove_tmpdir();
}

static void test_screendump_large(void **state)
{
	struct fb *fb;
	char path[128];

	(void)state;
	make_tmpdir();
	snprintf(path, sizeof(path), "%s/big.png", tmpdir);
	fb = fb_create(&fake_vm, 1024, 768);
	assert_non_null(fb);
	fill_pattern(fb);
	assert_int_equal(fb_screendump(fb, path), 0);
	check_png_pattern(path, 1024, 768);
	fb_free(fb);
	remove_tmpdir();
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void check_file(const char *path, const char *text)
{
	char buf[256] = "";
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	assert_string_equal(buf, text);
}

static void test_screendump_errors(void **state)
{
	struct fb *fb;
	char path[PATH_MAX + 64];

	(void)state;
	make_tmpdir();
	fb = fb_create(&fake_vm, 640, 480);
	assert_non_null(fb);
	fill_pattern(fb);

	snprintf(path, sizeof(path), "%s/missing/shot.png", tmpdir);
	assert_int_equal(fb_screendump(fb, path), -ENOENT);
	/* path is a directory: the PNG is written, the rename fails and is cleaned up. */
	assert_int_equal(fb_screendump(fb, tmpdir), -EISDIR);
	assert_int_equal(fb_screendump(fb, ""), -EINVAL);
	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(fb_screendump(fb, path), -ENAMETOOLONG);
	assert_int_equal(tmpdir_entries(), 0);

	if (geteuid() != 0) { /* root writes anywhere */
		snprintf(path, sizeof(path), "%s/ro", tmpdir);
		assert_int_equal(mkdir(path, 0555), 0);
		snprintf(path, sizeof(path), "%s/ro/shot.png", tmpdir);
		assert_int_equal(fb_screendump(fb, path), -EACCES);
		snprintf(path, sizeof(path), "%s/ro", tmpdir);
		assert_int_equal(rmdir(path), 0);
	}
	fb_free(fb);
	remove_tmpdir();
}

/* The disk fills up half way through the PNG (for root too): the error is returned, the
 * old file at path is untouched and no temporary file remains. */
static void test_screendump_write_fails(void **state)
{
	struct rlimit old, small = {.rlim_cur = 4096, .rlim_max = RLIM_INFINITY};
	struct fb *fb;
	char path[128];
	int err;

	(void)state;
	make_tmpdir();
	snprintf(path, sizeof(path), "%s/shot.png", tmpdir);
	write_file(path, "previous dump\n");
	fb = fb_create(&fake_vm, 1024, 768);
	assert_non_null(fb);
	fill_pattern(fb); /* compresses to well over 4 KiB */

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small.rlim_max = old.rlim_max;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	err = fb_screendump(fb, path);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);

	assert_int_equal(err, -EFBIG);
	check_file(path, "previous dump\n");
	assert_int_equal(tmpdir_entries(), 1);
	assert_non_null(strstr(logged(), "screendump"));
	fb_free(fb);
	remove_tmpdir();
}

/* ---- Change collection ---- */

struct rect {
	unsigned x, y, w, h;
};

struct changes {
	unsigned n;
	struct rect r[4096];
};

static void record_change(void *arg, unsigned x, unsigned y, unsigned w, unsigned h)
{
	struct changes *c = arg;

	assert_true(c->n < sizeof(c->r) / sizeof(c->r[0]));
	c->r[c->n++] = (struct rect){x, y, w, h};
}

static struct changes changes;

static int collect(struct fb *fb)
{
	int n;

	memset(&changes, 0, sizeof(changes));
	n = fb_collect_changes(fb, record_change, &changes);
	if (n >= 0)
		assert_int_equal(n, changes.n);
	return n;
}

static void assert_rect(unsigned i, unsigned x, unsigned y, unsigned w, unsigned h)
{
	assert_true(i < changes.n);
	if (changes.r[i].x != x || changes.r[i].y != y || changes.r[i].w != w ||
	    changes.r[i].h != h)
		fail_msg("change %u is %ux%u at (%u, %u), want %ux%u at (%u, %u)", i,
			 changes.r[i].w, changes.r[i].h, changes.r[i].x, changes.r[i].y, w, h, x,
			 y);
}

static void test_changes_tiles(void **state)
{
	struct fb *fb;

	(void)state;
	fb = fb_create(&fake_vm, 1024, 768); /* one page per line */
	assert_non_null(fb);
	assert_int_equal(collect(fb), 0);

	/* One pixel: in its tile, just that pixel. */
	guest_write(fb, 70, 5, 0x00FF0000);
	assert_int_equal(collect(fb), 1);
	assert_rect(0, 70, 5, 1, 1);
	/* Reported once. */
	assert_int_equal(collect(fb), 0);

	/* Two pixels on one dirty page, at both ends of the line: two tiles, not the
	 * fourteen between them that share the page. */
	guest_write(fb, 0, 100, 0x1);
	guest_write(fb, 1023, 100, 0x2);
	assert_int_equal(collect(fb), 2);
	assert_rect(0, 0, 100, 1, 1);
	assert_rect(1, 1023, 100, 1, 1);

	/* Many pixels over many lines of one tile: one report, their bounding box. */
	for (unsigned y = 640; y < 704; y++)
		for (unsigned x = 512; x < 576; x += 9)
			guest_write(fb, x, y, 0xABCDEF);
	assert_int_equal(collect(fb), 1);
	assert_rect(0, 512, 640, 64, 64);
	/* A glyph-sized change: a box of its lines and columns, not the tile. */
	for (unsigned y = 130; y < 146; y++)
		for (unsigned x = 200 + y % 3; x < 208; x += 2)
			guest_write(fb, x, y, 0x7 + y);
	assert_int_equal(collect(fb), 1);
	assert_rect(0, 200, 130, 8, 16);
	/* Two separate changes in one tile: one box around both. */
	guest_write(fb, 300, 200, 0x9);
	guest_write(fb, 310, 250, 0x9);
	assert_int_equal(collect(fb), 1);
	assert_rect(0, 300, 200, 11, 51);

	/* Pixel in the bottom-right corner. */
	guest_write(fb, 1023, 767, 0x42);
	assert_int_equal(collect(fb), 1);
	assert_rect(0, 1023, 767, 1, 1);
	fb_free(fb);
}

static void test_changes_same_content(void **state)
{
	struct fb *fb;

	(void)state;
	fb = fb_create(&fake_vm, 1024, 768);
	assert_non_null(fb);
	/* Every page dirty, nothing different from what was seen: nothing to report. */
	mark_all_dirty();
	assert_int_equal(collect(fb), 0);
	/* The guest rewrites a pixel with the value it had. */
	guest_write(fb, 70, 5, 0x00FF0000);
	assert_int_equal(collect(fb), 1);
	guest_write(fb, 70, 5, 0x00FF0000);
	assert_int_equal(collect(fb), 0);
	/* Changes a pixel and changes it back before anyone looks. */
	guest_write(fb, 300, 300, 0x123456);
	guest_write(fb, 300, 300, 0);
	assert_int_equal(collect(fb), 0);
	/* Everything changes: every tile, in order, exactly once. */
	memset(fake_vm.slot_hva, 0x11, fb_size(fb));
	mark_all_dirty();
	assert_int_equal(collect(fb), 16 * 12);
	for (unsigned i = 0; i < 16 * 12; i++)
		assert_rect(i, i % 16 * 64, i / 16 * 64, 64, 64);
	assert_int_equal(fake_vm.dirty_log_calls, 5);
	fb_free(fb);
}

static void test_changes_edges(void **state)
{
	struct fb *fb;

	(void)state;
	fb = fb_create(&fake_vm, 800, 600); /* lines straddle pages; partial edge tiles */
	assert_non_null(fb);
	guest_write(fb, 799, 599, 0xFFFFFF);
	assert_int_equal(collect(fb), 1);
	assert_rect(0, 799, 599, 1, 1);

	/* A line that straddles two pages: a pixel on the second page of line 1
	 * (bytes 4096.. are x = 224.. of line 1). */
	guest_write(fb, 230, 1, 0x7);
	assert_int_equal(collect(fb), 1);
	assert_rect(0, 230, 1, 1, 1);

	memset(fake_vm.slot_hva, 0x22, fb_size(fb));
	mark_all_dirty();
	assert_int_equal(collect(fb), 13 * 10);
	assert_rect(12, 768, 0, 32, 64);
	assert_rect(13 * 9, 0, 576, 64, 24);
	assert_rect(13 * 10 - 1, 768, 576, 32, 24);
	fb_free(fb);
}

static void test_changes_dirty_log_error(void **state)
{
	struct fb *fb;

	(void)state;
	fb = fb_create(&fake_vm, 1024, 768);
	assert_non_null(fb);
	guest_write(fb, 10, 10, 0x1);
	fake_vm.dirty_log_error = -EIO;
	assert_int_equal(collect(fb), -EIO);
	assert_int_equal(changes.n, 0);
	fake_vm.dirty_log_error = 0;
	assert_int_equal(collect(fb), 1);
	assert_rect(0, 10, 10, 1, 1);
	fb_free(fb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_geometry_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_geometry_default, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_geometry_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slot_failure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parse_geometry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_screendump_pixels, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_screendump_large, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_screendump_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_screendump_write_fails, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_changes_tiles, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_changes_same_content, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_changes_edges, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_changes_dirty_log_error, setup, teardown),
	};
	return cmocka_run_group_tests_name("fb", tests, NULL, NULL);
}
