/* Unit tests for display/keymap: every printable ASCII keysym has its key and the
 * Shift level a US keyboard types it at, shifted symbols map to their base key, the
 * control socket's "type" (hv/keys.c) uses the same table, and the function, editing,
 * keypad and modifier keysyms land on their keys at no level; keysyms with no key on a
 * US keyboard map to 0. */
#include <linux/input-event-codes.h>
#include <rfb/keysym.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "display/keymap.h"
#include "hv/keys.h"

static void test_ascii_keys_and_levels(void **state)
{
	/* A US keyboard's Shift level, written out here rather than read from the table. */
	static const char shifted[] = "~!@#$%^&*()_+{}|:\"<>?ABCDEFGHIJKLMNOPQRSTUVWXYZ";

	(void)state;
	for (uint32_t c = 0x20; c < 0x7F; c++) {
		enum keymap_level want =
		    strchr(shifted, (int)c) ? KEYMAP_LEVEL_SHIFT : KEYMAP_LEVEL_PLAIN;

		if (keymap_keysym_to_keycode(c) == 0)
			fail_msg("keysym '%c' has no key", (char)c);
		if (keymap_keysym_level(c) != want)
			fail_msg("keysym '%c' is at level %d, not %d", (char)c,
				 keymap_keysym_level(c), want);
	}
	assert_int_equal(keymap_keysym_to_keycode('A'), KEY_A);
	assert_int_equal(keymap_keysym_to_keycode('!'), KEY_1);
	assert_int_equal(keymap_keysym_to_keycode('~'), KEY_GRAVE);
	assert_int_equal(keymap_keysym_to_keycode('"'), KEY_APOSTROPHE);
	assert_int_equal(keymap_keysym_to_keycode('$'), KEY_4);
	assert_int_equal(keymap_keysym_to_keycode('('), KEY_9);
	assert_int_equal(keymap_keysym_to_keycode('*'), KEY_8);
}

/* Keys whose meaning Shift does not change, and keysyms without a key, need nothing. */
static void test_levels_of_other_keysyms(void **state)
{
	static const uint32_t any[] = {
	    XK_Return,	  XK_Tab,   XK_BackSpace,   XK_Escape,	XK_F1,
	    XK_Left,	  XK_KP_4,  XK_KP_Multiply, XK_Shift_L, XK_Shift_R,
	    XK_Control_L, XK_Alt_L, 0xE9,	    0x20AC,	0,
	    0xFFFFFFFF};

	(void)state;
	for (size_t i = 0; i < sizeof(any) / sizeof(any[0]); i++)
		if (keymap_keysym_level(any[i]) != KEYMAP_LEVEL_ANY)
			fail_msg("keysym 0x%x is at level %d", any[i], keymap_keysym_level(any[i]));
	assert_int_equal(keymap_keysym_level(XK_ISO_Left_Tab), KEYMAP_LEVEL_SHIFT);
}

/* The control socket's "type" (hv/keys.c) types with the same table. */
static void test_control_socket_types_with_it(void **state)
{
	unsigned codes[4];

	(void)state;
	assert_int_equal(keys_for_char('$', codes, 4), 2);
	assert_int_equal(codes[0], KEY_LEFTSHIFT);
	assert_int_equal(codes[1], KEY_4);
	assert_int_equal(keys_for_char('4', codes, 4), 1);
	assert_int_equal(codes[0], KEY_4);
	assert_int_equal(keys_for_char('\n', codes, 4), 1);
	assert_int_equal(codes[0], KEY_ENTER);
}

