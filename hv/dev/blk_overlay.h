/* Copy-on-write disk overlay on a read-only raw base image (a linked clone): a sparse
 * overlay file holding the blocks this disk has written, and an allocation bitmap, so a
 * hundred desktops share one base. Reads of unallocated blocks fall through to the base.
 * Not a general image format: no snapshots, no compression, no discard, a raw base only.
 *
 * File layout (little-endian; the header is written once, at creation, and never again):
 *   0       header: magic "VDIOVRL1", version, header size, block size (64 KiB), virtual
 *           size, base size, bitmap offset and length, data offset, FNV-1a checksum
 *   4096    bitmap: one bit per block, bit (i % 8) of byte (i / 8); 1 = in the overlay
 *   data    block i at data_offset + i * block_size (the file is sparse)
 *
 * Crash consistency: the first write to a block copies it up whole (base bytes merged with
 * the new ones) into the data area and sets its bit in memory only. blk_overlay_flush()
 * syncs the data, then writes the changed bitmap pages, then syncs again. So a bit is on
 * disk only once its block's data is, bits only ever go from 0 to 1, and whatever the
 * crash (process or host), every sector reads as of the last completed flush or as one of
 * the writes made after it: never zeros or garbage in place of base data. This is the
 * contract of a disk with a volatile write cache (virtio-blk with VIRTIO_BLK_F_FLUSH). */
#ifndef VDI_HV_DEV_BLK_OVERLAY_H
#define VDI_HV_DEV_BLK_OVERLAY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define BLK_OVERLAY_BLOCK_SIZE 65536u

struct blk_overlay;

/* Opens the overlay at path on the raw image base_path (opened read-only and locked
 * shared), creating the overlay when path does not exist (atomically: a temporary file
 * renamed into place), sized like the base. The overlay is locked exclusively. Refuses an
 * overlay whose header is damaged or whose recorded base size differs from the base's.
 * Returns the overlay, or NULL with a log line. Close with blk_overlay_close(). */
struct blk_overlay *blk_overlay_open(const char *path, const char *base_path);
/* Flushes (see blk_overlay_flush) and closes both files. NULL is ignored. */
void blk_overlay_close(struct blk_overlay *ov);

/* The disk's size in bytes (the base's size when the overlay was created). */
uint64_t blk_overlay_size(const struct blk_overlay *ov);
/* Bytes of the range [off, off + len) must lie within the size. They go to or come
 * from the buffers iov[0, cnt) in order, len being their total length. Return 0 or a
 * negative errno (-EINVAL out of range, -EIO and friends from the files). */
int blk_overlay_read(struct blk_overlay *ov, const struct iovec *iov, unsigned cnt, uint64_t off);
int blk_overlay_write(struct blk_overlay *ov, const struct iovec *iov, unsigned cnt, uint64_t off);
/* Makes every completed write durable: data, then bitmap, in that order. 0 or -errno. */
int blk_overlay_flush(struct blk_overlay *ov);

/* How many blocks the overlay holds (allocated in memory, flushed or not). */
uint64_t blk_overlay_allocated(const struct blk_overlay *ov);
/* Size in bytes of the regular file or block device fd (raw images and bases alike).
 * Returns 0 or -errno (-EINVAL for anything else). */
int blk_image_size(int fd, uint64_t *size);

/* Tests only: replaces the calls that change the overlay file, to record them, simulate
 * crashes or inject faults. NULL restores pwritev(2) and fdatasync(2). */
struct blk_overlay_io {
	ssize_t (*io_pwritev)(int fd, const struct iovec *iov, int cnt, off_t off);
	int (*io_fdatasync)(int fd);
};
void blk_overlay_set_io(const struct blk_overlay_io *io);

#endif
