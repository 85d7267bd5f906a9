/* Shift synthesis for VNC servers that map a keysym to its key without the modifier the
 * keysym needs (QEMU's): a client that sends '$' without holding Shift (a phone's
 * on-screen keyboard, automation) gets '4' typed there. Given each KeyEvent of the
 * client, it says which KeyEvents to send on instead, so that the server holds Shift
 * exactly when the keysym needs it on a US keyboard (display/keymap.h) and otherwise
 * what the client holds. Pure: no I/O, no RFB framing. Used by the relay for QEMU
 * desktops (display/rfbfilter.c parses the stream and calls it) and by vdi-hv's VNC
 * server for its viewers (display/vnc_input.c). */
#ifndef VDI_DISPLAY_RFBKEYS_H
#define VDI_DISPLAY_RFBKEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most KeyEvents one client event becomes: two Shift changes and the key. */
#define RFB_KEYS_OUT_MAX 3

/* Shift keys, as bits of rk_client and rk_server. */
#define RFB_KEYS_SHIFT_L 0x1u
#define RFB_KEYS_SHIFT_R 0x2u

struct rfb_keys {
	unsigned rk_client;	 /* Shift keys the client holds, as it said */
	unsigned rk_server;	 /* Shift keys the server holds, as sent to it */
	bool rk_caps_lock;	 /* Caps Lock on, as far as the client's presses of it tell */
	uint64_t rk_synthesised; /* Shift presses and releases added, for the log */
};

struct rfb_key_event {
	uint32_t ke_keysym;
	bool ke_down;
};

void rfb_keys_init(struct rfb_keys *k);
/* A KeyEvent from the client. Writes the KeyEvents to send on in its place to out (room
 * for RFB_KEYS_OUT_MAX) and returns their count (0 to 3). A key that needs Shift goes
 * down with Shift held (a Shift press added before it when the server holds none); one
 * typed without Shift goes down with Shift released (and the client's Shift pressed
 * again after the key's release); any other key goes down with the client's Shift
 * state. A Shift key of the client's is passed on only when it changes what the server
 * holds. While Caps Lock is on, as far as the client's presses of it tell, a capital
 * letter counts as typed without Shift and a small one as typed with it (the guest
 * capitalises). After every key release the server holds what the client holds again. */
size_t rfb_keys_event(struct rfb_keys *k, uint32_t keysym, bool down, struct rfb_key_event *out);
/* A QEMU extended key event (keysym and PC scan code), which the server takes by its
 * scan code and the caller passes on unchanged, between the KeyEvents this writes to
 * out (room for RFB_KEYS_OUT_MAX; returns their count, the first *before of them to go
 * before it, the rest after). A key goes down with the client's Shift state, except
 * one whose scan code is the US key of a keysym typed with Shift while the client holds
 * no Shift (Playwright's keyboard.type('$'): key '$' on the 4 key, no Shift; for a
 * letter, Caps Lock counted as the client's presses of it tell): it gets Shift
 * pressed before it and released after its release. A Shift key's own event counts as
 * held by both. */
size_t rfb_keys_extended(struct rfb_keys *k, uint32_t keysym, uint32_t scancode, bool down,
			 struct rfb_key_event *out, size_t *before);

#endif
