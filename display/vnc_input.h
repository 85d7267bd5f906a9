/* What viewers' RFB input events do to the guest: keys through the keysym map to the
 * keyboard, the pointer to the absolute tablet when the guest drives one or else to the
 * PS/2 mouse as clamped, re-homed relative motion, cut text bounded and dropped. No
 * sockets and no libvncserver here, so it can be unit-tested and fuzzed alone; the
 * devices are reached through struct vnc_input_sink. Not thread-safe: one caller (the
 * display thread). */
#ifndef VDI_DISPLAY_VNC_INPUT_H
#define VDI_DISPLAY_VNC_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "display/rfbkeys.h"

/* Longest client cut text accepted; longer is dropped and logged. */
#define VNC_INPUT_CUT_TEXT_MAX (64u * 1024u)
/* Distinct unknown keysyms remembered (each logged once); beyond, no more logging. */
#define VNC_INPUT_UNKNOWN_KEYSYMS 64
#define VNC_INPUT_KEYCODES	  768 /* KEY_CNT */

/* RFB pointer button mask bits. */
#define VNC_INPUT_BUTTON_LEFT	    0x01
#define VNC_INPUT_BUTTON_MIDDLE	    0x02
#define VNC_INPUT_BUTTON_RIGHT	    0x04
#define VNC_INPUT_BUTTON_WHEEL_UP   0x08
#define VNC_INPUT_BUTTON_WHEEL_DOWN 0x10

/* The guest's input devices. Every callback but is_tablet_ready may be called often;
 * tablet ones may be NULL when the machine has no tablet. */
struct vnc_input_sink {
	void *is_arg;
	/* A Linux keycode (KEY_*) went down or up. */
	void (*is_key)(void *arg, unsigned keycode, bool down);
	/* Whether the absolute tablet is usable now (its guest driver is up). */
	bool (*is_tablet_ready)(void *arg);
	/* Absolute position in framebuffer pixels (within the screen), buttons held as in
	 * RFB (1 left, 2 middle, 4 right), wheel clicks (+1 up, -1 down, 0 none). */
	void (*is_tablet)(void *arg, unsigned x, unsigned y, unsigned buttons, int wheel);
	/* Relative PS/2 motion: dx right, dy down, dz wheel (+ up), buttons in PS/2 order
	 * (1 left, 2 right, 4 middle). */
	void (*is_mouse)(void *arg, int dx, int dy, int dz, unsigned buttons);
};

/* Shared by every viewer of one guest. Fill with vnc_input_init(). */
struct vnc_input {
	struct vnc_input_sink in_sink;
	unsigned in_width, in_height;
	/* Pointer: where the guest's pointer is believed to be, and how it was driven. */
	unsigned in_buttons; /* RFB buttons 1-3 held after the last event */
	bool in_tablet;	     /* the last event went to the tablet */
	bool in_mouse_homed; /* the PS/2 pointer position is known */
	unsigned in_mouse_x, in_mouse_y;
	uint32_t in_unknown[VNC_INPUT_UNKNOWN_KEYSYMS];
	size_t in_unknown_count;
	uint64_t in_cut_text_bytes; /* accepted so far, for the log */
};

/* Per viewer: whether its input counts, the keys it holds (released when it goes), and
 * its Shift keys and the guest's (display/rfbkeys.h). */
struct vnc_input_viewer {
	bool iv_view_only;
	uint8_t iv_held[VNC_INPUT_KEYCODES / 8];
	struct rfb_keys iv_keys;
};

void vnc_input_init(struct vnc_input *in, const struct vnc_input_sink *sink, unsigned width,
		    unsigned height);

/* A KeyEvent: keysym pressed (down) or released. A keysym that needs Shift on a US
 * keyboard goes down with Shift held, one typed without it with Shift released, whatever
 * the viewer holds (display/rfbkeys.h: for viewers that send keysyms alone, such as
 * phones' on-screen keyboards). Unknown keysyms are logged once each and dropped; a
 * view-only viewer's keys are ignored. */
void vnc_input_key(struct vnc_input *in, struct vnc_input_viewer *v, bool down, uint32_t keysym);
/* A QEMU extended key event: the key of PC scan code qnum (keymap_qnum_to_keycode())
 * pressed or released as it is, without Shift synthesis, so the guest's keyboard layout
 * gives it its meaning (AltGr, dead keys and non-US keys work); keysym only when the
 * key number has no key. A view-only viewer's keys are ignored. */
void vnc_input_scancode(struct vnc_input *in, struct vnc_input_viewer *v, bool down,
			uint32_t keysym, uint32_t qnum);
/* A PointerEvent at (x, y) in framebuffer pixels (clamped to the screen) with RFB button
 * mask buttons (bits 3 and 4: a wheel click up or down). */
void vnc_input_pointer(struct vnc_input *in, struct vnc_input_viewer *v, int x, int y,
		       unsigned buttons);
/* A ClientCutText of len bytes. There is no guest clipboard yet: the text is counted
 * and dropped; over VNC_INPUT_CUT_TEXT_MAX or from a view-only viewer it is refused.
 * Returns 0 or -EMSGSIZE / -EPERM. */
int vnc_input_cut_text(struct vnc_input *in, struct vnc_input_viewer *v, const char *text,
		       size_t len);
/* The viewer went away: releases every key it still holds. */
void vnc_input_viewer_release(struct vnc_input *in, struct vnc_input_viewer *v);
/* The pointer device may have changed (the tablet's driver came or went): the next PS/2
 * move re-homes the pointer first. */
void vnc_input_pointer_reset(struct vnc_input *in);

#endif
