/* Framebuffer test guest: draws a fixed pattern into the linear framebuffer (1024x768,
 * 32 bpp, stride width * 4 at 0xC0000000, or the size "fb=WxH" on the command line
 * says), prints "framebuffer: drawn WxH", and waits for "done" on COM1. The host test
 * takes a screendump meanwhile and compares it with the same pattern computed in
 * Python (pattern() in tests/integration/pictures.py): keep the two in step.
 *
 * Pattern, in drawing order, colours XRGB8888 (the X byte is deliberately not zero in
 * some, the screendump must ignore it):
 *   8 horizontal bands: band i covers lines [i*H/8, (i+1)*H/8), colour bands[i];
 *   4 rectangles: rectangle k at x = W*(2k+1)/10, y = H*(k+2)/10, W/8 x H/6, rects[k];
 *   the diagonal (i, i) in DIAG and the anti-diagonal (W-1-i, i) in ANTI,
 *   for i < min(W, H). */
#include "fb.h"
#include "rt.h"

#define VEC_COM1 0x24

static const uint32_t bands[8] = {0x00FF0000, 0xA500FF00, 0x000000FF, 0x5AFFFF00,
				  0x0000FFFF, 0xFFFF00FF, 0x00808080, 0x3C123456};
static const uint32_t rects[4] = {0x00202020, 0x00C0FFEE, 0x80FF8000, 0x00400080};
#define DIAG 0x00FFFFFF
#define ANTI 0x7F010203

static volatile char line[64];
static volatile unsigned line_len;
static volatile bool line_ready;

/* Sets n pixels from p to v with string stores, 64 bits at a time where aligned. */
static void fill(uint32_t *p, uint32_t v, uint64_t n)
{
	uint64_t v2 = (uint64_t)v << 32 | v, q;

	if (n && ((uint64_t)p & 7)) {
		*(volatile uint32_t *)p++ = v;
		n--;
	}
	q = n / 2;
	__asm__ volatile("rep stosq" : "+D"(p), "+c"(q) : "a"(v2) : "memory");
	if (n & 1)
		*(volatile uint32_t *)p = v;
}

static void draw(uint32_t *fb, unsigned w, unsigned h)
{
	unsigned n = w < h ? w : h;

	for (unsigned i = 0; i < 8; i++) {
		unsigned y0 = i * h / 8, y1 = (i + 1) * h / 8;

		fill(fb + (uint64_t)y0 * w, bands[i], (uint64_t)(y1 - y0) * w);
	}
	for (unsigned k = 0; k < 4; k++) {
		unsigned x0 = w * (2 * k + 1) / 10, y0 = h * (k + 2) / 10;

		for (unsigned y = y0; y < y0 + h / 6; y++)
			fill(fb + (uint64_t)y * w + x0, rects[k], w / 8);
	}
	for (unsigned i = 0; i < n; i++) {
		((volatile uint32_t *)fb)[(uint64_t)i * w + i] = DIAG;
		((volatile uint32_t *)fb)[(uint64_t)i * w + (w - 1 - i)] = ANTI;
	}
}

static void com1_irq(uint8_t vector)
{
	(void)vector;
	while (inb(0x3F8 + 5) & 0x01) {
		char c = (char)inb(0x3F8);

		if (line_ready)
			continue;
		if (c == '\r' || c == '\n') {
			if (line_len)
				line_ready = true;
		} else if (line_len < sizeof(line) - 1) {
			line[line_len++] = c;
		}
	}
	rt_lapic_eoi();
}

void guest_main(void)
{
	unsigned w = 1024, h = 768;
	volatile uint32_t *fb = (volatile uint32_t *)FB_VDI_BASE;
	uint64_t last;

	fb_geometry("framebuffer", &w, &h);
	/* Video memory must behave as memory, at both ends. */
	last = (uint64_t)w * h - 1;
	if (!fb_is_memory(fb, last))
		rt_fail("framebuffer", "no video memory at 0x%lx (read %x, %x)", FB_VDI_BASE, fb[0],
			fb[last]);

	draw((uint32_t *)FB_VDI_BASE, w, h);
	rt_printf("framebuffer: drawn %ux%u stride %u\n", w, h, w * 4);

	rt_lapic_enable();
	rt_set_handler(VEC_COM1, com1_irq);
	rt_ioapic_route(4, VEC_COM1, false);
	outb(0x3F8 + 4, 0x08); /* MCR: OUT2 gates the interrupt line */
	outb(0x3F8 + 1, 0x01); /* IER: received data available */
	for (;;) {
		char cmd[sizeof(line)];
		unsigned len;

		/* Check with interrupts off, then sti; hlt: a line that arrives in between
		 * still wakes us. Take the line and free the buffer before answering, so the
		 * host's next line, sent when it sees the answer, is not dropped. */
		irq_disable();
		if (!line_ready) {
			halt();
			continue;
		}
		len = line_len;
		memcpy(cmd, (const char *)line, len);
		cmd[len] = '\0';
		line_len = 0;
		line_ready = false;
		irq_enable();
		if (len == 4 && !memcmp(cmd, "done", 4))
			rt_pass("framebuffer");
		rt_printf("framebuffer: ignored '%s'\n", cmd);
	}
}
