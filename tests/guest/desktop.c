/* Demo desktop guest for vdi-hv and QEMU (-kernel): a panel with a CMOS clock, a terminal
 * window taking the PS/2 keyboard (commands mirrored on COM1 as "desktop: ..."), and a
 * pointer driven by the PS/2 mouse and the virtio tablet, on vdi-hv's framebuffer or QEMU's
 * std VGA (VBE). Draws incrementally and halts when idle: KVM here runs ~1000x slower than
 * hardware. Not a window system: one window, nothing overlaps but the pointer. */
#include "desktop_font.h"
#include "fb.h"
#include "i8042.h"
#include "rt.h"
#include "scancode.h"
#include "virtio_guest.h"

/* ---- hardware ---- */

#define BOCHS_VGA_ID	 0x11111234u /* device 1111, vendor 1234: QEMU std VGA */
#define VBE_INDEX	 0x1CE
#define VBE_DATA	 0x1CF
#define VBE_ID		 0
#define VBE_XRES	 1
#define VBE_YRES	 2
#define VBE_BPP		 3
#define VBE_ENABLE	 4
#define VBE_VIRT_W	 6
#define VBE_ENABLED	 0x01
#define VBE_LFB		 0x40
#define VIRTIO_TABLET_ID 0x1052

#define LAPIC_BASE	   0xFEE00000UL
#define LAPIC_LVT_TIMER	   0x320
#define LAPIC_TIMER_INIT   0x380
#define LAPIC_TIMER_DIVIDE 0x3E0
#define LVT_PERIODIC	   (1u << 17)
#define TIMER_COUNT	   15625000u /* 250 ms at 1 GHz / 16 (KVM's and QEMU's APIC bus) */

#define VEC_KBD	       0x21
#define VEC_MOUSE      0x2C
#define VEC_TIMER      0x30
#define VEC_TAB_CONFIG 0x50
#define VEC_TAB_EVENT  0x51

#define KBC_POLL_LIMIT 20000 /* i8042 status reads before giving up */

/* virtio-input */
#define CFG_ABS_INFO 0x12
#define EV_SYN	     0
#define EV_KEY	     1
#define EV_ABS	     3
#define BTN_LEFT     0x110
#define BTN_RIGHT    0x111
#define BTN_MIDDLE   0x112

/* ---- look ---- */

#define PANEL_H	      24
#define TITLE_H	      20
#define PAD	      4
#define COLS_MAX      80
#define ROWS_MAX      25
#define LINE_MAX      120
#define C_PANEL	      0x1E1E24
#define C_PANEL_TEXT  0xE0E0E0
#define C_FRAME	      0x3C3F41
#define C_TITLE	      0x2D6CDF
#define C_TITLE_TEXT  0xFFFFFF
#define C_TERM_BG     0x0C0C0C
#define C_TERM_TEXT   0xCCCCCC
#define C_PROMPT      0x6CC24A
#define C_BG_TOP      0x2B5876
#define C_BG_BOTTOM   0x4E4376
#define CUR_W	      12
#define CUR_H	      19
#define BUTTONS_LEFT  1 /* RFB order, as the tablet's API: 1 left, 2 middle, 4 right */
#define BUTTONS_MID   2
#define BUTTONS_RIGHT 4

static struct {
	volatile uint32_t *fb;
	unsigned w, h, pitch; /* pitch in pixels */
	const char *kind;
} scr;

/* What the drawing cost, for the "stats" command. */
static struct {
	uint64_t pixels, clock_pixels, cursor_pixels;
	unsigned clock_redraws, cursor_moves, timer_ticks;
} stats;

/* ---- small helpers (freestanding: no libc) ---- */

static void fill_span(volatile uint32_t *p, uint32_t v, unsigned n)
{
	__asm__ volatile("rep stosl" : "+D"(p), "+c"(n) : "a"(v) : "memory");
}

static void copy_span(volatile uint32_t *dst, volatile const uint32_t *src, unsigned n)
{
	__asm__ volatile("rep movsl" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

static bool streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

/* Appends v in decimal at *p (zero-padded to width), returns the new end. */
static char *put_uint(char *p, uint64_t v, int width)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n < width--)
		*p++ = '0';
	while (n)
		*p++ = tmp[--n];
	*p = '\0';
	return p;
}

static char *put_int(char *p, int64_t v)
{
	if (v < 0) {
		*p++ = '-';
		return put_uint(p, 0 - (uint64_t)v, 0);
	}
	return put_uint(p, (uint64_t)v, 0);
}

static char *put_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	*p = '\0';
	return p;
}

/* ---- the pointer's save-under ---- */

static const char *const arrow[CUR_H] = {
    "X           ", "XX          ", "X.X         ", "X..X        ", "X...X       ",
    "X....X      ", "X.....X     ", "X......X    ", "X.......X   ", "X........X  ",
    "X.........X ", "X......XXXXX", "X...X..X    ", "X..XX..X    ", "X.X  X..X   ",
    "XX   X..X   ", "X     X..X  ", "      X..X  ", "       XX   ",
};

