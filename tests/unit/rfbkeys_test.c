/* Unit tests for display/rfbkeys: KeyEvent sequences in, the sequences the server gets
 * out. Keysym-only typing gets Shift around the keys that need it; a client that sends
 * its own Shift gets its events through unchanged; a key typed unshifted while Shift is
 * held has Shift released around it; QEMU extended key events only bring the server's
 * Shift back to the client's. */
#include <rfb/keysym.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "display/rfbkeys.h"

#define DN(k)                                                                                      \
	{                                                                                          \
		k, true                                                                            \
	}
#define UP(k)                                                                                      \
	{                                                                                          \
		k, false                                                                           \
	}
#define END                                                                                        \
	{                                                                                          \
		0, false                                                                           \
	}

/* Runs the events in (up to END) through k and checks the output is want (up to END). */
static void run(struct rfb_keys *k, const struct rfb_key_event *in,
		const struct rfb_key_event *want)
{
	struct rfb_key_event got[64];
	size_t n = 0, w = 0;

	for (size_t i = 0; in[i].ke_keysym; i++) {
		size_t c = rfb_keys_event(k, in[i].ke_keysym, in[i].ke_down, got + n);

		assert_true(c <= RFB_KEYS_OUT_MAX);
		n += c;
		assert_true(n + RFB_KEYS_OUT_MAX <= sizeof(got) / sizeof(got[0]));
	}
	while (want[w].ke_keysym)
		w++;
	for (size_t i = 0; i < n || i < w; i++) {
		if (i < n && i < w && got[i].ke_keysym == want[i].ke_keysym &&
		    got[i].ke_down == want[i].ke_down)
			continue;
		fail_msg("event %zu: got %s 0x%x, want %s 0x%x (%zu events, %zu wanted)", i,
			 i < n ? (got[i].ke_down ? "down" : "up") : "nothing",
			 i < n ? got[i].ke_keysym : 0,
			 i < w ? (want[i].ke_down ? "down" : "up") : "nothing",
			 i < w ? want[i].ke_keysym : 0, n, w);
	}
}

/* The line, keysym by keysym without Shift (a phone's keyboard): every shifted
 * symbol and capital gets Shift_L around it, the rest passes as it came. */
static void test_keysym_only_typing_gets_shift(void **state)
{
	static const struct rfb_key_event in[] = {
	    DN('o'), UP('o'), DN('H'), UP('H'), DN('-'),       UP('-'),	      DN('$'),
	    UP('$'), DN('('), UP('('), DN('6'), UP('6'),       DN('*'),	      UP('*'),
	    DN('7'), UP('7'), DN(')'), UP(')'), DN(XK_Return), UP(XK_Return), END};
	static const struct rfb_key_event want[] = {DN('o'),
						    UP('o'),
						    DN(XK_Shift_L),
						    DN('H'),
						    UP('H'),
						    UP(XK_Shift_L),
						    DN('-'),
						    UP('-'),
						    DN(XK_Shift_L),
						    DN('$'),
						    UP('$'),
						    UP(XK_Shift_L),
						    DN(XK_Shift_L),
						    DN('('),
						    UP('('),
						    UP(XK_Shift_L),
						    DN('6'),
						    UP('6'),
						    DN(XK_Shift_L),
						    DN('*'),
						    UP('*'),
						    UP(XK_Shift_L),
						    DN('7'),
						    UP('7'),
						    DN(XK_Shift_L),
						    DN(')'),
						    UP(')'),
						    UP(XK_Shift_L),
						    DN(XK_Return),
						    UP(XK_Return),
						    END};
	struct rfb_keys k;

	(void)state;
	rfb_keys_init(&k);
	run(&k, in, want);
	assert_int_equal(k.rk_server, 0);
	assert_int_equal(k.rk_synthesised, 10); /* 5 presses, 5 releases */
}

