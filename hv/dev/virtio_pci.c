/* Virtio modern PCI transport: the registers of BAR 0 (common config, ISR, device config,
 * notify, MSI-X table and PBA), the vendor capabilities describing them, the PCI-config
 * access capability, feature negotiation, status and reset, interrupts (MSI-X or INTx),
 * and the broken state a driver error leads to. Queues themselves are in virtqueue.c.
 *
 * Lock order: vp->lock, then the PCI bus lock (taken inside pci_* calls). PCI config
 * hooks run without either and take vp->lock themselves. */
#include "hv/dev/virtio_pci.h"
#include "hv/le.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG	  3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG	  5

/* struct virtio_pci_common_cfg */
#define CC_DFSELECT	 0x00
#define CC_DF		 0x04
#define CC_GFSELECT	 0x08
#define CC_GF		 0x0C
#define CC_MSIX		 0x10
#define CC_NUMQ		 0x12
#define CC_STATUS	 0x14
#define CC_CFGGENERATION 0x15
#define CC_Q_SELECT	 0x16
#define CC_Q_SIZE	 0x18
#define CC_Q_MSIX	 0x1A
#define CC_Q_ENABLE	 0x1C
#define CC_Q_NOFF	 0x1E
#define CC_Q_DESC	 0x20
#define CC_Q_DRIVER	 0x28
#define CC_Q_DEVICE	 0x30
#define COMMON_LEN	 0x38 /* advertised: up to queue_device */

#define VIRTIO_MSI_NO_VECTOR 0xFFFF
#define ISR_QUEUE	     0x1
#define ISR_CONFIG	     0x2

#define MSIX_MAX_VECTORS  (VIRTIO_PCI_MAX_QUEUES + 1)
#define MSIX_ENTRY_SIZE	  16
#define MSIX_ENTRY_CTRL	  12
#define MSIX_ENTRY_MASKED 0x1
#define MSIX_CTRL_ENABLE  0x8000
#define MSIX_CTRL_MASKALL 0x4000

#define PCI_CFG_CAP_LEN	     20 /* struct virtio_pci_cfg_cap */
#define PCI_SUBSYSTEM_VIRTIO 0x1100
#define LOG_BUDGET	     64 /* driver-error lines per device, so a guest cannot flood the log */

struct vp_queue {
	uint16_t size;
	uint16_t msix_vector;
	bool enabled;
	uint64_t desc;
	uint64_t driver;
	uint64_t device;
	struct virtq vq;
};

struct virtio_pci {
	struct vm *vm;
	struct pci_device *pci;
	struct virtio_pci_desc desc;
	pthread_mutex_t lock;
	char name[48];
	uint64_t device_features;
	uint64_t driver_features;
	uint32_t device_feature_select;
	uint32_t driver_feature_select;
	uint16_t config_msix_vector;
	uint16_t queue_select;
	uint8_t status;
	uint8_t isr;
	bool broken;
	unsigned log_budget;
	struct vp_queue queues[VIRTIO_PCI_MAX_QUEUES];
	unsigned msix_vectors;
	uint8_t msix_table[MSIX_MAX_VECTORS * MSIX_ENTRY_SIZE];
	uint32_t msix_pending;
	unsigned msix_cap;    /* config offset of the MSI-X capability */
	unsigned pci_cfg_cap; /* config offset of the PCI-config access capability */
};

/* Whether [off, off + len) lies within [base, base + size). */
static bool inside(uint64_t off, uint64_t len, uint64_t base, uint64_t size)
{
	return off >= base && off - base < size && len <= size - (off - base);
}

static bool overlaps(unsigned off, unsigned len, unsigned base, unsigned size)
{
	return off < base + size && base < off + len;
}

static bool live(const struct virtio_pci *vp)
{
	return !vp->broken && (vp->status & VIRTIO_STATUS_DRIVER_OK) &&
	       (vp->status & VIRTIO_STATUS_FEATURES_OK);
}

static struct vp_queue *selected_queue(struct virtio_pci *vp)
{
	return vp->queue_select < vp->desc.num_queues ? &vp->queues[vp->queue_select] : NULL;
}

/* Interrupts */

static uint16_t msix_control(struct virtio_pci *vp)
{
	return (uint16_t)pci_config_get(vp->pci, vp->msix_cap + 2, 2);
}

