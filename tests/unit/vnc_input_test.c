/* Unit tests for display/input: keys through the keymap with held keys released
 * when a viewer goes, view-only viewers ignored, unknown keysyms logged once;
 * the pointer on the tablet (clamped, buttons and wheel as RFB has them) and,
 * without one, as PS/2 motion that re-homes in the top-left corner, lands
 * exactly and overshoots at the edges; cut text bounded. The devices are a
 * recording fake sink. */
#include <errno.h>
#include <linux/input-event-codes.h>
#include <rfb/keysym.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "display/vnc_input.h"
#include "lib/log.h"

struct event {
	char kind; /* 'k' key, 't' tablet, 'm' mouse */
	int a, b, c, d;
};

static struct event events[256];
static size_t nevents;
static bool tablet_ready;

static void record(char kind, int a, int b, int c, int d)
{
	assert_true(nevents < sizeof(events) / sizeof(events[0]));
	events[nevents++] = (struct event){kind, a, b, c, d};
}

static void fake_key(void *arg, unsigned code, bool down)
{
	(void)arg;
	record('k', (int)code, down, 0, 0);
}

static bool fake_ready(void *arg)
{
	(void)arg;
	return tablet_ready;
}

static void fake_tablet(void *arg, unsigned x, unsigned y, unsigned buttons, int wheel)
{
	(void)arg;
	record('t', (int)x, (int)y, (int)buttons, wheel);
}

static void fake_mouse(void *arg, int dx, int dy, int dz, unsigned buttons)
{
	(void)arg;
	record('m', dx, dy, dz, (int)buttons);
}

static const struct vnc_input_sink sink = {NULL, fake_key, fake_ready, fake_tablet, fake_mouse};
static struct vnc_input in;
static int log_pipe[2];

static int setup(void **state)
{
	(void)state;
	nevents = 0;
	tablet_ready = false;
	vnc_input_init(&in, &sink, 640, 480);
	assert_int_equal(pipe(log_pipe), 0);
	log_init("input_test", LOG_LEVEL_INFO, false);
	log_set_fd(log_pipe[1]);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	log_set_fd(-1);
	close(log_pipe[0]);
	close(log_pipe[1]);
	return 0;
}

