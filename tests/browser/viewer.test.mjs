// The in-browser viewer against a real desktop through the broker's own gateway: a user
// connects from the portal, the viewer gets a one-time ticket from the real vdi-broker and
// opens wss://broker/gateway?ticket=... with noVNC; the gateway logs in to the desktop's
// VNC server (vdi-hv, authenticated) with the pool's stored password. The canvas must show
// the demo desktop guest's screen (its terminal read glyph by glyph), typed text must
// reach the guest (its serial mirror) and its answer the canvas; then Ctrl-Alt-Del,
// disconnect and reconnect, an administrator's Disconnect, a second Connect taking the
// session over, a tap on a phone's touch screen, an administrator's and the user's own
// Log off closing the open viewer, and the refusals the viewer has to explain.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { env, launch, newPage, recordWebSockets, screenshots, signIn } from './harness.mjs';
import { BANNER, expectSerial, geometry, loadFont, serial, waitForTerminal } from './screen.mjs';

const shot = screenshots('viewer');
const PHONE = { width: 390, height: 844 };
const pages = []; // every page opened, checked for script errors and CSP violations at the end
let chrome, page, ws, geo, font;
let opened = false; // the first test got the desktop on the canvas; the next ones need it

function needDesktop() {
    if (!opened) throw new Error('the desktop never opened in the viewer (see the first test)');
}

before(async () => {
    chrome = await launch();
    page = await userPage();
    ws = recordWebSockets(page);
    await expectSerial(env.serial, /desktop: ready/);
    geo = geometry(serial(env.serial));
    font = loadFont(env.font);
});
after(async () => { await chrome?.close(); });

// A browser of its own (cookies, window) for one more person or device.
async function userPage(options) {
    const p = await newPage(await chrome.user(options));
    pages.push(p);
    return p;
}

function card(p, pool = env.deskPool) {
    return p.locator(`#desktops article[data-pool="${pool}"]`);
}

async function cardState(p, state, pool = env.deskPool) {
    await p.locator(`#desktops article[data-pool="${pool}"][data-state="${state}"]`).waitFor();
}

async function overlay(p) {
    return {
        title: await p.locator('#overlay-title').textContent(),
        text: (await p.locator('#overlay-text').textContent()).replace(/\s+/g, ' ').trim(),
    };
}

// Waits for the viewer to settle in one of states; returns the overlay's title and text.
async function settled(p, states, timeout = 30000) {
    await p.waitForFunction((s) => s.includes(document.body.dataset.state), states, { timeout });
    return overlay(p);
}

async function expectConnected(p) {
    const state = await settled(p, ['connected', 'failed', 'closed']);
    assert.equal(await p.evaluate(() => document.body.dataset.state), 'connected',
                 `the viewer did not connect: ${state.title}: ${state.text}`);
}

// Connect on the desk pool's card of the portal page p is on; returns the broker's grant
// (ticket, gateway_url, session) as the viewer received it.
async function connectFromPortal(p) {
    await card(p).waitFor();
    const granted = p.waitForResponse((r) => r.request().method() === 'POST' &&
                                      r.url().endsWith(`/api/v1/desktops/${env.deskPool}/connect`) &&
                                      r.status() === 200, { timeout: 30000 });
    await card(p).getByRole('link', { name: 'Connect' }).click();
    await p.waitForURL(/\/viewer\.html\?pool=/);
    const grant = await (await granted).json();
    await expectConnected(p);
    return grant;
}

// The viewer of a session closed by the server: state "closed" with this title.
async function expectClosed(p, title, text) {
    await p.waitForFunction(() => document.body.dataset.state !== 'connected', null, { timeout: 15000 });
    // the viewer first says the connection closed, then why, once it has asked the broker
    await p.waitForFunction((t) => document.querySelector('#overlay-title').textContent === t, title,
                            { timeout: 5000 }).catch(() => {});
    const seen = await overlay(p);
    assert.equal(await p.evaluate(() => document.body.dataset.state), 'closed', `${seen.title}: ${seen.text}`);
    assert.equal(seen.title, title, seen.text);
    assert.match(seen.text, text);
    assert.equal(await p.getByRole('button', { name: 'Reconnect' }).isVisible(), true);
    assert.equal(await p.locator('#btn-disconnect').isDisabled(), true);
}

