// Reading the demo desktop guest (tests/guest/desktop.c) as a person would: its serial
// mirror (the file the pytest wrapper writes), the geometry it prints at boot, and the
// text of its terminal read glyph by glyph from the viewer's canvas in the browser with
// the console font the guest was built with (build/guests/desktop_font.h).
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

// Polls the canvas until check(lines) is true; returns the last reading.
export async function waitForTerminal(page, geo, font, check, what, timeout = 15000) {
    const deadline = Date.now() + timeout;
    let seen = null;
    for (;;) {
        seen = await page.evaluate(readCanvasTerminal, { geo, font });
        if (seen && check(seen.lines)) return seen;
        if (Date.now() > deadline) {
            throw new Error(`the canvas never showed ${what}; it shows:\n` +
                            (seen ? seen.lines.slice(0, 12).join('\n') : '(no canvas)'));
        }
        await sleep(200);
    }
}
