/* i8042 keyboard controller with a PS/2 keyboard and a PS/2 IntelliMouse. The controller
 * holds one output byte (port 0x60) fed from three bounded queues in priority order: its
 * own replies, the keyboard's bytes, the mouse's bytes. Keyboards speak scan code set 2;
 * the controller translates to set 1 when the command byte says so, as it does on PCs.
 *
 * Interrupts: IRQ 1 and IRQ 12 follow the output buffer, as on real boards (and in QEMU
 * and kvmtool): a line is high while the output buffer holds a byte of its port and the
 * command byte enables its interrupt. Linux programs the ISA pins of the IOAPIC
 * edge-triggered and KVM's IOAPIC takes an edge only from a 0->1 change, so reading
 * port 0x60 drops the line before the next byte is loaded: one edge per byte. A pulse
 * per byte would be lost for good while the guest masks the pin (request_irq,
 * disable_irq), leaving a full output buffer and no interrupt; with the level model any
 * read of port 0x60 (Linux's i8042_flush, its polled commands, its interrupt handler)
 * re-arms the line, and a guest that programs the pin level-triggered also works.
 *
 * Differences from a PC, on purpose: the keyboard starts with scanning disabled (there
 * is no BIOS to enable it, and input queued before the guest's driver probes would make
 * Linux's i8042_flush give up after 16 bytes); queues hold 1 KiB rather than 16 bytes so
 * that pasted text survives a slow guest. */
#include "hv/dev/i8042.h"

#include <errno.h>
#include <linux/input-event-codes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hv/vm.h"
#include "lib/log.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define PORT_DATA    0x60
#define PORT_COMMAND 0x64

/* Status register (read from port 0x64). */
#define STS_OBF	     0x01 /* output buffer full */
#define STS_SYS	     0x04 /* system flag, from the command byte */
#define STS_A2	     0x08 /* last write went to port 0x64 */
#define STS_UNLOCKED 0x10 /* keyboard not inhibited by the key lock */
#define STS_AUX_OBF  0x20 /* the output byte came from the mouse */

/* Command byte, also controller RAM byte 0. */
#define CTR_KBD_INT 0x01
#define CTR_AUX_INT 0x02
#define CTR_SYS	    0x04
#define CTR_KBD_DIS 0x10
#define CTR_AUX_DIS 0x20
#define CTR_XLATE   0x40
/* What a BIOS leaves behind: translation on, keyboard interrupt on, mouse port off. */
#define CTR_POWER_ON (CTR_XLATE | CTR_AUX_DIS | CTR_SYS | CTR_KBD_INT)

/* Output port: bit 0 low holds the CPU in reset. */
#define OUT_RESET   0x01
#define OUT_A20	    0x02
#define OUT_KBD_OBF 0x10
#define OUT_AUX_OBF 0x20

enum controller_command {
	CMD_READ_RAM = 0x20,  /* 0x20-0x3F: read RAM byte cmd & 0x1F */
	CMD_WRITE_RAM = 0x60, /* 0x60-0x7F: write RAM byte cmd & 0x1F */
	CMD_AUX_DISABLE = 0xA7,
	CMD_AUX_ENABLE = 0xA8,
	CMD_AUX_TEST = 0xA9,
	CMD_SELF_TEST = 0xAA,
	CMD_KBD_TEST = 0xAB,
	CMD_KBD_DISABLE = 0xAD,
	CMD_KBD_ENABLE = 0xAE,
	CMD_READ_INPUT = 0xC0,
	CMD_READ_OUTPUT = 0xD0,
	CMD_WRITE_OUTPUT = 0xD1,
	CMD_WRITE_KBD_OBUF = 0xD2,
	CMD_WRITE_AUX_OBUF = 0xD3,
	CMD_WRITE_AUX = 0xD4,
	CMD_A20_OFF = 0xDD,
	CMD_A20_ON = 0xDF,
	CMD_READ_TEST = 0xE0,
	CMD_PULSE = 0xF0, /* 0xF0-0xFF: pulse the output lines whose bit is 0 */
};

#define SELF_TEST_OK 0x55

/* Replies common to PS/2 devices. */
#define PS2_ACK	   0xFA
#define PS2_RESEND 0xFE
#define PS2_BAT_OK 0xAA

enum keyboard_command {
	KBD_SET_LEDS = 0xED,
	KBD_ECHO = 0xEE,
	KBD_SCANCODE_SET = 0xF0,
	KBD_GET_ID = 0xF2,
	KBD_TYPEMATIC = 0xF3,
	KBD_ENABLE = 0xF4,
	KBD_DISABLE = 0xF5,
	KBD_DEFAULTS = 0xF6,
	KBD_SET3_FIRST = 0xF7, /* 0xF7-0xFD: set-3 key types, accepted and ignored */
	KBD_SET3_LAST = 0xFD,
	KBD_RESEND = 0xFE,
	KBD_RESET = 0xFF,
};

enum mouse_command {
	MS_SCALE11 = 0xE6,
	MS_SCALE21 = 0xE7,
	MS_SET_RESOLUTION = 0xE8,
	MS_STATUS = 0xE9,
	MS_STREAM = 0xEA,
	MS_READ_DATA = 0xEB,
	MS_RESET_WRAP = 0xEC,
	MS_SET_WRAP = 0xEE,
	MS_REMOTE = 0xF0,
	MS_GET_ID = 0xF2,
	MS_SET_RATE = 0xF3,
	MS_ENABLE = 0xF4,
	MS_DISABLE = 0xF5,
	MS_DEFAULTS = 0xF6,
	MS_RESEND = 0xFE,
	MS_RESET = 0xFF,
};

#define MS_ID_PS2	  0x00
#define MS_ID_WHEEL	  0x03
#define MS_STATUS_REMOTE  0x40
#define MS_STATUS_ENABLED 0x20
#define MS_STATUS_SCALE21 0x10
#define MS_BUTTONS	  0x07 /* 1 left, 2 right, 4 middle: the bit order of packet byte 0 */