/* A desktop keyboard sends Shift itself: nothing is added or taken away. */
static void test_real_shift_passes_unchanged(void **state)
{
	static const struct rfb_key_event in[] = {DN(XK_Shift_L),
						  DN('$'),
						  UP('$'),
						  DN('('),
						  UP('('),
						  UP(XK_Shift_L),
						  DN('a'),
						  UP('a'),
						  DN(XK_Shift_R),
						  DN('A'),
						  UP(XK_Shift_R),
						  UP('A'), /* Shift let go before the key */
						  END};
	struct rfb_keys k;

	(void)state;
	rfb_keys_init(&k);
	run(&k, in, in);
	assert_int_equal(k.rk_client, 0);
	assert_int_equal(k.rk_server, 0);
	assert_int_equal(k.rk_synthesised, 0);
}

/* Shift held (an on-screen keyboard's Shift, a stuck modifier) while a keysym typed
 * without it comes: Shift is released for the key and pressed again after it. */
static void test_unshifted_key_under_shift(void **state)
{
	static const struct rfb_key_event in[] = {DN(XK_Shift_L), DN('4'), UP('4'),
						  DN('$'),	  UP('$'), DN('4'),
						  UP(XK_Shift_L), UP('4'), END};
	static const struct rfb_key_event want[] = {
	    DN(XK_Shift_L), UP(XK_Shift_L),
	    DN('4'),	    UP('4'),
	    DN(XK_Shift_L), DN('$'),
	    UP('$'),	    UP(XK_Shift_L),
	    DN('4'), /* Shift's release: the server holds none already */
	    UP('4'),	    END};
	struct rfb_keys k;

	(void)state;
	rfb_keys_init(&k);
	run(&k, in, want);
	assert_int_equal(k.rk_server, 0);
}

/* Both Shift keys held: both are released around an unshifted key. */
static void test_both_shifts_released_and_restored(void **state)
{
	static const struct rfb_key_event in[] = {DN(XK_Shift_L), DN(XK_Shift_R), DN('1'), UP('1'),
						  END};
	static const struct rfb_key_event want[] = {DN(XK_Shift_L), DN(XK_Shift_R), UP(XK_Shift_L),
						    UP(XK_Shift_R), DN('1'),	    UP('1'),
						    DN(XK_Shift_L), DN(XK_Shift_R), END};
	struct rfb_keys k;

	(void)state;
	rfb_keys_init(&k);
	run(&k, in, want);
	assert_int_equal(k.rk_server, RFB_KEYS_SHIFT_L | RFB_KEYS_SHIFT_R);
}

/* Keys pressed over each other: each goes down at its own level; the server is back to
 * the client's Shift after each release. Keys that Shift does not change (Return,
 * Control) go down with the client's Shift, the added one released first. */
static void test_rollover_and_other_keys(void **state)
{
	static const struct rfb_key_event in[] = {
	    DN('$'),	   DN('a'),	     UP('$'), UP('a'),		DN('%'),
	    DN(XK_Return), UP(XK_Return),    UP('%'), DN(XK_Control_L), DN('C'),
	    UP('C'),	   UP(XK_Control_L), END};
	static const struct rfb_key_event want[] = {DN(XK_Shift_L),
						    DN('$'),
						    UP(XK_Shift_L),
						    DN('a'),
						    UP('$'),
						    UP('a'),
						    DN(XK_Shift_L),
						    DN('%'),
						    UP(XK_Shift_L),
						    DN(XK_Return),
						    UP(XK_Return),
						    UP('%'),
						    DN(XK_Control_L),
						    DN(XK_Shift_L),
						    DN('C'),
						    UP('C'),
						    UP(XK_Shift_L),
						    UP(XK_Control_L),
						    END};
	struct rfb_keys k;

	(void)state;
	rfb_keys_init(&k);
	run(&k, in, want);
	assert_int_equal(k.rk_server, 0);
}

