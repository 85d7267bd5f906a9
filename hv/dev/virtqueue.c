/* Split virtqueues on the device side: ring checks, chain walking with loop and length
 * bounds, indirect tables, the used ring. Reads each guest descriptor once into a local
 * copy, so a guest changing it meanwhile cannot make a checked value unchecked. */
#include "hv/dev/virtqueue.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "virtio rings are little-endian");

#define DESC_SIZE      16
#define AVAIL_RING     4 /* flags, idx, then ring[size], used_event */
#define USED_RING      4 /* flags, idx, then ring[size] of {id, len}, avail_event */
#define USED_ELEM_SIZE 8

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static int fail(struct virtq *vq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct virtq *vq, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vq->vq_error, sizeof(vq->vq_error), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static void read_desc(const uint8_t *table, unsigned i, struct desc *d)
{
	const uint8_t *p = table + (size_t)i * DESC_SIZE;

	memcpy(&d->addr, p, 8);
	memcpy(&d->len, p + 8, 4);
	memcpy(&d->flags, p + 12, 2);
	memcpy(&d->next, p + 14, 2);
	/* From here on only the local copy counts, whatever the guest writes meanwhile. */
	__asm__ volatile("" ::: "memory");
}

int virtq_setup(struct virtq *vq, struct vm *vm, uint16_t size, uint16_t max_size,
		uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa, bool indirect)
{
	memset(vq, 0, sizeof(*vq));
	vq->vq_vm = vm;
	if (max_size > VIRTQ_MAX_SIZE)
		max_size = VIRTQ_MAX_SIZE;
	if (size == 0 || size > max_size || (size & (size - 1)))
		return fail(vq, "queue size %u is not a power of two in [1, %u]", size, max_size);
	if (desc_gpa % 16 || avail_gpa % 2 || used_gpa % 4)
		return fail(vq, "misaligned ring (desc %#llx avail %#llx used %#llx)",
			    (unsigned long long)desc_gpa, (unsigned long long)avail_gpa,
			    (unsigned long long)used_gpa);
	vq->vq_desc = vm_guest_ptr(vm, desc_gpa, (uint64_t)size * DESC_SIZE);
	vq->vq_avail = vm_guest_ptr(vm, avail_gpa, AVAIL_RING + 2 * (uint64_t)size + 2);
	vq->vq_used = vm_guest_ptr(vm, used_gpa, USED_RING + USED_ELEM_SIZE * (uint64_t)size + 2);
	if (!vq->vq_desc || !vq->vq_avail || !vq->vq_used)
		return fail(vq,
			    "ring outside guest RAM (desc %#llx avail %#llx used %#llx size %u)",
			    (unsigned long long)desc_gpa, (unsigned long long)avail_gpa,
			    (unsigned long long)used_gpa, size);
	vq->vq_size = size;
	vq->vq_indirect = indirect;
	__atomic_store_n((uint16_t *)vq->vq_used, 0, __ATOMIC_RELAXED); /* we never set NO_NOTIFY */
	return 0;
}

/* Adds one buffer of a chain. */
static int add_buffer(struct virtq *vq, struct virtq_chain *c, const struct desc *d)
{
	void *p;

	if (d->len == 0)
		return 0;
	if (d->addr + d->len < d->addr)
		return fail(vq, "buffer %#llx+%#x wraps around", (unsigned long long)d->addr,
			    d->len);
	p = vm_guest_ptr(vq->vq_vm, d->addr, d->len);
	if (!p)
		return fail(vq, "buffer %#llx+%#x outside guest RAM", (unsigned long long)d->addr,
			    d->len);
	if (d->flags & VIRTQ_DESC_F_WRITE) {
		c->in_len += d->len;
		c->iov[c->n_out + c->n_in++] = (struct iovec){p, d->len};
	} else {
		if (c->n_in)
			return fail(vq, "device-readable buffer after a writable one");
		c->out_len += d->len;
		c->iov[c->n_out++] = (struct iovec){p, d->len};
	}
	return 0;
}

int virtq_pop(struct virtq *vq, struct virtq_chain *c)
{
	const uint8_t *table = vq->vq_desc;
	unsigned table_size = vq->vq_size, steps = 0, buffers = 0;
	bool in_indirect = false;
	uint16_t avail_idx, head, i;
	struct desc d;
	int err;

	if (!vq->vq_size)
		return fail(vq, "queue not set up");
	avail_idx = __atomic_load_n((uint16_t *)(vq->vq_avail + 2), __ATOMIC_ACQUIRE);
	if ((uint16_t)(avail_idx - vq->vq_last_avail) > vq->vq_size)
		return fail(vq, "avail index jumped from %u to %u (queue size %u)",
			    vq->vq_last_avail, avail_idx, vq->vq_size);
	if (avail_idx == vq->vq_last_avail)
		return 0;
	memcpy(&head, vq->vq_avail + AVAIL_RING + 2 * (vq->vq_last_avail % vq->vq_size), 2);
	if (head >= vq->vq_size)
		return fail(vq, "avail ring entry %u out of range (queue size %u)", head,
			    vq->vq_size);
	c->head = head;
	c->n_out = c->n_in = 0;
	c->out_len = c->in_len = 0;
	for (i = head;;) {
		/* Each table has table_size entries: more steps than that is a loop. */
		if (++steps > table_size)
			return fail(vq, "descriptor chain from head %u loops or exceeds %u entries",
				    head, table_size);
		read_desc(table, i, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (!vq->vq_indirect)
				return fail(vq, "indirect descriptor without the feature");
			if (in_indirect)
				return fail(vq, "indirect descriptor inside an indirect table");
			if (d.flags & VIRTQ_DESC_F_NEXT)
				return fail(vq, "indirect descriptor with the next flag");
			if (d.len == 0 || d.len % DESC_SIZE || d.len / DESC_SIZE > VIRTQ_MAX_SIZE)
				return fail(vq, "indirect table length %#x invalid", d.len);
			table = vm_guest_ptr(vq->vq_vm, d.addr, d.len);
			if (!table)
				return fail(vq, "indirect table %#llx+%#x outside guest RAM",
					    (unsigned long long)d.addr, d.len);
			table_size = d.len / DESC_SIZE;
			in_indirect = true;
			steps = 0;
			i = 0;
			continue;
		}
		if (++buffers > VIRTQ_MAX_SIZE)
			return fail(vq, "descriptor chain from head %u longer than %u", head,
				    VIRTQ_MAX_SIZE);
		err = add_buffer(vq, c, &d);
		if (err)
			return err;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= table_size)
			return fail(vq, "descriptor next %u out of range (%u entries)", d.next,
				    table_size);
		i = d.next;
	}
	vq->vq_last_avail++;
	return 1;
}