/* Packet byte 0. */
#define PKT_ALWAYS1    0x08
#define PKT_X_SIGN     0x10
#define PKT_Y_SIGN     0x20
#define PKT_X_OVERFLOW 0x40
#define PKT_Y_OVERFLOW 0x80

/* Motion per packet. The 9-bit field could carry -256, but Linux's psmouse reads a
 * zero low byte as no motion whatever the sign bit, so -256 would be lost. */
#define MOTION_MAX 255
/* A larger motion is split into up to this many packets (2040 pixels); what is left
 * after that is dropped and the last packet carries the overflow bit. */
#define MOTION_MAX_PACKETS 8
#define WHEEL_MIN	   (-8) /* IntelliMouse wheel counts are 4-bit */
#define WHEEL_MAX	   7
/* Host motion is clamped first so that sums and negation cannot overflow an int. */
#define HOST_MOTION_LIMIT 65535

#define QUEUE_SIZE 1024 /* bytes per queue, a power of two */
/* Device queues keep this much room for command replies: host input never starves a
 * guest's command of its acknowledgement. */
#define REPLY_HEADROOM	       16
#define CONTROLLER_QUEUE_LIMIT 16
#define FROM_AUX	       0x100 /* queue entry flag: the byte is the mouse port's */

/* A bounded FIFO. Every index is reduced modulo QUEUE_SIZE and the length never
 * exceeds the limit the caller passes (at most QUEUE_SIZE): a full queue refuses. */
struct byte_queue {
	uint16_t bq_buf[QUEUE_SIZE];
	size_t bq_head;	  /* oldest entry, < QUEUE_SIZE */
	size_t bq_len;	  /* entries queued, <= QUEUE_SIZE */
	bool bq_overflow; /* input refused until the guest has read the queue empty */
	unsigned long bq_dropped;
};

struct ps2_keyboard {
	struct byte_queue kbd_queue;
	uint8_t kbd_pending; /* command waiting for its argument byte, 0 if none */
	uint8_t kbd_set;     /* scan code set, 1 or 2 */
	bool kbd_scanning;
	uint8_t kbd_leds;
	uint8_t kbd_typematic;
	uint8_t kbd_last; /* last byte sent, for Resend */
};

struct ps2_mouse {
	struct byte_queue ms_queue;
	uint8_t ms_pending; /* command waiting for its argument byte, 0 if none */
	bool ms_enabled;    /* data reporting on */
	bool ms_remote;	    /* remote mode: report only on Read Data */
	bool ms_wrap;	    /* wrap mode: echo what the host sends */
	bool ms_scale21;    /* recorded and reported, not applied (Linux uses 1:1) */
	bool ms_wheel;	    /* IntelliMouse: id 3, 4-byte packets */
	uint8_t ms_rate, ms_resolution;
	uint8_t ms_rates[3]; /* last three sample rates, for the IntelliMouse knock */
	unsigned ms_buttons;
	int ms_dx, ms_dy, ms_dz; /* motion held for Read Data in remote mode */
	uint8_t ms_last[8];	 /* last reply or packet, for Resend */
	size_t ms_last_len;
};

struct i8042 {
	struct vm *kbc_vm;
	pthread_mutex_t kbc_lock;
	uint8_t kbc_ram[32]; /* [0] is the command byte */
	uint8_t kbc_outport;
	uint8_t kbc_pending; /* command waiting for its byte on port 0x60, 0 if none */
	bool kbc_last_was_command;
	bool kbc_obf;	  /* output buffer full */
	bool kbc_obf_aux; /* ... with a byte of the mouse port */
	uint8_t kbc_obuf; /* read again when the buffer is empty, as hardware does */
	bool kbc_irq_kbd, kbc_irq_aux;
	struct byte_queue kbc_replies; /* the controller's own replies, first served */
	struct ps2_keyboard kbc_kbd;
	struct ps2_mouse kbc_mouse;
};

/* Linux keycode -> set 2 make code; EXT means an E0 prefix. Print and Pause, which
 * send longer sequences, are handled in set2_sequence(). */