/* Keysyms the US layout has no key for pass as they came, at no level. */
static void test_unknown_keysyms_pass(void **state)
{
	static const struct rfb_key_event in[] = {DN(0xE9), UP(0xE9), DN(0x20AC), UP(0x20AC), END};
	struct rfb_keys k;

	(void)state;
	rfb_keys_init(&k);
	run(&k, in, in);
}

/* QEMU extended key events pass unchanged (the caller sends them); Shift's own count as
 * held by client and server, and before another key goes down a Shift added for a
 * keysym-only key is taken back. */
static void test_extended_key_events(void **state)
{
	struct rfb_key_event out[RFB_KEYS_OUT_MAX];
	struct rfb_keys k;
	size_t before;

	(void)state;
	rfb_keys_init(&k);
	assert_int_equal(rfb_keys_extended(&k, XK_Shift_L, 0x2a, true, out, &before), 0);
	assert_int_equal(k.rk_client, RFB_KEYS_SHIFT_L);
	assert_int_equal(k.rk_server, RFB_KEYS_SHIFT_L);
	assert_int_equal(rfb_keys_extended(&k, '$', 0x05, true, out, &before), 0);
	assert_int_equal(rfb_keys_extended(&k, '$', 0x05, false, out, &before), 0);
	assert_int_equal(rfb_keys_extended(&k, XK_Shift_L, 0x2a, false, out, &before), 0);
	assert_int_equal(k.rk_server, 0);
	/* a keysym-only '$' held (Shift added), then an extended 'a' goes down */
	assert_int_equal(rfb_keys_event(&k, '$', true, out), 2);
	assert_int_equal(k.rk_server, RFB_KEYS_SHIFT_L);
	assert_int_equal(rfb_keys_extended(&k, 'a', 0x1e, true, out, &before), 1);
	assert_int_equal(before, 1);
	assert_int_equal(out[0].ke_keysym, XK_Shift_L);
	assert_false(out[0].ke_down);
	assert_int_equal(k.rk_server, 0);
	/* releases need nothing: the scan code names the key */
	assert_int_equal(rfb_keys_extended(&k, 'a', 0x1e, false, out, &before), 0);
	/* the right Shift by its scan code, whatever keysym came with it */
	assert_int_equal(rfb_keys_extended(&k, 0, 0x36, true, out, &before), 0);
	assert_int_equal(k.rk_client, RFB_KEYS_SHIFT_R);
}

/* Playwright's keyboard.type('$H'): key '$' on the 4 key and 'H' on the H key, no Shift
 * held. Each goes down with Shift pressed before it and released after its release; a
 * letter as Caps Lock (as pressed by the client) leaves it to Shift; a keysym on another
 * key than its US one (a layout of the client's own) passes as it is. */
static void test_extended_keys_without_their_shift(void **state)
{
	struct rfb_key_event out[RFB_KEYS_OUT_MAX];
	struct rfb_keys k;
	size_t before;

	(void)state;
	rfb_keys_init(&k);
	assert_int_equal(rfb_keys_extended(&k, '$', 0x05, true, out, &before), 1);
	assert_int_equal(before, 1);
	assert_int_equal(out[0].ke_keysym, XK_Shift_L);
	assert_true(out[0].ke_down);
	assert_int_equal(rfb_keys_extended(&k, '$', 0x05, false, out, &before), 1);
	assert_int_equal(before, 0);
	assert_int_equal(out[0].ke_keysym, XK_Shift_L);
	assert_false(out[0].ke_down);
	assert_int_equal(k.rk_server, 0);
	assert_int_equal(rfb_keys_extended(&k, 'H', 0x23, true, out, &before), 1);
	assert_int_equal(rfb_keys_extended(&k, 'H', 0x23, false, out, &before), 1);
	/* plain keys, and '$' typed on another key (a French keyboard's), pass alone */
	assert_int_equal(rfb_keys_extended(&k, '4', 0x05, true, out, &before), 0);
	assert_int_equal(rfb_keys_extended(&k, '4', 0x05, false, out, &before), 0);
	assert_int_equal(rfb_keys_extended(&k, '$', 0x1b, true, out, &before), 0);
	assert_int_equal(rfb_keys_extended(&k, '$', 0x1b, false, out, &before), 0);
	/* Caps Lock on: 'H' is the guest's own doing, 'h' needs Shift there; '$' still
	 * needs Shift */
	assert_int_equal(rfb_keys_extended(&k, XK_Caps_Lock, 0x3a, true, out, &before), 0);
	assert_int_equal(rfb_keys_extended(&k, XK_Caps_Lock, 0x3a, false, out, &before), 0);
	assert_int_equal(rfb_keys_extended(&k, 'H', 0x23, true, out, &before), 0);
	assert_int_equal(rfb_keys_extended(&k, 'H', 0x23, false, out, &before), 0);
	assert_int_equal(rfb_keys_extended(&k, 'h', 0x23, true, out, &before), 1);
	assert_int_equal(out[0].ke_keysym, XK_Shift_L);
	assert_int_equal(rfb_keys_extended(&k, 'h', 0x23, false, out, &before), 1);
	assert_int_equal(rfb_keys_extended(&k, '$', 0x05, true, out, &before), 1);
	assert_int_equal(rfb_keys_extended(&k, '$', 0x05, false, out, &before), 1);
	assert_int_equal(k.rk_synthesised, 8);
}