static bool msix_masked_locked(struct virtio_pci *vp, unsigned vector)
{
	return (msix_control(vp) & MSIX_CTRL_MASKALL) ||
	       (vp->msix_table[vector * MSIX_ENTRY_SIZE + MSIX_ENTRY_CTRL] & MSIX_ENTRY_MASKED);
}

static void msix_send_locked(struct virtio_pci *vp, unsigned vector)
{
	const uint8_t *e = vp->msix_table + vector * MSIX_ENTRY_SIZE;

	if (vm_signal_msi(vp->vm, le_get(e, 8), (uint32_t)le_get(e + 8, 4)) < 0)
		log_warnx("%s: cannot signal MSI-X vector %u", vp->name, vector);
}

/* Sends the pending vectors that are no longer masked. */
static void msix_flush_locked(struct virtio_pci *vp)
{
	if (!vp->msix_pending || !(msix_control(vp) & MSIX_CTRL_ENABLE))
		return;
	for (unsigned v = 0; v < vp->msix_vectors; v++) {
		if (!(vp->msix_pending & (1u << v)) || msix_masked_locked(vp, v))
			continue;
		vp->msix_pending &= ~(1u << v);
		msix_send_locked(vp, v);
	}
}

static void interrupt_locked(struct virtio_pci *vp, uint16_t vector, uint8_t isr_bit)
{
	if (isr_bit == ISR_CONFIG)
		vp->isr |= ISR_CONFIG;
	if (msix_control(vp) & MSIX_CTRL_ENABLE) {
		if (vector >= vp->msix_vectors)
			return; /* VIRTIO_MSI_NO_VECTOR: the driver wants none */
		if (msix_masked_locked(vp, vector))
			vp->msix_pending |= 1u << vector;
		else
			msix_send_locked(vp, vector);
		return;
	}
	vp->isr |= isr_bit;
	pci_set_intx(vp->pci, true);
}

/* Reset and status */

static void reset_locked(struct virtio_pci *vp)
{
	vp->driver_features = 0;
	vp->device_feature_select = 0;
	vp->driver_feature_select = 0;
	vp->config_msix_vector = VIRTIO_MSI_NO_VECTOR;
	vp->queue_select = 0;
	vp->status = 0;
	vp->isr = 0;
	vp->broken = false;
	vp->msix_pending = 0;
	pci_set_intx(vp->pci, false);
	for (unsigned i = 0; i < VIRTIO_PCI_MAX_QUEUES; i++) {
		struct vp_queue *q = &vp->queues[i];

		memset(q, 0, sizeof(*q));
		q->size = vp->desc.queue_max_size;
		q->msix_vector = VIRTIO_MSI_NO_VECTOR;
	}
	if (vp->desc.reset)
		vp->desc.reset(vp->desc.opaque);
}

static void notify_locked(struct virtio_pci *vp, unsigned queue)
{
	if (queue < vp->desc.num_queues && live(vp) && vp->queues[queue].enabled)
		vp->desc.queue_notify(vp->desc.opaque, vp, queue, &vp->queues[queue].vq);
}

static void set_status_locked(struct virtio_pci *vp, uint8_t v)
{
	uint8_t old = vp->status;

	if (v == 0) {
		reset_locked(vp);
		return;
	}
	v &= (uint8_t)~VIRTIO_STATUS_NEEDS_RESET; /* the device's bit, not the driver's */
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		uint64_t extra = vp->driver_features & ~vp->device_features;

		if (extra || !(vp->driver_features & (1ULL << VIRTIO_F_VERSION_1))) {
			if (vp->log_budget) {
				vp->log_budget--;
				log_warnx("%s: features %#llx refused (offered %#llx, VERSION_1 "
					  "required)",
					  vp->name, (unsigned long long)vp->driver_features,
					  (unsigned long long)vp->device_features);
			}
			v &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
		}
	}
	vp->status = v | (vp->broken ? VIRTIO_STATUS_NEEDS_RESET : 0);
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK))
		for (unsigned i = 0; i < vp->desc.num_queues; i++)
			notify_locked(vp, i); /* buffers made available before DRIVER_OK */
}