#define EXT 0x100
static const uint16_t set2_codes[] = {
    [KEY_ESC] = 0x76,
    [KEY_1] = 0x16,
    [KEY_2] = 0x1E,
    [KEY_3] = 0x26,
    [KEY_4] = 0x25,
    [KEY_5] = 0x2E,
    [KEY_6] = 0x36,
    [KEY_7] = 0x3D,
    [KEY_8] = 0x3E,
    [KEY_9] = 0x46,
    [KEY_0] = 0x45,
    [KEY_MINUS] = 0x4E,
    [KEY_EQUAL] = 0x55,
    [KEY_BACKSPACE] = 0x66,
    [KEY_TAB] = 0x0D,
    [KEY_Q] = 0x15,
    [KEY_W] = 0x1D,
    [KEY_E] = 0x24,
    [KEY_R] = 0x2D,
    [KEY_T] = 0x2C,
    [KEY_Y] = 0x35,
    [KEY_U] = 0x3C,
    [KEY_I] = 0x43,
    [KEY_O] = 0x44,
    [KEY_P] = 0x4D,
    [KEY_LEFTBRACE] = 0x54,
    [KEY_RIGHTBRACE] = 0x5B,
    [KEY_ENTER] = 0x5A,
    [KEY_LEFTCTRL] = 0x14,
    [KEY_A] = 0x1C,
    [KEY_S] = 0x1B,
    [KEY_D] = 0x23,
    [KEY_F] = 0x2B,
    [KEY_G] = 0x34,
    [KEY_H] = 0x33,
    [KEY_J] = 0x3B,
    [KEY_K] = 0x42,
    [KEY_L] = 0x4B,
    [KEY_SEMICOLON] = 0x4C,
    [KEY_APOSTROPHE] = 0x52,
    [KEY_GRAVE] = 0x0E,
    [KEY_LEFTSHIFT] = 0x12,
    [KEY_BACKSLASH] = 0x5D,
    [KEY_Z] = 0x1A,
    [KEY_X] = 0x22,
    [KEY_C] = 0x21,
    [KEY_V] = 0x2A,
    [KEY_B] = 0x32,
    [KEY_N] = 0x31,
    [KEY_M] = 0x3A,
    [KEY_COMMA] = 0x41,
    [KEY_DOT] = 0x49,
    [KEY_SLASH] = 0x4A,
    [KEY_RIGHTSHIFT] = 0x59,
    [KEY_KPASTERISK] = 0x7C,
    [KEY_LEFTALT] = 0x11,
    [KEY_SPACE] = 0x29,
    [KEY_CAPSLOCK] = 0x58,
    [KEY_F1] = 0x05,
    [KEY_F2] = 0x06,
    [KEY_F3] = 0x04,
    [KEY_F4] = 0x0C,
    [KEY_F5] = 0x03,
    [KEY_F6] = 0x0B,
    [KEY_F7] = 0x83,
    [KEY_F8] = 0x0A,
    [KEY_F9] = 0x01,
    [KEY_F10] = 0x09,
    [KEY_NUMLOCK] = 0x77,
    [KEY_SCROLLLOCK] = 0x7E,
    [KEY_KP7] = 0x6C,
    [KEY_KP8] = 0x75,
    [KEY_KP9] = 0x7D,
    [KEY_KPMINUS] = 0x7B,
    [KEY_KP4] = 0x6B,
    [KEY_KP5] = 0x73,
    [KEY_KP6] = 0x74,
    [KEY_KPPLUS] = 0x79,
    [KEY_KP1] = 0x69,
    [KEY_KP2] = 0x72,
    [KEY_KP3] = 0x7A,
    [KEY_KP0] = 0x70,
    [KEY_KPDOT] = 0x71,
    [KEY_102ND] = 0x61,
    [KEY_F11] = 0x78,
    [KEY_F12] = 0x07,
    [KEY_RO] = 0x51,
    [KEY_HENKAN] = 0x64,
    [KEY_KATAKANAHIRAGANA] = 0x13,
    [KEY_MUHENKAN] = 0x67,
    [KEY_KPENTER] = EXT | 0x5A,
    [KEY_RIGHTCTRL] = EXT | 0x14,
    [KEY_KPSLASH] = EXT | 0x4A,
    [KEY_RIGHTALT] = EXT | 0x11,
    [KEY_HOME] = EXT | 0x6C,
    [KEY_UP] = EXT | 0x75,
    [KEY_PAGEUP] = EXT | 0x7D,
    [KEY_LEFT] = EXT | 0x6B,
    [KEY_RIGHT] = EXT | 0x74,
    [KEY_END] = EXT | 0x69,
    [KEY_DOWN] = EXT | 0x72,
    [KEY_PAGEDOWN] = EXT | 0x7A,
    [KEY_INSERT] = EXT | 0x70,
    [KEY_DELETE] = EXT | 0x71,
    [KEY_MUTE] = EXT | 0x23,
    [KEY_VOLUMEDOWN] = EXT | 0x21,
    [KEY_VOLUMEUP] = EXT | 0x32,
    [KEY_POWER] = EXT | 0x37,
    [KEY_KPEQUAL] = 0x0F,
    [KEY_KPCOMMA] = 0x6D,
    [KEY_YEN] = 0x6A,
    [KEY_LEFTMETA] = EXT | 0x1F,
    [KEY_RIGHTMETA] = EXT | 0x27,
    [KEY_COMPOSE] = EXT | 0x2F,
    [KEY_STOP] = EXT | 0x28,
    [KEY_CALC] = EXT | 0x2B,
    [KEY_SLEEP] = EXT | 0x3F,
    [KEY_WAKEUP] = EXT | 0x5E,
    [KEY_MAIL] = EXT | 0x48,
    [KEY_BOOKMARKS] = EXT | 0x18,
    [KEY_COMPUTER] = EXT | 0x40,
    [KEY_BACK] = EXT | 0x38,
    [KEY_FORWARD] = EXT | 0x30,
    [KEY_NEXTSONG] = EXT | 0x4D,
    [KEY_PLAYPAUSE] = EXT | 0x34,
    [KEY_PREVIOUSSONG] = EXT | 0x15,
    [KEY_STOPCD] = EXT | 0x3B,
    [KEY_HOMEPAGE] = EXT | 0x3A,
    [KEY_REFRESH] = EXT | 0x20,
    [KEY_SEARCH] = EXT | 0x10,
    [KEY_MEDIA] = EXT | 0x50,
};

static const uint8_t print_make[] = {0xE0, 0x12, 0xE0, 0x7C};
static const uint8_t print_break[] = {0xE0, 0xF0, 0x7C, 0xE0, 0xF0, 0x12};
static const uint8_t pause_make[] = {0xE1, 0x14, 0x77, 0xE1, 0xF0, 0x14, 0xF0, 0x77};
#define SEQUENCE_MAX 8

/* Set 2 -> set 1, what the controller does to every keyboard byte when CTR_XLATE is set
 * (and what a keyboard in set 1 does to its own scan codes). 0xF0 is not in it: it is a
 * break prefix that sets bit 7 of the next byte. */