static struct {
	int x, y; /* hot spot = top-left of the arrow */
	bool shown;
	unsigned sx, sy, sw, sh; /* the saved rectangle, clipped to the screen */
	uint32_t saved[CUR_H][CUR_W];
	unsigned hide_depth; /* drawing calls that hid it */
} cursor;

static bool cursor_overlaps(unsigned x, unsigned y, unsigned w, unsigned h)
{
	return cursor.shown && x < cursor.sx + cursor.sw && cursor.sx < x + w &&
	       y < cursor.sy + cursor.sh && cursor.sy < y + h;
}

static void cursor_hide(void)
{
	if (!cursor.shown)
		return;
	for (unsigned r = 0; r < cursor.sh; r++)
		copy_span(scr.fb + (uint64_t)(cursor.sy + r) * scr.pitch + cursor.sx,
			  cursor.saved[r], cursor.sw);
	stats.cursor_pixels += cursor.sw * cursor.sh;
	cursor.shown = false;
}

static void cursor_show(void)
{
	if (cursor.shown)
		return;
	cursor.sx = (unsigned)cursor.x;
	cursor.sy = (unsigned)cursor.y;
	cursor.sw = scr.w - cursor.sx < CUR_W ? scr.w - cursor.sx : CUR_W;
	cursor.sh = scr.h - cursor.sy < CUR_H ? scr.h - cursor.sy : CUR_H;
	for (unsigned r = 0; r < cursor.sh; r++) {
		volatile uint32_t *p = scr.fb + (uint64_t)(cursor.sy + r) * scr.pitch + cursor.sx;

		copy_span(cursor.saved[r], p, cursor.sw);
		for (unsigned c = 0; c < cursor.sw; c++) {
			char k = arrow[r][c];

			if (k != ' ')
				p[c] = k == 'X' ? 0x000000 : 0xFFFFFF;
		}
	}
	stats.cursor_pixels += cursor.sw * cursor.sh;
	cursor.shown = true;
}

static void cursor_move(int x, int y)
{
	if (x == cursor.x && y == cursor.y)
		return;
	cursor_hide();
	cursor.x = x;
	cursor.y = y;
	cursor_show();
	stats.cursor_moves++;
}

/* Drawing under the pointer: take it off the screen for the duration. */
static void draw_begin(unsigned x, unsigned y, unsigned w, unsigned h)
{
	if (cursor_overlaps(x, y, w, h)) {
		cursor_hide();
		cursor.hide_depth++;
	}
}

static void draw_end(void)
{
	if (cursor.hide_depth) {
		cursor.hide_depth--;
		cursor_show();
	}
}

/* ---- drawing ---- */

static void fill_rect(unsigned x, unsigned y, unsigned w, unsigned h, uint32_t colour)
{
	if (x >= scr.w || y >= scr.h)
		return;
	if (w > scr.w - x)
		w = scr.w - x;
	if (h > scr.h - y)
		h = scr.h - y;
	draw_begin(x, y, w, h);
	for (unsigned r = 0; r < h; r++)
		fill_span(scr.fb + (uint64_t)(y + r) * scr.pitch + x, colour, w);
	stats.pixels += (uint64_t)w * h;
	draw_end();
}

static void draw_glyph(unsigned x, unsigned y, char ch, uint32_t fg, uint32_t bg)
{
	const unsigned char *g;

	if (x + FONT_WIDTH > scr.w || y + FONT_HEIGHT > scr.h)
		return;
	if ((unsigned char)ch < FONT_FIRST || (unsigned char)ch > FONT_LAST)
		ch = '?';
	g = font_glyphs[(unsigned char)ch - FONT_FIRST];
	draw_begin(x, y, FONT_WIDTH, FONT_HEIGHT);
	for (unsigned r = 0; r < FONT_HEIGHT; r++) {
		volatile uint32_t *p = scr.fb + (uint64_t)(y + r) * scr.pitch + x;
		unsigned bits = g[r];

		for (unsigned c = 0; c < FONT_WIDTH; c++, bits <<= 1)
			p[c] = (bits & 0x80) ? fg : bg;
	}
	stats.pixels += FONT_WIDTH * FONT_HEIGHT;
	draw_end();
}

static void draw_text(unsigned x, unsigned y, const char *s, uint32_t fg, uint32_t bg)
{
	for (; *s; s++, x += FONT_WIDTH)
		draw_glyph(x, y, *s, fg, bg);
}

static uint32_t blend(uint32_t a, uint32_t b, unsigned num, unsigned den)
{
	uint32_t out = 0;

	for (unsigned shift = 0; shift < 24; shift += 8) {
		unsigned ca = (a >> shift) & 0xFF, cb = (b >> shift) & 0xFF;

		out |= ((ca * (den - num) + cb * num) / den) << shift;
	}
	return out;
}