static size_t read_log(char *buf, size_t len)
{
	ssize_t n;

	close(log_pipe[1]);
	log_set_fd(-1);
	n = read(log_pipe[0], buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
	log_pipe[1] = dup(2);
	return n > 0 ? (size_t)n : 0;
}

static void assert_event(size_t i, char kind, int a, int b, int c, int d)
{
	assert_true(i < nevents);
	if (events[i].kind != kind || events[i].a != a || events[i].b != b || events[i].c != c ||
	    events[i].d != d)
		fail_msg("event %zu is %c(%d, %d, %d, %d), want %c(%d, %d, %d, %d)", i,
			 events[i].kind, events[i].a, events[i].b, events[i].c, events[i].d, kind,
			 a, b, c, d);
}

static void test_keys(void **state)
{
	struct vnc_input_viewer v = {0}, watcher = {.iv_view_only = true};
	char log[1024];

	(void)state;
	vnc_input_key(&in, &v, true, XK_Shift_L);
	vnc_input_key(&in, &v, true, '!');
	vnc_input_key(&in, &v, false, '!');
	vnc_input_key(&in, &v, true, XK_F12);
	vnc_input_key(&in, &watcher, true, 'x');
	vnc_input_key(&in, &v, true, 0x20AC);
	vnc_input_key(&in, &v, true, 0x20AC);
	assert_int_equal(nevents, 4);
	assert_event(0, 'k', KEY_LEFTSHIFT, 1, 0, 0);
	assert_event(1, 'k', KEY_1, 1, 0, 0);
	assert_event(2, 'k', KEY_1, 0, 0, 0);
	assert_event(3, 'k', KEY_F12, 1, 0, 0);
	/* Going away releases what is still down, once. */
	vnc_input_viewer_release(&in, &v);
	assert_int_equal(nevents, 6);
	assert_event(4, 'k', KEY_LEFTSHIFT, 0, 0, 0);
	assert_event(5, 'k', KEY_F12, 0, 0, 0);
	vnc_input_viewer_release(&in, &v);
	assert_int_equal(nevents, 6);
	read_log(log, sizeof(log));
	assert_non_null(strstr(log, "keysym 0x20ac has no key"));
	assert_null(strstr(strstr(log, "0x20ac") + 1, "0x20ac")); /* logged once */
}

/* QEMU extended key events: the scan code's key as it is (no Shift added for '$'), E0
 * keys through the table, the keysym only for an unknown scan code; held keys are
 * released when the viewer goes; a view-only viewer's are dropped. */
static void test_scan_codes(void **state)
{
	struct vnc_input_viewer v = {0}, watcher = {.iv_view_only = true};

	(void)state;
	vnc_input_scancode(&in, &v, true, 'q', 0x1e); /* a German 'q' key... is still A */
	vnc_input_scancode(&in, &v, true, '$', 0x05); /* '$' on the 4 key: no Shift added */
	vnc_input_scancode(&in, &v, false, '$', 0x05);
	vnc_input_scancode(&in, &v, true, XK_Up, 0xc8);
	vnc_input_scancode(&in, &v, true, '<', 0x56); /* the ISO key left of Z */
	vnc_input_scancode(&in, &v, true, 'z', 0x00); /* no scan code: the keysym */
	vnc_input_scancode(&in, &watcher, true, 'x', 0x2d);
	assert_int_equal(nevents, 6);
	assert_event(0, 'k', KEY_A, 1, 0, 0);
	assert_event(1, 'k', KEY_4, 1, 0, 0);
	assert_event(2, 'k', KEY_4, 0, 0, 0);
	assert_event(3, 'k', KEY_UP, 1, 0, 0);
	assert_event(4, 'k', KEY_102ND, 1, 0, 0);
	assert_event(5, 'k', KEY_Z, 1, 0, 0);
	vnc_input_viewer_release(&in, &v);
	assert_int_equal(nevents, 10); /* A, Up, 102nd and Z released */
}

/* A viewer that sends keysyms alone (a phone's keyboard) gets Shift around those that
 * need it, and Shift released around those typed without it while it holds Shift; a
 * viewer going away with an added Shift down releases it too. */
static void test_keysyms_alone_get_shift(void **state)
{
	struct vnc_input_viewer v = {0};

	(void)state;
	vnc_input_key(&in, &v, true, '$');
	vnc_input_key(&in, &v, false, '$');
	vnc_input_key(&in, &v, true, XK_Shift_R);
	vnc_input_key(&in, &v, true, '4');
	vnc_input_key(&in, &v, false, '4');
	vnc_input_key(&in, &v, false, XK_Shift_R);
	vnc_input_key(&in, &v, true, '(');
	assert_int_equal(nevents, 12);
	assert_event(0, 'k', KEY_LEFTSHIFT, 1, 0, 0);
	assert_event(1, 'k', KEY_4, 1, 0, 0);
	assert_event(2, 'k', KEY_4, 0, 0, 0);
	assert_event(3, 'k', KEY_LEFTSHIFT, 0, 0, 0);
	assert_event(4, 'k', KEY_RIGHTSHIFT, 1, 0, 0);
	assert_event(5, 'k', KEY_RIGHTSHIFT, 0, 0, 0);
	assert_event(6, 'k', KEY_4, 1, 0, 0);
	assert_event(7, 'k', KEY_4, 0, 0, 0);
	assert_event(8, 'k', KEY_RIGHTSHIFT, 1, 0, 0);
	assert_event(9, 'k', KEY_RIGHTSHIFT, 0, 0, 0);
	assert_event(10, 'k', KEY_LEFTSHIFT, 1, 0, 0);
	assert_event(11, 'k', KEY_9, 1, 0, 0);
	vnc_input_viewer_release(&in, &v);
	assert_int_equal(nevents, 14);
	assert_event(12, 'k', KEY_9, 0, 0, 0); /* in keycode order */
	assert_event(13, 'k', KEY_LEFTSHIFT, 0, 0, 0);
}

static void test_tablet(void **state)
{
	struct vnc_input_viewer v = {0}, watcher = {.iv_view_only = true};

	(void)state;
	tablet_ready = true;
	vnc_input_pointer(&in, &v, 100, 200, 0);
	vnc_input_pointer(&in, &v, -5, 99999, VNC_INPUT_BUTTON_LEFT | VNC_INPUT_BUTTON_RIGHT);
	vnc_input_pointer(&in, &v, 640, 480, VNC_INPUT_BUTTON_WHEEL_UP);
	vnc_input_pointer(&in, &v, 3, 4, VNC_INPUT_BUTTON_MIDDLE | VNC_INPUT_BUTTON_WHEEL_DOWN);
	vnc_input_pointer(&in, &watcher, 1, 1, 1);
	assert_int_equal(nevents, 4);
	assert_event(0, 't', 100, 200, 0, 0);
	assert_event(1, 't', 0, 479, 5, 0);
	assert_event(2, 't', 639, 479, 0, 1);
	assert_event(3, 't', 3, 4, 2, -1);
}

static void test_ps2_mouse(void **state)
{
	struct vnc_input_viewer v = {0};
	int sx = 0, sy = 0;

	(void)state;
	vnc_input_pointer(&in, &v, 100, 50, 0);
	/* Home: at least the screen's size up and left, in steps; then exactly (100,
	 * 50). */
	assert_true(nevents >= 2);
	for (size_t i = 0; i + 1 < nevents; i++) {
		assert_true(events[i].a <= 0 && events[i].b <= 0);
		assert_true(events[i].a >= -1000 && events[i].b >= -1000);
		sx += events[i].a;
		sy += events[i].b;
	}
	assert_true(sx <= -640 && sy <= -480);
	assert_event(nevents - 1, 'm', 100, 50, 0, 0);
	nevents = 0;
	/* Buttons in PS/2 order (1 left, 2 right, 4 middle); wheel; no motion:
	 * nothing. */
	vnc_input_pointer(&in, &v, 130, 40, VNC_INPUT_BUTTON_RIGHT);
	vnc_input_pointer(&in, &v, 130, 40, VNC_INPUT_BUTTON_RIGHT);
	vnc_input_pointer(&in, &v, 130, 40, VNC_INPUT_BUTTON_MIDDLE);
	vnc_input_pointer(&in, &v, 130, 40, VNC_INPUT_BUTTON_WHEEL_DOWN);
	vnc_input_pointer(&in, &v, 130, 40, 0);
	assert_int_equal(nevents, 3);
	assert_event(0, 'm', 30, -10, 0, 2);
	assert_event(1, 'm', 0, 0, 0, 4);
	assert_event(2, 'm', 0, 0, -1, 0);
	nevents = 0;
	/* Past the edges: clamped, pushed beyond so the guest re-synchronises. */
	vnc_input_pointer(&in, &v, 5000, -20, 0);
	assert_int_equal(nevents, 1);
	assert_event(0, 'm', 639 - 130 + 64, -40 - 64, 0, 0);
	vnc_input_pointer(&in, &v, 639, 0, 0);
	assert_int_equal(nevents, 1); /* same place: nothing more */
	nevents = 0;
	/* The tablet comes and goes: back on PS/2 the pointer is homed again. */
	tablet_ready = true;
	vnc_input_pointer(&in, &v, 10, 10, 0);
	tablet_ready = false;
	vnc_input_pointer(&in, &v, 20, 20, 0);
	assert_event(0, 't', 10, 10, 0, 0);
	assert_true(events[1].kind == 'm' && events[1].a < -600);
	assert_event(nevents - 1, 'm', 20, 20, 0, 0);
}

static void test_no_tablet_at_all(void **state)
{
	const struct vnc_input_sink mouse_only = {NULL, fake_key, NULL, NULL, fake_mouse};
	struct vnc_input_viewer v = {0};

	(void)state;
	vnc_input_init(&in, &mouse_only, 64, 64);
	vnc_input_pointer(&in, &v, 10, 10, 0);
	assert_true(nevents >= 2);
	assert_event(nevents - 1, 'm', 10, 10, 0, 0);
}

static void test_cut_text(void **state)
{
	static char big[VNC_INPUT_CUT_TEXT_MAX + 1];
	struct vnc_input_viewer v = {0}, watcher = {.iv_view_only = true};
	char log[1024];

	(void)state;
	assert_int_equal(vnc_input_cut_text(&in, &v, "hello", 5), 0);
	assert_int_equal(vnc_input_cut_text(&in, &v, big, VNC_INPUT_CUT_TEXT_MAX), 0);
	assert_int_equal(vnc_input_cut_text(&in, &v, big, sizeof(big)), -EMSGSIZE);
	assert_int_equal(vnc_input_cut_text(&in, &watcher, "x", 1), -EPERM);
	assert_int_equal(nevents, 0);
	read_log(log, sizeof(log));
	assert_non_null(strstr(log, "cut text of 65537 bytes dropped"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_keysyms_alone_get_shift, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scan_codes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tablet, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ps2_mouse, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_tablet_at_all, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cut_text, setup, teardown),
	};
	return cmocka_run_group_tests_name("input", tests, NULL, NULL);
}
