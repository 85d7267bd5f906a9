/* Viewer input to guest devices. Keys: keysym -> keycode (display/keymap.c), with Shift
 * pressed or released around keysyms whose level needs it (display/rfbkeys.c), and the
 * keys each viewer holds remembered so a viewer that goes away leaves no key stuck.
 * Pointer: absolute to the tablet when its driver is up. Otherwise relative PS/2
 * motion from where the guest's pointer is believed to be: on entering that mode the
 * pointer is pushed far into the top-left corner (the guest clamps it there), and every
 * time the viewer's pointer touches a screen edge the motion overshoots past that edge,
 * so any drift (acceleration, lost packets) is corrected as soon as the user reaches an
 * edge. Buttons 4 and 5 are wheel clicks in both modes. */
#include "display/vnc_input.h"

#include <errno.h>
#include <string.h>

#include "display/keymap.h"
#include "display/rfbkeys.h"
#include "lib/log.h"

/* Relative motion per i8042_mouse_event() call stays well within what one call turns
 * into packets without overflow (8 packets of 255). */
#define MOUSE_STEP 1000
/* How far past an edge the re-homing and edge moves push. */
#define MOUSE_OVERSHOOT 64

void vnc_input_init(struct vnc_input *in, const struct vnc_input_sink *sink, unsigned width,
		    unsigned height)
{
	memset(in, 0, sizeof(*in));
	in->in_sink = *sink;
	in->in_width = width ? width : 1;
	in->in_height = height ? height : 1;
}

static bool held(const struct vnc_input_viewer *v, unsigned code)
{
	return v->iv_held[code / 8] & (1u << (code % 8));
}

static void set_held(struct vnc_input_viewer *v, unsigned code, bool down)
{
	if (down)
		v->iv_held[code / 8] |= (uint8_t)(1u << (code % 8));
	else
		v->iv_held[code / 8] &= (uint8_t) ~(1u << (code % 8));
}

static void unknown_keysym(struct vnc_input *in, uint32_t keysym)
{
	for (size_t i = 0; i < in->in_unknown_count; i++)
		if (in->in_unknown[i] == keysym)
			return;
	if (in->in_unknown_count == VNC_INPUT_UNKNOWN_KEYSYMS)
		return;
	in->in_unknown[in->in_unknown_count++] = keysym;
	log_warnx("vnc: keysym 0x%x has no key on a US keyboard, dropped%s", keysym,
		  in->in_unknown_count == VNC_INPUT_UNKNOWN_KEYSYMS
		      ? " (further unknown keysyms are not logged)"
		      : "");
}

void vnc_input_key(struct vnc_input *in, struct vnc_input_viewer *v, bool down, uint32_t keysym)
{
	struct rfb_key_event ev[RFB_KEYS_OUT_MAX];
	unsigned code;
	size_t n;

	if (v->iv_view_only)
		return;
	code = keymap_keysym_to_keycode(keysym);
	if (code == 0 || code >= VNC_INPUT_KEYCODES) {
		unknown_keysym(in, keysym);
		return;
	}
	/* The key with the Shift changes it needs; every keysym rfbkeys gives has a key. A
	 * release of a key this viewer does not hold (pressed before it connected, or twice)
	 * still goes out: the guest ignores a stray release, not a stuck key. */
	n = rfb_keys_event(&v->iv_keys, keysym, down, ev);
	for (size_t i = 0; i < n; i++) {
		code = keymap_keysym_to_keycode(ev[i].ke_keysym);
		if (code == 0 || code >= VNC_INPUT_KEYCODES)
			continue;
		set_held(v, code, ev[i].ke_down);
		in->in_sink.is_key(in->in_sink.is_arg, code, ev[i].ke_down);
	}
}

void vnc_input_scancode(struct vnc_input *in, struct vnc_input_viewer *v, bool down,
			uint32_t keysym, uint32_t qnum)
{
	unsigned code;

	if (v->iv_view_only)
		return;
	code = keymap_qnum_to_keycode(qnum);
	if (code == 0 || code >= VNC_INPUT_KEYCODES) {
		vnc_input_key(in, v, down, keysym); /* a key number we do not know */
		return;
	}
	set_held(v, code, down);
	in->in_sink.is_key(in->in_sink.is_arg, code, down);
}

void vnc_input_viewer_release(struct vnc_input *in, struct vnc_input_viewer *v)
{
	for (unsigned code = 0; code < VNC_INPUT_KEYCODES; code++)
		if (held(v, code)) {
			set_held(v, code, false);
			in->in_sink.is_key(in->in_sink.is_arg, code, false);
		}
	rfb_keys_init(&v->iv_keys);
}

void vnc_input_pointer_reset(struct vnc_input *in)
{
	in->in_mouse_homed = false;
}