/* ---- framebuffer discovery ---- */

static void vbe_write(uint16_t index, uint16_t value)
{
	outw(VBE_INDEX, index);
	outw(VBE_DATA, value);
}

static uint16_t vbe_read(uint16_t index)
{
	outw(VBE_INDEX, index);
	return inw(VBE_DATA);
}

/* QEMU's std VGA (bochs dispi): a mode set through ports 0x1CE/0x1CF, the linear
 * framebuffer at BAR 0. Returns false when there is none. */
static bool setup_bochs_vbe(unsigned w, unsigned h)
{
	for (unsigned slot = 0; slot < 32; slot++) {
		uint32_t bar;
		uint16_t id;

		if (pci_read32(slot, 0) != BOCHS_VGA_ID)
			continue;
		bar = pci_read32(slot, 0x10) & ~0xFu;
		id = vbe_read(VBE_ID);
		if (!bar || id < 0xB0C0 || id > 0xB0CF) {
			rt_printf("desktop: std VGA at 00:%02x.0 without VBE (id %x, bar %x)\n",
				  slot, id, bar);
			return false;
		}
		pci_write16(slot, 0x04, pci_read16(slot, 0x04) | 0x2); /* memory decoding */
		vbe_write(VBE_ENABLE, 0);
		vbe_write(VBE_XRES, (uint16_t)w);
		vbe_write(VBE_YRES, (uint16_t)h);
		vbe_write(VBE_BPP, 32);
		vbe_write(VBE_ENABLE, VBE_ENABLED | VBE_LFB);
		scr.fb = (volatile uint32_t *)(uint64_t)bar;
		scr.pitch = vbe_read(VBE_VIRT_W);
		if (scr.pitch < w)
			scr.pitch = w;
		scr.kind = "bochs-vbe";
		return true;
	}
	return false;
}

static void setup_framebuffer(void)
{
	unsigned w = 1024, h = 768;
	uint64_t last;

	fb_geometry("desktop", &w, &h);
	scr.w = w;
	scr.h = h;
	if (!setup_bochs_vbe(w, h)) {
		scr.fb = (volatile uint32_t *)FB_VDI_BASE;
		scr.pitch = w;
		scr.kind = "vdi-hv";
	}
	last = (uint64_t)(h - 1) * scr.pitch + w - 1;
	if (!fb_is_memory(scr.fb, last))
		rt_fail("desktop", "no video memory at %p", (void *)scr.fb);
}

/* ---- clock ---- */

