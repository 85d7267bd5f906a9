/* libFuzzer harness for the VNC input handlers (display/vnc_input.c): the input is read
 * as a stream of RFB client messages as libvncserver hands them over (KeyEvent,
 * PointerEvent, ClientCutText with any length, QEMU extended key events), plus harness-only bytes
 * that switch the viewer to view-only, make the tablet come and go, or drop the viewer. The devices
 * are fakes that check what reaches them: keycodes in range, tablet coordinates on screen, PS/2
 * buttons in three bits. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "display/vnc_input.h"
#include "lib/be.h"
#include "lib/log.h"

#define WIDTH  800
#define HEIGHT 600

static bool tablet_ready;

static void fake_key(void *arg, unsigned code, bool down)
{
	(void)arg, (void)down;
	if (code == 0 || code >= VNC_INPUT_KEYCODES)
		abort();
}

static bool fake_ready(void *arg)
{
	(void)arg;
	return tablet_ready;
}

static void fake_tablet(void *arg, unsigned x, unsigned y, unsigned buttons, int wheel)
{
	(void)arg;
	if (x >= WIDTH || y >= HEIGHT || buttons > 7 || wheel < -1 || wheel > 1)
		abort();
}

static void fake_mouse(void *arg, int dx, int dy, int dz, unsigned buttons)
{
	(void)arg;
	if (dx < -1000 || dx > 1000 || dy < -1000 || dy > 1000 || dz < -1 || dz > 1 || buttons > 7)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct vnc_input_sink sink = {NULL, fake_key, fake_ready, fake_tablet,
						   fake_mouse};
	static struct vnc_input in;
	struct vnc_input_viewer v = {0};
	size_t i = 0;

	log_set_level(LOG_LEVEL_ERR);
	tablet_ready = false;
	vnc_input_init(&in, &sink, WIDTH, HEIGHT);
	while (i < size) {
		uint8_t type = data[i++];

		switch (type) {
		case 4: /* KeyEvent: down-flag, padding[2], key */
			if (size - i < 7)
				return 0;
			vnc_input_key(&in, &v, data[i] != 0, be32_get(data + i + 3));
			i += 7;
			break;
		case 5: /* PointerEvent: button-mask, x, y */
			if (size - i < 5)
				return 0;
			vnc_input_pointer(&in, &v, data[i + 1] << 8 | data[i + 2],
					  data[i + 3] << 8 | data[i + 4], data[i]);
			i += 5;
			break;
		case 6: { /* ClientCutText: padding[3], length, text (what is there of it) */
			uint32_t len;

			if (size - i < 7)
				return 0;
			len = be32_get(data + i + 3);
			i += 7;
			if (len > size - i) /* libvncserver reads it all first: claim the rest */
				len = (uint32_t)(size - i);
			vnc_input_cut_text(&in, &v, (const char *)data + i, len);
			i += len;
			break;
		}
		case 255: /* QEMU extended key event: subtype, u16 down, keysym, scan code */
			if (size - i < 11)
				return 0;
			if (data[i] == 0)
				vnc_input_scancode(&in, &v, (data[i + 1] | data[i + 2]) != 0,
						   be32_get(data + i + 3), be32_get(data + i + 7));
			i += 11;
			break;
		case 0xF0: v.iv_view_only = !v.iv_view_only; break;
		case 0xF1: tablet_ready = !tablet_ready; break;
		case 0xF2: vnc_input_viewer_release(&in, &v); break;
		case 0xF3: vnc_input_pointer_reset(&in); break;
		default: break;
		}
	}
	vnc_input_viewer_release(&in, &v);
	return 0;
}
