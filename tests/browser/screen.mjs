// Reading a desktop's screen as a person would: the demo desktop guest's
// (tests/guest/desktop.c) serial mirror (the file the pytest wrapper writes) and the
// geometry it prints at boot, the text console of the Linux desktop image (guest/: fbcon
// fills the screen with cells from its top-left corner), and the text of either read
// glyph by glyph from the viewer's canvas in the browser with the console font the guest
// draws with (a header from tests/guest/mkfont.py: build/guests/desktop_font.h, or the
// font the pytest wrapper takes out of the Linux image's initramfs).
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export const BANNER = "vdi desktop demo: type 'help' for commands";

export function serial(path) {
    return readFileSync(path, 'utf8');
}

// Waits until the serial output after offset `from` matches re; returns the match.
export async function expectSerial(path, re, { from = 0, timeout = 20000 } = {}) {
    const deadline = Date.now() + timeout;
    for (;;) {
        const text = serial(path).slice(from);
        const m = text.match(re);
        if (m) return m;
        if (Date.now() > deadline) {
            throw new Error(`serial never matched ${re} within ${timeout} ms; last output:\n` +
                            text.slice(-1500));
        }
        await sleep(100);
    }
}

// What the guest prints before "desktop: ready".
export function geometry(text) {
    const t = text.match(/desktop: terminal x=(\d+) y=(\d+) cols=(\d+) rows=(\d+) font=(\d+)x(\d+) bg=([0-9a-f]+)/);
    const f = text.match(/desktop: framebuffer (\d+)x(\d+)/);
    if (!t || !f) throw new Error(`no geometry in the serial output:\n${text.slice(-1500)}`);
    const [x0, y0, cols, rows, fw, fh] = t.slice(1, 7).map(Number);
    return { x0, y0, cols, rows, fw, fh, bg: parseInt(t[7], 16), width: Number(f[1]), height: Number(f[2]) };
}

// A text console that fills a width x height screen with font-sized cells from its
// top-left corner, light text on a plain background (Linux's fbcon: light grey on black).
export function consoleGeometry(width, height, font, bg = 0x000000) {
    return { x0: 0, y0: 0, cols: Math.floor(width / font.width), rows: Math.floor(height / font.height),
             fw: font.width, fh: font.height, bg, width, height };
}

// {width, height, glyphs: {"<16 row bytes joined by ,>": char}} from desktop_font.h.
export function loadFont(path) {
    const text = readFileSync(path, 'utf8');
    const width = Number(text.match(/#define FONT_WIDTH\s+(\d+)/)[1]);
    const height = Number(text.match(/#define FONT_HEIGHT\s+(\d+)/)[1]);
    const first = parseInt(text.match(/#define FONT_FIRST\s+(0x[0-9A-Fa-f]+|\d+)/)[1]);
    const rows = [...text.matchAll(/^\t\{([^}]*)\},/gm)].map((m) => m[1].split(',').map((v) => parseInt(v, 16)));
    const glyphs = {};
    // Later characters first so that a look-alike resolves to the lowest code, as in the
    // Python reader (tests/integration/test_hv_desktop.py).
    for (let i = rows.length - 1; i >= 0; i--) glyphs[rows[i].join(',')] = String.fromCharCode(first + i);
    return { width, height, glyphs };
}

// Runs in the page: the terminal's text, one string per row, from the first canvas in
// #screen (noVNC's, at the framebuffer's size whatever the on-screen scaling). A cell
// whose ink (pixels far from the background colour) matches a glyph reads as it, else '?'.
export function readCanvasTerminal({ geo, font }) {
    const canvas = document.querySelector('#screen canvas');
    if (!canvas) return null;
    const ctx = canvas.getContext('2d');
    const { data, width } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const bg = [(geo.bg >> 16) & 255, (geo.bg >> 8) & 255, geo.bg & 255];
    const ink = (x, y) => {
        const i = 4 * (y * width + x);
        return Math.abs(data[i] - bg[0]) + Math.abs(data[i + 1] - bg[1]) + Math.abs(data[i + 2] - bg[2]) > 60;
    };
    const lines = [];
    for (let r = 0; r < geo.rows; r++) {
        let line = '';
        for (let c = 0; c < geo.cols; c++) {
            const x = geo.x0 + c * geo.fw, y = geo.y0 + r * geo.fh;
            const bits = [];
            for (let gy = 0; gy < geo.fh; gy++) {
                let v = 0;
                for (let gx = 0; gx < geo.fw; gx++) v = (v << 1) | (ink(x + gx, y + gy) ? 1 : 0);
                bits.push(v << (8 - geo.fw));
            }
            line += font.glyphs[bits.join(',')] ?? '?';
        }
        lines.push(line.replace(/\s+$/, ''));
    }
    return { width: canvas.width, height: canvas.height, lines };
}

// For messages: the rows of a reading up to its last non-blank one, the last `max` of them.
export function shownText(seen, max = 24) {
    if (!seen) return '(no canvas)';
    let end = seen.lines.length;
    while (end > 0 && !seen.lines[end - 1]) end--;
    return seen.lines.slice(Math.max(0, end - max), end).join('\n');
}

// Polls the canvas every `interval` ms until check(lines) is true; returns the last reading.
export async function waitForTerminal(page, geo, font, check, what, timeout = 15000, interval = 200) {
    const deadline = Date.now() + timeout;
    let seen = null;
    for (;;) {
        seen = await page.evaluate(readCanvasTerminal, { geo, font });
        if (seen && check(seen.lines)) return seen;
        if (Date.now() > deadline) {
            throw new Error(`the canvas never showed ${what}; it shows:\n${shownText(seen)}`);
        }
        await sleep(interval);
    }
}