static const uint8_t set1_of_set2[256] = {
    0xff, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58, 0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f, 0x29, 0x59,
    0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a, 0x66, 0x71, 0x2c, 0x1f, 0x1e, 0x11, 0x03, 0x5b,
    0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c, 0x68, 0x39, 0x2f, 0x21, 0x14, 0x13, 0x06, 0x5d,
    0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e, 0x6a, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5f,
    0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b, 0x0a, 0x60, 0x6c, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0c, 0x61,
    0x6d, 0x73, 0x28, 0x74, 0x1a, 0x0d, 0x62, 0x6e, 0x3a, 0x36, 0x1c, 0x1b, 0x75, 0x2b, 0x63, 0x76,
    0x55, 0x56, 0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b, 0x7c, 0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f, 0x6f,
    0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45, 0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49, 0x46, 0x54,
    0x80, 0x81, 0x82, 0x41, 0x54, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
    0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f,
    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
    0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,
    0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf,
    0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
    0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef,
    0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
};

static int clamp(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* ---- queues ---- */

static bool queue_put(struct byte_queue *q, const uint8_t *bytes, size_t n, uint16_t flags,
		      size_t limit)
{
	if (limit > QUEUE_SIZE)
		limit = QUEUE_SIZE;
	if (q->bq_len > limit || n > limit - q->bq_len)
		return false;
	for (size_t i = 0; i < n; i++)
		q->bq_buf[(q->bq_head + q->bq_len + i) % QUEUE_SIZE] = bytes[i] | flags;
	q->bq_len += n;
	return true;
}

static bool queue_get(struct byte_queue *q, uint16_t *entry)
{
	if (q->bq_len == 0)
		return false;
	*entry = q->bq_buf[q->bq_head % QUEUE_SIZE];
	q->bq_head = (q->bq_head + 1) % QUEUE_SIZE;
	q->bq_len--;
	if (q->bq_len == 0)
		q->bq_overflow = false;
	return true;
}

static void queue_clear(struct byte_queue *q)
{
	q->bq_head = 0;
	q->bq_len = 0;
	q->bq_overflow = false;
}

/* Queues one input event's bytes whole, leaving REPLY_HEADROOM for command replies.
 * Once an event is refused, input is refused until the guest has read the queue empty:
 * the guest sees one gap, not a shuffle of kept and lost events. Logged once per gap. */
static bool queue_input(struct byte_queue *q, const uint8_t *bytes, size_t n, uint16_t flags,
			const char *device)
{
	if (!q->bq_overflow && queue_put(q, bytes, n, flags, QUEUE_SIZE - REPLY_HEADROOM))
		return true;
	q->bq_dropped++;
	if (!q->bq_overflow)
		log_warnx("i8042: %s queue full, guest is not reading; input dropped "
			  "(%lu events so far)",
			  device, q->bq_dropped);
	q->bq_overflow = true;
	return false;
}

/* Queues a command reply whole; only a guest that never reads can fill the queue. */
static bool queue_reply(struct byte_queue *q, const uint8_t *bytes, size_t n, uint16_t flags,
			const char *device)
{
	if (queue_put(q, bytes, n, flags, QUEUE_SIZE))
		return true;
	log_debug("i8042: guest does not read %s replies; reply dropped", device);
	return false;
}

/* ---- output buffer and interrupt lines ---- */

static uint8_t command_byte(const struct i8042 *kbc)
{
	return kbc->kbc_ram[0];
}

/* Loads the next byte into an empty output buffer: controller replies first, then the
 * keyboard and the mouse unless the command byte disables their port. */
static void refill(struct i8042 *kbc)
{
	uint8_t ctr = command_byte(kbc);
	uint16_t entry;

	if (kbc->kbc_obf)
		return;
	if (queue_get(&kbc->kbc_replies, &entry) ||
	    (!(ctr & CTR_KBD_DIS) && queue_get(&kbc->kbc_kbd.kbd_queue, &entry)) ||
	    (!(ctr & CTR_AUX_DIS) && queue_get(&kbc->kbc_mouse.ms_queue, &entry))) {
		kbc->kbc_obuf = (uint8_t)entry;
		kbc->kbc_obf_aux = entry & FROM_AUX;
		kbc->kbc_obf = true;
	}
}

/* Drives each line to its level; called with the lock held after every change. */
static void update_irq(struct i8042 *kbc)
{
	uint8_t ctr = command_byte(kbc);
	bool kbd = kbc->kbc_obf && !kbc->kbc_obf_aux && (ctr & CTR_KBD_INT);
	bool aux = kbc->kbc_obf && kbc->kbc_obf_aux && (ctr & CTR_AUX_INT);

	if (kbd != kbc->kbc_irq_kbd) {
		kbc->kbc_irq_kbd = kbd;
		vm_set_irq(kbc->kbc_vm, VM_IRQ_KEYBOARD, kbd);
	}
	if (aux != kbc->kbc_irq_aux) {
		kbc->kbc_irq_aux = aux;
		vm_set_irq(kbc->kbc_vm, VM_IRQ_MOUSE, aux);
	}
}

static void update_outputs(struct i8042 *kbc)
{
	refill(kbc);
	update_irq(kbc);
}

/* A controller reply, or a byte the guest wrote with 0xD2/0xD3. */
static void controller_reply(struct i8042 *kbc, uint8_t byte, bool aux)
{
	if (!queue_put(&kbc->kbc_replies, &byte, 1, aux ? FROM_AUX : 0, CONTROLLER_QUEUE_LIMIT))
		log_debug("i8042: guest does not read controller replies; reply dropped");
}

/* ---- keyboard ---- */

/* Applies the set 2 -> set 1 translation to n bytes in place; returns the new length. */
static size_t translate(uint8_t *bytes, size_t n)
{
	bool release = false;
	size_t out = 0;

	for (size_t i = 0; i < n; i++) {
		if (bytes[i] == 0xF0) {
			release = true;
			continue;
		}
		bytes[out++] = set1_of_set2[bytes[i]] | (release ? 0x80 : 0);
		release = false;
	}
	return out;
}

static size_t copy_sequence(uint8_t *out, const uint8_t *seq, size_t n)
{
	memcpy(out, seq, n);
	return n;
}

/* The set 2 bytes for a key going down or up; 0 when the key has none. */
static size_t set2_sequence(unsigned keycode, bool down, uint8_t *out)
{
	size_t n = 0;
	uint16_t code;

	switch (keycode) {
	case KEY_PAUSE: /* no break code */
		return down ? copy_sequence(out, pause_make, sizeof(pause_make)) : 0;
	case KEY_SYSRQ:
	case KEY_PRINT:
		return down ? copy_sequence(out, print_make, sizeof(print_make))
			    : copy_sequence(out, print_break, sizeof(print_break));
	}
	if (keycode >= ARRAY_SIZE(set2_codes) || !set2_codes[keycode])
		return 0;
	code = set2_codes[keycode];
	if (code & EXT)
		out[n++] = 0xE0;
	if (!down)
		out[n++] = 0xF0;
	out[n++] = (uint8_t)code;
	return n;
}

/* Queues bytes from the keyboard as a whole or not at all. The controller translates
 * them on the way if the command byte says so at that moment (Linux sets it once, before
 * it enables the keyboard). */
static bool keyboard_send(struct i8042 *kbc, uint8_t *bytes, size_t n, bool is_reply)
{
	struct ps2_keyboard *kbd = &kbc->kbc_kbd;
	uint8_t last;

	if (n == 0)
		return true;
	last = bytes[n - 1];
	if (command_byte(kbc) & CTR_XLATE)
		n = translate(bytes, n);
	if (n == 0)
		return true;
	if (is_reply ? !queue_reply(&kbd->kbd_queue, bytes, n, 0, "keyboard")
		     : !queue_input(&kbd->kbd_queue, bytes, n, 0, "keyboard"))
		return false;
	kbd->kbd_last = last; /* as the keyboard sent it, before translation */
	return true;
}

static void keyboard_reply(struct i8042 *kbc, const uint8_t *bytes, size_t n)
{
	uint8_t buf[4];

	if (n > sizeof(buf))
		return;
	memcpy(buf, bytes, n);
	keyboard_send(kbc, buf, n, true);
}

static void keyboard_ack(struct i8042 *kbc)
{
	keyboard_reply(kbc, (const uint8_t[]){PS2_ACK}, 1);
}

static void keyboard_defaults(struct ps2_keyboard *kbd)
{
	kbd->kbd_set = 2;
	kbd->kbd_typematic = 0x2B; /* 10.9 characters/s after 500 ms */
	kbd->kbd_pending = 0;
}

/* A byte the guest sent to the keyboard. */
static void keyboard_write(struct i8042 *kbc, uint8_t val)
{
	struct ps2_keyboard *kbd = &kbc->kbc_kbd;
	uint8_t cmd = kbd->kbd_pending;

	kbd->kbd_pending = 0;
	/* Arguments are below 0x80; a command byte instead cancels the pending command. */
	switch (val & 0x80 ? 0 : cmd) {
	case KBD_SET_LEDS:
		kbd->kbd_leds = val & 0x07;
		keyboard_ack(kbc);
		return;
	case KBD_TYPEMATIC:
		kbd->kbd_typematic = val & 0x7F;
		keyboard_ack(kbc);
		return;
	case KBD_SCANCODE_SET:
		if (val == 0) {
			keyboard_reply(kbc, (const uint8_t[]){PS2_ACK, kbd->kbd_set}, 2);
		} else if (val == 1 || val == 2) {
			kbd->kbd_set = val;
			keyboard_ack(kbc);
		} else {
			keyboard_reply(kbc, (const uint8_t[]){PS2_RESEND}, 1); /* no set 3 */
		}
		return;
	}

	switch (val) {
	case KBD_SET_LEDS:
	case KBD_TYPEMATIC:
	case KBD_SCANCODE_SET:
		kbd->kbd_pending = val;
		keyboard_ack(kbc);
		break;
	case KBD_ECHO: keyboard_reply(kbc, (const uint8_t[]){KBD_ECHO}, 1); break;
	case KBD_GET_ID: /* MF2 keyboard; translated, 0x83 reads 0x41 */
		keyboard_reply(kbc, (const uint8_t[]){PS2_ACK, 0xAB, 0x83}, 3);
		break;
	case KBD_ENABLE: /* clears the keyboard's buffer, as the PS/2 spec says */
		queue_clear(&kbd->kbd_queue);
		kbd->kbd_scanning = true;
		keyboard_ack(kbc);
		break;
	case KBD_DISABLE:
		keyboard_defaults(kbd);
		kbd->kbd_scanning = false;
		keyboard_ack(kbc);
		break;
	case KBD_DEFAULTS:
		keyboard_defaults(kbd);
		kbd->kbd_scanning = true;
		keyboard_ack(kbc);
		break;
	case KBD_RESEND: keyboard_reply(kbc, &kbd->kbd_last, 1); break;
	case KBD_RESET:
		queue_clear(&kbd->kbd_queue);
		keyboard_defaults(kbd);
		kbd->kbd_leds = 0;
		kbd->kbd_scanning = true;
		keyboard_reply(kbc, (const uint8_t[]){PS2_ACK, PS2_BAT_OK}, 2);
		break;
	default:
		if (val >= KBD_SET3_FIRST && val <= KBD_SET3_LAST)
			keyboard_ack(kbc);
		else
			keyboard_reply(kbc, (const uint8_t[]){PS2_RESEND}, 1);
		break;
	}
}

/* ---- mouse ---- */

static bool mouse_send(struct i8042 *kbc, const uint8_t *bytes, size_t n, bool is_reply)
{
	struct ps2_mouse *ms = &kbc->kbc_mouse;

	if (is_reply ? !queue_reply(&ms->ms_queue, bytes, n, FROM_AUX, "mouse")
		     : !queue_input(&ms->ms_queue, bytes, n, FROM_AUX, "mouse"))
		return false;
	if (n <= sizeof(ms->ms_last)) {
		memcpy(ms->ms_last, bytes, n);
		ms->ms_last_len = n;
	}
	return true;
}

static void mouse_reply(struct i8042 *kbc, const uint8_t *bytes, size_t n)
{
	mouse_send(kbc, bytes, n, true);
}

static void mouse_ack(struct i8042 *kbc)
{
	mouse_reply(kbc, (const uint8_t[]){PS2_ACK}, 1);
}

/* One packet of x (right) and y (up) in -255..255 and w wheel counts (toward the
 * user); returns its length, 3 or 4 with the wheel on. */
static size_t mouse_packet(const struct ps2_mouse *ms, int x, int y, int w, uint8_t flags,
			   uint8_t *pkt)
{
	pkt[0] = (uint8_t)(PKT_ALWAYS1 | (ms->ms_buttons & MS_BUTTONS) | flags |
			   (x < 0 ? PKT_X_SIGN : 0) | (y < 0 ? PKT_Y_SIGN : 0));
	pkt[1] = (uint8_t)x;
	pkt[2] = (uint8_t)y;
	if (!ms->ms_wheel)
		return 3;
	pkt[3] = (uint8_t)w;
	return 4;
}

/* Motion as packets into out (room for MOTION_MAX_PACKETS * 4 bytes): split into as
 * many packets as needed, up to MOTION_MAX_PACKETS; any rest sets the overflow bits of
 * the last one. Returns the byte count. */
static size_t mouse_motion(const struct ps2_mouse *ms, int dx, int dy, int dw, size_t max_packets,
			   uint8_t *out)
{
	size_t n = 0;

	if (!ms->ms_wheel)
		dw = 0;
	for (size_t i = 0; i < max_packets; i++) {
		int x = clamp(dx, -MOTION_MAX, MOTION_MAX);
		int y = clamp(dy, -MOTION_MAX, MOTION_MAX);
		int w = clamp(dw, WHEEL_MIN, WHEEL_MAX);
		uint8_t flags = 0;

		dx -= x, dy -= y, dw -= w;
		if (i + 1 == max_packets)
			flags = (dx ? PKT_X_OVERFLOW : 0) | (dy ? PKT_Y_OVERFLOW : 0);
		n += mouse_packet(ms, x, y, w, flags, out + n);
		if (!dx && !dy && !dw)
			break;
	}
	return n;
}

static void mouse_defaults(struct ps2_mouse *ms)
{
	ms->ms_rate = 100;
	ms->ms_resolution = 2; /* 4 counts/mm */
	ms->ms_scale21 = false;
	ms->ms_enabled = false;
	ms->ms_remote = false;
	ms->ms_pending = 0;
	ms->ms_dx = ms->ms_dy = ms->ms_dz = 0;
}

static void mouse_set_rate(struct ps2_mouse *ms, uint8_t rate)
{
	ms->ms_rate = rate;
	ms->ms_rates[0] = ms->ms_rates[1];
	ms->ms_rates[1] = ms->ms_rates[2];
	ms->ms_rates[2] = rate;
	if (ms->ms_rates[0] == 200 && ms->ms_rates[1] == 100 && ms->ms_rates[2] == 80)
		ms->ms_wheel = true;
}

static void mouse_read_data(struct i8042 *kbc)
{
	struct ps2_mouse *ms = &kbc->kbc_mouse;
	uint8_t reply[1 + 4] = {PS2_ACK};
	size_t n;

	n = mouse_motion(ms, ms->ms_dx, ms->ms_dy, ms->ms_dz, 1, reply + 1);
	ms->ms_dx = ms->ms_dy = ms->ms_dz = 0;
	mouse_reply(kbc, reply, 1 + n);
}

/* A byte the guest sent to the mouse (command 0xD4). */
static void mouse_write(struct i8042 *kbc, uint8_t val)
{
	struct ps2_mouse *ms = &kbc->kbc_mouse;
	uint8_t cmd = ms->ms_pending;

	if (ms->ms_wrap && val != MS_RESET_WRAP && val != MS_RESET) {
		mouse_reply(kbc, &val, 1);
		return;
	}
	ms->ms_pending = 0;
	switch (cmd) {
	case MS_SET_RESOLUTION:
		ms->ms_resolution = val & 0x03;
		mouse_ack(kbc);
		return;
	case MS_SET_RATE:
		mouse_set_rate(ms, val);
		mouse_ack(kbc);
		return;
	}

	switch (val) {
	case MS_SCALE11:
	case MS_SCALE21:
		ms->ms_scale21 = val == MS_SCALE21;
		mouse_ack(kbc);
		break;
	case MS_SET_RESOLUTION:
	case MS_SET_RATE:
		ms->ms_pending = val;
		mouse_ack(kbc);
		break;
	case MS_STATUS: {
		unsigned b = ms->ms_buttons;
		uint8_t status =
		    (uint8_t)((ms->ms_remote ? MS_STATUS_REMOTE : 0) |
			      (ms->ms_enabled ? MS_STATUS_ENABLED : 0) |
			      (ms->ms_scale21 ? MS_STATUS_SCALE21 : 0) | (b & 1 ? 0x04 : 0) |
			      (b & 4 ? 0x02 : 0) | (b & 2 ? 0x01 : 0));

		mouse_reply(kbc, (const uint8_t[]){PS2_ACK, status, ms->ms_resolution, ms->ms_rate},
			    4);
		break;
	}
	case MS_STREAM:
	case MS_REMOTE:
		ms->ms_remote = val == MS_REMOTE;
		ms->ms_dx = ms->ms_dy = ms->ms_dz = 0;
		mouse_ack(kbc);
		break;
	case MS_READ_DATA: mouse_read_data(kbc); break;
	case MS_RESET_WRAP:
	case MS_SET_WRAP:
		ms->ms_wrap = val == MS_SET_WRAP;
		mouse_ack(kbc);
		break;
	case MS_GET_ID:
		mouse_reply(kbc, (const uint8_t[]){PS2_ACK, ms->ms_wheel ? MS_ID_WHEEL : MS_ID_PS2},
			    2);
		break;
	case MS_ENABLE:
	case MS_DISABLE:
		ms->ms_enabled = val == MS_ENABLE;
		mouse_ack(kbc);
		break;
	case MS_DEFAULTS:
		mouse_defaults(ms);
		mouse_ack(kbc);
		break;
	case MS_RESEND:
		if (ms->ms_last_len)
			mouse_reply(kbc, ms->ms_last, ms->ms_last_len);
		break;
	case MS_RESET:
		mouse_defaults(ms);
		ms->ms_wrap = false;
		ms->ms_wheel = false;
		memset(ms->ms_rates, 0, sizeof(ms->ms_rates));
		mouse_reply(kbc, (const uint8_t[]){PS2_ACK, PS2_BAT_OK, MS_ID_PS2}, 3);
		break;
	default: mouse_reply(kbc, (const uint8_t[]){PS2_RESEND}, 1); break;
	}
}

/* ---- controller ---- */

/* A byte written to port 0x64. Sets *reset when the guest pulses the reset line. */
static void command_write(struct i8042 *kbc, uint8_t cmd, bool *reset)
{
	uint8_t *ctr = &kbc->kbc_ram[0];

	kbc->kbc_pending = 0;
	kbc->kbc_last_was_command = true;
	if (cmd >= CMD_READ_RAM && cmd < CMD_READ_RAM + 0x20) {
		controller_reply(kbc, kbc->kbc_ram[cmd & 0x1F], false);
		return;
	}
	if (cmd >= CMD_WRITE_RAM && cmd < CMD_WRITE_RAM + 0x20) {
		kbc->kbc_pending = cmd;
		return;
	}
	if (cmd >= CMD_PULSE) {
		if (!(cmd & OUT_RESET))
			*reset = true;
		return;
	}
	switch (cmd) {
	case CMD_AUX_DISABLE: *ctr |= CTR_AUX_DIS; break;
	case CMD_AUX_ENABLE: *ctr &= (uint8_t)~CTR_AUX_DIS; break;
	case CMD_AUX_TEST:
	case CMD_KBD_TEST:
		controller_reply(kbc, 0x00, false); /* no clock or data line stuck */
		break;
	case CMD_SELF_TEST:
		*ctr |= CTR_SYS;
		controller_reply(kbc, SELF_TEST_OK, false);
		break;
	case CMD_KBD_DISABLE: *ctr |= CTR_KBD_DIS; break;
	case CMD_KBD_ENABLE: *ctr &= (uint8_t)~CTR_KBD_DIS; break;
	case CMD_READ_INPUT:
		controller_reply(kbc, 0x80, false); /* key lock open */
		break;
	case CMD_READ_OUTPUT:
		controller_reply(kbc,
				 (uint8_t)(kbc->kbc_outport & ~(OUT_KBD_OBF | OUT_AUX_OBF)) |
				     (kbc->kbc_irq_kbd ? OUT_KBD_OBF : 0) |
				     (kbc->kbc_irq_aux ? OUT_AUX_OBF : 0),
				 false);
		break;
	case CMD_WRITE_OUTPUT:
	case CMD_WRITE_KBD_OBUF:
	case CMD_WRITE_AUX_OBUF:
	case CMD_WRITE_AUX: kbc->kbc_pending = cmd; break;
	case CMD_A20_OFF: kbc->kbc_outport &= (uint8_t)~OUT_A20; break;
	case CMD_A20_ON: kbc->kbc_outport |= OUT_A20; break;
	case CMD_READ_TEST: controller_reply(kbc, 0x00, false); break;
	default: log_debug("i8042: unknown controller command 0x%02x ignored", cmd); break;
	}
}

/* A byte written to port 0x60: the data of a pending controller command, else a byte
 * for the keyboard. Sets *reset when the guest clears the reset bit of the output port. */
static void data_write(struct i8042 *kbc, uint8_t val, bool *reset)
{
	uint8_t cmd = kbc->kbc_pending;

	kbc->kbc_pending = 0;
	kbc->kbc_last_was_command = false;
	if (cmd >= CMD_WRITE_RAM && cmd < CMD_WRITE_RAM + 0x20) {
		kbc->kbc_ram[cmd & 0x1F] = val;
		return;
	}
	switch (cmd) {
	case CMD_WRITE_OUTPUT:
		kbc->kbc_outport = val;
		if (!(val & OUT_RESET))
			*reset = true;
		break;
	case CMD_WRITE_KBD_OBUF: controller_reply(kbc, val, false); break;
	case CMD_WRITE_AUX_OBUF: controller_reply(kbc, val, true); break;
	case CMD_WRITE_AUX:
		kbc->kbc_ram[0] &=
		    (uint8_t)~CTR_AUX_DIS; /* talking to the mouse enables its port */
		mouse_write(kbc, val);
		break;
	default:
		kbc->kbc_ram[0] &= (uint8_t)~CTR_KBD_DIS;
		keyboard_write(kbc, val);
		break;
	}
}

static uint8_t status(const struct i8042 *kbc)
{
	uint8_t st = STS_UNLOCKED;

	if (kbc->kbc_obf)
		st |= STS_OBF | (kbc->kbc_obf_aux ? STS_AUX_OBF : 0);
	if (command_byte(kbc) & CTR_SYS)
		st |= STS_SYS;
	if (kbc->kbc_last_was_command)
		st |= STS_A2;
	return st;
}

static uint8_t data_read(struct i8042 *kbc)
{
	if (kbc->kbc_obf) {
		kbc->kbc_obf = false;
		update_irq(kbc); /* drop the line so that the next byte makes a fresh edge */
	}
	return kbc->kbc_obuf;
}

/* Port I/O from a vCPU thread. Accesses wider than a byte see 0xFF above the first. */
static void port_read(struct i8042 *kbc, bool is_status, void *data, unsigned len)
{
	uint8_t v;

	pthread_mutex_lock(&kbc->kbc_lock);
	v = is_status ? status(kbc) : data_read(kbc);
	update_outputs(kbc);
	pthread_mutex_unlock(&kbc->kbc_lock);
	for (unsigned i = 0; i < len; i++)
		((uint8_t *)data)[i] = i ? 0xFF : v;
}

static void port_write(struct i8042 *kbc, bool is_command, const void *data)
{
	uint8_t v = *(const uint8_t *)data;
	bool reset = false;

	pthread_mutex_lock(&kbc->kbc_lock);
	if (is_command)
		command_write(kbc, v, &reset);
	else
		data_write(kbc, v, &reset);
	update_outputs(kbc);
	pthread_mutex_unlock(&kbc->kbc_lock);
	if (reset)
		vm_request_stop(kbc->kbc_vm, VM_STOP_RESET, "guest reset via i8042");
}

static void data_port_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	(void)offset;
	port_read(opaque, false, data, len);
}

