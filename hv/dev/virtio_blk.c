/* Virtio block device on a raw image or a copy-on-write overlay (blk_overlay.c): request
 * parsing (any descriptor layout), bounds checks against the capacity, preadv/pwritev
 * straight into guest buffers, fdatasync for flush, a serial number from the image's file
 * name. Transport and queue validation are virtio_pci.c and virtqueue.c; nothing the guest
 * sends sizes a host allocation. */
#include "hv/dev/virtio_blk.h"
#include "hv/le.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "hv/dev/blk_overlay.h"
#include "hv/dev/virtio_pci.h"
#include "hv/dev/virtqueue.h"
#include "lib/log.h"

#define VIRTIO_ID_BLOCK	       2
#define PCI_CLASS_STORAGE_SCSI 0x010000

#define VIRTIO_BLK_F_SEG_MAX  2
#define VIRTIO_BLK_F_RO	      5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH    9

#define VIRTIO_BLK_T_IN	    0
#define VIRTIO_BLK_T_OUT    1
#define VIRTIO_BLK_T_FLUSH  4
#define VIRTIO_BLK_T_GET_ID 8

#define VIRTIO_BLK_S_OK	    0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

/* struct virtio_blk_config */
#define CFG_CAPACITY 0x00
#define CFG_SEG_MAX  0x0C
#define CFG_BLK_SIZE 0x14
#define CFG_LEN	     0x40

#define SECTOR_SIZE    512
#define REQ_HEADER_LEN 16 /* le32 type, le32 reserved, le64 sector */
#define ID_BYTES       20
#define QUEUE_SIZE     VIRTQ_MAX_SIZE
#define MAX_DATA_LEN   (UINT32_MAX - SECTOR_SIZE) /* the used length is 32 bits */

struct virtio_blk {
	struct virtio_pci *vp;
	int fd;			     /* the raw image; -1 with an overlay */
	struct blk_overlay *overlay; /* NULL on a raw image */
	bool read_only;
	uint64_t capacity; /* sectors */
	char *path;
	char serial[ID_BYTES];
	uint8_t config[CFG_LEN];
	/* Per-request scratch, used under the transport lock only. */
	struct virtq_chain chain;
	struct iovec io[VIRTQ_MAX_SIZE];
};

/* preadv/pwritev until done; iov is consumed. Returns 0 or -errno; *done gets the bytes
 * transferred. */
static int transfer(int fd, struct iovec *iov, unsigned cnt, uint64_t pos, bool write,
		    uint64_t *done)
{
	*done = 0;
	while (cnt) {
		ssize_t r = write ? pwritev(fd, iov, (int)cnt, (off_t)pos)
				  : preadv(fd, iov, (int)cnt, (off_t)pos);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO; /* end of file: the image shrank under us */
		*done += (uint64_t)r;
		pos += (uint64_t)r;
		virtq_iov_advance(&iov, &cnt, (size_t)r);
	}
	return 0;
}

