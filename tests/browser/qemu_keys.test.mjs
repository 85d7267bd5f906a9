// Keys on a QEMU desktop (the Linux image of `make guest` under the QEMU engine), through
// the whole product: portal, the broker's gateway, the host's relay. QEMU's VNC server
// maps a keysym to its key and leaves the modifiers to the viewer, so a viewer that sends
// keysyms alone (a phone's on-screen keyboard, noVNC's rfb.sendKey() without a code)
// typed `echo hello-$((6*7))` as `echo hello-49968700` (issue [10]). The host's relay
// adds Shift for keysyms that need it. Checked here, with the shell's answers read from
// the canvas: a command typed as on a US keyboard (Shift held; noVNC sends QEMU extended
// key events, which the relay leaves alone), one typed with Playwright's keyboard.type
// (extended key events of '$' on the 4 key without Shift: the relay adds it), and one
// sent as keysyms alone.
// Run by tests/integration/test_browser_linux_qemu.py.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { env, launch, newPage, recordWebSockets, screenshots, signIn } from './harness.mjs';
import { expectAnswer, typeOnUsKeyboard, waitForPrompt } from './linux_desktop.mjs';
import { consoleGeometry, loadFont } from './screen.mjs';

const SCREEN = { width: 1024, height: 768 }; // vga=0x344 on the kernel command line
const XK_SHIFT_L = 0xffe1;
const XK_RETURN = 0xff0d;

const shot = screenshots('qemu-keys');
let chrome, page, screen, ws;
let booted = false;

before(async () => {
    chrome = await launch();
    page = await newPage(await chrome.user());
});
after(async () => { await chrome?.close(); });

// noVNC's RFB object of the viewer: viewer.js keeps it to itself, so the next key it
// sends is caught on RFB.prototype.sendKey (the same module the viewer imported).
async function catchRfb(p) {
    await p.evaluate(async () => {
        const RFB = (await import('/novnc/core/rfb.js')).default;
        const send = RFB.prototype.sendKey;
        RFB.prototype.sendKey = function (...args) {
            window.vdiTestRfb = this;
            RFB.prototype.sendKey = send;
            return send.apply(this, args);
        };
    });
    await p.keyboard.press('Control'); // a key that types nothing
    await p.waitForFunction(() => !!window.vdiTestRfb);
}

// Keysyms alone, as an on-screen keyboard sends them: rfb.sendKey(keysym, code, down)
// with no code (so no QEMU extended key event) and no Shift.
async function typeKeysyms(p, text) {
    await p.evaluate(async ({ text, ret }) => {
        const rfb = window.vdiTestRfb;
        for (const ch of text) {
            const keysym = ch === '\n' ? ret : ch.codePointAt(0);
            rfb.sendKey(keysym, null, true);
            rfb.sendKey(keysym, null, false);
            await new Promise((resolve) => setTimeout(resolve, 15));
        }
    }, { text, ret: XK_RETURN });
}

// RFB client messages of one kind in what the page sent on the gateway's WebSocket
// (each frame one or more whole messages of noVNC's).
function keyMessages(frames) {
    const keys = [], extended = [];
    for (const f of frames) {
        for (let i = 0; i + 8 <= f.length;) {
            if (f[i] === 4) {
                keys.push({ down: f[i + 1] !== 0, keysym: f.readUInt32BE(i + 4) });
                i += 8;
            } else if (f[i] === 255 && f[i + 1] === 0 && i + 12 <= f.length) {
                extended.push({ down: f.readUInt16BE(i + 2) !== 0, keysym: f.readUInt32BE(i + 4) });
                i += 12;
            } else {
                break; // other messages: not looked into
            }
        }
    }
    return { keys, extended };
}

test('the QEMU desktop opens in the viewer and shows a shell prompt', async () => {
    await signIn(page, env.user, env.password);
    const card = page.locator(`#desktops article[data-pool="${env.pool}"]`);
    await card.waitFor();
    ws = recordWebSockets(page);
    await card.getByRole('link', { name: 'Connect' }).click();
    await page.waitForURL(/\/viewer\.html\?pool=/);
    await page.waitForFunction(() => ['connected', 'failed', 'closed'].includes(document.body.dataset.state),
                               null, { timeout: env.bootTimeout });
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'connected');
    // QEMU starts in VGA text mode; the kernel switches to the VESA mode
    await page.waitForFunction(({ width, height }) => {
        const c = document.querySelector('#screen canvas');
        return c && c.width === width && c.height === height;
    }, SCREEN, { timeout: env.bootTimeout, polling: 500 });
    const font = loadFont(env.font);
    screen = { geo: consoleGeometry(SCREEN.width, SCREEN.height, font), font, shot };
    await waitForPrompt(page, screen);
    await shot(page, 'prompt');
    booted = true;
});

test('typed as on a US keyboard (Shift held): QEMU extended key events, answered', async () => {
    if (!booted) throw new Error('the desktop never showed its prompt (see the first test)');
    await page.locator('#screen canvas').click({ position: { x: 50, y: 50 } });
    const from = ws.sent.length;
    await typeOnUsKeyboard(page, 'echo Shift-$((6*7))');
    await page.keyboard.press('Enter');
    await expectAnswer(page, screen, 'echo Shift-$((6*7))', 'Shift-42', 'keyboard');
    const { extended } = keyMessages(ws.sent.slice(from));
    assert.ok(extended.some((k) => k.down && k.keysym === XK_SHIFT_L),
              'the viewer sent Shift as a QEMU extended key event');
    assert.ok(extended.some((k) => k.down && k.keysym === 0x24), "and '$' the same way");
});

test("Playwright's keyboard.type (the key's code, no Shift): answered, Shift added by the relay", async () => {
    // keyboard.type('$') is key '$' with code Digit4 and no Shift: noVNC sends the 4 key
    // as a QEMU extended key event carrying keysym '$', which alone types '4' in QEMU.
    if (!booted) throw new Error('the desktop never showed its prompt (see the first test)');
    await page.locator('#screen canvas').click({ position: { x: 50, y: 50 } });
    const from = ws.sent.length;
    await page.keyboard.type('echo Hello-$((6*7))');
    await page.keyboard.press('Enter');
    const { extended } = keyMessages(ws.sent.slice(from));
    assert.ok(extended.some((k) => k.down && k.keysym === 0x24), "'$' sent as an extended key event");
    assert.ok(!extended.some((k) => k.keysym === XK_SHIFT_L), 'without Shift');
    await expectAnswer(page, screen, 'echo Hello-$((6*7))', 'Hello-42', 'keyboard-type');
});

test('sent as keysyms alone (no Shift, no scan code): answered, Shift added by the relay', async () => {
    if (!booted) throw new Error('the desktop never showed its prompt (see the first test)');
    await catchRfb(page);
    const from = ws.sent.length;
    await typeKeysyms(page, 'echo Phone-$((6*7))\n');
    const { keys, extended } = keyMessages(ws.sent.slice(from));
    // what the bug needs: plain KeyEvents for '$' and 'P', never a Shift
    assert.ok(keys.some((k) => k.down && k.keysym === 0x24), "'$' sent as a plain KeyEvent");
    assert.ok(keys.some((k) => k.down && k.keysym === 0x50), "'P' sent as a plain KeyEvent");
    assert.ok(!keys.some((k) => k.keysym === XK_SHIFT_L) && extended.length === 0,
              'no Shift and no extended key event sent');
    await expectAnswer(page, screen, 'echo Phone-$((6*7))', 'Phone-42', 'keysyms');
});

test('no page had a script error or a CSP violation', () => {
    assert.deepEqual(page.problems(), []);
});