static void data_port_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	(void)offset, (void)len;
	port_write(opaque, false, data);
}

static void command_port_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	(void)offset;
	port_read(opaque, true, data, len);
}

static void command_port_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	(void)offset, (void)len;
	port_write(opaque, true, data);
}

/* ---- host input ---- */

void i8042_key_event(struct i8042 *kbc, unsigned keycode, bool down)
{
	uint8_t seq[SEQUENCE_MAX];
	size_t n = set2_sequence(keycode, down, seq);

	if (n == 0) {
		log_debug("i8042: no scan code for key %u", keycode);
		return;
	}
	pthread_mutex_lock(&kbc->kbc_lock);
	if (kbc->kbc_kbd.kbd_scanning) {
		if (kbc->kbc_kbd.kbd_set == 1)
			n = translate(seq, n);
		keyboard_send(kbc, seq, n, false);
		update_outputs(kbc);
	}
	pthread_mutex_unlock(&kbc->kbc_lock);
}

void i8042_mouse_event(struct i8042 *kbc, int dx, int dy, int dz, unsigned buttons)
{
	struct ps2_mouse *ms = &kbc->kbc_mouse;
	uint8_t packets[MOTION_MAX_PACKETS * 4];
	size_t n;

	/* PS/2 counts y upward and the wheel toward the user. */
	dx = clamp(dx, -HOST_MOTION_LIMIT, HOST_MOTION_LIMIT);
	dy = -clamp(dy, -HOST_MOTION_LIMIT, HOST_MOTION_LIMIT);
	dz = -clamp(dz, -HOST_MOTION_LIMIT, HOST_MOTION_LIMIT);
	buttons &= MS_BUTTONS;

	pthread_mutex_lock(&kbc->kbc_lock);
	if (ms->ms_remote) {
		ms->ms_buttons = buttons;
		ms->ms_dx = clamp(ms->ms_dx + dx, -HOST_MOTION_LIMIT, HOST_MOTION_LIMIT);
		ms->ms_dy = clamp(ms->ms_dy + dy, -HOST_MOTION_LIMIT, HOST_MOTION_LIMIT);
		ms->ms_dz = clamp(ms->ms_dz + dz, -HOST_MOTION_LIMIT, HOST_MOTION_LIMIT);
	} else if (ms->ms_enabled &&
		   (dx || dy || (dz && ms->ms_wheel) || buttons != ms->ms_buttons)) {
		ms->ms_buttons = buttons;
		n = mouse_motion(ms, dx, dy, dz, MOTION_MAX_PACKETS, packets);
		mouse_send(kbc, packets, n, false);
		update_outputs(kbc);
	} else {
		ms->ms_buttons = buttons;
	}
	pthread_mutex_unlock(&kbc->kbc_lock);
}

