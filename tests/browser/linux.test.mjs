// The Linux desktop image (guest/: Debian's kernel and a busybox initramfs) used through
// the whole product as a person uses it: vdi-hostd runs it under vdi-hv for an automated
// pool of the real vdi-broker; the user signs in to the portal and connects, the viewer
// (noVNC) opens wss://broker/gateway?ticket=... and the gateway reaches the desktop's VNC
// server through the host's relay. The canvas must show the desktop's console (its
// banner and shell prompt, read glyph by glyph with the font the image loads), and a
// command typed in the viewer must run there: its output is read from the canvas too.
// The guest's serial log is only quoted when something fails (diagnostics); the shell
// on the screen (tty1) is not the one on the serial line.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { env, launch, newPage, recordWebSockets, screenshots, signIn } from './harness.mjs';
import { consoleGeometry, loadFont, serial, shownText, waitForTerminal } from './screen.mjs';

function need(name) {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set: run this through tests/integration/test_browser_linux_hv.py`);
    return v;
}

const POOL = need('VDI_LINUX_POOL');
const KERNEL_RELEASE = need('VDI_KERNEL_RELEASE');
// Booting in the KVM host in a box on a slow, shared machine: generous.
const BOOT_TIMEOUT = Number(process.env.VDI_BOOT_TIMEOUT_MS || 240000);
const SCREEN = { width: 1024, height: 768 }; // vdi-hv's default framebuffer
// guest/profile: PS1='\u@\h:\w\$ ' with HOME=/home; the host name is the image's default.
const PROMPT = 'root@vdi-desktop:~#';
const BANNER = `vdi desktop guest vdi-desktop - Linux ${KERNEL_RELEASE} (x86_64)`;
// The shell computes the answer: the echo of the typed line cannot be mistaken for it.
const COMMAND = 'echo vdi-$((6*7))';
const ANSWER = 'vdi-42';

const shot = screenshots('linux');
let chrome, page, font, geo;
let booted = false; // the first test saw the prompt on the canvas; the second one needs it

before(async () => {
    chrome = await launch();
    page = await newPage(await chrome.user());
    font = loadFont(env.font);
});
after(async () => { await chrome?.close(); });

function serialTail() {
    try {
        return serial(env.serial).slice(-3000);
    } catch (e) {
        return `(no serial log: ${e.message})`;
    }
}

// On a US keyboard a person types '$', '(', '*' ... with Shift held on the key that
// carries them, and the test types them that way. (Keysyms sent alone get their Shift
// from vdi-hv, and on QEMU from the relay: qemu_keys.test.mjs.)
const SHIFTED = {
    '~': 'Backquote', '!': 'Digit1', '@': 'Digit2', '#': 'Digit3', $: 'Digit4', '%': 'Digit5',
    '^': 'Digit6', '&': 'Digit7', '*': 'Digit8', '(': 'Digit9', ')': 'Digit0', _: 'Minus',
    '+': 'Equal', '{': 'BracketLeft', '}': 'BracketRight', '|': 'Backslash', ':': 'Semicolon',
    '"': 'Quote', '<': 'Comma', '>': 'Period', '?': 'Slash',
};
async function typeOnUsKeyboard(p, text) {
    for (const ch of text) {
        if (SHIFTED[ch]) await p.keyboard.press(`Shift+${SHIFTED[ch]}`);
        else if (/[A-Z]/.test(ch)) await p.keyboard.press(`Shift+Key${ch}`);
        else await p.keyboard.type(ch);
    }
}

async function overlayText(p) {
    return `${await p.locator('#overlay-title').textContent()}: ` +
        (await p.locator('#overlay-text').textContent()).replace(/\s+/g, ' ').trim();
}

test('the Linux desktop opens in the viewer and shows its console with a shell prompt', async () => {
    const t0 = Date.now();
    await signIn(page, env.user, env.password);
    const card = page.locator(`#desktops article[data-pool="${POOL}"]`);
    await card.waitFor();
    await shot(page, 'portal');
    const ws = recordWebSockets(page);
    await card.getByRole('link', { name: 'Connect' }).click();
    await page.waitForURL(/\/viewer\.html\?pool=/);
    // "Starting your desktop…" while the host creates it, then connected
    await page.waitForFunction(() => ['connected', 'failed', 'closed'].includes(document.body.dataset.state),
                               null, { timeout: BOOT_TIMEOUT });
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'connected',
                 `the viewer did not connect: ${await overlayText(page)}`);
    const host = new URL(env.url).host.replace(/\./g, '\\.');
    assert.match(ws.urls[0] || '', new RegExp(`^wss://${host}/gateway\\?ticket=[0-9a-f]{32}$`),
                 'the viewer went through the broker\'s gateway');
    const size = await page.evaluate(() => {
        const c = document.querySelector('#screen canvas');
        return c && { width: c.width, height: c.height };
    });
    assert.deepEqual(size, SCREEN, 'the canvas at the desktop framebuffer\'s size');
    geo = consoleGeometry(size.width, size.height, font);
    // the desktop's first screen (usually the kernel booting) painted on the canvas
    await page.waitForFunction(() => {
        const c = document.querySelector('#screen canvas');
        return c.getContext('2d').getImageData(0, 0, 1, 1).data[3] === 255;
    }, null, { timeout: BOOT_TIMEOUT, polling: 250 });
    await shot(page, 'connected');
    const connected = Date.now();
    let seen;
    try {
        seen = await waitForTerminal(page, geo, font, (l) => l.some((x) => x.startsWith(PROMPT)),
                                     'the shell prompt', BOOT_TIMEOUT, 1000);
    } catch (e) {
        await shot(page, 'no-prompt');
        e.message += `\n--- the guest's serial log (diagnostics) ---\n${serialTail()}`;
        throw e;
    }
    console.log(`signed in and connected in ${((connected - t0) / 1000).toFixed(1)} s; ` +
                `the prompt on the canvas ${((Date.now() - connected) / 1000).toFixed(1)} s later`);
    await shot(page, 'prompt');
    // console-shell clears tty1 and prints the banner above the prompt
    assert.ok(seen.lines.includes(BANNER), `the banner "${BANNER}" on the canvas:\n${shownText(seen)}`);
    assert.equal(await page.locator('#overlay').isVisible(), false);
    booted = true;
});

