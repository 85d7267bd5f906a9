/* Split virtqueues (virtio 1.2, section 2.7) on the device side: checks the rings the driver
 * set up, pops descriptor chains as host iovecs and returns used buffers. Every value the
 * guest controls is validated here; a violation returns -EINVAL with a one-line reason in
 * vq_error, and the caller marks its device broken. Not here: notifications and interrupts
 * (virtio_pci.c), what the buffers mean (the devices). The caller serialises all calls on
 * one queue. Indirect descriptors are supported; event-index suppression is not. */
#ifndef VDI_HV_DEV_VIRTQUEUE_H
#define VDI_HV_DEV_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "hv/vm.h"

/* The largest queue any device offers; also the most buffers one chain may have. */
#define VIRTQ_MAX_SIZE 256

#define VIRTQ_DESC_F_NEXT	   1
#define VIRTQ_DESC_F_WRITE	   2
#define VIRTQ_DESC_F_INDIRECT	   4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

struct virtq {
	struct vm *vq_vm;
	uint16_t vq_size;
	bool vq_indirect; /* VIRTIO_F_RING_INDIRECT_DESC negotiated */
	/* Host views of the rings, checked once by virtq_setup(): guest RAM stays mapped at
	 * the same host address for the life of the VM. */
	uint8_t *vq_desc;
	uint8_t *vq_avail;
	uint8_t *vq_used;
	uint16_t vq_last_avail; /* next avail ring entry to pop */
	uint16_t vq_used_idx;
	char vq_error[128];
};

/* One descriptor chain: iov[0, n_out) are device-readable, iov[n_out, n_out + n_in)
 * device-writable; zero-length buffers are left out. Lengths are totals in bytes. */
struct virtq_chain {
	uint16_t head;
	unsigned n_out;
	unsigned n_in;
	uint64_t out_len;
	uint64_t in_len;
	struct iovec iov[VIRTQ_MAX_SIZE];
};

/* Checks and maps a queue the driver enabled: size a power of two in [1, max_size] with
 * max_size <= VIRTQ_MAX_SIZE, each ring aligned and inside guest RAM. Returns 0 or -EINVAL
 * (reason in vq_error). */
int virtq_setup(struct virtq *vq, struct vm *vm, uint16_t size, uint16_t max_size,
		uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa, bool indirect);

/* Takes the next available chain into *chain. Returns 1, 0 when the ring is empty, or
 * -EINVAL on a driver error (avail index jump, bad head or next, loop, chain longer than
 * the queue, bad indirect table, buffer outside guest RAM, readable after writable). */
int virtq_pop(struct virtq *vq, struct virtq_chain *chain);

/* Puts head back on the used ring with the number of bytes written into its buffers. */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t written);

/* After virtq_push(): whether the driver wants an interrupt (VIRTQ_AVAIL_F_NO_INTERRUPT). */
bool virtq_want_interrupt(struct virtq *vq);

/* Copies len bytes at offset off of the buffers iov[0, n) into buf. Returns the number
 * of bytes copied (less when the buffers are shorter). */
uint64_t virtq_iov_read(const struct iovec *iov, unsigned n, uint64_t off, void *buf, uint64_t len);
/* Copies len bytes from buf into the buffers iov[0, n) at offset off. Returns bytes copied. */
uint64_t virtq_iov_write(const struct iovec *iov, unsigned n, uint64_t off, const void *buf,
			 uint64_t len);
/* Fills dst (room for max entries) with the part [off, off + len) of iov[0, n). Returns
 * how many entries it used. */
unsigned virtq_iov_slice(const struct iovec *iov, unsigned n, uint64_t off, uint64_t len,
			 struct iovec *dst, unsigned max);
/* Consumes n bytes (at most what *iov holds) from the front of the *cnt buffers at *iov,
 * as after a partial readv/writev: whole buffers are dropped, the next one is shortened,
 * and empty buffers left in front are dropped too. */
void virtq_iov_advance(struct iovec **iov, unsigned *cnt, size_t n);

#endif
