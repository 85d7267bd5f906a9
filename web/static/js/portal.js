// The portal page (index.html): sign-in with clear errors (wrong password, throttling),
// the signed-in user's desktops with Connect / Disconnect / Log off, and the switch to
// the admin console (js/admin.js) for administrators. Connect opens viewer.html, which
// asks the broker for the ticket itself.
import {
    api, ApiError, changePassword, currentUser, describe, login, logout, path,
} from './api.js';
import { $, confirmClick, el, show } from './dom.js';
import * as admin from './admin.js';

const STATES = {
    ready: { label: 'Ready', tone: 'ok' },
    running: { label: 'In use', tone: 'info' },
    disconnected: { label: 'Disconnected', tone: 'warn' },
    starting: { label: 'Starting', tone: 'info' },
    unavailable: { label: 'Unavailable', tone: 'off' },
};
const REFRESH_MS = 5000;

let user = null;
let refreshTimer = null;
let throttleTimer = null;

// ---- sign-in ----

function loginError(text) {
    const box = $('#login-error');
    box.textContent = text || '';
    show(box, Boolean(text));
}

function throttled(seconds) {
    const button = $('#login-submit');
    let left = Math.max(1, Math.ceil(seconds));
    clearInterval(throttleTimer);
    const tick = () => {
        if (left <= 0) {
            clearInterval(throttleTimer);
            throttleTimer = null;
            button.disabled = false;
            loginError('');
            return;
        }
        loginError(`Too many attempts, try again in ${left} s.`);
        left -= 1;
    };
    button.disabled = true;
    tick();
    throttleTimer = setInterval(tick, 1000);
}

async function onLogin(event) {
    event.preventDefault();
    const username = $('#username').value.trim();
    const password = $('#password').value;
    if (!username || !password) {
        loginError('Enter your user name and password.');
        return;
    }
    const button = $('#login-submit');
    button.disabled = true;
    button.textContent = 'Signing in…';
    let ok = false;
    try {
        user = await login(username, password);
        ok = true;
    } catch (e) {
        $('#password').value = '';
        if (e.code === 'password_change_required') {
            showPasswordForm(username, password, describe(e));
            return;
        }
        if (e.status === 429) {
            throttled(e.retryAfter ?? 30);
        } else if (e.status === 401) {
            loginError('Wrong user name or password.');
        } else if (e.status === 400) {
            loginError('That user name is not valid.');
        } else {
            loginError(describe(e));
        }
        $('#password').focus();
    } finally {
        button.textContent = 'Sign in';
        if (!throttleTimer || ok) button.disabled = false;
    }
    if (ok) {
        clearInterval(throttleTimer);
        throttleTimer = null;
        $('#password').value = '';
        loginError('');
        signedIn();
    }
}

// ---- password change ----

function passwordError(text) {
    const box = $('#password-error');
    box.textContent = text || '';
    show(box, Boolean(text));
}

// The change form, filled with what the user typed at sign-in when the directory asked
// for a new password (why says so), or empty from the "Change password" button.
function showPasswordForm(username, oldPassword, why) {
    show($('#login-form'), false);
    show($('#password-form'), true);
    $('#pw-username').value = username || $('#username').value.trim();
    $('#pw-old').value = oldPassword || '';
    $('#pw-new').value = '';
    $('#pw-again').value = '';
    $('#password-why').textContent = why || 'Choose a new password for your organisation account.';
    passwordError('');
    ($('#pw-username').value ? (oldPassword ? $('#pw-new') : $('#pw-old')) : $('#pw-username')).focus();
}

function hidePasswordForm() {
    show($('#password-form'), false);
    show($('#login-form'), true);
    $('#password').value = '';
    $('#username').focus();
}

async function onChangePassword(event) {
    event.preventDefault();
    const username = $('#pw-username').value.trim();
    const old = $('#pw-old').value;
    const fresh = $('#pw-new').value;
    if (!username || !old || !fresh) {
        passwordError('Enter your user name, your current password and a new one.');
        return;
    }
    if (fresh !== $('#pw-again').value) {
        passwordError('The two new passwords differ. Type the same one twice.');
        $('#pw-again').value = '';
        $('#pw-again').focus();
        return;
    }
    const button = $('#password-submit');
    button.disabled = true;
    try {
        await changePassword(username, old, fresh);
        user = await login(username, fresh);
        $('#pw-old').value = '';
        $('#pw-new').value = '';
        $('#pw-again').value = '';
        show($('#password-form'), false);
        show($('#login-form'), true);
        signedIn();
    } catch (e) {
        if (e.status === 401) {
            passwordError('The current password is wrong.');
            $('#pw-old').value = '';
            $('#pw-old').focus();
        } else if (e.status === 429) {
            passwordError(`Too many attempts, try again in ${Math.max(1, Math.ceil(e.retryAfter ?? 30))} s.`);
        } else {
            passwordError(describe(e));
            if (e.code === 'password_rejected') $('#pw-new').focus();
        }
    } finally {
        button.disabled = false;
    }
}

function showLogin(message) {
    user = null;
    stopRefresh();
    admin.stop();
    document.body.classList.remove('loading');
    show($('#nav'), false);
    show($('#account'), false);
    show($('#view-desktops'), false);
    show($('#view-admin'), false);
    show($('#view-login'), true);
    loginError(message || '');
    $('#username').focus();
}

// ---- signed in ----

