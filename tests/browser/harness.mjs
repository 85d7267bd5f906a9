// Shared by the browser tests: the settings the pytest wrapper passes in VDI_* variables,
// headless Debian Chromium through playwright-core, pages that fail the test on a script
// error or a Content-Security-Policy violation, numbered screenshots under
// build/artifacts/browser/<suite>/, sign-in as a person does it, and the stand-in for the
// broker's display gateway (a WebSocket-to-VNC relay) used while the broker has none.
import { mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

function need(name) {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set: run these tests through tests/integration/test_browser_portal.py`);
    return v;
}

export const env = {
    get url() { return need('VDI_URL'); },
    get user() { return need('VDI_USER'); },
    get password() { return need('VDI_PASSWORD'); },
    get displayName() { return need('VDI_DISPLAY_NAME'); },
    get admin() { return need('VDI_ADMIN'); },
    get adminPassword() { return need('VDI_ADMIN_PASSWORD'); },
    get throttledUser() { return need('VDI_THROTTLED_USER'); },
    get maxFailures() { return Number(need('VDI_MAX_FAILURES')); },
    get pools() { return JSON.parse(need('VDI_POOLS')); },
    get hiddenPools() { return JSON.parse(need('VDI_HIDDEN_POOLS')); },
    get deskPool() { return need('VDI_DESK_POOL'); },
    // an automated pool on a real vdi-hostd, or '' when vdi-hostd is not built
    get autoPool() { return process.env.VDI_AUTO_POOL || ''; },
    // whether the broker's /gateway tunnels the display ("yes") or still answers 501
    get brokerGateway() { return process.env.VDI_BROKER_GATEWAY === 'yes'; },
    get serial() { return need('VDI_SERIAL'); },
    get font() { return need('VDI_FONT'); },
    get gateway() { return need('VDI_GATEWAY'); }, // "broker" or "relay"
    get relayTarget() { return need('VDI_RELAY_VNC'); },
    get artifacts() { return need('VDI_ARTIFACTS'); },
    get chromium() { return process.env.VDI_CHROMIUM || '/usr/bin/chromium'; },
};

// One headless Chromium; Playwright starts it on a new, empty temporary profile
// (--user-data-dir) and removes it at close. Each person in a test gets a context
// (separate cookies) from user().
export async function launch() {
    const browser = await chromium.launch({
        executablePath: env.chromium,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
               '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    return {
        browser,
        user: (options = {}) => browser.newContext({
            ignoreHTTPSErrors: true, // the broker's self-signed certificate
            viewport: { width: 1280, height: 860 },
            ...options,
        }),
        close: () => browser.close(),
    };
}

// A page that records script errors and CSP violations; call page.problems() to assert.
export async function newPage(context, viewport) {
    const page = await context.newPage();
    page.setDefaultTimeout(10000); // a step that fails, fails fast
    if (viewport) await page.setViewportSize(viewport);
    const problems = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
        const text = m.text();
        if (/Content Security Policy|Refused to (load|execute|apply|connect)/i.test(text)) {
            problems.push(`CSP: ${text}`);
        }
    });
    page.problems = () => problems;
    return page;
}

export function screenshots(suite) {
    const dir = join(env.artifacts, suite);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    let n = 0;
    return async (page, name, options = {}) => {
        n += 1;
        const file = join(dir, `${String(n).padStart(2, '0')}-${name}.png`);
        await page.screenshot({ path: file, ...options });
        return file;
    };
}

export async function signIn(page, username, password) {
    await page.goto(env.url + '/');
    await page.locator('#username').fill(username);
    await page.locator('#password').fill(password);
    await page.locator('#login-submit').click();
}

// Calls the API from inside the page, as the portal's own scripts do, with whatever
// headers the test chooses (e.g. a forged X-CSRF-Token).
export async function pageFetch(page, method, path, { headers = {}, body } = {}) {
    return page.evaluate(async ({ method, path, headers, body }) => {
        const res = await fetch(path, { method, headers, body, credentials: 'same-origin' });
        let json = null;
        try { json = await res.json(); } catch { /* 204 */ }
        return { status: res.status, json };
    }, { method, path, headers, body });
}

// Answers the page's WebSockets to /gateway in the test with handler(ws). Playwright
// replaces window.WebSocket by `class WebSocket extends WebSocketMock {}`, whose own
// prototype is empty; noVNC checks that send, close, onmessage... are on the object or
// its immediate prototype, so the mock's members are copied down one level.
export async function routeGateway(context, handler) {
    await context.routeWebSocket(/\/gateway\?/, handler);
    await context.addInitScript(() => {
        const proto = window.WebSocket.prototype;
        const mock = Object.getPrototypeOf(proto);
        if (!mock || mock === EventTarget.prototype) return;
        for (const [name, desc] of Object.entries(Object.getOwnPropertyDescriptors(mock))) {
            if (!Object.prototype.hasOwnProperty.call(proto, name)) Object.defineProperty(proto, name, desc);
        }
    });
}

// The stand-in for the broker's display gateway while /gateway has no tunnel: the
// browser still gets its wss:// gateway_url (with the real one-time ticket) from the
// broker, but Playwright answers that WebSocket here and splices it to the desktop's VNC
// port. Returns {urls, sent, close()}: the gateway URLs the viewer opened, the bytes it
// sent, and a way to close every spliced connection from the server side.
export async function gatewayRelay(context, target) {
    const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
    const urls = [];
    const sent = []; // what the viewer sent, as Buffers
    const sockets = new Set();
    await routeGateway(context, (ws) => {
        urls.push(ws.url());
        const sock = net.connect(port, host);
        sockets.add(sock);
        sock.on('data', (d) => ws.send(d));
        sock.on('error', () => {});
        sock.on('close', () => {
            sockets.delete(sock);
            ws.close({ code: 1000, reason: 'desktop closed' });
        });
        ws.onMessage((m) => {
            const data = typeof m === 'string' ? Buffer.from(m, 'latin1') : m;
            sent.push(data);
            sock.write(data);
        });
        ws.onClose(() => sock.destroy());
    });
    return {
        urls,
        sent,
        close() {
            for (const s of sockets) s.destroy();
        },
    };
}

// The bytes a page sends on its (real, not routed) WebSockets, as Buffers.
export function recordSent(page) {
    const sent = [];
    page.on('websocket', (ws) => ws.on('framesent', (f) => sent.push(Buffer.from(f.payload))));
    return sent;
}
