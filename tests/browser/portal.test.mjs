// The portal as people use it, in headless Chromium against the real vdi-broker (started
// by tests/integration/test_browser_portal.py): sign-in errors (wrong password,
// throttling), the desktops a user is entitled to with their state and Connect /
// Disconnect / Log off, CSRF protection seen from the page, the admin console (and its
// absence for others), sign-out, and a phone-sized layout. Screenshots of each step go to
// build/artifacts/browser/portal/.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { env, launch, newPage, pageFetch, screenshots, signIn } from './harness.mjs';

let chrome;
const shot = screenshots('portal');
const PHONE = { width: 390, height: 844 };

before(async () => { chrome = await launch(); });
after(async () => { await chrome?.close(); });

async function freshPage(viewport) {
    const context = await chrome.user();
    return newPage(context, viewport);
}

function card(page, pool) {
    return page.locator(`#desktops article[data-pool="${pool}"]`);
}

async function expectState(page, pool, state) {
    await page.locator(`#desktops article[data-pool="${pool}"][data-state="${state}"]`)
        .waitFor({ timeout: 10000 });
}

test('the sign-in page asks for a user name and password', async () => {
    const page = await freshPage();
    await page.goto(env.url + '/');
    await page.locator('#login-form').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#view-desktops').isVisible(), false);
    assert.equal(await page.locator('#nav').isVisible(), false);
    assert.match(await page.title(), /vdi/);
    await shot(page, 'login');
    const phone = await freshPage(PHONE);
    await phone.goto(env.url + '/');
    await phone.locator('#login-form').waitFor({ state: 'visible' });
    const box = await phone.locator('#login-form').boundingBox();
    assert.ok(box.width <= PHONE.width, `the form (${box.width}px) fits a phone`);
    await shot(phone, 'login-phone');
    assert.deepEqual([...page.problems(), ...phone.problems()], []);
});

test('a wrong password is refused with a visible message', async () => {
    const page = await freshPage();
    await signIn(page, env.user, 'not-the-password');
    const error = page.locator('#login-error');
    await error.waitFor({ state: 'visible' });
    assert.equal(await error.textContent(), 'Wrong user name or password.');
    assert.equal(await page.locator('#password').inputValue(), '', 'the password field is cleared');
    assert.equal(await page.locator('#view-desktops').isVisible(), false);
    const session = await pageFetch(page, 'GET', '/api/v1/session');
    assert.equal(session.status, 401);
    await shot(page, 'wrong-password');
    assert.deepEqual(page.problems(), []);
});

test('repeated failures are throttled with the time to wait', async () => {
    const page = await freshPage();
    const error = page.locator('#login-error');
    for (let i = 0; i < env.maxFailures; i++) {
        await signIn(page, env.throttledUser, `wrong-${i}`);
        await page.waitForFunction(() => document.querySelector('#login-error').textContent.includes('Wrong'));
    }
    await signIn(page, env.throttledUser, 'wrong-again');
    await page.waitForFunction(() => /Too many attempts/.test(document.querySelector('#login-error').textContent));
    const text = await error.textContent();
    const m = text.match(/^Too many attempts, try again in (\d+) s\.$/);
    assert.ok(m, `throttling message: ${text}`);
    assert.ok(Number(m[1]) > 0 && Number(m[1]) <= 600, text);
    assert.equal(await page.locator('#login-submit').isDisabled(), true, 'sign-in waits');
    await shot(page, 'throttled');
    assert.deepEqual(page.problems(), []);
});