// The administrator (another person, another browser) on the admin console, on the row of
// the user's session in the desk pool.
async function adminSessionRow() {
    const ap = await userPage();
    await signIn(ap, env.admin, env.adminPassword);
    await ap.locator('#nav-admin').click();
    const row = ap.locator('#admin-sessions tbody tr').filter({ hasText: env.user }).filter({ hasText: env.deskPool });
    await row.waitFor();
    return { ap, row };
}

test('connect opens the desktop through the gateway, showing its screen', async () => {
    await signIn(page, env.user, env.password);
    const grant = await connectFromPortal(page);
    const host = new URL(env.url).host;
    assert.match(grant.gateway_url, new RegExp(`^wss://${host.replace(/\./g, '\\.')}/gateway\\?ticket=[0-9a-f]{32}$`));
    assert.deepEqual(ws.urls, [grant.gateway_url], 'the viewer opened the gateway_url the broker issued, once');
    // The viewer logged in to the gateway with VNC authentication (security type 2, a
    // 16-byte DES response): the desktop's own password never reaches the browser.
    const out = Buffer.concat(ws.sent);
    assert.equal(out.subarray(0, 13).toString('latin1'), 'RFB 003.008\n\x02',
                 `the viewer's handshake: ${out.subarray(0, 40).toString('hex')}`);
    assert.ok(out.length >= 13 + 16);
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
    const before = Buffer.concat(ws.sent).length;
    await page.locator('#btn-cad').click();
    // RFB key events (plain or QEMU extended) for Control_L, Alt_L and Delete went out
    await new Promise((resolve) => setTimeout(resolve, 300));
    const keys = Buffer.concat(ws.sent).subarray(before);
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
    await cardState(page, 'disconnected');
    await shot(page, 'portal-disconnected');
});

test('reconnecting returns to the same desktop; an administrator disconnecting it is reported', async () => {
    needDesktop();
    const grant = await connectFromPortal(page);
    const seen = await waitForTerminal(page, geo, font, (l) => l.includes('still here'), 'the earlier output');
    assert.equal(seen.lines[0], BANNER);
    // the administrator disconnects the session: the gateway drops the viewer
    const { ap, row } = await adminSessionRow();
    assert.equal(await row.locator('.row-actions').getAttribute('data-session'), grant.session);
    await row.getByRole('button', { name: 'Disconnect' }).click();
    await expectClosed(page, 'You were disconnected', /session keeps running/i);
    await shot(page, 'disconnected-by-admin');
    await ap.context().close();
    // Reconnect on the viewer's own overlay
    await page.getByRole('button', { name: 'Reconnect' }).click();
    await expectConnected(page);
    await waitForTerminal(page, geo, font, (l) => l.includes('still here'), 'the earlier output again');
    await shot(page, 'reconnected');
});

let second; // the same user's viewer in another browser, which took the session over
test('a second Connect takes the session over and the first viewer is told', async () => {
    needDesktop();
    second = await userPage();
    await signIn(second, env.user, env.password);
    await connectFromPortal(second);
    await expectClosed(page, 'Your desktop was opened elsewhere', /another window or device/);
    await shot(page, 'taken-over');
    await waitForTerminal(second, geo, font, (l) => l.includes('still here'), 'the session so far');
    await second.locator('#screen canvas').click({ position: { x: 50, y: 50 } });
    const mark = serial(env.serial).length;
    await second.keyboard.type('echo from the second window');
    await second.keyboard.press('Enter');
    await expectSerial(env.serial, /desktop: from the second window\r?\n/, { from: mark });
    await waitForTerminal(second, geo, font, (l) => l.includes('from the second window'), 'the new output');
    await shot(second, 'taking-over');
});

