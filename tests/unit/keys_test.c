/* Unit tests for hv/keys: QEMU sendkey combinations and US-layout characters to Linux
 * keycodes, and the errors the control socket turns into replies. */
#include <errno.h>
#include <linux/input-event-codes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hv/keys.h"

#define MAX_KEYS 8

static void want_combo(const char *spec, const unsigned *want, int n)
{
	unsigned codes[MAX_KEYS];
	int r = keys_parse_combo(spec, codes, MAX_KEYS);

	if (r != n)
		fail_msg("'%s': got %d keys, wanted %d", spec, r, n);
	for (int i = 0; i < n; i++)
		if (codes[i] != want[i])
			fail_msg("'%s': key %d is %u, wanted %u", spec, i, codes[i], want[i]);
}

#define COMBO(spec, ...)                                                                           \
	do {                                                                                       \
		const unsigned want_[] = {__VA_ARGS__};                                            \
		want_combo(spec, want_, (int)(sizeof(want_) / sizeof(want_[0])));                  \
	} while (0)

static void test_single_keys(void **state)
{
	(void)state;
	COMBO("a", KEY_A);
	COMBO("z", KEY_Z);
	COMBO("0", KEY_0);
	COMBO("9", KEY_9);
	COMBO("esc", KEY_ESC);
	COMBO("ret", KEY_ENTER);
	COMBO("spc", KEY_SPACE);
	COMBO("tab", KEY_TAB);
	COMBO("backspace", KEY_BACKSPACE);
	COMBO("f1", KEY_F1);
	COMBO("f10", KEY_F10);
	COMBO("f11", KEY_F11);
	COMBO("f12", KEY_F12);
	COMBO("kp_1", KEY_KP1);
	COMBO("kp_0", KEY_KP0);
	COMBO("kp_enter", KEY_KPENTER);
	COMBO("kp_divide", KEY_KPSLASH);
	COMBO("kp_multiply", KEY_KPASTERISK);
	COMBO("kp_subtract", KEY_KPMINUS);
	COMBO("kp_add", KEY_KPPLUS);
	COMBO("kp_decimal", KEY_KPDOT);
	COMBO("up", KEY_UP);
	COMBO("down", KEY_DOWN);
	COMBO("left", KEY_LEFT);
	COMBO("right", KEY_RIGHT);
	COMBO("pgup", KEY_PAGEUP);
	COMBO("pgdn", KEY_PAGEDOWN);
	COMBO("home", KEY_HOME);
	COMBO("end", KEY_END);
	COMBO("insert", KEY_INSERT);
	COMBO("delete", KEY_DELETE);
	COMBO("print", KEY_SYSRQ);
	COMBO("sysrq", KEY_SYSRQ);
	COMBO("pause", KEY_PAUSE);
	COMBO("scroll_lock", KEY_SCROLLLOCK);
	COMBO("num_lock", KEY_NUMLOCK);
	COMBO("caps_lock", KEY_CAPSLOCK);
	COMBO("meta_l", KEY_LEFTMETA);
	COMBO("meta_r", KEY_RIGHTMETA);
	COMBO("menu", KEY_COMPOSE);
	COMBO("alt", KEY_LEFTALT);
	COMBO("alt_r", KEY_RIGHTALT);
	COMBO("ctrl", KEY_LEFTCTRL);
	COMBO("ctrl_r", KEY_RIGHTCTRL);
	COMBO("shift", KEY_LEFTSHIFT);
	COMBO("shift_r", KEY_RIGHTSHIFT);
	COMBO("minus", KEY_MINUS);
	COMBO("equal", KEY_EQUAL);
	COMBO("bracket_left", KEY_LEFTBRACE);
	COMBO("bracket_right", KEY_RIGHTBRACE);
	COMBO("semicolon", KEY_SEMICOLON);
	COMBO("apostrophe", KEY_APOSTROPHE);
	COMBO("grave_accent", KEY_GRAVE);
	COMBO("backslash", KEY_BACKSLASH);
	COMBO("comma", KEY_COMMA);
	COMBO("dot", KEY_DOT);
	COMBO("slash", KEY_SLASH);
	COMBO("less", KEY_102ND);
	COMBO("asterisk", KEY_KPASTERISK);
	COMBO("audiomute", KEY_MUTE);
	COMBO("power", KEY_POWER);
}

