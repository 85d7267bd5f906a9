/* Keysym -> Linux keycode tables for a US layout: printable ASCII (both levels of each
 * key), then the function, editing, keypad and modifier keysyms of X11's keysymdef.h
 * and the few XF86 media keysyms viewers send. Nothing here knows about viewers or
 * guests; display/vnc_input.c decides what to do with a key. */
#include "display/keymap.h"

#include <linux/input-event-codes.h>
#include <rfb/keysym.h>
#include <stdbool.h>
#include <stddef.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Printable ASCII 0x20..0x7E: the key that types it, and whether with Shift. */
struct ascii_key {
	unsigned short ak_code;
	bool ak_shift;
};

#define PLAIN(ch, key)	 [(ch)-0x20] = {key, false}
#define SHIFTED(ch, key) [(ch)-0x20] = {key, true}

static const struct ascii_key ascii_keys[0x7F - 0x20] = {
    PLAIN(' ', KEY_SPACE),
    SHIFTED('!', KEY_1),
    SHIFTED('"', KEY_APOSTROPHE),
    SHIFTED('#', KEY_3),
    SHIFTED('$', KEY_4),
    SHIFTED('%', KEY_5),
    SHIFTED('&', KEY_7),
    PLAIN('\'', KEY_APOSTROPHE),
    SHIFTED('(', KEY_9),
    SHIFTED(')', KEY_0),
    SHIFTED('*', KEY_8),
    SHIFTED('+', KEY_EQUAL),
    PLAIN(',', KEY_COMMA),
    PLAIN('-', KEY_MINUS),
    PLAIN('.', KEY_DOT),
    PLAIN('/', KEY_SLASH),
    PLAIN('0', KEY_0),
    PLAIN('1', KEY_1),
    PLAIN('2', KEY_2),
    PLAIN('3', KEY_3),
    PLAIN('4', KEY_4),
    PLAIN('5', KEY_5),
    PLAIN('6', KEY_6),
    PLAIN('7', KEY_7),
    PLAIN('8', KEY_8),
    PLAIN('9', KEY_9),
    SHIFTED(':', KEY_SEMICOLON),
    PLAIN(';', KEY_SEMICOLON),
    SHIFTED('<', KEY_COMMA),
    PLAIN('=', KEY_EQUAL),
    SHIFTED('>', KEY_DOT),
    SHIFTED('?', KEY_SLASH),
    SHIFTED('@', KEY_2),
    SHIFTED('A', KEY_A),
    SHIFTED('B', KEY_B),
    SHIFTED('C', KEY_C),
    SHIFTED('D', KEY_D),
    SHIFTED('E', KEY_E),
    SHIFTED('F', KEY_F),
    SHIFTED('G', KEY_G),
    SHIFTED('H', KEY_H),
    SHIFTED('I', KEY_I),
    SHIFTED('J', KEY_J),
    SHIFTED('K', KEY_K),
    SHIFTED('L', KEY_L),
    SHIFTED('M', KEY_M),
    SHIFTED('N', KEY_N),
    SHIFTED('O', KEY_O),
    SHIFTED('P', KEY_P),
    SHIFTED('Q', KEY_Q),
    SHIFTED('R', KEY_R),
    SHIFTED('S', KEY_S),
    SHIFTED('T', KEY_T),
    SHIFTED('U', KEY_U),
    SHIFTED('V', KEY_V),
    SHIFTED('W', KEY_W),
    SHIFTED('X', KEY_X),
    SHIFTED('Y', KEY_Y),
    SHIFTED('Z', KEY_Z),
    PLAIN('[', KEY_LEFTBRACE),
    PLAIN('\\', KEY_BACKSLASH),
    PLAIN(']', KEY_RIGHTBRACE),
    SHIFTED('^', KEY_6),
    SHIFTED('_', KEY_MINUS),
    PLAIN('`', KEY_GRAVE),
    PLAIN('a', KEY_A),
    PLAIN('b', KEY_B),
    PLAIN('c', KEY_C),
    PLAIN('d', KEY_D),
    PLAIN('e', KEY_E),
    PLAIN('f', KEY_F),
    PLAIN('g', KEY_G),
    PLAIN('h', KEY_H),
    PLAIN('i', KEY_I),
    PLAIN('j', KEY_J),
    PLAIN('k', KEY_K),
    PLAIN('l', KEY_L),
    PLAIN('m', KEY_M),
    PLAIN('n', KEY_N),
    PLAIN('o', KEY_O),
    PLAIN('p', KEY_P),
    PLAIN('q', KEY_Q),
    PLAIN('r', KEY_R),
    PLAIN('s', KEY_S),
    PLAIN('t', KEY_T),
    PLAIN('u', KEY_U),
    PLAIN('v', KEY_V),
    PLAIN('w', KEY_W),
    PLAIN('x', KEY_X),
    PLAIN('y', KEY_Y),
    PLAIN('z', KEY_Z),
    SHIFTED('{', KEY_LEFTBRACE),
    SHIFTED('|', KEY_BACKSLASH),
    SHIFTED('}', KEY_RIGHTBRACE),
    SHIFTED('~', KEY_GRAVE),
};