let phone; // the same user on a phone, which took the session over from `second`
test('a tap on a phone\'s touch screen reaches the desktop as a click', async () => {
    needDesktop();
    phone = await userPage({ viewport: PHONE, hasTouch: true, isMobile: true });
    await signIn(phone, env.user, env.password);
    await connectFromPortal(phone);
    await expectClosed(second, 'Your desktop was opened elsewhere', /another window or device/);
    await waitForTerminal(phone, geo, font, (l) => l.includes('from the second window'), 'the session so far');
    await shot(phone, 'phone-connected');
    // the whole desktop scaled into the phone's width
    const canvas = phone.locator('#screen canvas');
    const box = await canvas.boundingBox();
    assert.ok(box.width <= PHONE.width + 1 && box.width >= PHONE.width - 2, `canvas ${box.width} wide on a ${PHONE.width} screen`);
    // A tap off the centre, so that a wrong scale or offset shows: the guest reports the
    // button going down and up at the framebuffer point under the finger.
    const at = { x: Math.round(box.width * 0.3), y: Math.round(box.height * 0.65) };
    const expected = { x: Math.round(at.x * geo.width / box.width), y: Math.round(at.y * geo.height / box.height) };
    const mark = serial(env.serial).length;
    await canvas.tap({ position: at });
    const down = await expectSerial(env.serial, /desktop: pointer x=(\d+) y=(\d+) buttons=1 via=(\w+)/, { from: mark });
    const up = await expectSerial(env.serial, /desktop: pointer x=(\d+) y=(\d+) buttons=0 via=(\w+)/, { from: mark });
    for (const [what, m] of [['down', down], ['up', up]]) {
        const [x, y] = [Number(m[1]), Number(m[2])];
        assert.ok(Math.abs(x - expected.x) <= 3 && Math.abs(y - expected.y) <= 3,
                  `button ${what} at ${x},${y} via ${m[3]}; the finger was over ${expected.x},${expected.y}`);
    }
    await shot(phone, 'phone-tapped');
});

test('an administrator logging the session off closes the open viewer', async () => {
    needDesktop();
    const { ap, row } = await adminSessionRow();
    const session = await row.locator('.row-actions').getAttribute('data-session');
    const answer = ap.waitForResponse((r) => r.request().method() === 'POST' && /\/logoff$/.test(r.url()));
    await row.getByRole('button', { name: 'Log off' }).click();
    await row.getByRole('button', { name: 'Confirm' }).click();
    const res = await answer;
    assert.equal(new URL(res.url()).pathname, `/api/v1/admin/sessions/${session}/logoff`);
    assert.equal(res.status(), 204);
    await ap.context().close();
    await expectClosed(phone, 'Your session has ended', /logged off/);
    await shot(phone, 'phone-logged-off');
    await phone.getByRole('link', { name: 'Back to my desktops' }).click();
    await cardState(phone, 'ready');
    assert.equal(await card(phone).locator('[data-action=logoff]').count(), 0);
    await shot(phone, 'phone-portal-after-logoff');
});

test('logging off from the portal closes the viewer open in another tab', async () => {
    needDesktop();
    // the first window's Reconnect now starts a new session
    await page.getByRole('button', { name: 'Reconnect' }).click();
    await expectConnected(page);
    await waitForTerminal(page, geo, font, (l) => l[0] === BANNER, 'the desktop');
    const tab = await newPage(page.context());
    pages.push(tab);
    await tab.goto(env.url + '/');
    await cardState(tab, 'running');
    await card(tab).locator('[data-action=logoff]').click();
    await card(tab).locator('[data-action=logoff]').click();
    await cardState(tab, 'ready');
    assert.equal(await card(tab).locator('[data-action=logoff]').count(), 0);
    await shot(tab, 'portal-logged-off');
    await expectClosed(page, 'Your session has ended', /logged off/);
    await shot(page, 'logged-off');
    await tab.close();
});