static void fail_locked(struct virtio_pci *vp, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void fail_locked(struct virtio_pci *vp, const char *fmt, va_list ap)
{
	char why[160];

	if (vp->broken)
		return;
	vsnprintf(why, sizeof(why), fmt, ap);
	vp->broken = true;
	vp->status |= VIRTIO_STATUS_NEEDS_RESET;
	if (vp->log_budget) {
		vp->log_budget--;
		log_warnx("%s: driver error, device needs reset: %s%s", vp->name, why,
			  vp->log_budget ? "" : " (further errors of this device not logged)");
	}
	if (vp->status & VIRTIO_STATUS_DRIVER_OK)
		interrupt_locked(vp, vp->config_msix_vector, ISR_CONFIG);
}

static void enable_queue_locked(struct virtio_pci *vp, unsigned index)
{
	struct vp_queue *q = &vp->queues[index];
	bool indirect = vp->driver_features & (1ULL << VIRTIO_F_RING_INDIRECT_DESC);

	if (virtq_setup(&q->vq, vp->vm, q->size, vp->desc.queue_max_size, q->desc, q->driver,
			q->device, indirect) < 0) {
		virtio_pci_fail(vp, "queue %u: %s", index, q->vq.vq_error);
		return;
	}
	q->enabled = true;
}

/* Common configuration */

static void common_image_locked(struct virtio_pci *vp, uint8_t img[COMMON_LEN])
{
	struct vp_queue *q = selected_queue(vp);
	uint32_t dsel = vp->device_feature_select, gsel = vp->driver_feature_select;

	memset(img, 0, COMMON_LEN);
	le_put(img + CC_DFSELECT, 4, dsel);
	le_put(img + CC_DF, 4, dsel < 2 ? vp->device_features >> (32 * dsel) : 0);
	le_put(img + CC_GFSELECT, 4, gsel);
	le_put(img + CC_GF, 4, gsel < 2 ? vp->driver_features >> (32 * gsel) : 0);
	le_put(img + CC_MSIX, 2, vp->config_msix_vector);
	le_put(img + CC_NUMQ, 2, vp->desc.num_queues);
	img[CC_STATUS] = vp->status;
	img[CC_CFGGENERATION] = 0;
	le_put(img + CC_Q_SELECT, 2, vp->queue_select);
	if (!q)
		return; /* a queue that does not exist reads as size 0 */
	le_put(img + CC_Q_SIZE, 2, q->size);
	le_put(img + CC_Q_MSIX, 2, q->msix_vector);
	le_put(img + CC_Q_ENABLE, 2, q->enabled);
	le_put(img + CC_Q_NOFF, 2, vp->queue_select);
	le_put(img + CC_Q_DESC, 8, q->desc);
	le_put(img + CC_Q_DRIVER, 8, q->driver);
	le_put(img + CC_Q_DEVICE, 8, q->device);
}

static uint16_t valid_vector(const struct virtio_pci *vp, uint64_t v)
{
	return v < vp->msix_vectors ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
}

static void common_field_write_locked(struct virtio_pci *vp, unsigned field, uint64_t v)
{
	struct vp_queue *q = selected_queue(vp);
	bool q_setup = q && !q->enabled; /* queue registers are frozen once enabled */
	unsigned shift;

	switch (field) {
	case CC_DFSELECT: vp->device_feature_select = (uint32_t)v; break;
	case CC_GFSELECT: vp->driver_feature_select = (uint32_t)v; break;
	case CC_GF:
		if (vp->driver_feature_select >= 2 || (vp->status & VIRTIO_STATUS_FEATURES_OK))
			break;
		shift = 32 * vp->driver_feature_select;
		vp->driver_features &= ~(0xFFFFFFFFULL << shift);
		vp->driver_features |= (v & 0xFFFFFFFF) << shift;
		break;
	case CC_MSIX: vp->config_msix_vector = valid_vector(vp, v); break;
	case CC_STATUS: set_status_locked(vp, (uint8_t)v); break;
	case CC_Q_SELECT: vp->queue_select = (uint16_t)v; break;
	case CC_Q_SIZE:
		if (q_setup)
			q->size = (uint16_t)v; /* checked when the queue is enabled */
		break;
	case CC_Q_MSIX:
		if (q)
			q->msix_vector = valid_vector(vp, v);
		break;
	case CC_Q_ENABLE:
		if (q_setup && v == 1)
			enable_queue_locked(vp, vp->queue_select);
		break;
	case CC_Q_DESC:
		if (q_setup)
			q->desc = v;
		break;
	case CC_Q_DRIVER:
		if (q_setup)
			q->driver = v;
		break;
	case CC_Q_DEVICE:
		if (q_setup)
			q->device = v;
		break;
	default: break; /* read-only */
	}
}

/* Any width at any offset: the bytes are merged into the register image, then each field
 * the write touched is stored as a whole (so two 32-bit halves make one 64-bit address). */
static void common_write_locked(struct virtio_pci *vp, unsigned off, const void *data, unsigned len)
{
	static const struct {
		uint8_t off, size;
	} fields[] = {
	    {CC_DFSELECT, 4}, {CC_DF, 4},     {CC_GFSELECT, 4}, {CC_GF, 4},
	    {CC_MSIX, 2},     {CC_NUMQ, 2},   {CC_STATUS, 1},	{CC_CFGGENERATION, 1},
	    {CC_Q_SELECT, 2}, {CC_Q_SIZE, 2}, {CC_Q_MSIX, 2},	{CC_Q_ENABLE, 2},
	    {CC_Q_NOFF, 2},   {CC_Q_DESC, 8}, {CC_Q_DRIVER, 8}, {CC_Q_DEVICE, 8},
	};
	uint8_t img[COMMON_LEN];

	common_image_locked(vp, img);
	memcpy(img + off, data, len);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (overlaps(off, len, fields[i].off, fields[i].size))
			common_field_write_locked(vp, fields[i].off,
						  le_get(img + fields[i].off, fields[i].size));
}

/* BAR 0 */

static void bar_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct virtio_pci *vp = opaque;
	uint8_t *out = data;

	memset(data, 0, len);
	pthread_mutex_lock(&vp->lock);
	if (inside(off, len, VIRTIO_PCI_COMMON_OFF, COMMON_LEN)) {
		uint8_t img[COMMON_LEN];

		common_image_locked(vp, img);
		memcpy(out, img + off - VIRTIO_PCI_COMMON_OFF, len);
	} else if (off == VIRTIO_PCI_ISR_OFF) {
		out[0] = vp->isr; /* reading acknowledges */
		vp->isr = 0;
		pci_set_intx(vp->pci, false);
	} else if (inside(off, len, VIRTIO_PCI_DEVICE_OFF, vp->desc.config_len)) {
		memcpy(out, (const uint8_t *)vp->desc.config + off - VIRTIO_PCI_DEVICE_OFF, len);
	} else if (inside(off, len, VIRTIO_PCI_MSIX_TABLE_OFF,
			  vp->msix_vectors * MSIX_ENTRY_SIZE)) {
		memcpy(out, vp->msix_table + off - VIRTIO_PCI_MSIX_TABLE_OFF, len);
	} else if (inside(off, len, VIRTIO_PCI_MSIX_PBA_OFF, 8)) {
		uint8_t pba[8];

		le_put(pba, 8, vp->msix_pending);
		memcpy(out, pba + off - VIRTIO_PCI_MSIX_PBA_OFF, len);
	}
	pthread_mutex_unlock(&vp->lock);
}

