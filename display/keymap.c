/* Keysym -> Linux keycode tables for a US layout: printable ASCII (both levels of each
 * key), then the function, editing, keypad and modifier keysyms of X11's keysymdef.h
 * and the few XF86 media keysyms viewers send. Nothing here knows about viewers or
 * guests; display/vnc_input.c decides what to do with a key. */
#include "display/keymap.h"

#include <linux/input-event-codes.h>
#include <rfb/keysym.h>
#include <stddef.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Printable ASCII 0x20..0x7E: the key that types it, shifted or not. */
static const unsigned short ascii_keys[0x7F - 0x20] = {
    [' ' - 0x20] = KEY_SPACE,	   ['!' - 0x20] = KEY_1,	   ['"' - 0x20] = KEY_APOSTROPHE,
    ['#' - 0x20] = KEY_3,	   ['$' - 0x20] = KEY_4,	   ['%' - 0x20] = KEY_5,
    ['&' - 0x20] = KEY_7,	   ['\'' - 0x20] = KEY_APOSTROPHE, ['(' - 0x20] = KEY_9,
    [')' - 0x20] = KEY_0,	   ['*' - 0x20] = KEY_8,	   ['+' - 0x20] = KEY_EQUAL,
    [',' - 0x20] = KEY_COMMA,	   ['-' - 0x20] = KEY_MINUS,	   ['.' - 0x20] = KEY_DOT,
    ['/' - 0x20] = KEY_SLASH,	   ['0' - 0x20] = KEY_0,	   ['1' - 0x20] = KEY_1,
    ['2' - 0x20] = KEY_2,	   ['3' - 0x20] = KEY_3,	   ['4' - 0x20] = KEY_4,
    ['5' - 0x20] = KEY_5,	   ['6' - 0x20] = KEY_6,	   ['7' - 0x20] = KEY_7,
    ['8' - 0x20] = KEY_8,	   ['9' - 0x20] = KEY_9,	   [':' - 0x20] = KEY_SEMICOLON,
    [';' - 0x20] = KEY_SEMICOLON,  ['<' - 0x20] = KEY_COMMA,	   ['=' - 0x20] = KEY_EQUAL,
    ['>' - 0x20] = KEY_DOT,	   ['?' - 0x20] = KEY_SLASH,	   ['@' - 0x20] = KEY_2,
    ['A' - 0x20] = KEY_A,	   ['B' - 0x20] = KEY_B,	   ['C' - 0x20] = KEY_C,
    ['D' - 0x20] = KEY_D,	   ['E' - 0x20] = KEY_E,	   ['F' - 0x20] = KEY_F,
    ['G' - 0x20] = KEY_G,	   ['H' - 0x20] = KEY_H,	   ['I' - 0x20] = KEY_I,
    ['J' - 0x20] = KEY_J,	   ['K' - 0x20] = KEY_K,	   ['L' - 0x20] = KEY_L,
    ['M' - 0x20] = KEY_M,	   ['N' - 0x20] = KEY_N,	   ['O' - 0x20] = KEY_O,
    ['P' - 0x20] = KEY_P,	   ['Q' - 0x20] = KEY_Q,	   ['R' - 0x20] = KEY_R,
    ['S' - 0x20] = KEY_S,	   ['T' - 0x20] = KEY_T,	   ['U' - 0x20] = KEY_U,
    ['V' - 0x20] = KEY_V,	   ['W' - 0x20] = KEY_W,	   ['X' - 0x20] = KEY_X,
    ['Y' - 0x20] = KEY_Y,	   ['Z' - 0x20] = KEY_Z,	   ['[' - 0x20] = KEY_LEFTBRACE,
    ['\\' - 0x20] = KEY_BACKSLASH, [']' - 0x20] = KEY_RIGHTBRACE,  ['^' - 0x20] = KEY_6,
    ['_' - 0x20] = KEY_MINUS,	   ['`' - 0x20] = KEY_GRAVE,	   ['a' - 0x20] = KEY_A,
    ['b' - 0x20] = KEY_B,	   ['c' - 0x20] = KEY_C,	   ['d' - 0x20] = KEY_D,
    ['e' - 0x20] = KEY_E,	   ['f' - 0x20] = KEY_F,	   ['g' - 0x20] = KEY_G,
    ['h' - 0x20] = KEY_H,	   ['i' - 0x20] = KEY_I,	   ['j' - 0x20] = KEY_J,
    ['k' - 0x20] = KEY_K,	   ['l' - 0x20] = KEY_L,	   ['m' - 0x20] = KEY_M,
    ['n' - 0x20] = KEY_N,	   ['o' - 0x20] = KEY_O,	   ['p' - 0x20] = KEY_P,
    ['q' - 0x20] = KEY_Q,	   ['r' - 0x20] = KEY_R,	   ['s' - 0x20] = KEY_S,
    ['t' - 0x20] = KEY_T,	   ['u' - 0x20] = KEY_U,	   ['v' - 0x20] = KEY_V,
    ['w' - 0x20] = KEY_W,	   ['x' - 0x20] = KEY_X,	   ['y' - 0x20] = KEY_Y,
    ['z' - 0x20] = KEY_Z,	   ['{' - 0x20] = KEY_LEFTBRACE,   ['|' - 0x20] = KEY_BACKSLASH,
    ['}' - 0x20] = KEY_RIGHTBRACE, ['~' - 0x20] = KEY_GRAVE,
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
		return ascii_keys[keysym - 0x20];
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