/* ---- life cycle ---- */

struct i8042 *i8042_create(struct vm *vm)
{
	struct i8042 *kbc = calloc(1, sizeof(*kbc));
	int r;

	if (!kbc) {
		log_warn("i8042: cannot allocate");
		return NULL;
	}
	kbc->kbc_vm = vm;
	pthread_mutex_init(&kbc->kbc_lock, NULL);
	kbc->kbc_ram[0] = CTR_POWER_ON;
	kbc->kbc_outport = OUT_RESET | OUT_A20;
	keyboard_defaults(&kbc->kbc_kbd);
	kbc->kbc_kbd.kbd_scanning = false; /* see the top of the file */
	mouse_defaults(&kbc->kbc_mouse);

	r = vm_register_pio(vm, &(struct io_region){.io_name = "i8042 data",
						    .io_base = PORT_DATA,
						    .io_len = 1,
						    .io_read = data_port_read,
						    .io_write = data_port_write,
						    .io_opaque = kbc});
	if (r < 0) {
		errno = -r;
		log_warn("i8042: cannot register port 0x%x", PORT_DATA);
		i8042_free(kbc);
		return NULL;
	}
	r = vm_register_pio(vm, &(struct io_region){.io_name = "i8042 command",
						    .io_base = PORT_COMMAND,
						    .io_len = 1,
						    .io_read = command_port_read,
						    .io_write = command_port_write,
						    .io_opaque = kbc});
	if (r < 0) {
		/* Port 0x60 stays registered (there is no unregister), so the state must
		 * outlive this failure: it is left allocated on purpose. */
		errno = -r;
		log_warn("i8042: cannot register port 0x%x", PORT_COMMAND);
		return NULL;
	}
	return kbc;
}

void i8042_free(struct i8042 *kbc)
{
	if (!kbc)
		return;
	pthread_mutex_destroy(&kbc->kbc_lock);
	free(kbc);
}