static uint8_t cmos(uint8_t reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

struct rtc_time {
	unsigned year, month, day, hour, min, sec;
};

static unsigned from_bcd(uint8_t v, bool bcd)
{
	return bcd ? (v >> 4) * 10u + (v & 0xF) : v;
}

static void rtc_read(struct rtc_time *t)
{
	uint8_t raw[7], again[7], regb;
	static const uint8_t regs[7] = {0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32};
	bool bcd, pm;

	for (int tries = 0; tries < 5; tries++) {
		for (int i = 0; i < 1000 && (cmos(0x0A) & 0x80); i++) /* update in progress */
			cpu_relax();
		for (int i = 0; i < 7; i++)
			raw[i] = cmos(regs[i]);
		for (int i = 0; i < 7; i++)
			again[i] = cmos(regs[i]);
		if (!memcmp(raw, again, sizeof(raw)))
			break;
	}
	regb = cmos(0x0B);
	bcd = !(regb & 0x04);
	pm = !(regb & 0x02) && (raw[2] & 0x80);
	t->sec = from_bcd(raw[0], bcd);
	t->min = from_bcd(raw[1], bcd);
	t->hour = from_bcd(raw[2] & 0x7F, bcd);
	if (!(regb & 0x02)) /* 12-hour mode */
		t->hour = t->hour % 12 + (pm ? 12 : 0);
	t->day = from_bcd(raw[3], bcd);
	t->month = from_bcd(raw[4], bcd);
	t->year = from_bcd(raw[6], bcd) * 100 + from_bcd(raw[5], bcd);
	if (t->year < 1970) /* no century register */
		t->year = 2000 + t->year % 100;
}

static struct {
	unsigned x, y;
	char shown[9];
	int last_sec; /* the raw seconds register at the last full read, -1 at first */
} clock = {.last_sec = -1};

static void clock_format(const struct rtc_time *t, char out[9])
{
	char *p = put_uint(out, t->hour, 2);

	*p++ = ':';
	p = put_uint(p, t->min, 2);
	*p++ = ':';
	put_uint(p, t->sec, 2);
}

/* Redraws the digits that changed: usually one glyph a second. */
static void clock_update(void)
{
	struct rtc_time t;
	char now[9];
	uint64_t before = stats.pixels;
	uint8_t sec = cmos(0x00);

	/* Four port accesses a tick while the second lasts; the full read once a second. */
	if (sec == clock.last_sec)
		return;
	rtc_read(&t);
	clock.last_sec = sec;
	clock_format(&t, now);
	if (!memcmp(now, clock.shown, 8))
		return;
	for (unsigned i = 0; i < 8; i++)
		if (now[i] != clock.shown[i])
			draw_glyph(clock.x + i * FONT_WIDTH, clock.y, now[i], C_PANEL_TEXT,
				   C_PANEL);
	memcpy(clock.shown, now, sizeof(now));
	stats.clock_redraws++;
	stats.clock_pixels += stats.pixels - before;
}

static void timer_start(void)
{
	mmio_write32(LAPIC_BASE + LAPIC_TIMER_DIVIDE, 0x3); /* divide by 16 */
	mmio_write32(LAPIC_BASE + LAPIC_LVT_TIMER, VEC_TIMER | LVT_PERIODIC);
	mmio_write32(LAPIC_BASE + LAPIC_TIMER_INIT, TIMER_COUNT);
}

/* ---- terminal ---- */

static struct {
	unsigned x0, y0, cols, rows; /* text area in pixels and cells */
	unsigned cx, cy;	     /* text cursor cell */
	char line[LINE_MAX + 1];
	unsigned len;
} term;

static unsigned cell_x(unsigned col)
{
	return term.x0 + col * FONT_WIDTH;
}

static unsigned cell_y(unsigned row)
{
	return term.y0 + row * FONT_HEIGHT;
}

static void term_caret(bool on)
{
	fill_rect(cell_x(term.cx), cell_y(term.cy) + FONT_HEIGHT - 2, FONT_WIDTH, 2,
		  on ? C_TERM_TEXT : C_TERM_BG);
}

static void term_scroll(void)
{
	unsigned width = term.cols * FONT_WIDTH;
	unsigned lines = (term.rows - 1) * FONT_HEIGHT;

	draw_begin(term.x0, term.y0, width, term.rows * FONT_HEIGHT);
	for (unsigned r = 0; r < lines; r++)
		copy_span(scr.fb + (uint64_t)(term.y0 + r) * scr.pitch + term.x0,
			  scr.fb + (uint64_t)(term.y0 + r + FONT_HEIGHT) * scr.pitch + term.x0,
			  width);
	stats.pixels += (uint64_t)width * lines;
	fill_rect(term.x0, cell_y(term.rows - 1), width, FONT_HEIGHT, C_TERM_BG);
	draw_end();
}

static void term_newline(void)
{
	term.cx = 0;
	if (term.cy + 1 < term.rows)
		term.cy++;
	else
		term_scroll();
}

static void term_putc(char c, uint32_t colour)
{
	if (c == '\n') {
		term_newline();
		return;
	}
	draw_glyph(cell_x(term.cx), cell_y(term.cy), c, colour, C_TERM_BG);
	if (++term.cx == term.cols)
		term_newline();
}

static void term_puts(const char *s, uint32_t colour)
{
	while (*s)
		term_putc(*s++, colour);
}

/* One line of command output: on the screen and mirrored on COM1. */
static void say(const char *s)
{
	term_puts(s, C_TERM_TEXT);
	term_newline();
	rt_printf("desktop: %s\n", s);
}

static void prompt(void)
{
	term.len = 0;
	term_puts("$ ", C_PROMPT);
	term_caret(true);
}

static void term_clear(void)
{
	fill_rect(term.x0, term.y0, term.cols * FONT_WIDTH, term.rows * FONT_HEIGHT, C_TERM_BG);
	term.cx = term.cy = 0;
}

/* ---- commands ---- */

static const char *skip_spaces(const char *s)
{
	while (*s == ' ')
		s++;
	return s;
}

static bool parse_int(const char **s, int64_t *v)
{
	const char *p = skip_spaces(*s);
	bool neg = false;
	uint64_t n = 0;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (UINT64_MAX - 9) / 10)
			return false;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (n > (uint64_t)INT64_MAX + neg)
		return false;
	*v = neg ? (int64_t)(0 - n) : (int64_t)n;
	*s = p;
	return true;
}

static void cmd_calc(const char *args)
{
	const char *p = args;
	int64_t a, b, r = 0;
	char op = 0, out[40];
	bool ok, overflow = false;

	ok = parse_int(&p, &a);
	if (ok) {
		p = skip_spaces(p);
		op = *p ? *p++ : 0;
		ok = parse_int(&p, &b) && !*skip_spaces(p);
	}
	if (!ok) {
		say("usage: calc A+B (integers; + - * / %)");
		return;
	}
	switch (op) {
	case '+': overflow = __builtin_add_overflow(a, b, &r); break;
	case '-': overflow = __builtin_sub_overflow(a, b, &r); break;
	case '*': overflow = __builtin_mul_overflow(a, b, &r); break;
	case '/':
	case '%':
		if (b == 0) {
			say("calc: division by zero");
			return;
		}
		overflow = a == INT64_MIN && b == -1;
		if (!overflow)
			r = op == '/' ? a / b : a % b;
		break;
	default: say("usage: calc A+B (integers; + - * / %)"); return;
	}
	if (overflow) {
		say("calc: overflow");
		return;
	}
	put_int(out, r);
	say(out);
}