static void test_combinations(void **state)
{
	(void)state;
	COMBO("shift-a", KEY_LEFTSHIFT, KEY_A);
	COMBO("ctrl-alt-delete", KEY_LEFTCTRL, KEY_LEFTALT, KEY_DELETE);
	COMBO("ctrl-alt-f2", KEY_LEFTCTRL, KEY_LEFTALT, KEY_F2);
	COMBO("alt-sysrq-b", KEY_LEFTALT, KEY_SYSRQ, KEY_B);
	COMBO("meta_l-r", KEY_LEFTMETA, KEY_R);
	COMBO("shift_r-ctrl_r-kp_5", KEY_RIGHTSHIFT, KEY_RIGHTCTRL, KEY_KP5);
	/* Names are matched without regard to case. */
	COMBO("Ctrl-Alt-Delete", KEY_LEFTCTRL, KEY_LEFTALT, KEY_DELETE);
	COMBO("SHIFT-A", KEY_LEFTSHIFT, KEY_A);
}

static void test_combo_errors(void **state)
{
	unsigned codes[MAX_KEYS];

	(void)state;
	memset(codes, 0xAA, sizeof(codes));
	assert_int_equal(keys_parse_combo("", codes, MAX_KEYS), -EINVAL);
	assert_int_equal(keys_parse_combo(NULL, codes, MAX_KEYS), -EINVAL);
	assert_int_equal(keys_parse_combo("-", codes, MAX_KEYS), -EINVAL);
	assert_int_equal(keys_parse_combo("ctrl-", codes, MAX_KEYS), -EINVAL);
	assert_int_equal(keys_parse_combo("-a", codes, MAX_KEYS), -EINVAL);
	assert_int_equal(keys_parse_combo("ctrl--a", codes, MAX_KEYS), -EINVAL);
	assert_int_equal(keys_parse_combo("nosuchkey", codes, MAX_KEYS), -EINVAL);
	assert_int_equal(keys_parse_combo("shift-nosuchkey", codes, MAX_KEYS), -EINVAL);
	assert_int_equal(keys_parse_combo("enter", codes, MAX_KEYS), -EINVAL); /* it's "ret" */
	assert_int_equal(keys_parse_combo("aa", codes, MAX_KEYS), -EINVAL);
	assert_int_equal(keys_parse_combo("a ", codes, MAX_KEYS), -EINVAL);
	assert_int_equal(keys_parse_combo("shif", codes, MAX_KEYS), -EINVAL);
	assert_int_equal(keys_parse_combo("shiftt", codes, MAX_KEYS), -EINVAL);
	assert_int_equal(keys_parse_combo("a\n", codes, MAX_KEYS), -EINVAL);

	/* Too many keys: -E2BIG, and nothing written past max. */
	assert_int_equal(keys_parse_combo("ctrl-alt-delete", codes, 2), -E2BIG);
	assert_int_equal(codes[2], 0xAAAAAAAAu);
	assert_int_equal(keys_parse_combo("a", codes, 0), -E2BIG);
	assert_int_equal(keys_parse_combo("ctrl-alt-delete", codes, 3), 3);
	/* An unknown name is reported as such even in a long list. */
	assert_int_equal(keys_parse_combo("a-b-c-d-e-f-g-h-i-nosuchkey", codes, MAX_KEYS), -EINVAL);
	assert_int_equal(keys_parse_combo("a-b-c-d-e-f-g-h-i", codes, MAX_KEYS), -E2BIG);
}

static void test_long_spec(void **state)
{
	static char spec[100000];
	unsigned codes[MAX_KEYS];

	(void)state;
	for (size_t i = 0; i + 2 < sizeof(spec); i += 2)
		memcpy(spec + i, "a-", 2);
	spec[sizeof(spec) - 2] = 'a';
	spec[sizeof(spec) - 1] = '\0';
	assert_int_equal(keys_parse_combo(spec, codes, MAX_KEYS), -E2BIG);
	memset(spec, 'a', sizeof(spec) - 1);
	assert_int_equal(keys_parse_combo(spec, codes, MAX_KEYS), -EINVAL);
}

static void want_char(char c, const unsigned *want, int n)
{
	unsigned codes[4];
	int r = keys_for_char(c, codes, 4);

	if (r != n)
		fail_msg("'%c' (0x%02x): got %d keys, wanted %d", c, (unsigned char)c, r, n);
	for (int i = 0; i < n; i++)
		if (codes[i] != want[i])
			fail_msg("'%c': key %d is %u, wanted %u", c, i, codes[i], want[i]);
}

#define CHAR(c, ...)                                                                               \
	do {                                                                                       \
		const unsigned want_[] = {__VA_ARGS__};                                            \
		want_char(c, want_, (int)(sizeof(want_) / sizeof(want_[0])));                      \
	} while (0)