test('a user sees the desktops they are entitled to, with their state', async () => {
    const page = await freshPage();
    await signIn(page, env.user, env.password);
    await page.locator('#desktops article').first().waitFor();
    assert.equal(await page.locator('#account-name').textContent(), env.displayName);
    assert.equal(await page.locator('#nav-admin').isVisible(), false, 'no admin link for users');
    const shown = await page.locator('#desktops article').evaluateAll(
        (cards) => cards.map((c) => [c.dataset.pool, c.dataset.state]));
    assert.deepEqual(shown.map(([id]) => id).sort(), Object.keys(env.pools).sort());
    for (const hidden of env.hiddenPools) {
        assert.ok(!shown.some(([id]) => id === hidden), `${hidden} is not shown`);
    }
    for (const [id, state] of shown) {
        const want = env.pools[id];
        assert.equal(state, want.state, `state of ${id}`);
        assert.equal(await card(page, id).locator('h2').textContent(), want.name);
        const badge = await card(page, id).locator('[data-role=state]').textContent();
        assert.ok(badge.length > 0);
        if (want.reason) {
            assert.equal(await card(page, id).locator('[data-role=detail]').textContent(), want.reason);
            assert.equal(await card(page, id).getByRole('button', { name: 'Connect' }).isDisabled(), true);
        } else {
            assert.equal(await card(page, id).getByRole('link', { name: 'Connect' }).getAttribute('href'),
                         `/viewer.html?pool=${id}`);
        }
    }
    await shot(page, 'desktops');
    assert.deepEqual(page.problems(), []);
});

test('a session shows Disconnect and Log off, which work', async () => {
    const page = await freshPage();
    await signIn(page, env.user, env.password);
    await page.locator('#desktops article').first().waitFor();
    const pool = Object.keys(env.pools).find((id) => id !== env.deskPool && !env.pools[id].reason);
    // A connect made by the page (as the viewer does) opens a session on the desktop.
    const csrf = (await pageFetch(page, 'GET', '/api/v1/session')).json.csrf_token;
    const grant = await pageFetch(page, 'POST', `/api/v1/desktops/${pool}/connect`, {
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, body: '{}' });
    assert.equal(grant.status, 200, JSON.stringify(grant.json));
    assert.match(grant.json.gateway_url, /^wss:\/\/[^/]+\/gateway\?ticket=[0-9a-f]{32}$/);
    await page.locator('#desktops-refresh').click();
    await expectState(page, pool, 'running');
    const c = card(page, pool);
    await shot(page, 'desktop-in-use');
    await c.getByRole('button', { name: 'Disconnect' }).click();
    await expectState(page, pool, 'disconnected');
    assert.match(await page.locator('#desktops-message').textContent(), /Disconnected from/);
    assert.equal(await c.getByRole('button', { name: 'Disconnect' }).count(), 0);
    await shot(page, 'desktop-disconnected');
    const logoff = c.getByRole('button', { name: 'Log off' });
    await logoff.click();
    assert.equal(await c.locator('[data-action=logoff]').textContent(), 'Confirm log off',
                 'log off asks once more');
    await c.locator('[data-action=logoff]').click();
    await expectState(page, pool, 'ready');
    assert.equal(await c.locator('[data-action=logoff]').count(), 0);
    assert.match(await page.locator('#desktops-message').textContent(), /Logged off from/);
    await shot(page, 'desktop-logged-off');
    assert.deepEqual(page.problems(), []);
});

const NO_HOSTD = 'vdi-hostd is not built: no automated pool';