static void test_special_keys(void **state)
{
	static const struct {
		uint32_t keysym;
		unsigned code;
	} cases[] = {
	    {XK_Return, KEY_ENTER},
	    {XK_BackSpace, KEY_BACKSPACE},
	    {XK_Tab, KEY_TAB},
	    {XK_ISO_Left_Tab, KEY_TAB},
	    {XK_Escape, KEY_ESC},
	    {XK_Delete, KEY_DELETE},
	    {XK_Insert, KEY_INSERT},
	    {XK_Home, KEY_HOME},
	    {XK_End, KEY_END},
	    {XK_Prior, KEY_PAGEUP},
	    {XK_Next, KEY_PAGEDOWN},
	    {XK_Left, KEY_LEFT},
	    {XK_Up, KEY_UP},
	    {XK_Right, KEY_RIGHT},
	    {XK_Down, KEY_DOWN},
	    {XK_Print, KEY_SYSRQ},
	    {XK_Sys_Req, KEY_SYSRQ},
	    {XK_Pause, KEY_PAUSE},
	    {XK_Break, KEY_PAUSE},
	    {XK_Scroll_Lock, KEY_SCROLLLOCK},
	    {XK_Caps_Lock, KEY_CAPSLOCK},
	    {XK_Num_Lock, KEY_NUMLOCK},
	    {XK_Shift_L, KEY_LEFTSHIFT},
	    {XK_Shift_R, KEY_RIGHTSHIFT},
	    {XK_Control_L, KEY_LEFTCTRL},
	    {XK_Control_R, KEY_RIGHTCTRL},
	    {XK_Alt_L, KEY_LEFTALT},
	    {XK_Alt_R, KEY_RIGHTALT},
	    {XK_Meta_L, KEY_LEFTMETA},
	    {XK_Meta_R, KEY_RIGHTMETA},
	    {XK_Super_L, KEY_LEFTMETA},
	    {XK_Super_R, KEY_RIGHTMETA},
	    {XK_Menu, KEY_COMPOSE},
	    {XK_ISO_Level3_Shift, KEY_RIGHTALT},
	    {XK_KP_0, KEY_KP0},
	    {XK_KP_9, KEY_KP9},
	    {XK_KP_Insert, KEY_KP0},
	    {XK_KP_End, KEY_KP1},
	    {XK_KP_Down, KEY_KP2},
	    {XK_KP_Next, KEY_KP3},
	    {XK_KP_Left, KEY_KP4},
	    {XK_KP_Begin, KEY_KP5},
	    {XK_KP_Right, KEY_KP6},
	    {XK_KP_Home, KEY_KP7},
	    {XK_KP_Up, KEY_KP8},
	    {XK_KP_Prior, KEY_KP9},
	    {XK_KP_Delete, KEY_KPDOT},
	    {XK_KP_Decimal, KEY_KPDOT},
	    {XK_KP_Enter, KEY_KPENTER},
	    {XK_KP_Add, KEY_KPPLUS},
	    {XK_KP_Subtract, KEY_KPMINUS},
	    {XK_KP_Multiply, KEY_KPASTERISK},
	    {XK_KP_Divide, KEY_KPSLASH},
	    {XK_KP_Equal, KEY_KPEQUAL},
	    {0x1008FF12, KEY_MUTE},
	    {0x1008FF13, KEY_VOLUMEUP},
	};
	static const unsigned f_keys[12] = {KEY_F1, KEY_F2, KEY_F3, KEY_F4,  KEY_F5,  KEY_F6,
					    KEY_F7, KEY_F8, KEY_F9, KEY_F10, KEY_F11, KEY_F12};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (keymap_keysym_to_keycode(cases[i].keysym) != cases[i].code)
			fail_msg("keysym 0x%x maps to %u, want %u", cases[i].keysym,
				 keymap_keysym_to_keycode(cases[i].keysym), cases[i].code);
	for (unsigned i = 0; i < 12; i++)
		assert_int_equal(keymap_keysym_to_keycode(XK_F1 + i), f_keys[i]);
}

/* QEMU's key numbers: set 1 up to F12 as Linux numbers keys, E0 keys as 0x80 | byte. */
static void test_scan_codes(void **state)
{
	(void)state;
	assert_int_equal(keymap_qnum_to_keycode(0x01), KEY_ESC);
	assert_int_equal(keymap_qnum_to_keycode(0x1e), KEY_A);
	assert_int_equal(keymap_qnum_to_keycode(0x56), KEY_102ND);
	assert_int_equal(keymap_qnum_to_keycode(0x58), KEY_F12);
	assert_int_equal(keymap_qnum_to_keycode(0x73), KEY_RO);
	assert_int_equal(keymap_qnum_to_keycode(0x9d), KEY_RIGHTCTRL);
	assert_int_equal(keymap_qnum_to_keycode(0xb8), KEY_RIGHTALT); /* AltGr */
	assert_int_equal(keymap_qnum_to_keycode(0xc8), KEY_UP);
	assert_int_equal(keymap_qnum_to_keycode(0xdb), KEY_LEFTMETA);
	assert_int_equal(keymap_qnum_to_keycode(0x00), 0);
	assert_int_equal(keymap_qnum_to_keycode(0x54), 0);
	assert_int_equal(keymap_qnum_to_keycode(0xff), 0);
	assert_int_equal(keymap_qnum_to_keycode(0x1e1e), 0);
}

static void test_no_key(void **state)
{
	static const uint32_t none[] = {0,	    0x1F,	   0x7F,   0xA0,   0xE9 /* é */,
					0x20AC,	    XK_dead_grave, 0xFF00, 0xFFFE, 0x1008FF00,
					0xFFFFFFFF, 0x01000000};

	(void)state;
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		if (keymap_keysym_to_keycode(none[i]) != 0)
			fail_msg("keysym 0x%x maps to %u", none[i],
				 keymap_keysym_to_keycode(none[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ascii_keys_and_levels),
	    cmocka_unit_test(test_levels_of_other_keysyms),
	    cmocka_unit_test(test_control_socket_types_with_it),
	    cmocka_unit_test(test_special_keys),
	    cmocka_unit_test(test_scan_codes),
	    cmocka_unit_test(test_no_key),
	};
	return cmocka_run_group_tests_name("keymap", tests, NULL, NULL);
}