static void test_characters(void **state)
{
	(void)state;
	CHAR('a', KEY_A);
	CHAR('A', KEY_LEFTSHIFT, KEY_A);
	CHAR('q', KEY_Q);
	CHAR('Z', KEY_LEFTSHIFT, KEY_Z);
	CHAR('1', KEY_1);
	CHAR('0', KEY_0);
	CHAR('!', KEY_LEFTSHIFT, KEY_1);
	CHAR('@', KEY_LEFTSHIFT, KEY_2);
	CHAR(')', KEY_LEFTSHIFT, KEY_0);
	CHAR('\n', KEY_ENTER);
	CHAR('\t', KEY_TAB);
	CHAR(' ', KEY_SPACE);
	CHAR('-', KEY_MINUS);
	CHAR('_', KEY_LEFTSHIFT, KEY_MINUS);
	CHAR('=', KEY_EQUAL);
	CHAR('+', KEY_LEFTSHIFT, KEY_EQUAL);
	CHAR('[', KEY_LEFTBRACE);
	CHAR('}', KEY_LEFTSHIFT, KEY_RIGHTBRACE);
	CHAR('\\', KEY_BACKSLASH);
	CHAR('|', KEY_LEFTSHIFT, KEY_BACKSLASH);
	CHAR(';', KEY_SEMICOLON);
	CHAR(':', KEY_LEFTSHIFT, KEY_SEMICOLON);
	CHAR('\'', KEY_APOSTROPHE);
	CHAR('"', KEY_LEFTSHIFT, KEY_APOSTROPHE);
	CHAR('`', KEY_GRAVE);
	CHAR('~', KEY_LEFTSHIFT, KEY_GRAVE);
	CHAR(',', KEY_COMMA);
	CHAR('<', KEY_LEFTSHIFT, KEY_COMMA);
	CHAR('.', KEY_DOT);
	CHAR('>', KEY_LEFTSHIFT, KEY_DOT);
	CHAR('/', KEY_SLASH);
	CHAR('?', KEY_LEFTSHIFT, KEY_SLASH);
}

/* Every printable ASCII character is typable; nothing else is. */
static void test_character_coverage(void **state)
{
	unsigned codes[4];

	(void)state;
	for (int c = -128; c < 128; c++) {
		int r = keys_for_char((char)c, codes, 4);
		bool typable = (c >= 0x20 && c < 0x7F) || c == '\n' || c == '\t';

		if (typable && (r < 1 || r > 2))
			fail_msg("0x%02x should be typable, got %d", c & 0xFF, r);
		if (!typable && r != -EINVAL)
			fail_msg("0x%02x should not be typable, got %d", c & 0xFF, r);
		if (r == 2)
			assert_int_equal(codes[0], KEY_LEFTSHIFT);
	}
	assert_int_equal(keys_for_char('\r', codes, 4), -EINVAL);
	assert_int_equal(keys_for_char('\0', codes, 4), -EINVAL);
	assert_int_equal(keys_for_char(0x7F, codes, 4), -EINVAL);
	assert_int_equal(keys_for_char('A', codes, 1), -E2BIG);
	assert_int_equal(keys_for_char('a', codes, 1), 1);
	assert_int_equal(keys_for_char('a', codes, 0), -E2BIG);
}

/* Typing a character and naming its key agree: 'a' is "a", 'A' is "shift-a". */
static void test_char_matches_names(void **state)
{
	static const struct {
		char c;
		const char *combo;
	} pairs[] = {
	    {'a', "a"},
	    {'A', "shift-a"},
	    {'5', "5"},
	    {'%', "shift-5"},
	    {'\n', "ret"},
	    {'\t', "tab"},
	    {' ', "spc"},
	    {'-', "minus"},
	    {'/', "slash"},
	    {'?', "shift-slash"},
	    {'.', "dot"},
	    {',', "comma"},
	    {'`', "grave_accent"},
	    {'\'', "apostrophe"},
	    {'[', "bracket_left"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		unsigned a[4], b[4];
		int na = keys_for_char(pairs[i].c, a, 4);
		int nb = keys_parse_combo(pairs[i].combo, b, 4);

		assert_int_equal(na, nb);
		assert_memory_equal(a, b, (size_t)na * sizeof(a[0]));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_single_keys),	       cmocka_unit_test(test_combinations),
	    cmocka_unit_test(test_combo_errors),       cmocka_unit_test(test_long_spec),
	    cmocka_unit_test(test_characters),	       cmocka_unit_test(test_character_coverage),
	    cmocka_unit_test(test_char_matches_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