test('a desktop being created shows its progress, then opens in the viewer', { skip: !env.autoPool && NO_HOSTD }, async () => {
    const pool = env.autoPool;
    const page = await freshPage();
    await signIn(page, env.user, env.password);
    await page.locator(`#desktops article[data-pool="${pool}"]`).waitFor();
    // Seen by the viewer: the first connect answers 202 while the host creates the desktop.
    const states = [];
    await page.exposeFunction('vdiState', (s) => states.push(s));
    await page.addInitScript(() => {
        new MutationObserver(() => window.vdiState(document.body.dataset.state))
            .observe(document, { subtree: true, attributes: true, attributeFilter: ['data-state'] });
    });
    await card(page, pool).getByRole('link', { name: 'Connect' }).click();
    await page.waitForFunction(() => document.body.dataset.state === 'starting', null, { timeout: 10000 });
    // the broker's stage: placing (no host has it yet), booting, almost ready
    const stage = await page.evaluate(() => document.querySelector('#overlay').dataset.stage);
    assert.match(stage, /^(placing|booting|almost_ready)$/);
    assert.equal(await page.locator('#overlay-title').textContent(),
                 { placing: 'Preparing your desktop…', booting: 'Starting your desktop…',
                   almost_ready: 'Your desktop is almost ready…' }[stage]);
    await shot(page, 'viewer-starting');
    await page.waitForFunction(() => ['connected', 'failed'].includes(document.body.dataset.state), null,
                               { timeout: 40000 });
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'connected',
                 await page.locator('#overlay').textContent());
    // the guest's screen arrives through the gateway and the host's relay: the canvas at
    // its size, painted in several colours
    await page.waitForFunction(() => {
        const c = document.querySelector('#screen canvas');
        if (!c || c.width !== 1024 || c.height !== 768) return false;
        const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
        const colours = new Set();
        for (let i = 0; i < data.length; i += 4 * 997) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
        return colours.size >= 4;
    }, null, { timeout: 15000 });
    assert.deepEqual(states.filter((s, i) => s !== states[i - 1]).slice(0, 3), ['connecting', 'starting', 'connecting']);
    await shot(page, 'viewer-after-start');
    // the portal: the session on the new desktop, which Log off ends
    await page.goto(env.url + '/');
    await page.locator(`#desktops article[data-pool="${pool}"][data-state="running"], ` +
                       `#desktops article[data-pool="${pool}"][data-state="disconnected"]`).waitFor();
    await card(page, pool).locator('[data-action=logoff]').click();
    await card(page, pool).locator('[data-action=logoff]').click();
    await page.locator(`#desktops article[data-pool="${pool}"] [data-action=logoff]`).waitFor({ state: 'detached' });
    assert.deepEqual(page.problems(), []);
});

test('a forged or missing CSRF token is refused', async () => {
    const page = await freshPage();
    await signIn(page, env.user, env.password);
    await page.locator('#desktops article').first().waitFor();
    const json = { 'Content-Type': 'application/json' };
    const forged = await pageFetch(page, 'POST', `/api/v1/desktops/${env.deskPool}/connect`,
                                   { headers: { ...json, 'X-CSRF-Token': 'forged-token-0123456789' }, body: '{}' });
    assert.equal(forged.status, 403);
    assert.equal(forged.json.code, 'csrf');
    const missing = await pageFetch(page, 'POST', `/api/v1/desktops/${env.deskPool}/connect`,
                                    { headers: json, body: '{}' });
    assert.equal(missing.status, 403);
    const logout = await pageFetch(page, 'POST', '/api/v1/logout', { headers: { ...json, 'X-CSRF-Token': 'x' } });
    assert.equal(logout.status, 403);
    assert.equal((await pageFetch(page, 'GET', '/api/v1/session')).status, 200, 'still signed in');
    // No session was opened by the refused requests.
    const pools = (await pageFetch(page, 'GET', '/api/v1/desktops')).json.pools;
    assert.equal(pools.find((p) => p.id === env.deskPool).session, null);
    assert.deepEqual(page.problems(), []);
});

