/* Copy-on-write overlay on a raw base image: header and bitmap handling, reads split into
 * runs of blocks that live in the same file, copy-up of whole blocks on first write, and
 * the data-then-bitmap flush order that keeps it crash consistent (see the header). */
#include "hv/dev/blk_overlay.h"
#include "hv/le.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hv/dev/virtqueue.h"
#include "lib/log.h"

#define MAGIC	       "VDIOVRL1"
#define VERSION	       1
#define HEADER_SIZE    4096u
#define BITMAP_PAGE    4096u
#define HEADER_SUMMED  64u /* bytes covered by the checksum at offset 64 */
#define MAX_DISK_BYTES (16ULL << 40)
#define MAX_SEGMENTS   1024 /* IOV_MAX */

struct blk_overlay {
	int ov_fd, ov_base_fd;
	char *ov_path;
	uint64_t ov_size;
	uint64_t ov_nblocks;
	uint64_t ov_bitmap_off, ov_bitmap_len, ov_data_off;
	uint8_t *ov_bitmap;
	bool *ov_dirty; /* per bitmap page: changed in memory, not yet written */
	uint64_t ov_allocated;
	uint8_t *ov_bounce; /* one block, for copy-up */
	struct iovec ov_seg[MAX_SEGMENTS];
};

static const struct blk_overlay_io default_io = {pwritev, fdatasync};
static const struct blk_overlay_io *io = &default_io;

void blk_overlay_set_io(const struct blk_overlay_io *new_io)
{
	io = new_io ? new_io : &default_io;
}

static uint64_t fnv1a(const uint8_t *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static uint64_t round_up(uint64_t v, uint64_t to)
{
	return (v + to - 1) / to * to;
}

/* The geometry every overlay of a disk of size bytes has. */
static void layout(struct blk_overlay *ov, uint64_t size)
{
	ov->ov_size = size;
	ov->ov_nblocks = (size + BLK_OVERLAY_BLOCK_SIZE - 1) / BLK_OVERLAY_BLOCK_SIZE;
	ov->ov_bitmap_off = HEADER_SIZE;
	ov->ov_bitmap_len = round_up((ov->ov_nblocks + 7) / 8, BITMAP_PAGE);
	ov->ov_data_off = round_up(HEADER_SIZE + ov->ov_bitmap_len, BLK_OVERLAY_BLOCK_SIZE);
}

static void encode_header(const struct blk_overlay *ov, uint8_t hdr[HEADER_SIZE])
{
	memset(hdr, 0, HEADER_SIZE);
	memcpy(hdr, MAGIC, 8);
	le_put(hdr + 8, 4, VERSION);
	le_put(hdr + 12, 4, HEADER_SIZE);
	le_put(hdr + 16, 4, BLK_OVERLAY_BLOCK_SIZE);
	le_put(hdr + 24, 8, ov->ov_size);
	le_put(hdr + 32, 8, ov->ov_size); /* the base's size: they are equal by design */
	le_put(hdr + 40, 8, ov->ov_bitmap_off);
	le_put(hdr + 48, 8, ov->ov_bitmap_len);
	le_put(hdr + 56, 8, ov->ov_data_off);
	le_put(hdr + HEADER_SUMMED, 8, fnv1a(hdr, HEADER_SUMMED));
}

/* Checks a header read from disk against what a disk of base_size must have. */
static const char *check_header(const uint8_t hdr[HEADER_SIZE], uint64_t base_size)
{
	struct blk_overlay want;

	if (memcmp(hdr, MAGIC, 8))
		return "not a vdi overlay (bad magic)";
	if (le_get(hdr + HEADER_SUMMED, 8) != fnv1a(hdr, HEADER_SUMMED))
		return "damaged header (checksum mismatch)";
	if (le_get(hdr + 8, 4) != VERSION)
		return "unsupported overlay version";
	if (le_get(hdr + 32, 8) != base_size)
		return "the base image's size changed since the overlay was made";
	layout(&want, base_size);
	if (le_get(hdr + 12, 4) != HEADER_SIZE || le_get(hdr + 16, 4) != BLK_OVERLAY_BLOCK_SIZE ||
	    le_get(hdr + 24, 8) != want.ov_size || le_get(hdr + 40, 8) != want.ov_bitmap_off ||
	    le_get(hdr + 48, 8) != want.ov_bitmap_len || le_get(hdr + 56, 8) != want.ov_data_off)
		return "inconsistent header geometry";
	return NULL;
}

/* preadv/pwritev over the whole of iov[0, cnt) (consumed as it goes). */
static int full_iov(int fd, struct iovec *iov, unsigned cnt, uint64_t off, bool write)
{
	while (cnt) {
		ssize_t r = write ? io->io_pwritev(fd, iov, (int)cnt, (off_t)off)
				  : preadv(fd, iov, (int)cnt, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;
		off += (uint64_t)r;
		virtq_iov_advance(&iov, &cnt, (size_t)r);
	}
	return 0;
}

static int full_pread(int fd, void *buf, size_t len, uint64_t off)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};

	return full_iov(fd, &iov, 1, off, false);
}