function signedIn() {
    document.body.classList.remove('loading');
    show($('#view-login'), false);
    show($('#nav'), user.admin);
    show($('#account'), true);
    show($('#nav-admin'), user.admin);
    $('#account-name').textContent = user.display_name || user.username;
    $('#account-name').title = user.username;
    $('#greeting').textContent = `Signed in as ${user.display_name || user.username}. ` +
        'Pick a desktop to connect to it in this browser.';
    route();
}

function route() {
    if (!user) return;
    const wantAdmin = location.hash === '#admin' && user.admin;
    show($('#view-desktops'), !wantAdmin);
    show($('#view-admin'), wantAdmin);
    $('#nav-desktops').classList.toggle('active', !wantAdmin);
    $('#nav-admin').classList.toggle('active', wantAdmin);
    if (wantAdmin) {
        stopRefresh();
        admin.start(onSignedOut);
    } else {
        admin.stop();
        refreshDesktops();
        startRefresh();
    }
}

function onSignedOut() {
    showLogin('Your sign-in has expired. Sign in again.');
}

async function onSignOut() {
    try { await logout(); } catch { /* signed out on our side anyway */ }
    history.replaceState(null, '', '/');
    showLogin('');
}

// ---- desktops ----

function startRefresh() {
    stopRefresh();
    refreshTimer = setInterval(() => {
        if (!document.hidden) refreshDesktops();
    }, REFRESH_MS);
}

function stopRefresh() {
    clearInterval(refreshTimer);
    refreshTimer = null;
}

function message(text, tone = 'error') {
    const box = $('#desktops-message');
    box.textContent = text || '';
    box.className = `alert alert-${tone}`;
    show(box, Boolean(text));
}

async function refreshDesktops() {
    try {
        const { data } = await api('GET', '/api/v1/desktops');
        renderDesktops(data.pools || []);
    } catch (e) {
        if (e.status === 401) return onSignedOut();
        message(`Could not load your desktops: ${describe(e)}`);
    }
}

function renderDesktops(pools) {
    const grid = $('#desktops');
    if (!pools.length) {
        grid.replaceChildren(el('div', { class: 'empty card' },
            el('h2', {}, 'No desktops yet'),
            el('p', { class: 'muted' },
               'You are not entitled to any desktop. Ask your administrator for access.')));
        return;
    }
    grid.replaceChildren(...pools.map(desktopCard));
}

function desktopCard(pool) {
    const state = STATES[pool.state] || { label: pool.state, tone: 'off' };
    const session = pool.session;
    const kind = pool.kind === 'dedicated' ? 'Dedicated desktop' : 'Shared pool';
    const actions = el('div', { class: 'actions' });
    if (pool.state === 'unavailable') {
        actions.append(el('button', { type: 'button', class: 'btn btn-primary', disabled: true },
                          'Connect'));
    } else {
        actions.append(el('a', { class: 'btn btn-primary', href: `/viewer.html?pool=${encodeURIComponent(pool.id)}`,
                                 'data-action': 'connect' }, 'Connect'));
    }
    if (session && session.state === 'connected') {
        actions.append(el('button', { type: 'button', class: 'btn', 'data-action': 'disconnect',
                                      onclick: () => sessionAction(pool, 'disconnect') },
                          'Disconnect'));
    }
    if (session) {
        actions.append(el('button', { type: 'button', class: 'btn btn-danger-quiet', 'data-action': 'logoff',
                                      onclick: (e) => confirmClick(e.currentTarget, 'Confirm log off',
                                                                      () => sessionAction(pool, 'logoff')) },
                          'Log off'));
    }
    let detail = null;
    if (pool.reason) detail = describe(pool.reason);
    else if (pool.state === 'disconnected') detail = 'Your session is still running. Connect to resume it.';
    else if (pool.state === 'running') detail = 'Your session is open. Connect here to take it over.';
    else if (pool.state === 'starting') detail = 'Your desktop is being started.';
    else if (pool.state === 'ready') detail = 'Available. Connect to start working.';
    return el('article', { class: 'card desktop', dataset: { pool: pool.id, state: pool.state } },
        el('div', { class: 'desktop-head' },
            el('img', { src: '/img/desktop.svg', alt: '', width: 44, height: 44 }),
            el('div', { class: 'desktop-title' },
                el('h2', {}, pool.name || pool.id),
                el('p', { class: 'muted small' }, kind))),
        el('p', { class: 'state-line' },
            el('span', { class: `badge badge-${state.tone}`, 'data-role': 'state' }, state.label)),
        el('p', { class: 'detail small', 'data-role': 'detail' }, detail || '\u00a0'),
        actions);
}

async function sessionAction(pool, action) {
    try {
        await api('POST', `/api/v1/sessions/${path(pool.session.id)}/${action}`);
        message(action === 'logoff' ? `Logged off from ${pool.name || pool.id}.`
                                    : `Disconnected from ${pool.name || pool.id}. Your session keeps running.`,
                'ok');
    } catch (e) {
        if (e.status === 401) return onSignedOut();
        message(describe(e));
    }
    refreshDesktops();
}

// ---- start ----

async function main() {
    $('#login-form').addEventListener('submit', onLogin);
    $('#password-form').addEventListener('submit', onChangePassword);
    $('#password-open').addEventListener('click', () => showPasswordForm('', '', ''));
    $('#password-cancel').addEventListener('click', hidePasswordForm);
    $('#signout').addEventListener('click', onSignOut);
    $('#desktops-refresh').addEventListener('click', refreshDesktops);
    window.addEventListener('hashchange', route);
    try {
        user = await currentUser();
    } catch (e) {
        showLogin(describe(e instanceof ApiError ? e : new ApiError(0, null)));
        return;
    }
    if (user) signedIn();
    else showLogin('');
}

main();