test('the viewer explains a desktop it cannot open', async () => {
    await page.goto(env.url + '/viewer.html?pool=no-such-pool');
    await page.waitForFunction(() => document.body.dataset.state === 'failed');
    assert.equal(await page.locator('#overlay-title').textContent(), 'Cannot open this desktop');
    assert.match(await page.locator('#overlay-text').textContent(), /No such desktop|not entitled/);
    await shot(page, 'no-such-desktop');
});

test('the viewer says so when the gateway cannot reach the desktop', async () => {
    // "office" is a pool whose desktop nobody listens for: the broker grants a ticket, the
    // gateway answers the WebSocket upgrade 502 desktop_unreachable.
    const p = await userPage();
    await signIn(p, env.user, env.password);
    const urls = recordWebSockets(p).urls;
    await card(p, 'office').getByRole('link', { name: 'Connect' }).click();
    const seen = await settled(p, ['connected', 'failed', 'closed']);
    assert.equal(await p.evaluate(() => document.body.dataset.state), 'failed', `${seen.title}: ${seen.text}`);
    assert.equal(seen.title, 'Could not connect to your desktop');
    assert.match(urls[0] || '', /\/gateway\?ticket=[0-9a-f]{32}$/, 'the viewer did try the gateway');
    assert.equal(await p.getByRole('button', { name: 'Reconnect' }).isVisible(), true);
    await shot(p, 'desktop-unreachable');
    // the session the refused connection left behind is the user's to log off
    await p.getByRole('link', { name: 'Back to my desktops' }).click();
    await card(p, 'office').locator('[data-action=logoff]').click();
    await card(p, 'office').locator('[data-action=logoff]').click();
    await card(p, 'office').locator('[data-action=logoff]').waitFor({ state: 'detached' });
});

test('a desktop that fails to start is explained with its cause, and can be retried',
     { skip: !env.brokenPool && 'no vdi-hostd' }, async () => {
    // The broken pool's template is a bzImage cut short: QEMU refuses it at once. The
    // viewer shows the broker's stages, then the cause from the VMM's own error line.
    const p = await userPage();
    await signIn(p, env.user, env.password);
    await card(p, env.brokenPool).getByRole('link', { name: 'Connect' }).click();
    await p.waitForFunction(() => ['starting', 'failed'].includes(document.body.dataset.state));
    const waiting = Date.now();
    if (await p.evaluate(() => document.body.dataset.state) === 'starting') {
        const stage = await p.evaluate(() => document.querySelector('#overlay').dataset.stage);
        assert.match(stage, /^(placing|booting|almost_ready|waiting)$/);
        await shot(p, 'desktop-starting');
    }
    const seen = await settled(p, ['failed', 'connected'], 60000);
    console.log(`the failure was shown ${((Date.now() - waiting) / 1000).toFixed(1)} s after the wait began`);
    assert.equal(seen.title, 'Your desktop failed to start', seen.text);
    assert.match(seen.text, /invalid kernel header/, 'the VMM\'s own reason reaches the user');
    const retry = p.getByRole('button', { name: 'Reconnect' });
    assert.equal(await retry.isVisible(), true);
    await shot(p, 'desktop-failed');
    // Retry asks the broker again: starting (its pool backs off) or failed again, with a
    // reason either way; never a spinner without an end.
    await retry.click();
    const again = await settled(p, ['failed'], 60000);
    assert.equal(again.title, 'Your desktop failed to start');
    // the session its attempts left behind is the user's to log off
    await p.getByRole('link', { name: 'Back to my desktops' }).click();
    await card(p, env.brokenPool).locator('[data-action=logoff]').click();
    await card(p, env.brokenPool).locator('[data-action=logoff]').click();
    await card(p, env.brokenPool).locator('[data-action=logoff]').waitFor({ state: 'detached' });
});

test('no page had a script error or a CSP violation', () => {
    for (const p of pages) assert.deepEqual(p.problems(), []);
});
