// The in-browser viewer against a real desktop: a user connects from the portal, the
// viewer gets a ticket from the real vdi-broker and opens its gateway_url with noVNC; the
// canvas must show the demo desktop guest's screen (its terminal read glyph by glyph),
// typed text must reach the guest (its serial mirror) and its answer the canvas; then
// Ctrl-Alt-Del, disconnect, reconnect to the same session, a server-side close, log off.
// VDI_GATEWAY=broker goes through the broker's own /gateway; VDI_GATEWAY=relay answers
// the gateway's WebSocket in the test and splices it to the desktop's VNC port, the
// stand-in used while the broker's gateway has no display tunnel.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { env, gatewayRelay, launch, newPage, recordSent, routeGateway, screenshots, signIn } from './harness.mjs';
import { BANNER, expectSerial, geometry, loadFont, serial, waitForTerminal } from './screen.mjs';

const shot = screenshots(`viewer-${env.gateway}`);
let chrome, context, page, relay, geo, font, sent;
let opened = false; // the first test got the desktop on the canvas; the next ones need it

function needDesktop() {
    if (!opened) throw new Error('the desktop never opened in the viewer (see the first test)');
}

before(async () => {
    chrome = await launch();
    context = await chrome.user();
    if (env.gateway === 'relay') relay = await gatewayRelay(context, env.relayTarget);
    page = await newPage(context);
    sent = relay ? relay.sent : recordSent(page);
    await expectSerial(env.serial, /desktop: ready/);
    geo = geometry(serial(env.serial));
    font = loadFont(env.font);
});
after(async () => { await chrome?.close(); });

async function connectFromPortal() {
    const card = page.locator(`#desktops article[data-pool="${env.deskPool}"]`);
    await card.waitFor();
    await card.getByRole('link', { name: 'Connect' }).click();
    await page.waitForURL(/\/viewer\.html\?pool=/);
    await page.waitForFunction(() => ['connected', 'failed', 'closed'].includes(document.body.dataset.state),
                               null, { timeout: 30000 });
    const state = await page.evaluate(() => document.body.dataset.state);
    const why = (await page.locator('#overlay').textContent()).replace(/\s+/g, ' ').trim();
    assert.equal(state, 'connected', `the viewer did not connect: ${why}`);
}

test('connect opens the desktop in the browser, showing its screen', async () => {
    await signIn(page, env.user, env.password);
    await connectFromPortal();
    if (relay) {
        assert.equal(relay.urls.length, 1);
        assert.match(relay.urls[0], new RegExp(`^wss://${new URL(env.url).host}/gateway\\?ticket=[0-9a-f]{32}$`),
                     'the viewer opens the gateway_url the broker issued');
    }
    const seen = await waitForTerminal(page, geo, font, (l) => l[0] === BANNER, 'the banner');
    assert.deepEqual([seen.width, seen.height], [geo.width, geo.height], 'canvas at the guest framebuffer size');
    assert.match(seen.lines[1], /^\$/, 'the prompt');
    assert.equal(await page.locator('#btn-cad').isEnabled(), true);
    assert.equal(await page.locator('#overlay').isVisible(), false);
    // the canvas fills the window below the toolbar (scaled to fit)
    const box = await page.locator('#screen canvas').boundingBox();
    const view = page.viewportSize();
    assert.ok(box.width >= view.width - 2 || box.height >= view.height - 44 - 2,
              `canvas ${box.width}x${box.height} fills ${view.width}x${view.height}`);
    await shot(page, 'connected');
    opened = true;
});

test('typed text reaches the desktop and its answer shows on the canvas', async () => {
    needDesktop();
    await page.locator('#screen canvas').click({ position: { x: 50, y: 50 } });
    const mark = serial(env.serial).length;
    await page.keyboard.type('echo hello from the browser');
    await page.keyboard.press('Enter');
    await expectSerial(env.serial, /desktop: \$ echo hello from the browser\r?\n/, { from: mark });
    await expectSerial(env.serial, /desktop: hello from the browser\r?\n/, { from: mark });
    // '*' as a person types it on a US keyboard: Shift held with 8 (vdi-hv maps keysyms
    // to keys and takes the modifiers from the viewer, as on a real keyboard)
    await page.keyboard.type('calc 6');
    await page.keyboard.press('Shift+Digit8');
    await page.keyboard.type('7');
    await page.keyboard.press('Enter');
    await expectSerial(env.serial, /desktop: 42\r?\n/, { from: mark });
    const seen = await waitForTerminal(page, geo, font, (l) => l.includes('42'), 'the answer 42');
    const i = seen.lines.indexOf('$ echo hello from the browser');
    assert.ok(i > 0, `the command on the canvas:\n${seen.lines.slice(0, 8).join('\n')}`);
    assert.deepEqual(seen.lines.slice(i, i + 4),
                     ['$ echo hello from the browser', 'hello from the browser', '$ calc 6*7', '42']);
    // a modifier: Ctrl-C in the guest's terminal
    await page.keyboard.press('Control+c');
    await expectSerial(env.serial, /desktop: \^C\r?\n/, { from: mark });
    await shot(page, 'typed');
});

