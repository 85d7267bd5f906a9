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
import { expectAnswer, typeOnUsKeyboard, waitForPrompt } from './linux_desktop.mjs';
import { consoleGeometry, loadFont, shownText } from './screen.mjs';

const SCREEN = { width: 1024, height: 768 }; // vdi-hv's default framebuffer
const BANNER = `vdi desktop guest vdi-desktop - Linux ${env.kernelRelease} (x86_64)`;
// The shell computes the answer: the echo of the typed line cannot be mistaken for it.
const COMMAND = 'echo vdi-$((6*7))';
const ANSWER = 'vdi-42';

const shot = screenshots('linux');
let chrome, page, screen;
let booted = false; // the first test saw the prompt on the canvas; the second one needs it

before(async () => {
    chrome = await launch();
    page = await newPage(await chrome.user());
});
after(async () => { await chrome?.close(); });

async function overlayText(p) {
    return `${await p.locator('#overlay-title').textContent()}: ` +
        (await p.locator('#overlay-text').textContent()).replace(/\s+/g, ' ').trim();
}

test('the Linux desktop opens in the viewer and shows its console with a shell prompt', async () => {
    const t0 = Date.now();
    await signIn(page, env.user, env.password);
    const card = page.locator(`#desktops article[data-pool="${env.pool}"]`);
    await card.waitFor();
    await shot(page, 'portal');
    const ws = recordWebSockets(page);
    await card.getByRole('link', { name: 'Connect' }).click();
    await page.waitForURL(/\/viewer\.html\?pool=/);
    // "Starting your desktop…" while the host creates it, then connected
    await page.waitForFunction(() => ['connected', 'failed', 'closed'].includes(document.body.dataset.state),
                               null, { timeout: env.bootTimeout });
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
    const font = loadFont(env.font);
    screen = { geo: consoleGeometry(size.width, size.height, font), font, shot };
    // the desktop's first screen (usually the kernel booting) painted on the canvas
    await page.waitForFunction(() => {
        const c = document.querySelector('#screen canvas');
        return c.getContext('2d').getImageData(0, 0, 1, 1).data[3] === 255;
    }, null, { timeout: env.bootTimeout, polling: 250 });
    await shot(page, 'connected');
    const connected = Date.now();
    const seen = await waitForPrompt(page, screen);
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
    const { seen, row } = await expectAnswer(page, screen, COMMAND, ANSWER, 'echo');
    if (seen.lines[row + 1] !== ANSWER)
        console.log(`stale cells right of the answer on the canvas: "${seen.lines[row + 1]}"`);
    await shot(page, 'answered-canvas', { clip: await page.locator('#screen canvas').boundingBox() });
});

test('no page had a script error or a CSP violation', () => {
    assert.deepEqual(page.problems(), []);
});