static unsigned clamp_coord(int v, unsigned size)
{
	if (v < 0)
		return 0;
	return (unsigned)v >= size ? size - 1 : (unsigned)v;
}

/* PS/2 button order: 1 left, 2 right, 4 middle. */
static unsigned ps2_buttons(unsigned rfb)
{
	return (rfb & VNC_INPUT_BUTTON_LEFT) | (rfb & VNC_INPUT_BUTTON_RIGHT ? 2u : 0u) |
	       (rfb & VNC_INPUT_BUTTON_MIDDLE ? 4u : 0u);
}

/* Sends a relative move of any length as steps the device takes whole. */
static void mouse_move(struct vnc_input *in, long dx, long dy, int dz, unsigned buttons)
{
	do {
		int sx = (int)(dx > MOUSE_STEP ? MOUSE_STEP : dx < -MOUSE_STEP ? -MOUSE_STEP : dx);
		int sy = (int)(dy > MOUSE_STEP ? MOUSE_STEP : dy < -MOUSE_STEP ? -MOUSE_STEP : dy);

		in->in_sink.is_mouse(in->in_sink.is_arg, sx, sy, dz, buttons);
		dx -= sx;
		dy -= sy;
		dz = 0;
	} while (dx || dy);
}

static void pointer_relative(struct vnc_input *in, unsigned x, unsigned y, unsigned buttons,
			     int wheel)
{
	unsigned ps2 = ps2_buttons(buttons);
	long dx, dy;

	if (!in->in_mouse_homed) {
		/* Into the top-left corner, whatever the guest thought. */
		mouse_move(in, -(long)in->in_width - MOUSE_OVERSHOOT,
			   -(long)in->in_height - MOUSE_OVERSHOOT, 0, ps2_buttons(in->in_buttons));
		in->in_mouse_x = in->in_mouse_y = 0;
		in->in_mouse_homed = true;
	}
	dx = (long)x - (long)in->in_mouse_x;
	dy = (long)y - (long)in->in_mouse_y;
	/* At an edge, push past it: the guest clamps, and any drift is gone. */
	if (x == 0 && dx <= 0)
		dx -= MOUSE_OVERSHOOT;
	else if (x == in->in_width - 1 && dx >= 0)
		dx += MOUSE_OVERSHOOT;
	if (y == 0 && dy <= 0)
		dy -= MOUSE_OVERSHOOT;
	else if (y == in->in_height - 1 && dy >= 0)
		dy += MOUSE_OVERSHOOT;
	/* Only the edge overshoot and no real motion or button change: nothing to send. */
	if (x == in->in_mouse_x && y == in->in_mouse_y && !wheel &&
	    (buttons & 7u) == in->in_buttons)
		return;
	mouse_move(in, dx, dy, wheel, ps2);
	in->in_mouse_x = x;
	in->in_mouse_y = y;
}

void vnc_input_pointer(struct vnc_input *in, struct vnc_input_viewer *v, int x, int y,
		       unsigned buttons)
{
	unsigned px, py, pressed = buttons & 7u;
	int wheel = 0;
	bool tablet;

	if (v->iv_view_only)
		return;
	px = clamp_coord(x, in->in_width);
	py = clamp_coord(y, in->in_height);
	/* RFB sends a wheel click as a press (and a release) of button 4 or 5. */
	if (buttons & VNC_INPUT_BUTTON_WHEEL_UP)
		wheel = 1;
	else if (buttons & VNC_INPUT_BUTTON_WHEEL_DOWN)
		wheel = -1;
	tablet = in->in_sink.is_tablet && in->in_sink.is_tablet_ready &&
		 in->in_sink.is_tablet_ready(in->in_sink.is_arg);
	if (tablet) {
		in->in_sink.is_tablet(in->in_sink.is_arg, px, py, pressed, wheel);
	} else {
		if (in->in_tablet)
			in->in_mouse_homed = false; /* the tablet's driver went away */
		pointer_relative(in, px, py, pressed, wheel);
	}
	in->in_tablet = tablet;
	in->in_buttons = pressed;
}

int vnc_input_cut_text(struct vnc_input *in, struct vnc_input_viewer *v, const char *text,
		       size_t len)
{
	(void)text;
	if (v->iv_view_only)
		return -EPERM;
	if (len > VNC_INPUT_CUT_TEXT_MAX) {
		log_warnx("vnc: client cut text of %zu bytes dropped (limit %u)", len,
			  VNC_INPUT_CUT_TEXT_MAX);
		return -EMSGSIZE;
	}
	in->in_cut_text_bytes += len;
	log_debug("vnc: client cut text of %zu bytes (no guest clipboard: not passed on)", len);
	return 0;
}