static void cmd_date(void)
{
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct rtc_time t;
	char out[40], *p;

	rtc_read(&t);
	p = put_uint(out, t.year, 4);
	*p++ = '-';
	p = put_uint(p, t.month, 2);
	*p++ = '-';
	p = put_uint(p, t.day, 2);
	*p++ = ' ';
	clock_format(&t, p);
	p = put_str(p + 8, " UTC (");
	p = put_str(p, t.month >= 1 && t.month <= 12 ? months[t.month - 1] : "???");
	put_str(p, ")");
	say(out);
}

static void cmd_stats(void)
{
	char out[100], *p;

	p = put_str(out, "clock: ");
	p = put_uint(p, stats.clock_redraws, 0);
	p = put_str(p, " redraws, ");
	p = put_uint(p, stats.clock_pixels, 0);
	p = put_str(p, " pixels; timer ticks ");
	put_uint(p, stats.timer_ticks, 0);
	say(out);
	p = put_str(out, "pointer: ");
	p = put_uint(p, stats.cursor_moves, 0);
	p = put_str(p, " moves, ");
	p = put_uint(p, stats.cursor_pixels, 0);
	p = put_str(p, " pixels; all drawing ");
	p = put_uint(p, stats.pixels, 0);
	put_str(p, " pixels");
	say(out);
}

static void run_command(void)
{
	const char *line = skip_spaces(term.line), *args;
	char name[16];
	unsigned n = 0;

	rt_printf("desktop: $ %s\n", term.line);
	for (args = line; *args && *args != ' '; args++)
		if (n < sizeof(name) - 1)
			name[n++] = *args;
	name[n] = '\0';
	args = skip_spaces(args);
	if (!n)
		return;
	if (streq(name, "help")) {
		say("commands: help, echo TEXT, date, uname, clear, calc A+B, stats, reboot");
	} else if (streq(name, "echo")) {
		say(args);
	} else if (streq(name, "date")) {
		cmd_date();
	} else if (streq(name, "uname")) {
		say("vdi-desktop 1.0 x86_64 (freestanding demo guest)");
	} else if (streq(name, "clear")) {
		term_clear();
	} else if (streq(name, "calc")) {
		cmd_calc(args);
	} else if (streq(name, "stats")) {
		cmd_stats();
	} else if (streq(name, "reboot")) {
		say("rebooting");
		rt_reset();
	} else {
		char out[LINE_MAX + 32];

		put_str(put_str(out, name), ": command not found");
		say(out);
	}
}

/* ---- keyboard: set-1 scan codes (the i8042 translates) ---- */

static struct {
	bool shift_l, shift_r, ctrl, caps, e0;
} kbd;

static void key_enter(void)
{
	term_caret(false);
	term_newline();
	term.line[term.len] = '\0';
	run_command();
	prompt();
}

static void key_backspace(void)
{
	if (!term.len)
		return;
	term.len--;
	term_caret(false);
	if (term.cx) {
		term.cx--;
	} else if (term.cy) {
		term.cx = term.cols - 1;
		term.cy--;
	}
	draw_glyph(cell_x(term.cx), cell_y(term.cy), ' ', C_TERM_TEXT, C_TERM_BG);
	term_caret(true);
}

static void key_char(char c)
{
	if (term.len >= LINE_MAX)
		return;
	term.line[term.len++] = c;
	term_putc(c, C_TERM_TEXT);
	term_caret(true);
}

static void key_byte(uint8_t b)
{
	bool up = b & 0x80, ext = kbd.e0;
	uint8_t code = b & 0x7F;
	char c;

	if (b == 0xE0) {
		kbd.e0 = true;
		return;
	}
	kbd.e0 = false;
	if (b == 0xE1 || b == 0xFA || b == 0xFE || b == 0x00 || b == 0xFF)
		return; /* Pause prefix, acknowledgement, resend, errors (0xAA is Shift up) */
	switch (code) {
	case 0x2A:
		if (!ext)
			kbd.shift_l = !up;
		return;
	case 0x36: kbd.shift_r = !up; return;
	case 0x1D: kbd.ctrl = !up; return;
	case 0x3A:
		if (!up)
			kbd.caps = !kbd.caps;
		return;
	}
	if (up)
		return;
	if (ext && code != 0x1C && code != 0x35)
		return; /* arrows and the like: no use here */
	if (code == 0x1C) {
		key_enter();
		return;
	}
	if (code == 0x0E) {
		key_backspace();
		return;
	}
	c = scancode_char(code, kbd.shift_l || kbd.shift_r, kbd.caps);
	if (kbd.ctrl && (c == 'c' || c == 'C')) {
		term_caret(false);
		term_puts("^C", C_TERM_TEXT);
		term_newline();
		rt_printf("desktop: ^C\n");
		prompt();
		return;
	}
	if (kbd.ctrl && (c == 'l' || c == 'L')) {
		term_clear();
		prompt();
		for (unsigned i = 0; i < term.len; i++)
			term_putc(term.line[i], C_TERM_TEXT);
		return;
	}
	if (c == '\t')
		c = ' ';
	if (c && !kbd.ctrl)
		key_char(c);
}