/* Keysyms alone while the client's Caps Lock is on (as its presses of it tell): the
 * guest capitalises letters itself, so 'Q' goes without Shift and 'q' with it; symbols
 * are not touched by Caps Lock. Off again, letters are as before. */
static void test_keysyms_under_caps_lock(void **state)
{
	struct rfb_key_event out[RFB_KEYS_OUT_MAX];
	struct rfb_keys k;

	(void)state;
	rfb_keys_init(&k);
	assert_int_equal(rfb_keys_event(&k, XK_Caps_Lock, true, out), 1);
	assert_int_equal(rfb_keys_event(&k, XK_Caps_Lock, false, out), 1);
	assert_int_equal(rfb_keys_event(&k, 'Q', true, out), 1);
	assert_int_equal(out[0].ke_keysym, 'Q');
	assert_int_equal(rfb_keys_event(&k, 'Q', false, out), 1);
	assert_int_equal(rfb_keys_event(&k, 'q', true, out), 2);
	assert_int_equal(out[0].ke_keysym, XK_Shift_L);
	assert_true(out[0].ke_down);
	assert_int_equal(out[1].ke_keysym, 'q');
	assert_int_equal(rfb_keys_event(&k, 'q', false, out), 2);
	assert_int_equal(out[1].ke_keysym, XK_Shift_L);
	assert_false(out[1].ke_down);
	assert_int_equal(rfb_keys_event(&k, '$', true, out), 2);
	assert_int_equal(rfb_keys_event(&k, '$', false, out), 2);
	assert_int_equal(rfb_keys_event(&k, XK_Caps_Lock, true, out), 1);
	assert_int_equal(rfb_keys_event(&k, XK_Caps_Lock, false, out), 1);
	assert_int_equal(rfb_keys_event(&k, 'Q', true, out), 2);
	assert_int_equal(rfb_keys_event(&k, 'Q', false, out), 2);
	assert_int_equal(k.rk_server, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keysym_only_typing_gets_shift),
	    cmocka_unit_test(test_real_shift_passes_unchanged),
	    cmocka_unit_test(test_unshifted_key_under_shift),
	    cmocka_unit_test(test_both_shifts_released_and_restored),
	    cmocka_unit_test(test_rollover_and_other_keys),
	    cmocka_unit_test(test_unknown_keysyms_pass),
	    cmocka_unit_test(test_extended_key_events),
	    cmocka_unit_test(test_extended_keys_without_their_shift),
	    cmocka_unit_test(test_keysyms_under_caps_lock),
	};

	return cmocka_run_group_tests_name("rfbkeys", tests, NULL, NULL);
}
