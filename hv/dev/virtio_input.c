/* Virtio tablet: the input config space (select/subsel), host pointer reports encoded as
 * virtio_input_event (le16 type, le16 code, le32 value) into the driver's event buffers, a
 * bounded backlog for when it has none, and the status queue drained and ignored. Transport
 * and ring validation are virtio_pci.c and virtqueue.c; nothing the guest sends sizes a host
 * allocation. */
#include "hv/dev/virtio_input.h"
#include "hv/le.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "hv/dev/virtio_pci.h"
#include "hv/dev/virtqueue.h"
#include "lib/log.h"

#define VIRTIO_ID_INPUT	      18
#define PCI_CLASS_INPUT_OTHER 0x098000

#define EVENTQ	   0
#define STATUSQ	   1
#define QUEUE_SIZE 64 /* Linux posts at most 64 event buffers */

/* struct virtio_input_config */
#define CFG_SELECT 0
#define CFG_SUBSEL 1
#define CFG_SIZE   2
#define CFG_UNION  8
#define CFG_LEN	   (CFG_UNION + 128)

#define VIRTIO_INPUT_CFG_UNSET	   0x00
#define VIRTIO_INPUT_CFG_ID_NAME   0x01
#define VIRTIO_INPUT_CFG_ID_SERIAL 0x02
#define VIRTIO_INPUT_CFG_ID_DEVIDS 0x03
#define VIRTIO_INPUT_CFG_PROP_BITS 0x10
#define VIRTIO_INPUT_CFG_EV_BITS   0x11
#define VIRTIO_INPUT_CFG_ABS_INFO  0x12

/* From <linux/input-event-codes.h>; spelled out so the device does not depend on the build
 * host's kernel headers. */
#define EV_SYN	       0x00
#define EV_KEY	       0x01
#define EV_REL	       0x02
#define EV_ABS	       0x03
#define SYN_REPORT     0
#define BTN_LEFT       0x110
#define BTN_RIGHT      0x111
#define BTN_MIDDLE     0x112
#define REL_WHEEL      0x08
#define ABS_X	       0x00
#define ABS_Y	       0x01
#define BUS_VIRTUAL    0x06
#define DEVIDS_VENDOR  0x1AF4 /* the virtio vendor */
#define DEVIDS_PRODUCT 0x0003 /* "tablet", as QEMU numbers its virtio input devices */
#define DEVIDS_VERSION 0x0001

#define NAME   "vdi tablet"
#define SERIAL "vdi-tablet-0"

#define EVENT_SIZE	8
#define BACKLOG		64 /* events; a report is at most REPORT_MAX */
#define REPORT_MAX	7  /* X, Y, three buttons, wheel, SYN */
#define NO_REPORT	UINT64_MAX
#define RFB_BUTTON_MASK 7u

struct input_event {
	uint16_t type;
	uint16_t code;
	int32_t value;
};

/* An event buffer taken from the driver: the guest memory of its first 8 bytes. */
struct held_buffer {
	uint16_t head;
	unsigned n;
	struct iovec iov[EVENT_SIZE];
};

struct pointer_state {
	uint32_t x, y; /* absolute axis values */
	unsigned buttons;
};

struct virtio_input {
	struct virtio_pci *vi_vp;
	unsigned vi_width, vi_height;
	/* Under the transport lock (callbacks only). */
	uint8_t vi_config[CFG_LEN];
	struct virtq_chain vi_chain;
	struct held_buffer vi_held[QUEUE_SIZE]; /* a ring, oldest first */
	unsigned vi_held_first, vi_nheld;
	/* Under vi_lock, which is taken inside the transport lock, never around it. */
	pthread_mutex_t vi_lock;
	struct input_event vi_backlog[BACKLOG];
	uint64_t vi_head, vi_tail;	     /* next event to deliver, next free slot (absolute) */
	struct pointer_state vi_state;	     /* as the guest will see it once the backlog is out */
	uint64_t vi_motion_start;	     /* last report if motion-only and undelivered */
	struct pointer_state vi_motion_base; /* vi_state before that report */
	uint64_t vi_notifies;		     /* event queue runs while live */
	bool vi_buffers_seen;		     /* the driver gave event buffers since reset */
};