/* ---- pointer ---- */

static struct {
	int x, y;
	unsigned buttons;
	bool moved;
	/* PS/2 packet assembly */
	uint8_t packet[4];
	unsigned have, size;
} ptr;

static void pointer_update(int x, int y, unsigned buttons, const char *via)
{
	x = x < 0 ? 0 : x >= (int)scr.w ? (int)scr.w - 1 : x;
	y = y < 0 ? 0 : y >= (int)scr.h ? (int)scr.h - 1 : y;
	if (x != ptr.x || y != ptr.y)
		ptr.moved = true;
	ptr.x = x;
	ptr.y = y;
	if (buttons != ptr.buttons) {
		ptr.buttons = buttons;
		rt_printf("desktop: pointer x=%d y=%d buttons=%u via=%s\n", x, y, buttons, via);
	}
}

static void mouse_byte(uint8_t b)
{
	int dx, dy;
	unsigned ps2, buttons;

	if (ptr.have == 0 && !(b & 0x08))
		return; /* out of step: wait for a first byte */
	ptr.packet[ptr.have++] = b;
	if (ptr.have < ptr.size)
		return;
	ptr.have = 0;
	if (ptr.packet[0] & 0xC0)
		return; /* overflow: the deltas are meaningless */
	dx = ptr.packet[1] - ((ptr.packet[0] << 4) & 0x100);
	dy = ptr.packet[2] - ((ptr.packet[0] << 3) & 0x100);
	ps2 = ptr.packet[0] & 7; /* 1 left, 2 right, 4 middle */
	buttons = (ps2 & 1 ? BUTTONS_LEFT : 0) | (ps2 & 2 ? BUTTONS_RIGHT : 0) |
		  (ps2 & 4 ? BUTTONS_MID : 0);
	pointer_update(ptr.x + dx, ptr.y - dy, buttons, "ps2");
}

/* The virtio tablet, when there is one. */
static struct {
	bool present;
	struct vdev dev;
	uint32_t max_x, max_y;
	uint32_t ax, ay; /* values pending until SYN_REPORT */
	unsigned buttons;
	uint8_t events[VG_QSIZE][8];
} tab;

static void tablet_post(uint16_t i)
{
	struct vdev *d = &tab.dev;

	*(volatile uint16_t *)(vg_avail + 4 + 2 * (d->avail_idx % d->qsize)) = i;
	barrier();
	d->avail_idx++;
	*(volatile uint16_t *)(vg_avail + 2) = d->avail_idx;
	barrier();
}

static uint32_t tablet_max(uint8_t axis)
{
	struct vdev *d = &tab.dev;
	uint32_t max;

	mmio_write8(d->device, CFG_ABS_INFO);
	mmio_write8(d->device + 1, axis);
	if (mmio_read8(d->device + 2) < 8)
		return 32767;
	max = mmio_read32(d->device + 8 + 4);
	return max ? max : 32767;
}

static void tablet_init(void)
{
	struct vdev *d = &tab.dev;

	if (!vdev_find(d, VIRTIO_TABLET_ID))
		return;
	if (!d->device || !d->msix_cap || !vdev_negotiate(d, 0)) {
		rt_printf("desktop: virtio tablet at 00:%02x.0 unusable\n", d->slot);
		return;
	}
	tab.max_x = tablet_max(0);
	tab.max_y = tablet_max(1);
	vdev_msix_entry(d, 0, VEC_TAB_CONFIG);
	vdev_msix_entry(d, 1, VEC_TAB_EVENT);
	pci_write16(d->slot, d->msix_cap + 2, 0x8000);
	mmio_write16(d->common + CC_MSIX, 0);
	if (!vdev_queue(d, 1)) {
		rt_printf("desktop: virtio tablet queue setup failed\n");
		return;
	}
	vdev_driver_ok(d);
	for (uint16_t i = 0; i < d->qsize; i++) {
		vq_desc(i, (uint64_t)tab.events[i], 8, D_WRITE, 0);
		tablet_post(i);
	}
	mmio_write16(d->notify_addr, 0);
	tab.present = true;
}

