// The desktop viewer (viewer.html?pool=ID): gets a one-time ticket from the broker
// (waiting while the desktop starts), opens the gateway_url with noVNC's RFB into a
// full-window canvas (VNC authentication with the ticket as password), and says plainly
// when the connection fails or the server closes it (logged off, taken over elsewhere,
// disconnected). The toolbar sends Ctrl-Alt-Del, toggles full screen and disconnects (the
// session keeps running). body[data-state] is loading|connecting|starting|connected|closed|failed.
import { api, currentUser, describe, path } from './api.js';
import { $, show } from './dom.js';

const NOVNC = '/novnc/core/rfb.js';
const START_WAIT_MS = 5 * 60 * 1000;
const HANDSHAKE_MS = 20 * 1000;

const poolId = new URLSearchParams(location.search).get('pool');
let RFB = null;
let rfb = null;
let sessionId = null;
let wasConnected = false;
let userClosed = false;
let refusal = null; // why the server refused us during the handshake, if it said
let poolName = null;
let handshakeTimer = null;
let timedOut = false;
let attempt = 0; // counts connect() calls, so that a late answer about an old connection is dropped

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function setState(state, title, text, actions = false) {
    document.body.dataset.state = state;
    $('#overlay-title').textContent = title;
    $('#overlay-text').textContent = text || '';
    show($('#overlay-actions'), actions);
    $('#btn-cad').disabled = state !== 'connected';
    $('#btn-disconnect').disabled = state !== 'connected';
    $('#status-dot').title = state === 'connected' ? 'Connected' : 'Not connected';
}

function fail(title, text) {
    setState('failed', title, text, true);
}

// How far a desktop being prepared is, as the broker's 202 answers say.
const STAGES = {
    placing: ['Preparing your desktop…', 'Choosing a host for it.'],
    booting: ['Starting your desktop…',
              'This can take a minute. The viewer connects as soon as it is ready.'],
    almost_ready: ['Your desktop is almost ready…', 'Connecting in a moment.'],
    waiting: ['Starting your desktop again…',
              'It failed to start a moment ago and will be tried again shortly.'],
};

// A 202 answer means the desktop is being created or started: ask again after
// retry_after seconds (the broker keeps the same session) until a ticket comes.
async function requestTicket() {
    const deadline = Date.now() + START_WAIT_MS;
    for (;;) {
        const { status, data } = await api('POST', `/api/v1/desktops/${path(poolId)}/connect`);
        if (status === 200) return data;
        if (Date.now() > deadline) {
            throw new Error('Your desktop is taking too long to start. Try again in a few minutes.');
        }
        const [title, text] = STAGES[data.stage] || STAGES.booting;
        setState('starting', title, text);
        $('#overlay').dataset.stage = data.stage || 'booting';
        await sleep(Math.min(Math.max(Number(data.retry_after) || 2, 1), 10) * 1000);
    }
}

async function showPoolName() {
    try {
        const { data } = await api('GET', '/api/v1/desktops');
        const pool = (data.pools || []).find((p) => p.id === poolId);
        if (pool && pool.name) {
            poolName = pool.name;
            setTitle(pool.name);
        }
    } catch { /* the title is a nicety */ }
}

function setTitle(name) {
    $('#title').textContent = name;
    document.title = `${name} · vdi`;
}

async function connect() {
    attempt += 1;
    wasConnected = false;
    userClosed = false;
    timedOut = false;
    refusal = null;
    setState('connecting', 'Connecting…', 'Asking the broker for your desktop.');
    if (!poolId) return fail('No desktop chosen', 'Open a desktop from your list of desktops.');
    let user;
    try {
        user = await currentUser();
    } catch (e) {
        return fail('Cannot reach the broker', describe(e));
    }
    if (!user) return fail('You are signed out', 'Sign in again, then open your desktop.');
    showPoolName();
    try {
        if (!RFB) RFB = (await import(NOVNC)).default;
    } catch {
        return fail('The viewer is incomplete',
                    'This server does not provide the noVNC files (/novnc/). Tell your administrator.');
    }
    let grant;
    try {
        grant = await requestTicket();
    } catch (e) {
        if (e.status === 401) return fail('You are signed out', 'Sign in again, then open your desktop.');
        if (e.code === 'desktop_failed') return fail('Your desktop failed to start', e.message);
        return fail('Cannot open this desktop', describe(e));
    }
    sessionId = grant.session;
    setState('connecting', 'Connecting…', 'Opening the connection to your desktop.');
    $('#screen').replaceChildren();
    try {
        // The gateway (or the desktop behind a host's relay) asks for VNC authentication
        // with the one-time ticket as the password.
        rfb = new RFB($('#screen'), grant.gateway_url,
                      { shared: true, credentials: { password: grant.ticket } });
    } catch (e) {
        return fail('Cannot open this desktop', e.message);
    }
    rfb.scaleViewport = true;
    rfb.resizeSession = false;
    rfb.focusOnClick = true;
    rfb.background = '#0d1321';
    // A gateway or desktop that accepts the connection but never finishes the VNC
    // handshake must not leave the user looking at "Connecting…" for ever.
    const pending = rfb;
    handshakeTimer = setTimeout(() => {
        if (rfb === pending && !wasConnected) {
            timedOut = true;
            rfb.disconnect();
        }
    }, HANDSHAKE_MS);
    rfb.addEventListener('connect', onConnect);
    rfb.addEventListener('disconnect', onDisconnect);
    rfb.addEventListener('desktopname', (e) => { if (!poolName) setTitle(e.detail.name); });
    rfb.addEventListener('securityfailure', (e) => {
        refusal = e.detail.reason || 'the desktop refused the connection';
    });
    rfb.addEventListener('credentialsrequired', () => {
        refusal = 'the desktop asked for credentials other than the ticket';
        rfb.disconnect();
    });
}