/* Config space */

static void set_bit_in(uint8_t *bitmap, unsigned bit, unsigned *size)
{
	bitmap[bit / 8] |= (uint8_t)(1u << (bit % 8));
	if (bit / 8 + 1 > *size)
		*size = bit / 8 + 1;
}

/* Fills size and the union for the current select and subsel. */
static void config_update(struct virtio_input *t)
{
	uint8_t *u = t->vi_config + CFG_UNION;
	uint8_t select = t->vi_config[CFG_SELECT], subsel = t->vi_config[CFG_SUBSEL];
	unsigned size = 0;

	memset(t->vi_config + CFG_SIZE, 0, CFG_LEN - CFG_SIZE);
	switch (select) {
	case VIRTIO_INPUT_CFG_ID_NAME:
		size = sizeof(NAME) - 1;
		memcpy(u, NAME, size);
		break;
	case VIRTIO_INPUT_CFG_ID_SERIAL:
		size = sizeof(SERIAL) - 1;
		memcpy(u, SERIAL, size);
		break;
	case VIRTIO_INPUT_CFG_ID_DEVIDS:
		le_put(u, 2, BUS_VIRTUAL);
		le_put(u + 2, 2, DEVIDS_VENDOR);
		le_put(u + 4, 2, DEVIDS_PRODUCT);
		le_put(u + 6, 2, DEVIDS_VERSION);
		size = 8;
		break;
	case VIRTIO_INPUT_CFG_PROP_BITS:
		/* None: no INPUT_PROP_DIRECT (that would make it a touchscreen). Absolute axes
		 * plus mouse buttons is what udev calls a mouse with absolute axes, and what X
		 * and libinput drive as an absolute pointer. */
		break;
	case VIRTIO_INPUT_CFG_EV_BITS:
		if (subsel == EV_KEY) {
			set_bit_in(u, BTN_LEFT, &size);
			set_bit_in(u, BTN_RIGHT, &size);
			set_bit_in(u, BTN_MIDDLE, &size);
		} else if (subsel == EV_REL) {
			set_bit_in(u, REL_WHEEL, &size);
		} else if (subsel == EV_ABS) {
			set_bit_in(u, ABS_X, &size);
			set_bit_in(u, ABS_Y, &size);
		}
		break;
	case VIRTIO_INPUT_CFG_ABS_INFO:
		if (subsel == ABS_X || subsel == ABS_Y) {
			le_put(u, 4, 0);			/* min */
			le_put(u + 4, 4, VIRTIO_INPUT_ABS_MAX); /* max; fuzz, flat, res 0 */
			size = 20;
		}
		break;
	default: break; /* UNSET and anything unknown: size 0 */
	}
	t->vi_config[CFG_SIZE] = (uint8_t)size;
}

static void input_config_write(void *opaque, unsigned offset, const void *data, unsigned len)
{
	struct virtio_input *t = opaque;
	const uint8_t *p = data;

	/* Only select and subsel are writable; the rest of any wider write is dropped. */
	for (unsigned i = 0; i < len; i++) {
		if (offset + i == CFG_SELECT || offset + i == CFG_SUBSEL)
			t->vi_config[offset + i] = p[i];
	}
	config_update(t);
}

/* The backlog (vi_lock held) */

static unsigned backlog_used(const struct virtio_input *t)
{
	return (unsigned)(t->vi_tail - t->vi_head);
}

static void backlog_clear(struct virtio_input *t)
{
	t->vi_head = t->vi_tail = 0;
	t->vi_state = (struct pointer_state){0, 0, 0};
	t->vi_motion_start = NO_REPORT;
}