test('the toolbar sends Ctrl-Alt-Del and disconnects, keeping the session', async () => {
    needDesktop();
    const mark = serial(env.serial).length;
    const before = Buffer.concat(sent).length;
    await page.locator('#btn-cad').click();
    // RFB key events (plain or QEMU extended) for Control_L, Alt_L and Delete went out
    await new Promise((resolve) => setTimeout(resolve, 300));
    const keys = Buffer.concat(sent).subarray(before);
    const at = (keysym) => keys.indexOf(Buffer.from([0, 0, keysym >> 8, keysym & 255]));
    assert.ok(at(0xffe3) >= 0 && at(0xffe3) < at(0xffe9) && at(0xffe9) < at(0xffff),
              `Ctrl, Alt, Delete in order in what the viewer sent: ${keys.toString('hex').slice(0, 200)}`);
    await page.keyboard.type('echo still here');
    await page.keyboard.press('Enter');
    await expectSerial(env.serial, /desktop: still here\r?\n/, { from: mark });
    await page.locator('#btn-disconnect').click();
    await page.waitForFunction(() => document.body.dataset.state === 'closed');
    assert.equal(await page.locator('#overlay-title').textContent(), 'Disconnected');
    assert.match(await page.locator('#overlay-text').textContent(), /session keeps running/);
    await shot(page, 'disconnected');
    await page.getByRole('link', { name: 'Back to my desktops' }).click();
    await page.locator(`#desktops article[data-pool="${env.deskPool}"][data-state="disconnected"]`).waitFor();
    await shot(page, 'portal-disconnected');
});

test('reconnecting returns to the same desktop; a server-side close is reported', async () => {
    needDesktop();
    await connectFromPortal();
    const seen = await waitForTerminal(page, geo, font, (l) => l.includes('still here'), 'the earlier output');
    assert.equal(seen.lines[0], BANNER);
    if (relay) {
        relay.close(); // the gateway drops the connection
    } else {
        // an administrator disconnects the session: the gateway must drop the viewer
        const admin = await chrome.user();
        const ap = await newPage(admin);
        await signIn(ap, env.admin, env.adminPassword);
        await ap.locator('#nav-admin').click();
        const row = ap.locator('#admin-sessions tbody tr', { hasText: env.user });
        await row.getByRole('button', { name: 'Disconnect' }).click();
        await admin.close();
    }
    await page.waitForFunction(() => document.body.dataset.state !== 'connected', null, { timeout: 15000 });
    const title = await page.locator('#overlay-title').textContent();
    assert.match(title, /was closed|was lost/, title);
    assert.equal(await page.getByRole('button', { name: 'Reconnect' }).isVisible(), true);
    await shot(page, 'closed-by-server');
});

test('log off from the portal ends the session', async () => {
    await page.goto(env.url + '/');
    const card = page.locator(`#desktops article[data-pool="${env.deskPool}"]`);
    await card.locator('[data-action=logoff]').click();
    await card.locator('[data-action=logoff]').click();
    await page.locator(`#desktops article[data-pool="${env.deskPool}"][data-state="ready"]`).waitFor();
    assert.equal(await card.locator('[data-action=logoff]').count(), 0);
    await shot(page, 'logged-off');
    assert.deepEqual(page.problems(), []);
});

test('the viewer explains a desktop it cannot open', async () => {
    await page.goto(env.url + '/viewer.html?pool=no-such-pool');
    await page.waitForFunction(() => document.body.dataset.state === 'failed');
    assert.equal(await page.locator('#overlay-title').textContent(), 'Cannot open this desktop');
    assert.match(await page.locator('#overlay-text').textContent(), /No such desktop|not entitled/);
    await shot(page, 'no-such-desktop');
    assert.deepEqual(page.problems(), []);
});

test('the viewer says so when the gateway refuses the connection', async () => {
    // Another browser profile whose gateway WebSocket is refused at once.
    const other = await chrome.user();
    await routeGateway(other, (ws) => ws.close({ code: 1008, reason: 'refused' }));
    const p = await newPage(other);
    await signIn(p, env.user, env.password);
    await p.locator(`#desktops article[data-pool="${env.deskPool}"]`).getByRole('link', { name: 'Connect' }).click();
    await p.waitForFunction(() => document.body.dataset.state === 'failed', null, { timeout: 15000 });
    assert.equal(await p.locator('#overlay-title').textContent(), 'Could not connect to your desktop');
    assert.equal(await p.getByRole('button', { name: 'Reconnect' }).isVisible(), true);
    await shot(p, 'gateway-refused');
    assert.deepEqual(p.problems(), []);
    await other.close();
});