static unsigned tablet_scale(uint32_t v, uint32_t max, unsigned size)
{
	if (v > max)
		v = max;
	return (unsigned)(((uint64_t)v * (size - 1) + max / 2) / max);
}

static void tablet_poll(void)
{
	struct vdev *d = &tab.dev;
	bool used = false;

	while (vq_used_idx() != d->used_seen) {
		uint32_t id;
		uint16_t type, code;
		int32_t value;

		barrier();
		memcpy(&id, vg_used + 4 + 8 * (d->used_seen % d->qsize), 4);
		d->used_seen++;
		if (id >= d->qsize)
			continue;
		memcpy(&type, tab.events[id], 2);
		memcpy(&code, tab.events[id] + 2, 2);
		memcpy(&value, tab.events[id] + 4, 4);
		tablet_post((uint16_t)id);
		used = true;
		if (type == EV_ABS && code == 0)
			tab.ax = (uint32_t)value;
		else if (type == EV_ABS && code == 1)
			tab.ay = (uint32_t)value;
		else if (type == EV_KEY) {
			unsigned bit = code == BTN_LEFT	    ? BUTTONS_LEFT
				       : code == BTN_RIGHT  ? BUTTONS_RIGHT
				       : code == BTN_MIDDLE ? BUTTONS_MID
							    : 0;

			tab.buttons = value ? tab.buttons | bit : tab.buttons & ~bit;
		} else if (type == EV_SYN) {
			pointer_update((int)tablet_scale(tab.ax, tab.max_x, scr.w),
				       (int)tablet_scale(tab.ay, tab.max_y, scr.h), tab.buttons,
				       "tablet");
		}
	}
	if (used)
		mmio_write16(d->notify_addr, 0);
}

/* ---- the i8042: keyboard and mouse ---- */

static struct i8042_ring kbd_ring, mouse_ring;
static volatile unsigned timer_pending, tablet_pending;

static void kbc_irq(uint8_t vector)
{
	(void)vector;
	i8042_drain(&kbd_ring, &mouse_ring);
	rt_lapic_eoi();
}

static void timer_irq(uint8_t vector)
{
	(void)vector;
	timer_pending++;
	stats.timer_ticks++;
	rt_lapic_eoi();
}

static void tablet_irq(uint8_t vector)
{
	(void)vector;
	tablet_pending++;
	rt_lapic_eoi();
}

static void ignore_irq(uint8_t vector)
{
	(void)vector;
	rt_lapic_eoi();
}

static bool kbc_expect(bool aux, uint8_t want, const char *what)
{
	int b = i8042_read_port(aux);

	if (b == want)
		return true;
	rt_printf("desktop: %s: got %d, wanted 0x%x\n", what, b, want);
	return false;
}

static bool mouse_command(uint8_t b)
{
	i8042_write_aux(b);
	return kbc_expect(true, 0xFA, "mouse ack");
}

static void input_init(void)
{
	static const uint8_t knock[] = {200, 100, 80};
	uint8_t ctr = I8042_CTR_XLATE | I8042_CTR_SYS;
	int id;

	i8042_init("desktop", KBC_POLL_LIMIT);
	i8042_command(0xAD); /* both ports off while we set up */
	i8042_command(0xA7);
	i8042_flush();
	i8042_command(0xAA);
	kbc_expect(false, 0x55, "controller self-test");
	i8042_write_ctr(ctr);
	i8042_command(0xAE);
	i8042_write(0xFF);
	if (kbc_expect(false, 0xFA, "keyboard reset ack"))
		kbc_expect(false, 0xAA, "keyboard self-test");
	i8042_write(0xF4);
	kbc_expect(false, 0xFA, "keyboard enable ack");

	ptr.size = 3;
	i8042_command(0xA8);
	i8042_command(0xA9);
	if (kbc_expect(false, 0x00, "mouse port test") && mouse_command(0xFF) &&
	    kbc_expect(true, 0xAA, "mouse self-test") && kbc_expect(true, 0x00, "mouse id")) {
		for (unsigned i = 0; i < sizeof(knock); i++)
			if (!mouse_command(0xF3) || !mouse_command(knock[i]))
				break;
		if (mouse_command(0xF2)) {
			id = i8042_read_port(true);
			ptr.size = id == 3 || id == 4 ? 4 : 3;
		}
		mouse_command(0xF4);
	}

	rt_set_handler(VEC_KBD, kbc_irq);
	rt_set_handler(VEC_MOUSE, kbc_irq);
	rt_ioapic_route(1, VEC_KBD, false);
	rt_ioapic_route(12, VEC_MOUSE, false);
	i8042_write_ctr(ctr | I8042_CTR_KBD_INT | I8042_CTR_AUX_INT);
}

/* ---- the desktop ---- */