static void backlog_add(struct virtio_input *t, uint16_t type, uint16_t code, int32_t value)
{
	t->vi_backlog[t->vi_tail++ % BACKLOG] = (struct input_event){type, code, value};
}

static const struct {
	unsigned rfb;
	uint16_t code;
} button_map[] = {{1, BTN_LEFT}, {2, BTN_MIDDLE}, {4, BTN_RIGHT}};

/* Builds the report that takes the guest from *from to *to (plus wheel) into ev. Returns the
 * number of events, 0 when nothing changed; *motion_only says whether it holds axis events
 * only. */
static unsigned make_report(const struct pointer_state *from, const struct pointer_state *to,
			    int wheel, struct input_event ev[REPORT_MAX], bool *motion_only)
{
	unsigned n = 0;

	if (to->x != from->x)
		ev[n++] = (struct input_event){EV_ABS, ABS_X, (int32_t)to->x};
	if (to->y != from->y)
		ev[n++] = (struct input_event){EV_ABS, ABS_Y, (int32_t)to->y};
	*motion_only = true;
	for (size_t i = 0; i < sizeof(button_map) / sizeof(button_map[0]); i++) {
		unsigned bit = button_map[i].rfb;

		if ((to->buttons ^ from->buttons) & bit) {
			ev[n++] = (struct input_event){EV_KEY, button_map[i].code,
						       (to->buttons & bit) ? 1 : 0};
			*motion_only = false;
		}
	}
	if (wheel) {
		ev[n++] = (struct input_event){EV_REL, REL_WHEEL, wheel};
		*motion_only = false;
	}
	if (n)
		ev[n++] = (struct input_event){EV_SYN, SYN_REPORT, 0};
	return n;
}

/* Replaces the backlog by one report of the whole state. Events already delivered from a
 * report in progress are completed by its SYN. */
static void backlog_resync(struct virtio_input *t, const struct pointer_state *to, int wheel)
{
	t->vi_tail = t->vi_head;
	backlog_add(t, EV_ABS, ABS_X, (int32_t)to->x);
	backlog_add(t, EV_ABS, ABS_Y, (int32_t)to->y);
	for (size_t i = 0; i < sizeof(button_map) / sizeof(button_map[0]); i++)
		backlog_add(t, EV_KEY, button_map[i].code,
			    (to->buttons & button_map[i].rfb) ? 1 : 0);
	if (wheel)
		backlog_add(t, EV_REL, REL_WHEEL, wheel);
	backlog_add(t, EV_SYN, SYN_REPORT, 0);
	t->vi_state = *to;
	t->vi_motion_start = NO_REPORT;
}

static void backlog_report(struct virtio_input *t, const struct pointer_state *to, int wheel)
{
	struct input_event ev[REPORT_MAX];
	struct pointer_state from = t->vi_state;
	bool motion_only;
	unsigned n = make_report(&from, to, wheel, ev, &motion_only);

	if (!n)
		return;
	/* Motion after motion nobody has seen yet: move the waiting report instead. */
	if (motion_only && t->vi_motion_start != NO_REPORT && t->vi_motion_start >= t->vi_head) {
		t->vi_tail = t->vi_motion_start;
		from = t->vi_motion_base;
		t->vi_state = from;
		t->vi_motion_start = NO_REPORT;
		n = make_report(&from, to, 0, ev, &motion_only);
		if (!n)
			return; /* back where the guest last saw it */
	}
	if (backlog_used(t) + n > BACKLOG) {
		backlog_resync(t, to, wheel);
		return;
	}
	t->vi_motion_start = motion_only ? t->vi_tail : NO_REPORT;
	t->vi_motion_base = from;
	for (unsigned i = 0; i < n; i++)
		backlog_add(t, ev[i].type, ev[i].code, ev[i].value);
	t->vi_state = *to;
}

/* Queues */