function onConnect() {
    clearTimeout(handshakeTimer);
    wasConnected = true;
    setState('connected', '', '');
    rfb.focus();
}

function onDisconnect(e) {
    clearTimeout(handshakeTimer);
    rfb = null;
    if (timedOut) {
        fail('The desktop did not answer',
             'The connection opened but the desktop never completed its greeting. Try again; ' +
             'if it keeps happening, tell your administrator.');
    } else if (userClosed) {
        setState('closed', 'Disconnected',
                 'Your session keeps running. Reconnect at any time, or log off from your list of desktops.',
                 true);
    } else if (refusal) {
        fail('The desktop refused the connection',
             `Reason: ${refusal}. Reconnect to try again; if it keeps happening, tell your administrator.`);
    } else if (!wasConnected) {
        fail('Could not connect to your desktop',
             'The gateway refused the connection or the desktop is not reachable. Try again in a moment.');
    } else if (e.detail.clean) {
        // noVNC reports any close after the handshake as clean: say what it may have been,
        // then what it was once the broker has said what became of the session.
        setState('closed', 'The connection to your desktop was closed',
                 'An administrator may have disconnected you, the session may have been opened on ' +
                 'another device, or the network dropped. Reconnect to continue where you left off.',
                 true);
        explainClose(sessionId, attempt);
    } else {
        fail('The connection to your desktop was lost',
             'Check your network, then reconnect to continue where you left off.');
    }
}

// Why the gateway closed a working connection, from the session's state at the broker:
// gone (logged off), connected (another viewer took it over) or disconnected (by an
// administrator, or a time limit). Asks after a moment, so that the broker has recorded
// the end of this connection itself.
async function explainClose(closedSession, closedAttempt) {
    await sleep(500);
    let pool;
    try {
        const { data } = await api('GET', '/api/v1/desktops');
        pool = (data.pools || []).find((p) => p.id === poolId);
    } catch {
        return; // the general words stay
    }
    if (!pool || attempt !== closedAttempt || document.body.dataset.state !== 'closed') return;
    const session = pool.session;
    if (!session || session.id !== closedSession) {
        setState('closed', 'Your session has ended',
                 'You were logged off and the desktop session is closed. Reconnect to start a new session.',
                 true);
    } else if (session.state === 'connected') {
        setState('closed', 'Your desktop was opened elsewhere',
                 'Your session is now shown in another window or device. Reconnect here to bring it back.',
                 true);
    } else if (session.state === 'disconnected') {
        setState('closed', 'You were disconnected',
                 'Your session keeps running. Reconnect to continue where you left off.', true);
    }
}

async function onDisconnectClick() {
    if (!rfb) return;
    userClosed = true;
    const closing = rfb;
    if (sessionId) {
        try {
            await api('POST', `/api/v1/sessions/${path(sessionId)}/disconnect`);
        } catch { /* closing the connection disconnects the session too */ }
    }
    closing.disconnect();
}

function onFullscreenClick() {
    if (document.fullscreenElement) document.exitFullscreen();
    else document.documentElement.requestFullscreen().catch(() => {});
    if (rfb) rfb.focus();
}

function main() {
    $('#btn-cad').addEventListener('click', () => {
        if (rfb) {
            rfb.sendCtrlAltDel();
            rfb.focus();
        }
    });
    $('#btn-disconnect').addEventListener('click', onDisconnectClick);
    $('#btn-fullscreen').addEventListener('click', onFullscreenClick);
    $('#btn-reconnect').addEventListener('click', connect);
    document.addEventListener('fullscreenchange', () => {
        $('#btn-fullscreen').textContent = document.fullscreenElement ? 'Exit full screen' : 'Full screen';
    });
    if (!document.fullscreenEnabled) show($('#btn-fullscreen'), false);
    connect();
}

main();