static void msix_table_write_locked(struct virtio_pci *vp, unsigned off, const uint8_t *data,
				    unsigned len)
{
	for (unsigned i = 0; i < len; i++) {
		unsigned o = off + i, field = o % MSIX_ENTRY_SIZE;

		if (field < MSIX_ENTRY_CTRL)
			vp->msix_table[o] = data[i]; /* address and data */
		else if (field == MSIX_ENTRY_CTRL)
			vp->msix_table[o] = (uint8_t)((vp->msix_table[o] & ~MSIX_ENTRY_MASKED) |
						      (data[i] & MSIX_ENTRY_MASKED));
	}
	msix_flush_locked(vp);
}

static void bar_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct virtio_pci *vp = opaque;

	pthread_mutex_lock(&vp->lock);
	if (inside(off, len, VIRTIO_PCI_COMMON_OFF, COMMON_LEN)) {
		common_write_locked(vp, (unsigned)off - VIRTIO_PCI_COMMON_OFF, data, len);
	} else if (inside(off, len, VIRTIO_PCI_NOTIFY_OFF,
			  (uint64_t)vp->desc.num_queues * VIRTIO_PCI_NOTIFY_MULT)) {
		/* The queue is the one whose notify address was written, whatever the value. */
		notify_locked(vp, (unsigned)(off - VIRTIO_PCI_NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT);
	} else if (inside(off, len, VIRTIO_PCI_DEVICE_OFF, vp->desc.config_len)) {
		if (vp->desc.config_write)
			vp->desc.config_write(vp->desc.opaque,
					      (unsigned)off - VIRTIO_PCI_DEVICE_OFF, data, len);
	} else if (inside(off, len, VIRTIO_PCI_MSIX_TABLE_OFF,
			  vp->msix_vectors * MSIX_ENTRY_SIZE)) {
		msix_table_write_locked(vp, (unsigned)off - VIRTIO_PCI_MSIX_TABLE_OFF, data, len);
	}
	pthread_mutex_unlock(&vp->lock);
}