static void encode(const struct input_event *ev, uint8_t out[EVENT_SIZE])
{
	le_put(out, 2, ev->type);
	le_put(out + 2, 2, ev->code);
	le_put(out + 4, 4, (uint32_t)ev->value);
}

/* Takes the driver's new event buffers (at most as many as we can hold). Returns 0 or -EINVAL
 * after failing the device. */
static int take_buffers(struct virtio_input *t, struct virtio_pci *vp, struct virtq *vq)
{
	struct virtq_chain *c = &t->vi_chain;

	for (unsigned n = 0; n < vq->vq_size && t->vi_nheld < QUEUE_SIZE; n++) {
		struct held_buffer *h;
		int r = virtq_pop(vq, c);

		if (r == 0)
			return 0;
		if (r < 0) {
			virtio_pci_fail(vp, "event queue: %s", vq->vq_error);
			return -EINVAL;
		}
		if (c->n_out) {
			virtio_pci_fail(vp, "event buffer %u is device-readable", c->head);
			return -EINVAL;
		}
		if (c->in_len < EVENT_SIZE) {
			virtio_pci_fail(vp, "event buffer %u holds %llu bytes, an event needs %u",
					c->head, (unsigned long long)c->in_len, EVENT_SIZE);
			return -EINVAL;
		}
		h = &t->vi_held[(t->vi_held_first + t->vi_nheld++) % QUEUE_SIZE];
		h->head = c->head;
		h->n = virtq_iov_slice(c->iov, c->n_in, 0, EVENT_SIZE, h->iov, EVENT_SIZE);
		t->vi_buffers_seen = true;
	}
	return 0;
}

/* Moves backlog events into held buffers. Returns whether any buffer was used. */
static bool deliver(struct virtio_input *t, struct virtq *vq)
{
	bool used = false;

	while (t->vi_nheld && t->vi_head != t->vi_tail) {
		struct held_buffer *h = &t->vi_held[t->vi_held_first];
		uint8_t raw[EVENT_SIZE];

		encode(&t->vi_backlog[t->vi_head++ % BACKLOG], raw);
		virtq_iov_write(h->iov, h->n, 0, raw, EVENT_SIZE);
		virtq_push(vq, h->head, EVENT_SIZE);
		t->vi_held_first = (t->vi_held_first + 1) % QUEUE_SIZE;
		t->vi_nheld--;
		used = true;
	}
	return used;
}

/* The status queue carries LED and similar events from the driver: a tablet has none to show,
 * so each buffer goes straight back. */
static void drain_status(struct virtio_input *t, struct virtio_pci *vp, struct virtq *vq)
{
	struct virtq_chain *c = &t->vi_chain;
	bool used = false;
	int r = 0;

	for (unsigned n = 0; n < vq->vq_size; n++) {
		r = virtq_pop(vq, c);
		if (r <= 0)
			break;
		if (c->out_len >= EVENT_SIZE) {
			uint8_t raw[EVENT_SIZE];

			virtq_iov_read(c->iov, c->n_out, 0, raw, EVENT_SIZE);
			log_debug("%s: status event type %u code %u ignored", virtio_pci_name(vp),
				  raw[0] | raw[1] << 8, raw[2] | raw[3] << 8);
		}
		virtq_push(vq, c->head, 0);
		used = true;
	}
	if (r < 0)
		virtio_pci_fail(vp, "status queue: %s", vq->vq_error);
	if (used)
		virtio_pci_queue_interrupt(vp, STATUSQ);
}

static void input_queue_notify(void *opaque, struct virtio_pci *vp, unsigned queue,
			       struct virtq *vq)
{
	struct virtio_input *t = opaque;
	bool used;