static int full_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};

	return full_iov(fd, &iov, 1, off, true);
}

static int sync_file(int fd)
{
	int r;

	do
		r = io->io_fdatasync(fd);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

static bool is_allocated(const struct blk_overlay *ov, uint64_t block)
{
	return ov->ov_bitmap[block / 8] & (1u << (block % 8));
}

static int check_range(const struct blk_overlay *ov, const struct iovec *iov, unsigned cnt,
		       uint64_t off, uint64_t *len)
{
	*len = 0;
	if (cnt > MAX_SEGMENTS)
		return -EINVAL;
	for (unsigned k = 0; k < cnt; k++)
		if (__builtin_add_overflow(*len, iov[k].iov_len, len))
			return -EINVAL;
	if (off > ov->ov_size || *len > ov->ov_size - off)
		return -EINVAL;
	return 0;
}

int blk_overlay_read(struct blk_overlay *ov, const struct iovec *iov, unsigned cnt, uint64_t off)
{
	uint64_t len, done = 0;
	int r = check_range(ov, iov, cnt, off, &len);

	while (!r && done < len) {
		uint64_t pos = off + done, block = pos / BLK_OVERLAY_BLOCK_SIZE;
		bool in_overlay = is_allocated(ov, block);
		uint64_t end = (block + 1) * BLK_OVERLAY_BLOCK_SIZE;
		unsigned n;

		/* Extend the run while the next blocks live in the same file. */
		while (end < off + len &&
		       is_allocated(ov, end / BLK_OVERLAY_BLOCK_SIZE) == in_overlay)
			end += BLK_OVERLAY_BLOCK_SIZE;
		if (end > off + len)
			end = off + len;
		n = virtq_iov_slice(iov, cnt, done, end - pos, ov->ov_seg, MAX_SEGMENTS);
		r = in_overlay ? full_iov(ov->ov_fd, ov->ov_seg, n, ov->ov_data_off + pos, false)
			       : full_iov(ov->ov_base_fd, ov->ov_seg, n, pos, false);
		done += end - pos;
	}
	if (r < 0)
		log_warnx("overlay %s: reading at byte %llu: %s", ov->ov_path,
			  (unsigned long long)(off + done), strerror(-r));
	return r;
}

static void mark_allocated(struct blk_overlay *ov, uint64_t block)
{
	ov->ov_bitmap[block / 8] |= (uint8_t)(1u << (block % 8));
	ov->ov_dirty[block / 8 / BITMAP_PAGE] = true;
	ov->ov_allocated++;
}

/* Writes [pos, pos + len) of one unallocated block: the whole block goes to the overlay,
 * the base's bytes around the new ones included, then the block counts as allocated. */
static int copy_up(struct blk_overlay *ov, const struct iovec *iov, unsigned cnt, uint64_t done,
		   uint64_t pos, uint64_t len)
{
	uint64_t block = pos / BLK_OVERLAY_BLOCK_SIZE, start = block * BLK_OVERLAY_BLOCK_SIZE;
	uint64_t block_len = ov->ov_size - start < BLK_OVERLAY_BLOCK_SIZE ? ov->ov_size - start
									  : BLK_OVERLAY_BLOCK_SIZE;
	int r;

	if (len == block_len) {
		unsigned n = virtq_iov_slice(iov, cnt, done, len, ov->ov_seg, MAX_SEGMENTS);

		r = full_iov(ov->ov_fd, ov->ov_seg, n, ov->ov_data_off + start, true);
	} else {
		r = full_pread(ov->ov_base_fd, ov->ov_bounce, block_len, start);
		if (r < 0)
			return r;
		virtq_iov_read(iov, cnt, done, ov->ov_bounce + (pos - start), len);
		r = full_pwrite(ov->ov_fd, ov->ov_bounce, block_len, ov->ov_data_off + start);
	}
	if (r == 0)
		mark_allocated(ov, block);
	return r;
}

int blk_overlay_write(struct blk_overlay *ov, const struct iovec *iov, unsigned cnt, uint64_t off)
{
	uint64_t len, done = 0;
	int r = check_range(ov, iov, cnt, off, &len);

	while (!r && done < len) {
		uint64_t pos = off + done, block = pos / BLK_OVERLAY_BLOCK_SIZE;
		uint64_t end = (block + 1) * BLK_OVERLAY_BLOCK_SIZE;

		if (is_allocated(ov, block)) {
			unsigned n;

			while (end < off + len && is_allocated(ov, end / BLK_OVERLAY_BLOCK_SIZE))
				end += BLK_OVERLAY_BLOCK_SIZE;
			if (end > off + len)
				end = off + len;
			n = virtq_iov_slice(iov, cnt, done, end - pos, ov->ov_seg, MAX_SEGMENTS);
			r = full_iov(ov->ov_fd, ov->ov_seg, n, ov->ov_data_off + pos, true);
		} else {
			if (end > off + len)
				end = off + len;
			r = copy_up(ov, iov, cnt, done, pos, end - pos);
		}
		done += end - pos;
	}
	if (r < 0)
		log_warnx("overlay %s: writing at byte %llu: %s", ov->ov_path,
			  (unsigned long long)(off + done), strerror(-r));
	return r;
}

int blk_overlay_flush(struct blk_overlay *ov)
{
	size_t pages = ov->ov_bitmap_len / BITMAP_PAGE;
	bool any = false;
	int r;

	/* 1. The data of every block whose bit is about to be written. */
	r = sync_file(ov->ov_fd);
	for (size_t p = 0; !r && p < pages; p++) {
		if (!ov->ov_dirty[p])
			continue;
		/* 2. The bitmap pages that changed. Bits only go 0 -> 1, so a torn page
		 * write still leaves every bit pointing at data already on disk. */
		r = full_pwrite(ov->ov_fd, ov->ov_bitmap + p * BITMAP_PAGE, BITMAP_PAGE,
				ov->ov_bitmap_off + p * BITMAP_PAGE);
		if (!r)
			ov->ov_dirty[p] = false, any = true;
	}
	/* 3. The bitmap itself. */
	if (!r && any)
		r = sync_file(ov->ov_fd);
	if (r < 0)
		log_warnx("overlay %s: flush: %s", ov->ov_path, strerror(-r));
	return r;
}

uint64_t blk_overlay_size(const struct blk_overlay *ov)
{
	return ov->ov_size;
}

uint64_t blk_overlay_allocated(const struct blk_overlay *ov)
{
	return ov->ov_allocated;
}

int blk_image_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
		return 0;
	}
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, size) < 0 ? -errno : 0;
	return -EINVAL;
}