/* PCI config hooks: the PCI-config access capability and the MSI-X message control. */

static bool cfg_access(struct virtio_pci *vp, uint32_t *off, unsigned *len)
{
	unsigned cap = vp->pci_cfg_cap;
	uint32_t bar = pci_config_get(vp->pci, cap + 4, 1);

	*off = pci_config_get(vp->pci, cap + 8, 4);
	*len = pci_config_get(vp->pci, cap + 12, 4);
	return bar == 0 && (*len == 1 || *len == 2 || *len == 4) && *off % *len == 0 &&
	       inside(*off, *len, 0, VIRTIO_PCI_BAR_SIZE);
}

static void pci_config_write_hook(void *opaque, unsigned offset, unsigned len, uint32_t value)
{
	struct virtio_pci *vp = opaque;
	unsigned data_off = vp->pci_cfg_cap + 16, blen;
	uint32_t boff;

	(void)value;
	if (overlaps(offset, len, data_off, 4) && cfg_access(vp, &boff, &blen)) {
		uint8_t buf[4];

		le_put(buf, 4, pci_config_get(vp->pci, data_off, 4));
		bar_write(vp, boff, buf, blen);
	}
	if (overlaps(offset, len, vp->msix_cap + 2, 2)) {
		pthread_mutex_lock(&vp->lock);
		if (msix_control(vp) & MSIX_CTRL_ENABLE)
			pci_set_intx(vp->pci, false); /* MSI-X on: INTx is off */
		msix_flush_locked(vp);
		pthread_mutex_unlock(&vp->lock);
	}
}

static void pci_config_read_hook(void *opaque, unsigned offset, unsigned len, uint32_t *value)
{
	struct virtio_pci *vp = opaque;
	unsigned data_off = vp->pci_cfg_cap + 16, blen;
	uint8_t buf[4] = {0};
	uint32_t boff;

	if (!overlaps(offset, len, data_off, 4))
		return;
	if (cfg_access(vp, &boff, &blen))
		bar_read(vp, boff, buf, blen);
	for (unsigned i = 0; i < len; i++) {
		unsigned o = offset + i;

		if (o < data_off || o >= data_off + 4)
			continue;
		*value &= ~(0xFFu << (8 * i));
		*value |= (uint32_t)buf[o - data_off] << (8 * i);
	}
}

/* Construction */

static int add_virtio_cap(struct virtio_pci *vp, uint8_t type, uint32_t offset, uint32_t length)
{
	uint8_t cap[PCI_CFG_CAP_LEN] = {0}, wmask[PCI_CFG_CAP_LEN] = {0};
	unsigned len = 16;

	cap[0] = PCI_CAP_ID_VNDR;
	cap[3] = type;
	cap[4] = 0; /* BAR 0 */
	le_put(cap + 8, 4, offset);
	le_put(cap + 12, 4, length);
	if (type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
		len = 20;
		le_put(cap + 16, 4, VIRTIO_PCI_NOTIFY_MULT);
	} else if (type == VIRTIO_PCI_CAP_PCI_CFG) {
		len = PCI_CFG_CAP_LEN;
		memset(wmask + 4, 0xFF, 1);  /* bar */
		memset(wmask + 8, 0xFF, 12); /* offset, length, pci_cfg_data */
	}
	cap[2] = (uint8_t)len;
	return pci_add_capability(vp->pci, cap, len, wmask);
}

static int add_capabilities(struct virtio_pci *vp)
{
	uint8_t msix[12] = {PCI_CAP_ID_MSIX}, msix_wmask[12] = {0};
	int off;

	if (add_virtio_cap(vp, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF, COMMON_LEN) < 0 ||
	    add_virtio_cap(vp, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF,
			   vp->desc.num_queues * VIRTIO_PCI_NOTIFY_MULT) < 0 ||
	    add_virtio_cap(vp, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 1) < 0 ||
	    (vp->desc.config_len && add_virtio_cap(vp, VIRTIO_PCI_CAP_DEVICE_CFG,
						   VIRTIO_PCI_DEVICE_OFF, vp->desc.config_len) < 0))
		return -ENOSPC;
	off = add_virtio_cap(vp, VIRTIO_PCI_CAP_PCI_CFG, 0, 0);
	if (off < 0)
		return off;
	vp->pci_cfg_cap = (unsigned)off;
	le_put(msix + 2, 2, vp->msix_vectors - 1);
	le_put(msix + 4, 4, VIRTIO_PCI_MSIX_TABLE_OFF); /* BIR 0 */
	le_put(msix + 8, 4, VIRTIO_PCI_MSIX_PBA_OFF);
	msix_wmask[3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL) >> 8;
	off = pci_add_capability(vp->pci, msix, sizeof(msix), msix_wmask);
	if (off < 0)
		return off;
	vp->msix_cap = (unsigned)off;
	return 0;
}