test('administrators get the admin console; users do not', async () => {
    const user = await freshPage();
    await signIn(user, env.user, env.password);
    await user.locator('#desktops article').first().waitFor();
    const csrf = (await pageFetch(user, 'GET', '/api/v1/session')).json.csrf_token;
    const pool = Object.keys(env.pools).find((id) => id !== env.deskPool && !env.pools[id].reason);
    const grant = await pageFetch(user, 'POST', `/api/v1/desktops/${pool}/connect`, {
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, body: '{}' });
    assert.equal(grant.status, 200);
    await user.goto(env.url + '/#admin');
    await user.locator('#view-desktops').waitFor({ state: 'visible' });
    assert.equal(await user.locator('#view-admin').isVisible(), false);
    assert.equal((await pageFetch(user, 'GET', '/api/v1/admin/sessions')).status, 403);

    const page = await freshPage({ width: 1366, height: 1000 });
    await signIn(page, env.admin, env.adminPassword);
    await page.locator('#nav-admin').waitFor({ state: 'visible' });
    await page.locator('#nav-admin').click();
    await page.locator('#admin-sessions table').waitFor();
    // hosts with their state and load
    const hosts = page.locator('#admin-hosts tbody tr');
    assert.match(await hosts.filter({ hasText: 'dc2-host7' }).textContent(), /Down/);
    if (env.autoPool) {
        const up = await hosts.filter({ hasText: 'dc1-host1' }).textContent();
        assert.match(up, /Up/);
        assert.match(up, /\d+\.\d GiB/, 'free memory shown');
    }
    // every pool, not only the admin's own
    const pools = await page.locator('#admin-pools tbody tr code').allTextContents();
    for (const id of [...Object.keys(env.pools), ...env.hiddenPools]) assert.ok(pools.includes(id), `pool ${id} listed`);
    // a pool no host can run says so, and why: its only allowed host never reported, or
    // cannot run its engine (which host, and why)
    for (const [id, want] of Object.entries(env.pools)) {
        if (want.state !== 'unavailable' || want.reason?.startsWith('All desktops')) continue;
        const health = page.locator('#admin-pools tbody tr', { hasText: id }).locator('[data-role=health]');
        assert.equal(await health.getAttribute('data-state'), 'unavailable');
        assert.match(await health.textContent(), want.reason.startsWith('No host')
            ? /^Unavailable.*no host is up/ : /^Unavailable.*host-a: vdi-hv: /);
    }
    // a template no host could check yet: said under the pool's state
    if (env.uncheckedPool) {
        const warning = page.locator('#admin-pools tbody tr', { hasText: env.uncheckedPool })
            .locator('[data-role=template-warning]');
        assert.match(await warning.textContent(), /^template not checked: /);
    }
    // a pool whose desktops keep failing turns Degraded, with the last cause (the console
    // refreshes itself: the third failure comes some seconds after the first)
    if (env.degradedPool) {
        const health = page.locator('#admin-pools tbody tr', { hasText: env.degradedPool })
            .locator('[data-role=health][data-state=degraded]');
        await health.waitFor({ timeout: 90000 });
        assert.match(await health.textContent(), /^Degraded.*invalid kernel header/);
        await shot(page, 'admin-degraded', { fullPage: true });
    }
    // the user's session, then disconnect and log off from the console
    const row = page.locator('#admin-sessions tbody tr', { hasText: env.user }).filter({ hasText: pool });
    await row.waitFor();
    // the audit log shows the failed and successful logins, newest first
    const actions = await page.locator('#admin-audit tbody tr').allTextContents();
    assert.ok(actions.some((t) => /login/.test(t) && /failure/.test(t)), 'failed login audited');
    assert.ok(actions.some((t) => /connect/.test(t) && /success/.test(t)), 'connect audited');
    await shot(page, 'admin', { fullPage: true });
    // older audit entries on request
    const before = await page.locator('#admin-audit tbody tr').count();
    assert.equal(before, 25, 'one page of the audit log');
    await page.locator('#audit-more').click();
    await page.waitForFunction((n) => document.querySelectorAll('#admin-audit tbody tr').length > n, before);

    await row.getByRole('button', { name: 'Disconnect' }).click();
    await row.filter({ hasText: 'Disconnected' }).waitFor();
    await row.getByRole('button', { name: 'Log off' }).click();
    await row.getByRole('button', { name: 'Confirm' }).click();
    await row.waitFor({ state: 'detached' });
    assert.match(await page.locator('#admin-message').textContent(), /Logged off/);
    await shot(page, 'admin-after-logoff');
    // a user signed in elsewhere is signed out everywhere from the Users panel
    const bob = await freshPage();
    await signIn(bob, 'bob', 'bob-pw');
    await bob.locator('#desktops').waitFor();
    assert.equal((await pageFetch(bob, 'GET', '/api/v1/session')).status, 200);
    await page.locator('#admin-refresh').click();
    const bobRow = page.locator('#admin-users tbody tr', { hasText: 'bob' });
    await bobRow.getByRole('button', { name: 'Sign out everywhere' }).click();
    await bobRow.getByRole('button', { name: 'Confirm' }).click();
    await page.locator('#admin-message', { hasText: 'Signed bob out everywhere.' }).waitFor();
    assert.equal((await pageFetch(bob, 'GET', '/api/v1/session')).status, 401);
    await shot(page, 'admin-users', { fullPage: true });
    // the user's portal agrees
    await user.goto(env.url + '/');
    await expectState(user, pool, 'ready');

    const phone = await freshPage(PHONE);
    await signIn(phone, env.admin, env.adminPassword);
    await phone.locator('#nav-admin').waitFor({ state: 'visible' });
    await phone.locator('#nav-admin').click();
    await phone.locator('#admin-hosts tbody tr').first().waitFor();
    const width = await phone.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= PHONE.width, `no sideways scrolling on a phone (${width}px)`);
    await shot(phone, 'admin-phone');
    assert.deepEqual([...user.problems(), ...page.problems(), ...phone.problems()], []);
});