/* Reads or writes len bytes of the buffers iov[0, n) from offset off, at sector. */
static uint8_t read_write(struct virtio_blk *blk, const struct iovec *iov, unsigned n, uint64_t off,
			  uint64_t len, uint64_t sector, bool write, uint64_t *done)
{
	unsigned cnt;
	int err;

	*done = 0;
	if (len % SECTOR_SIZE || len > MAX_DATA_LEN) {
		log_debug("%s: %s of %llu bytes is not whole sectors", virtio_pci_name(blk->vp),
			  write ? "write" : "read", (unsigned long long)len);
		return VIRTIO_BLK_S_IOERR;
	}
	if (sector > blk->capacity || len / SECTOR_SIZE > blk->capacity - sector) {
		log_debug("%s: %s of %llu sectors at %llu past the end (%llu sectors)",
			  virtio_pci_name(blk->vp), write ? "write" : "read",
			  (unsigned long long)(len / SECTOR_SIZE), (unsigned long long)sector,
			  (unsigned long long)blk->capacity);
		return VIRTIO_BLK_S_IOERR;
	}
	if (write && blk->read_only)
		return VIRTIO_BLK_S_IOERR;
	cnt = virtq_iov_slice(iov, n, off, len, blk->io, VIRTQ_MAX_SIZE);
	if (blk->overlay) {
		err = write ? blk_overlay_write(blk->overlay, blk->io, cnt, sector * SECTOR_SIZE)
			    : blk_overlay_read(blk->overlay, blk->io, cnt, sector * SECTOR_SIZE);
		*done = err < 0 ? 0 : len;
	} else {
		err = transfer(blk->fd, blk->io, cnt, sector * SECTOR_SIZE, write, done);
	}
	if (err < 0) {
		log_warnx("%s: %s %s at sector %llu: %s", virtio_pci_name(blk->vp),
			  write ? "writing" : "reading", blk->path, (unsigned long long)sector,
			  strerror(-err));
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

/* Runs one request. Returns 0 with *written (bytes put in the guest's buffers), or -EINVAL
 * when the chain cannot be a request at all (the device is then broken). */
static int process(struct virtio_blk *blk, const struct virtq_chain *c, uint32_t *written)
{
	const struct iovec *in = c->iov + c->n_out;
	uint8_t hdr[REQ_HEADER_LEN], status;
	uint64_t sector, done = 0, data_in;
	uint32_t type;

	if (c->out_len < REQ_HEADER_LEN || c->in_len < 1) {
		virtio_pci_fail(blk->vp,
				"request %u has no header or no status byte (%llu readable, %llu "
				"writable bytes)",
				c->head, (unsigned long long)c->out_len,
				(unsigned long long)c->in_len);
		return -EINVAL;
	}
	virtq_iov_read(c->iov, c->n_out, 0, hdr, REQ_HEADER_LEN);
	type = (uint32_t)le_get(hdr, 4);
	sector = le_get(hdr + 8, 8);
	data_in = c->in_len - 1; /* the status byte is the last writable byte */
	switch (type) {
	case VIRTIO_BLK_T_IN:
		status = read_write(blk, in, c->n_in, 0, data_in, sector, false, &done);
		break;
	case VIRTIO_BLK_T_OUT:
		status = read_write(blk, c->iov, c->n_out, REQ_HEADER_LEN,
				    c->out_len - REQ_HEADER_LEN, sector, true, &done);
		done = 0; /* nothing written into guest memory */
		break;
	case VIRTIO_BLK_T_FLUSH:
		status = VIRTIO_BLK_S_OK;
		if (blk->overlay ? blk_overlay_flush(blk->overlay) < 0 : fdatasync(blk->fd) < 0) {
			log_warn("%s: flushing %s", virtio_pci_name(blk->vp), blk->path);
			status = VIRTIO_BLK_S_IOERR;
		}
		break;
	case VIRTIO_BLK_T_GET_ID:
		done = virtq_iov_write(in, c->n_in, 0, blk->serial,
				       data_in < ID_BYTES ? data_in : ID_BYTES);
		status = VIRTIO_BLK_S_OK;
		break;
	default: status = VIRTIO_BLK_S_UNSUPP; break;
	}
	virtq_iov_write(in, c->n_in, data_in, &status, 1);
	*written = (uint32_t)done + 1; /* done <= MAX_DATA_LEN */
	return 0;
}

static void blk_queue_notify(void *opaque, struct virtio_pci *vp, unsigned queue, struct virtq *vq)
{
	struct virtio_blk *blk = opaque;
	bool used = false;
	int r = 0;

	/* At most one queue's worth: that covers everything available when the driver
	 * notified, and buffers added meanwhile come with a notify of their own (we never
	 * suppress notifications). So a guest feeding the ring from another vCPU cannot
	 * keep this vCPU thread here forever. */
	for (unsigned n = 0; n < vq->vq_size; n++) {
		uint32_t written;

		r = virtq_pop(vq, &blk->chain);
		if (r <= 0)
			break;
		if (process(blk, &blk->chain, &written) < 0)
			break;
		virtq_push(vq, blk->chain.head, written);
		used = true;
	}
	if (r < 0)
		virtio_pci_fail(vp, "queue %u: %s", queue, vq->vq_error);
	if (used)
		virtio_pci_queue_interrupt(vp, queue);
}

/* The serial: the image's file name, printable ASCII only, NUL-padded to 20 bytes. */
static void make_serial(char serial[ID_BYTES], const char *path)
{
	const char *base = strrchr(path, '/');
	unsigned n = 0;

	base = base ? base + 1 : path;
	memset(serial, 0, ID_BYTES);
	for (; *base && n < ID_BYTES; base++)
		if (*base > ' ' && *base < 0x7F)
			serial[n++] = *base;
	if (!n)
		memcpy(serial, "vdi-disk", 8);
}

/* Opens the raw image, or the overlay on base when base is not NULL; sets capacity. */
static int open_image(struct virtio_blk *blk, const char *path, const char *base)
{
	uint64_t size = 0;
	int err;

	if (base) {
		blk->overlay = blk_overlay_open(path, base);
		if (!blk->overlay)
			return -1;
		blk->capacity = blk_overlay_size(blk->overlay) / SECTOR_SIZE;
		size = blk_overlay_size(blk->overlay);
		goto out_sized;
	}
	blk->fd = open(path, (blk->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (blk->fd < 0) {
		log_warn("virtio-blk: cannot open %s", path);
		return -1;
	}
	if (flock(blk->fd, (blk->read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		log_warn("virtio-blk: cannot lock %s (in use by another VM?)", path);
		goto out_close_fd;
	}
	err = blk_image_size(blk->fd, &size);
	if (err < 0) {
		log_warnx("virtio-blk: %s: %s", path,
			  err == -EINVAL ? "not a regular file or block device" : strerror(-err));
		goto out_close_fd;
	}
	blk->capacity = size / SECTOR_SIZE;
out_sized:
	if (size % SECTOR_SIZE)
		log_warnx("virtio-blk: %s: the last %llu bytes are not a whole sector, ignored",
			  path, (unsigned long long)(size % SECTOR_SIZE));
	return 0;

out_close_fd:
	close(blk->fd);
	blk->fd = -1;
	return -1;
}

static void close_image(struct virtio_blk *blk)
{
	blk_overlay_close(blk->overlay);
	if (blk->fd >= 0)
		close(blk->fd);
}

static struct virtio_blk *create(struct vm *vm, struct pci_bus *bus, const char *path,
				 const char *base, bool read_only)
{
	struct virtio_pci_desc desc = {
	    .name = "virtio-blk",
	    .device_type = VIRTIO_ID_BLOCK,
	    .class_code = PCI_CLASS_STORAGE_SCSI,
	    .features = 1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_BLK_SIZE |
			1ULL << VIRTIO_BLK_F_FLUSH | (read_only ? 1ULL << VIRTIO_BLK_F_RO : 0),
	    .num_queues = 1,
	    .queue_max_size = QUEUE_SIZE,
	    .config_len = CFG_LEN,
	    .queue_notify = blk_queue_notify,
	};
	struct virtio_blk *blk;

	blk = calloc(1, sizeof(*blk));
	if (!blk) {
		log_warn("virtio-blk: cannot allocate");
		return NULL;
	}
	blk->read_only = read_only;
	blk->path = strdup(path);
	if (!blk->path) {
		log_warn("virtio-blk: cannot allocate");
		goto out_free_blk;
	}
	blk->fd = -1;
	if (open_image(blk, path, base) < 0)
		goto out_free_blk;
	make_serial(blk->serial, path);
	le_put(blk->config + CFG_CAPACITY, 8, blk->capacity);
	le_put(blk->config + CFG_SEG_MAX, 4, QUEUE_SIZE - 2); /* header and status */
	le_put(blk->config + CFG_BLK_SIZE, 4, SECTOR_SIZE);
	desc.config = blk->config;
	desc.opaque = blk;
	blk->vp = virtio_pci_create(vm, bus, &desc);
	if (!blk->vp)
		goto out_close_image;
	log_info("%s: %s, %llu sectors%s%s%s", virtio_pci_name(blk->vp), path,
		 (unsigned long long)blk->capacity, base ? ", overlay on " : "", base ? base : "",
		 read_only ? ", read-only" : "");
	return blk;

out_close_image:
	close_image(blk);
out_free_blk:
	free(blk->path);
	free(blk);
	return NULL;
}

void virtio_blk_free(struct virtio_blk *blk)
{
	if (!blk)
		return;
	virtio_pci_free(blk->vp);
	close_image(blk);
	free(blk->path);
	free(blk);
}

struct virtio_blk *virtio_blk_create(struct vm *vm, struct pci_bus *bus, const char *path,
				     bool read_only)
{
	return create(vm, bus, path, NULL, read_only);
}

struct virtio_blk *virtio_blk_create_overlay(struct vm *vm, struct pci_bus *bus, const char *path,
					     const char *base, bool read_only)
{
	return create(vm, bus, path, base, read_only);
}