static void sync_parent_dir(const char *path)
{
	char *copy = strdup(path);
	int fd;

	if (!copy)
		return;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		if (fsync(fd) < 0)
			log_warn("overlay: syncing the directory of %s", path);
		close(fd);
	}
	free(copy);
}

/* Creates a new empty overlay at path for a base of base_size bytes: written to a
 * temporary name, synced, then renamed into place unless someone made it meanwhile. */
static int create_overlay(const char *path, uint64_t base_size)
{
	struct blk_overlay geo;
	uint8_t *hdr;
	char *tmp;
	int fd, r = 0;

	layout(&geo, base_size);
	if (asprintf(&tmp, "%s.tmp-%d", path, (int)getpid()) < 0)
		return -ENOMEM;
	hdr = calloc(1, HEADER_SIZE);
	fd = hdr ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
	if (fd < 0) {
		r = hdr ? -errno : -ENOMEM;
		goto out_free;
	}
	encode_header(&geo, hdr);
	if (pwrite(fd, hdr, HEADER_SIZE, 0) != HEADER_SIZE ||
	    ftruncate(fd, (off_t)geo.ov_data_off) < 0 || fsync(fd) < 0)
		r = errno ? -errno : -EIO;
	close(fd);
	if (!r && renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0 && errno != EEXIST)
		r = -errno;
	unlink(tmp); /* still there when path existed already or on error */
	if (!r)
		sync_parent_dir(path);
out_free:
	free(hdr);
	free(tmp);
	return r;
}