	if (queue == STATUSQ) {
		drain_status(t, vp, vq);
		return;
	}
	pthread_mutex_lock(&t->vi_lock);
	if (take_buffers(t, vp, vq) < 0) {
		t->vi_nheld = 0;
		pthread_mutex_unlock(&t->vi_lock);
		return;
	}
	t->vi_notifies++;
	used = deliver(t, vq);
	pthread_mutex_unlock(&t->vi_lock);
	if (used)
		virtio_pci_queue_interrupt(vp, EVENTQ);
}

static void input_reset(void *opaque)
{
	struct virtio_input *t = opaque;

	/* The held buffers belonged to the old driver; the new one starts from zero. */
	t->vi_held_first = t->vi_nheld = 0;
	pthread_mutex_lock(&t->vi_lock);
	t->vi_buffers_seen = false;
	backlog_clear(t);
	pthread_mutex_unlock(&t->vi_lock);
}

/* The public interface */

struct virtio_input *virtio_input_create_tablet(struct vm *vm, struct pci_bus *bus, unsigned width,
						unsigned height)
{
	struct virtio_pci_desc desc = {
	    .name = "virtio-tablet",
	    .device_type = VIRTIO_ID_INPUT,
	    .class_code = PCI_CLASS_INPUT_OTHER,
	    .features = 0,
	    .num_queues = 2,
	    .queue_max_size = QUEUE_SIZE,
	    .config_len = CFG_LEN,
	    .queue_notify = input_queue_notify,
	    .config_write = input_config_write,
	    .reset = input_reset,
	};
	struct virtio_input *t;

	if (width < 1 || height < 1 || width > 65535 || height > 65535) {
		log_warnx("virtio-tablet: invalid screen size %ux%u", width, height);
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		log_warn("virtio-tablet: cannot allocate");
		return NULL;
	}
	t->vi_width = width;
	t->vi_height = height;
	pthread_mutex_init(&t->vi_lock, NULL);
	backlog_clear(t);
	config_update(t);
	desc.config = t->vi_config;
	desc.opaque = t;
	t->vi_vp = virtio_pci_create(vm, bus, &desc);
	if (!t->vi_vp) {
		pthread_mutex_destroy(&t->vi_lock);
		free(t);
		return NULL;
	}
	log_info("%s: absolute tablet for %ux%u", virtio_pci_name(t->vi_vp), width, height);
	return t;
}

void virtio_input_free(struct virtio_input *t)
{
	if (!t)
		return;
	virtio_pci_free(t->vi_vp);
	pthread_mutex_destroy(&t->vi_lock);
	free(t);
}

bool virtio_input_tablet_ready(struct virtio_input *t)
{
	uint64_t before;
	bool ready;

	if (!t)
		return false;
	pthread_mutex_lock(&t->vi_lock);
	before = t->vi_notifies;
	pthread_mutex_unlock(&t->vi_lock);
	/* The transport runs the queue only while the device is live: a run is the proof. */
	virtio_pci_kick(t->vi_vp, EVENTQ);
	pthread_mutex_lock(&t->vi_lock);
	ready = t->vi_notifies != before && t->vi_buffers_seen;
	pthread_mutex_unlock(&t->vi_lock);
	return ready;
}

static uint32_t scale(unsigned v, unsigned size)
{
	if (size < 2)
		return 0;
	if (v > size - 1)
		v = size - 1;
	return (uint32_t)(((uint64_t)v * VIRTIO_INPUT_ABS_MAX + (size - 1) / 2) / (size - 1));
}

void virtio_input_tablet_event(struct virtio_input *t, unsigned x, unsigned y, unsigned buttons,
			       int wheel)
{
	struct pointer_state to;

	if (!t)
		return;
	to = (struct pointer_state){scale(x, t->vi_width), scale(y, t->vi_height),
				    buttons & RFB_BUTTON_MASK};
	pthread_mutex_lock(&t->vi_lock);
	backlog_report(t, &to, wheel);
	pthread_mutex_unlock(&t->vi_lock);
	virtio_pci_kick(t->vi_vp, EVENTQ);
}