void virtq_push(struct virtq *vq, uint16_t head, uint32_t written)
{
	uint8_t *elem = vq->vq_used + USED_RING + USED_ELEM_SIZE * (vq->vq_used_idx % vq->vq_size);
	uint32_t id = head;

	memcpy(elem, &id, 4);
	memcpy(elem + 4, &written, 4);
	vq->vq_used_idx++;
	__atomic_store_n((uint16_t *)(vq->vq_used + 2), vq->vq_used_idx, __ATOMIC_RELEASE);
}

bool virtq_want_interrupt(struct virtq *vq)
{
	uint16_t flags;

	/* The used index store must be visible before we look at the driver's flags. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	flags = __atomic_load_n((uint16_t *)vq->vq_avail, __ATOMIC_RELAXED);
	return !(flags & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

/* Copies between buf and the bytes of iov[0, n) from offset off: into iov when to_iov. */
static uint64_t iov_copy(const struct iovec *iov, unsigned n, uint64_t off, uint8_t *buf,
			 uint64_t len, bool to_iov)
{
	uint64_t done = 0;

	for (unsigned k = 0; k < n && done < len; k++) {
		uint64_t l = iov[k].iov_len, chunk;
		uint8_t *at;

		if (off >= l) {
			off -= l;
			continue;
		}
		at = (uint8_t *)iov[k].iov_base + off;
		chunk = l - off < len - done ? l - off : len - done;
		if (to_iov)
			memcpy(at, buf + done, chunk);
		else
			memcpy(buf + done, at, chunk);
		done += chunk;
		off = 0;
	}
	return done;
}

uint64_t virtq_iov_read(const struct iovec *iov, unsigned n, uint64_t off, void *buf, uint64_t len)
{
	return iov_copy(iov, n, off, buf, len, false);
}

uint64_t virtq_iov_write(const struct iovec *iov, unsigned n, uint64_t off, const void *buf,
			 uint64_t len)
{
	return iov_copy(iov, n, off, (uint8_t *)(uintptr_t)buf, len, true);
}

void virtq_iov_advance(struct iovec **iov, unsigned *cnt, size_t n)
{
	while (*cnt && n >= (*iov)->iov_len) {
		n -= (*iov)->iov_len;
		(*iov)++;
		(*cnt)--;
	}
	if (*cnt && n) {
		(*iov)->iov_base = (uint8_t *)(*iov)->iov_base + n;
		(*iov)->iov_len -= n;
	}
}

unsigned virtq_iov_slice(const struct iovec *iov, unsigned n, uint64_t off, uint64_t len,
			 struct iovec *dst, unsigned max)
{
	unsigned used = 0;

	for (unsigned k = 0; k < n && len && used < max; k++) {
		uint64_t l = iov[k].iov_len, chunk;

		if (off >= l) {
			off -= l;
			continue;
		}
		chunk = l - off < len ? l - off : len;
		dst[used++] = (struct iovec){(uint8_t *)iov[k].iov_base + off, chunk};
		len -= chunk;
		off = 0;
	}
	return used;
}