static int load(struct blk_overlay *ov, uint64_t base_size)
{
	uint8_t hdr[HEADER_SIZE];
	const char *why;
	uint64_t tail_bits;
	int r;

	r = full_pread(ov->ov_fd, hdr, HEADER_SIZE, 0);
	if (r < 0) {
		log_warnx("overlay %s: cannot read the header: %s", ov->ov_path,
			  r == -EIO ? "file too short" : strerror(-r));
		return r;
	}
	why = check_header(hdr, base_size);
	if (why) {
		log_warnx("overlay %s: %s", ov->ov_path, why);
		return -EINVAL;
	}
	layout(ov, base_size);
	ov->ov_bitmap = malloc(ov->ov_bitmap_len);
	ov->ov_dirty = calloc(ov->ov_bitmap_len / BITMAP_PAGE, sizeof(bool));
	ov->ov_bounce = malloc(BLK_OVERLAY_BLOCK_SIZE);
	if (!ov->ov_bitmap || !ov->ov_dirty || !ov->ov_bounce)
		return -ENOMEM;
	r = full_pread(ov->ov_fd, ov->ov_bitmap, ov->ov_bitmap_len, ov->ov_bitmap_off);
	if (r < 0) {
		log_warnx("overlay %s: cannot read the bitmap: %s", ov->ov_path, strerror(-r));
		return r;
	}
	for (uint64_t i = 0; i < ov->ov_bitmap_len; i++)
		ov->ov_allocated += (uint64_t)__builtin_popcount(ov->ov_bitmap[i]);
	/* Bits past the last block must be clear. */
	tail_bits = ov->ov_bitmap_len * 8 - ov->ov_nblocks;
	for (uint64_t b = ov->ov_nblocks; tail_bits && b < ov->ov_bitmap_len * 8; b++)
		if (is_allocated(ov, b)) {
			log_warnx("overlay %s: damaged bitmap (bits past the end)", ov->ov_path);
			return -EINVAL;
		}
	return 0;
}

/* Closes an overlay's files and frees it, whatever was opened so far. */
static void release(struct blk_overlay *ov)
{
	if (ov->ov_fd >= 0)
		close(ov->ov_fd);
	if (ov->ov_base_fd >= 0)
		close(ov->ov_base_fd);
	free(ov->ov_bitmap);
	free(ov->ov_dirty);
	free(ov->ov_bounce);
	free(ov->ov_path);
	free(ov);
}

struct blk_overlay *blk_overlay_open(const char *path, const char *base_path)
{
	struct blk_overlay *ov;
	uint64_t base_size = 0;
	int r;

	ov = calloc(1, sizeof(*ov));
	if (!ov || !(ov->ov_path = strdup(path))) {
		log_warn("overlay: cannot allocate");
		free(ov);
		return NULL;
	}
	ov->ov_fd = -1;
	ov->ov_base_fd = open(base_path, O_RDONLY | O_CLOEXEC);
	if (ov->ov_base_fd < 0) {
		log_warn("overlay %s: cannot open the base %s", path, base_path);
		goto out_free;
	}
	if (flock(ov->ov_base_fd, LOCK_SH | LOCK_NB) < 0) {
		log_warn("overlay %s: cannot lock the base %s (open for writing elsewhere?)", path,
			 base_path);
		goto out_free;
	}
	r = blk_image_size(ov->ov_base_fd, &base_size);
	if (r < 0 || base_size == 0 || base_size > MAX_DISK_BYTES) {
		log_warnx("overlay %s: base %s: %s", path, base_path,
			  r < 0 ? "not a regular file or block device"
				: "empty or larger than 16 TiB");
		goto out_free;
	}
	ov->ov_fd = open(path, O_RDWR | O_CLOEXEC);
	if (ov->ov_fd < 0 && errno == ENOENT) {
		r = create_overlay(path, base_size);
		if (r < 0) {
			errno = -r;
			log_warn("overlay %s: cannot create it", path);
			goto out_free;
		}
		log_info("overlay %s: created on %s (%llu bytes)", path, base_path,
			 (unsigned long long)base_size);
		ov->ov_fd = open(path, O_RDWR | O_CLOEXEC);
	}
	if (ov->ov_fd < 0) {
		log_warn("overlay: cannot open %s", path);
		goto out_free;
	}
	if (flock(ov->ov_fd, LOCK_EX | LOCK_NB) < 0) {
		log_warn("overlay: cannot lock %s (in use by another VM?)", path);
		goto out_free;
	}
	if (load(ov, base_size) < 0)
		goto out_free;
	return ov;

out_free:
	release(ov);
	return NULL;
}

void blk_overlay_close(struct blk_overlay *ov)
{
	if (!ov)
		return;
	blk_overlay_flush(ov);
	release(ov);
}