test('a command typed in the viewer runs on the desktop and its output shows on the canvas', async () => {
    if (!booted) throw new Error('the desktop never showed its prompt (see the first test)');
    await page.locator('#screen canvas').click({ position: { x: 50, y: 50 } });
    await typeOnUsKeyboard(page, COMMAND);
    await page.keyboard.press('Enter');
    const typed = `${PROMPT} ${COMMAND}`;
    // the typed line, the shell's answer under it, and a new prompt under that. In the
    // KVM box the answer's row sometimes keeps stale glyphs to the right of the answer
    // (cells the canvas was not sent again; not seen on hardware yet): they are reported
    // below, not counted as a missing answer.
    const at = (lines) => lines.findIndex((x, i) => x === typed &&
                                          (lines[i + 1] || '').startsWith(ANSWER) &&
                                          (lines[i + 2] || '').startsWith(PROMPT));
    let seen;
    try {
        seen = await waitForTerminal(page, geo, font, (l) => at(l) >= 0, `"${typed}" answered "${ANSWER}"`,
                                     60000, 500);
    } catch (e) {
        await shot(page, 'no-answer');
        e.message += `\n--- the guest's serial log (diagnostics) ---\n${serialTail()}`;
        throw e;
    }
    const i = at(seen.lines);
    assert.equal(seen.lines[i], typed);
    if (seen.lines[i + 1] !== ANSWER)
        console.log(`stale cells right of the answer on the canvas: "${seen.lines[i + 1]}"`);
    await shot(page, 'answered');
    await shot(page, 'answered-canvas', { clip: await page.locator('#screen canvas').boundingBox() });
});

test('no page had a script error or a CSP violation', () => {
    assert.deepEqual(page.problems(), []);
});