static void draw_desktop(void)
{
	unsigned ww, wh, wx, wy;

	/* Background: a vertical gradient, one colour per line, then the panel. */
	for (unsigned y = PANEL_H; y < scr.h; y++)
		fill_span(scr.fb + (uint64_t)y * scr.pitch,
			  blend(C_BG_TOP, C_BG_BOTTOM, y - PANEL_H, scr.h - PANEL_H), scr.w);
	stats.pixels += (uint64_t)scr.w * (scr.h - PANEL_H);
	fill_rect(0, 0, scr.w, PANEL_H, C_PANEL);
	draw_text(8, (PANEL_H - FONT_HEIGHT) / 2, "vdi desktop", C_PANEL_TEXT, C_PANEL);
	clock.x = scr.w > 8 * FONT_WIDTH + 8 ? scr.w - 8 * FONT_WIDTH - 8 : 0;
	clock.y = (PANEL_H - FONT_HEIGHT) / 2;

	/* The terminal window, centred under the panel. */
	term.cols = (scr.w - 2 * (PAD + 1) - 16) / FONT_WIDTH;
	if (term.cols > COLS_MAX)
		term.cols = COLS_MAX;
	term.rows = (scr.h - PANEL_H - 32 - TITLE_H - 2 * (PAD + 1)) / FONT_HEIGHT;
	if (term.rows > ROWS_MAX)
		term.rows = ROWS_MAX;
	if (scr.w < 160 || scr.h < 160 || term.rows < 2)
		rt_fail("desktop", "screen %ux%u too small for the terminal", scr.w, scr.h);
	ww = term.cols * FONT_WIDTH + 2 * (PAD + 1);
	wh = TITLE_H + term.rows * FONT_HEIGHT + 2 * (PAD + 1);
	wx = (scr.w - ww) / 2;
	wy = PANEL_H + 16;
	fill_rect(wx, wy, ww, wh, C_FRAME);
	fill_rect(wx + 1, wy + 1, ww - 2, TITLE_H - 1, C_TITLE);
	draw_text(wx + 8, wy + 1 + (TITLE_H - 1 - FONT_HEIGHT) / 2, "Terminal", C_TITLE_TEXT,
		  C_TITLE);
	term.x0 = wx + 1 + PAD;
	term.y0 = wy + TITLE_H + 1 + PAD;
	fill_rect(wx + 1, wy + TITLE_H, ww - 2, wh - TITLE_H - 1, C_TERM_BG);
}

static void process_input(void)
{
	int b;

	while ((b = i8042_ring_get(&kbd_ring)) >= 0)
		key_byte((uint8_t)b);
	while ((b = i8042_ring_get(&mouse_ring)) >= 0)
		mouse_byte((uint8_t)b);
	if (tab.present && tablet_pending) {
		tablet_pending = 0;
		tablet_poll();
	}
	if (ptr.moved) {
		ptr.moved = false;
		cursor_move(ptr.x, ptr.y);
	}
	if (timer_pending) {
		timer_pending = 0;
		clock_update();
	}
}

void guest_main(void)
{
	setup_framebuffer();
	rt_lapic_enable();
	rt_set_handler(VEC_TIMER, timer_irq);
	rt_set_handler(VEC_TAB_EVENT, tablet_irq);
	rt_set_handler(VEC_TAB_CONFIG, ignore_irq);
	input_init();
	tablet_init();

	draw_desktop();
	clock_update();
	say("vdi desktop demo: type 'help' for commands");
	prompt();
	ptr.x = cursor.x = (int)scr.w - 40 > 0 ? (int)scr.w - 40 : 0;
	ptr.y = cursor.y = (int)scr.h - 40 > 0 ? (int)scr.h - 40 : 0;
	cursor_show();
	timer_start();

	rt_printf("desktop: framebuffer %ux%u stride %u at %p (%s)\n", scr.w, scr.h, scr.pitch * 4,
		  (void *)scr.fb, scr.kind);
	rt_printf("desktop: terminal x=%u y=%u cols=%u rows=%u font=%ux%u bg=%x\n", term.x0,
		  term.y0, term.cols, term.rows, FONT_WIDTH, FONT_HEIGHT, C_TERM_BG);
	rt_printf("desktop: clock x=%u y=%u w=%u h=%u\n", clock.x, clock.y, 8 * FONT_WIDTH,
		  FONT_HEIGHT);
	rt_printf("desktop: pointer x=%d y=%d mouse=%u-byte tablet=%s\n", ptr.x, ptr.y, ptr.size,
		  tab.present ? "yes" : "no");
	rt_printf("desktop: ready\n");
	irq_enable();

	for (;;) {
		/* Check with interrupts off, then sti; hlt: nothing slips in between. */
		irq_disable();
		if (i8042_ring_empty(&kbd_ring) && i8042_ring_empty(&mouse_ring) &&
		    !timer_pending && !tablet_pending) {
			halt();
			continue;
		}
		irq_enable();
		process_input();
	}
}