struct keysym_key {
	uint32_t kk_keysym;
	unsigned short kk_code;
};

/* Everything else, in keysym order. */
static const struct keysym_key other_keys[] = {
    {XK_ISO_Level3_Shift, KEY_RIGHTALT}, /* AltGr */
    {XK_ISO_Left_Tab, KEY_TAB},		 /* Shift+Tab */
    {XK_BackSpace, KEY_BACKSPACE},
    {XK_Tab, KEY_TAB},
    {XK_Linefeed, KEY_ENTER},
    {XK_Return, KEY_ENTER},
    {XK_Pause, KEY_PAUSE},
    {XK_Scroll_Lock, KEY_SCROLLLOCK},
    {XK_Sys_Req, KEY_SYSRQ},
    {XK_Escape, KEY_ESC},
    {XK_Multi_key, KEY_COMPOSE},
    {XK_Home, KEY_HOME},
    {XK_Left, KEY_LEFT},
    {XK_Up, KEY_UP},
    {XK_Right, KEY_RIGHT},
    {XK_Down, KEY_DOWN},
    {XK_Prior, KEY_PAGEUP},
    {XK_Next, KEY_PAGEDOWN},
    {XK_End, KEY_END},
    {XK_Print, KEY_SYSRQ}, /* the PC Print Screen key, as hv/keys.c has it */
    {XK_Insert, KEY_INSERT},
    {XK_Menu, KEY_COMPOSE}, /* the context-menu key */
    {XK_Break, KEY_PAUSE},
    {XK_Mode_switch, KEY_RIGHTALT},
    {XK_Num_Lock, KEY_NUMLOCK},
    {XK_KP_Space, KEY_SPACE},
    {XK_KP_Tab, KEY_TAB},
    {XK_KP_Enter, KEY_KPENTER},
    {XK_KP_F1, KEY_NUMLOCK}, /* the keypad's first row on keyboards without F keys */
    {XK_KP_F2, KEY_KPSLASH},
    {XK_KP_F3, KEY_KPASTERISK},
    {XK_KP_F4, KEY_KPMINUS},
    {XK_KP_Home, KEY_KP7},
    {XK_KP_Left, KEY_KP4},
    {XK_KP_Up, KEY_KP8},
    {XK_KP_Right, KEY_KP6},
    {XK_KP_Down, KEY_KP2},
    {XK_KP_Prior, KEY_KP9},
    {XK_KP_Next, KEY_KP3},
    {XK_KP_End, KEY_KP1},
    {XK_KP_Begin, KEY_KP5},
    {XK_KP_Insert, KEY_KP0},
    {XK_KP_Delete, KEY_KPDOT},
    {XK_KP_Multiply, KEY_KPASTERISK},
    {XK_KP_Add, KEY_KPPLUS},
    {XK_KP_Separator, KEY_KPCOMMA},
    {XK_KP_Subtract, KEY_KPMINUS},
    {XK_KP_Decimal, KEY_KPDOT},
    {XK_KP_Divide, KEY_KPSLASH},
    {XK_KP_0, KEY_KP0},
    {XK_KP_1, KEY_KP1},
    {XK_KP_2, KEY_KP2},
    {XK_KP_3, KEY_KP3},
    {XK_KP_4, KEY_KP4},
    {XK_KP_5, KEY_KP5},
    {XK_KP_6, KEY_KP6},
    {XK_KP_7, KEY_KP7},
    {XK_KP_8, KEY_KP8},
    {XK_KP_9, KEY_KP9},
    {XK_KP_Equal, KEY_KPEQUAL},
    {XK_F1, KEY_F1},
    {XK_F2, KEY_F2},
    {XK_F3, KEY_F3},
    {XK_F4, KEY_F4},
    {XK_F5, KEY_F5},
    {XK_F6, KEY_F6},
    {XK_F7, KEY_F7},
    {XK_F8, KEY_F8},
    {XK_F9, KEY_F9},
    {XK_F10, KEY_F10},
    {XK_F11, KEY_F11},
    {XK_F12, KEY_F12},
    {XK_F13, KEY_F13},
    {XK_F14, KEY_F14},
    {XK_F15, KEY_F15},
    {XK_F16, KEY_F16},
    {XK_F17, KEY_F17},
    {XK_F18, KEY_F18},
    {XK_F19, KEY_F19},
    {XK_F20, KEY_F20},
    {XK_F21, KEY_F21},
    {XK_F22, KEY_F22},
    {XK_F23, KEY_F23},
    {XK_F24, KEY_F24},
    {XK_Shift_L, KEY_LEFTSHIFT},
    {XK_Shift_R, KEY_RIGHTSHIFT},
    {XK_Control_L, KEY_LEFTCTRL},
    {XK_Control_R, KEY_RIGHTCTRL},
    {XK_Caps_Lock, KEY_CAPSLOCK},
    {XK_Shift_Lock, KEY_CAPSLOCK},
    {XK_Meta_L, KEY_LEFTMETA},
    {XK_Meta_R, KEY_RIGHTMETA},
    {XK_Alt_L, KEY_LEFTALT},
    {XK_Alt_R, KEY_RIGHTALT},
    {XK_Super_L, KEY_LEFTMETA},
    {XK_Super_R, KEY_RIGHTMETA},
    {XK_Hyper_L, KEY_LEFTMETA},
    {XK_Hyper_R, KEY_RIGHTMETA},
    {XK_Delete, KEY_DELETE},
    /* XF86 keysyms (X11's XF86keysym.h) of the media keys a PC keyboard has. */
    {0x1008FF11, KEY_VOLUMEDOWN},
    {0x1008FF12, KEY_MUTE},
    {0x1008FF13, KEY_VOLUMEUP},
    {0x1008FF14, KEY_PLAYPAUSE},
    {0x1008FF15, KEY_STOPCD},
    {0x1008FF16, KEY_PREVIOUSSONG},
    {0x1008FF17, KEY_NEXTSONG},
    {0x1008FF18, KEY_HOMEPAGE},
    {0x1008FF19, KEY_MAIL},
    {0x1008FF1B, KEY_SEARCH},
    {0x1008FF1D, KEY_CALC},
    {0x1008FF26, KEY_BACK},
    {0x1008FF27, KEY_FORWARD},
    {0x1008FF30, KEY_BOOKMARKS},
    {0x1008FF33, KEY_COMPUTER},
};

