/* Shift synthesis: two sets of Shift keys, what the client holds and what the server was
 * told, and before each key goes down the server's set is moved to what the key needs
 * (display/keymap.c's US layout says which level it is typed at). After the key's
 * release it goes back to the client's, so a Shift added for '$' is released with '$'
 * and one released for '1' is pressed again. */
#include "display/rfbkeys.h"

#include <rfb/keysym.h>
#include <string.h>

#include "display/keymap.h"

/* PC scan codes of the Shift keys, as QEMU's extended key events carry them. */
#define SCANCODE_SHIFT_L   0x2a
#define SCANCODE_SHIFT_R   0x36
#define SCANCODE_CAPS_LOCK 0x3a
/* Below this, PC scan codes (set 1) and Linux keycodes number the keys alike. */
#define SCANCODE_SAME_AS_KEYCODE 0x59

static const struct {
	unsigned bit;
	uint32_t keysym;
} shift_keys[] = {{RFB_KEYS_SHIFT_L, XK_Shift_L}, {RFB_KEYS_SHIFT_R, XK_Shift_R}};

void rfb_keys_init(struct rfb_keys *k)
{
	memset(k, 0, sizeof(*k));
}

static unsigned shift_bit(uint32_t keysym)
{
	for (size_t i = 0; i < sizeof(shift_keys) / sizeof(shift_keys[0]); i++)
		if (shift_keys[i].keysym == keysym)
			return shift_keys[i].bit;
	return 0;
}

/* The events that make the server hold the Shift keys of want: releases first. */
static size_t move_server(struct rfb_keys *k, unsigned want, struct rfb_key_event *out)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(shift_keys) / sizeof(shift_keys[0]); i++)
		if ((k->rk_server & shift_keys[i].bit) && !(want & shift_keys[i].bit))
			out[n++] = (struct rfb_key_event){shift_keys[i].keysym, false};
	for (size_t i = 0; i < sizeof(shift_keys) / sizeof(shift_keys[0]); i++)
		if (!(k->rk_server & shift_keys[i].bit) && (want & shift_keys[i].bit))
			out[n++] = (struct rfb_key_event){shift_keys[i].keysym, true};
	k->rk_server = want;
	return n;
}

static bool is_letter(uint32_t keysym)
{
	return (keysym >= 'A' && keysym <= 'Z') || (keysym >= 'a' && keysym <= 'z');
}

/* The level keysym is typed at on a US keyboard, Caps Lock (as the client's presses of
 * it tell) counted: with it on, a capital is the plain key and a small letter the
 * shifted one. */
static enum keymap_level level_with_caps_lock(const struct rfb_keys *k, uint32_t keysym)
{
	enum keymap_level level = keymap_keysym_level(keysym);

	if (!k->rk_caps_lock || !is_letter(keysym))
		return level;
	return level == KEYMAP_LEVEL_SHIFT   ? KEYMAP_LEVEL_PLAIN
	       : level == KEYMAP_LEVEL_PLAIN ? KEYMAP_LEVEL_SHIFT
					     : level;
}

size_t rfb_keys_event(struct rfb_keys *k, uint32_t keysym, bool down, struct rfb_key_event *out)
{
	unsigned bit = shift_bit(keysym), want;
	size_t n;

	if (keysym == XK_Caps_Lock && down)
		k->rk_caps_lock = !k->rk_caps_lock;
	if (bit) {
		/* The client's own Shift: the server follows it, unless it already holds
		 * (or, for a key typed unshifted, already released) that key. */
		if (down)
			k->rk_client |= bit;
		else
			k->rk_client &= ~bit;
		return move_server(k, k->rk_client, out);
	}
	if (!down) {
		out[0] = (struct rfb_key_event){keysym, false};
		n = move_server(k, k->rk_client, out + 1);
		k->rk_synthesised += n;
		return n + 1;
	}
	switch (level_with_caps_lock(k, keysym)) {
	case KEYMAP_LEVEL_SHIFT:
		want = k->rk_server ? k->rk_server : k->rk_client ? k->rk_client : RFB_KEYS_SHIFT_L;
		break;
	case KEYMAP_LEVEL_PLAIN: want = 0; break;
	default: want = k->rk_client; break;
	}
	n = move_server(k, want, out);
	k->rk_synthesised += n;
	out[n++] = (struct rfb_key_event){keysym, true};
	return n;
}

/* Whether an extended key event is keysym typed on its US key without the Shift it
 * needs there: the key's level is left to Shift, which the client does not hold. */
static bool shift_missing(const struct rfb_keys *k, uint32_t keysym, uint32_t scancode)
{
	return !k->rk_client && level_with_caps_lock(k, keysym) == KEYMAP_LEVEL_SHIFT &&
	       scancode < SCANCODE_SAME_AS_KEYCODE && keymap_keysym_to_keycode(keysym) == scancode;
}

size_t rfb_keys_extended(struct rfb_keys *k, uint32_t keysym, uint32_t scancode, bool down,
			 struct rfb_key_event *out, size_t *before)
{
	unsigned bit = scancode == SCANCODE_SHIFT_L   ? RFB_KEYS_SHIFT_L
		       : scancode == SCANCODE_SHIFT_R ? RFB_KEYS_SHIFT_R
						      : 0;
	size_t n;

	*before = 0;
	if (scancode == SCANCODE_CAPS_LOCK && down)
		k->rk_caps_lock = !k->rk_caps_lock;
	if (bit) {
		if (down) {
			k->rk_client |= bit;
			k->rk_server |= bit;
		} else {
			k->rk_client &= ~bit;
			k->rk_server &= ~bit;
		}
		return 0;
	}
	if (!down) {
		/* after the release: the server holds what the client holds again */
		n = move_server(k, k->rk_client, out);
		k->rk_synthesised += n;
		return n;
	}
	n = move_server(k, shift_missing(k, keysym, scancode) ? RFB_KEYS_SHIFT_L : k->rk_client,
			out);
	k->rk_synthesised += n;
	*before = n;
	return n;
}