test('sign out ends the web session', async () => {
    const page = await freshPage(PHONE);
    await signIn(page, env.user, env.password);
    await page.locator('#desktops article').first().waitFor();
    await shot(page, 'desktops-phone', { fullPage: true });
    await page.locator('#signout').click();
    await page.locator('#login-form').waitFor({ state: 'visible' });
    assert.equal((await pageFetch(page, 'GET', '/api/v1/session')).status, 401);
    await page.reload();
    await page.locator('#login-form').waitFor({ state: 'visible' });
    assert.deepEqual(page.problems(), []);
});

test('a user changes their password from the sign-in page and is signed in', async () => {
    const page = await freshPage();
    const fresh = env.passwordUserPassword + '-new';
    await page.goto(env.url + '/');
    await page.locator('#password-open').click();
    await page.locator('#password-form').waitFor({ state: 'visible' });
    const fill = async (old, pw, again) => {
        await page.locator('#pw-username').fill(env.passwordUser);
        await page.locator('#pw-old').fill(old);
        await page.locator('#pw-new').fill(pw);
        await page.locator('#pw-again').fill(again);
        await page.locator('#password-submit').click();
    };
    const error = page.locator('#password-error');
    await fill(env.passwordUserPassword, fresh, fresh + 'x');
    await page.locator('#password-error', { hasText: 'The two new passwords differ' }).waitFor();
    await fill('not-the-password', fresh, fresh);
    await page.locator('#password-error', { hasText: 'The current password is wrong.' }).waitFor();
    await shot(page, 'password-change-refused');
    await fill(env.passwordUserPassword, fresh, fresh);
    await page.locator('#view-desktops').waitFor({ state: 'visible' });
    assert.equal(await error.isVisible(), false);
    await shot(page, 'password-changed');
    await page.locator('#signout').click();
    await page.locator('#login-form').waitFor({ state: 'visible' });
    await signIn(page, env.passwordUser, env.passwordUserPassword);
    await page.locator('#login-error', { hasText: 'Wrong user name or password.' }).waitFor();
    await signIn(page, env.passwordUser, fresh);
    await page.locator('#view-desktops').waitFor({ state: 'visible' });
    assert.deepEqual(page.problems(), []);
});