unsigned keymap_keysym_to_keycode(uint32_t keysym)
{
	size_t lo = 0, hi = ARRAY_SIZE(other_keys);

	if (keysym >= 0x20 && keysym < 0x7F)
		return ascii_keys[keysym - 0x20].ak_code;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (other_keys[mid].kk_keysym == keysym)
			return other_keys[mid].kk_code;
		if (other_keys[mid].kk_keysym < keysym)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

enum keymap_level keymap_keysym_level(uint32_t keysym)
{
	if (keysym >= 0x20 && keysym < 0x7F)
		return ascii_keys[keysym - 0x20].ak_shift ? KEYMAP_LEVEL_SHIFT : KEYMAP_LEVEL_PLAIN;
	if (keysym == XK_ISO_Left_Tab)
		return KEYMAP_LEVEL_SHIFT;
	return KEYMAP_LEVEL_ANY;
}

/* E0-prefixed set-1 scan codes (the low byte) and their keys; the rest of set 1 up to
 * F12 (0x58) numbers keys as Linux does. */
static const struct {
	uint8_t ek_scancode;
	uint16_t ek_code;
} extended_keys[] = {
    {0x1c, KEY_KPENTER},  {0x1d, KEY_RIGHTCTRL}, {0x35, KEY_KPSLASH}, {0x37, KEY_SYSRQ},
    {0x38, KEY_RIGHTALT}, {0x46, KEY_PAUSE},	 {0x47, KEY_HOME},    {0x48, KEY_UP},
    {0x49, KEY_PAGEUP},	  {0x4b, KEY_LEFT},	 {0x4d, KEY_RIGHT},   {0x4f, KEY_END},
    {0x50, KEY_DOWN},	  {0x51, KEY_PAGEDOWN},	 {0x52, KEY_INSERT},  {0x53, KEY_DELETE},
    {0x5b, KEY_LEFTMETA}, {0x5c, KEY_RIGHTMETA}, {0x5d, KEY_COMPOSE}, {0x5e, KEY_POWER},
    {0x5f, KEY_SLEEP},	  {0x63, KEY_WAKEUP},	 {0x20, KEY_MUTE},    {0x2e, KEY_VOLUMEDOWN},
    {0x30, KEY_VOLUMEUP},
};

unsigned keymap_qnum_to_keycode(uint32_t qnum)
{
	if (qnum == 0 || qnum > 0xff)
		return 0;
	if (qnum < 0x80) {
		switch (qnum) {
		case 0x70: return KEY_KATAKANAHIRAGANA;
		case 0x73: return KEY_RO;
		case 0x79: return KEY_HENKAN;
		case 0x7b: return KEY_MUHENKAN;
		case 0x7d: return KEY_YEN;
		default: return qnum <= 0x58 && qnum != 0x54 && qnum != 0x55 ? qnum : 0;
		}
	}
	for (size_t i = 0; i < sizeof(extended_keys) / sizeof(extended_keys[0]); i++)
		if (extended_keys[i].ek_scancode == (qnum & 0x7f))
			return extended_keys[i].ek_code;
	return 0;
}