struct virtio_pci *virtio_pci_create(struct vm *vm, struct pci_bus *bus,
				     const struct virtio_pci_desc *desc)
{
	struct pci_device_desc pd = {
	    .name = desc->name,
	    .vendor_id = VIRTIO_PCI_VENDOR,
	    .device_id = (uint16_t)(VIRTIO_PCI_DEVICE_BASE + desc->device_type),
	    .subsystem_vendor_id = VIRTIO_PCI_VENDOR,
	    .subsystem_id = PCI_SUBSYSTEM_VIRTIO,
	    .revision = 1, /* modern only */
	    .class_code = desc->class_code,
	    .config_write = pci_config_write_hook,
	    .config_read = pci_config_read_hook,
	};
	struct io_region bar = {.io_name = desc->name, .io_read = bar_read, .io_write = bar_write};
	struct virtio_pci *vp;
	int err;

	if (!desc->num_queues || desc->num_queues > VIRTIO_PCI_MAX_QUEUES ||
	    !desc->queue_max_size || desc->queue_max_size > VIRTQ_MAX_SIZE ||
	    (desc->queue_max_size & (desc->queue_max_size - 1)) || desc->config_len > 256 ||
	    !desc->queue_notify) {
		log_warnx("%s: invalid virtio device description", desc->name);
		return NULL;
	}
	vp = calloc(1, sizeof(*vp));
	if (!vp) {
		log_warn("%s: cannot allocate", desc->name);
		return NULL;
	}
	vp->vm = vm;
	vp->desc = *desc;
	vp->device_features =
	    desc->features | 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_RING_INDIRECT_DESC;
	vp->msix_vectors = desc->num_queues + 1;
	vp->log_budget = LOG_BUDGET;
	for (unsigned v = 0; v < vp->msix_vectors; v++)
		vp->msix_table[v * MSIX_ENTRY_SIZE + MSIX_ENTRY_CTRL] = MSIX_ENTRY_MASKED;
	pthread_mutex_init(&vp->lock, NULL);
	pd.opaque = vp;
	vp->pci = pci_add_device(bus, &pd);
	if (!vp->pci)
		goto out_free_vp;
	snprintf(vp->name, sizeof(vp->name), "%s 00:%02x.0", desc->name, pci_device_slot(vp->pci));
	bar.io_opaque = vp;
	err = pci_add_bar(vp->pci, 0, VIRTIO_PCI_BAR_SIZE, &bar);
	if (err == 0)
		err = add_capabilities(vp);
	if (err < 0) {
		log_warnx("%s: cannot set up PCI resources: %s", vp->name, strerror(-err));
		goto out_remove_pci;
	}
	reset_locked(vp);
	return vp;

out_remove_pci:
	pci_remove_device(vp->pci);
out_free_vp:
	pthread_mutex_destroy(&vp->lock);
	free(vp);
	return NULL;
}

void virtio_pci_free(struct virtio_pci *vp)
{
	if (!vp)
		return;
	pci_remove_device(vp->pci);
	pthread_mutex_destroy(&vp->lock);
	free(vp);
}

const char *virtio_pci_name(const struct virtio_pci *vp)
{
	return vp->name;
}

void virtio_pci_queue_interrupt(struct virtio_pci *vp, unsigned queue)
{
	struct vp_queue *q;

	if (queue >= vp->desc.num_queues)
		return;
	q = &vp->queues[queue];
	if (q->enabled && virtq_want_interrupt(&q->vq))
		interrupt_locked(vp, q->msix_vector, ISR_QUEUE);
}

void virtio_pci_fail(struct virtio_pci *vp, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fail_locked(vp, fmt, ap);
	va_end(ap);
}

void virtio_pci_kick(struct virtio_pci *vp, unsigned queue)
{
	pthread_mutex_lock(&vp->lock);
	notify_locked(vp, queue);
	pthread_mutex_unlock(&vp->lock);
}
