// Shared by the browser tests: the settings the pytest wrapper passes in VDI_* variables,
// headless Debian Chromium through playwright-core, pages that fail the test on a script
// error or a Content-Security-Policy violation, numbered screenshots under
// build/artifacts/browser/<suite>/, sign-in as a person does it, and what a page's
// WebSockets open and send. No stand-ins: the viewer talks to the broker's own gateway.
import { mkdirSync, rmSync } from 'node:fs';
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
    // a user whose password the tests change
    get passwordUser() { return need('VDI_PASSWORD_USER'); },
    get passwordUserPassword() { return need('VDI_PASSWORD_USER_PASSWORD'); },
    get maxFailures() { return Number(need('VDI_MAX_FAILURES')); },
    get pools() { return JSON.parse(need('VDI_POOLS')); },
    get hiddenPools() { return JSON.parse(need('VDI_HIDDEN_POOLS')); },
    get deskPool() { return need('VDI_DESK_POOL'); },
    // an automated pool on a real vdi-hostd, or '' when vdi-hostd is not built
    get autoPool() { return process.env.VDI_AUTO_POOL || ''; },
    // an automated pool whose template makes its VMM fail at once, or ''
    get brokenPool() { return process.env.VDI_BROKEN_POOL || ''; },
    // an automated pool whose desktops keep failing (degraded), or ''
    get degradedPool() { return process.env.VDI_DEGRADED_POOL || ''; },
    // an automated pool whose template no host could check, or ''
    get uncheckedPool() { return process.env.VDI_UNCHECKED_POOL || ''; },
    // the Linux desktop tests (tests/integration/linux_desktop.py)
    get pool() { return need('VDI_POOL'); },
    get kernelRelease() { return need('VDI_KERNEL_RELEASE'); },
    get bootTimeout() { return Number(process.env.VDI_BOOT_TIMEOUT_MS || 240000); },
    get serial() { return need('VDI_SERIAL'); },
    get font() { return need('VDI_FONT'); },
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

// The WebSockets a page opens (their URLs) and the bytes it sends on them, as Buffers:
// what the viewer says to the gateway, seen from the browser's side.
export function recordWebSockets(page) {
    const urls = [];
    const sent = [];
    page.on('websocket', (ws) => {
        urls.push(ws.url());
        ws.on('framesent', (f) => sent.push(Buffer.from(f.payload)));
    });
    return { urls, sent };
}
