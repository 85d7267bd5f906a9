// The admin console inside the portal (index.html#admin, shown to administrators only):
// hosts and their load, pools, live sessions with Disconnect / Log off, users with Sign
// out everywhere, and the audit log, newest first. Read-mostly: pool and host changes are vdictl's for now.
import { api, describe, path } from './api.js';
import { $, ago, confirmClick, el, show, when } from './dom.js';

const REFRESH_MS = 10000;
const AUDIT_PAGE = 25;

let timer = null;
let onUnauthorized = () => {};
let auditOldest = null;
let auditPaged = false; // older entries shown: the timer leaves the log alone
let failing = false;    // the message box shows a load error

export function start(unauthorized) {
    onUnauthorized = unauthorized;
    $('#admin-refresh').onclick = refresh;
    $('#audit-more').onclick = olderAudit;
    refresh();
    clearInterval(timer);
    timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
}

export function stop() {
    clearInterval(timer);
    timer = null;
}

function message(text, tone = 'error') {
    const box = $('#admin-message');
    failing = Boolean(text) && tone === 'error';
    box.textContent = text || '';
    box.className = `alert alert-${tone}`;
    show(box, Boolean(text));
}

async function load(url) {
    try {
        return (await api('GET', url)).data;
    } catch (e) {
        if (e.status === 401) onUnauthorized();
        else message(`Could not load ${url}: ${describe(e)}`);
        throw e;
    }
}

async function refresh(event) {
    const byHand = event instanceof Event;
    const jobs = [
        load('/api/v1/admin/hosts').then((d) => renderHosts(d.hosts || [])),
        load('/api/v1/admin/sessions').then((d) => renderSessions(d.sessions || [])),
        load('/api/v1/admin/pools').then((d) => renderPools(d.pools || [])),
        load('/api/v1/admin/users').then((d) => renderUsers(d.users || [])),
    ];
    if (byHand || !auditPaged) {
        auditPaged = false;
        jobs.push(load(`/api/v1/admin/audit?limit=${AUDIT_PAGE}`).then((d) => renderAudit(d.entries || [], false)));
    }
    const results = await Promise.allSettled(jobs);
    if (failing && results.every((r) => r.status === 'fulfilled')) message('');
}

// table(['Host', ...], rows) where each row is an array of cells (text or nodes).
function table(headers, rows, empty) {
    if (!rows.length) return el('p', { class: 'muted empty-row' }, empty);
    return el('table', { class: 'table' },
        el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, rows.map((cells) => el('tr', {}, cells.map((c, i) =>
            el('td', { 'data-label': headers[i] }, c))))));
}

function badge(text, tone) {
    return el('span', { class: `badge badge-${tone}` }, text);
}

function put(section, node) {
    $(`#${section} .table-wrap`).replaceChildren(node);
}

function loadBar(used, max) {
    const pct = max > 0 ? Math.min(100, Math.round((100 * used) / max)) : 0;
    const bar = el('span', { class: 'meter-fill' });
    bar.style.width = `${pct}%`;
    if (pct >= 90) bar.classList.add('meter-high');
    return el('span', { class: 'meter-cell' },
        el('span', { class: 'meter', title: `${pct}%` }, bar),
        el('span', { class: 'small' }, max > 0 ? `${used} / ${max}` : `${used}`));
}

function renderHosts(hosts) {
    put('admin-hosts', table(
        ['Host', 'State', 'Desktops', 'Free memory', 'Free vCPUs', 'Last heartbeat'],
        hosts.map((h) => [
            el('span', {}, el('strong', {}, h.id), el('br'), el('span', { class: 'muted small' }, h.url)),
            h.enabled === false ? badge('Disabled', 'off')
                : h.state === 'up' ? badge('Up', 'ok') : badge('Down', 'bad'),
            loadBar(h.desktops || 0, h.max_desktops || 0),
            h.up ? `${((h.mem_free_mib || 0) / 1024).toFixed(1)} GiB` : '–',
            h.up ? String(h.vcpus_free ?? '–') : '–',
            ago(h.last_heartbeat),
        ]),
        'No hosts registered. Add one with: vdictl host add ID URL'));
}

function renderSessions(sessions) {
    put('admin-sessions', table(
        ['User', 'Pool', 'Desktop', 'State', 'Client', 'Since', ''],
        sessions.map((s) => [
            el('strong', {}, s.username),
            s.pool_id,
            el('code', {}, s.desktop_id || '–'),
            el('span', { class: 'stack' },
                s.state === 'connected' ? badge('Connected', 'info')
                    : badge(s.state === 'disconnected' ? 'Disconnected' : s.state, 'warn'),
                s.state === 'connected'
                    ? el('span', { class: 'muted small' }, s.attached ? 'viewer attached' : 'awaiting viewer')
                    : null),
            s.client_addr || '–',
            ago(s.since),
            el('span', { class: 'row-actions', dataset: { session: s.id } },
                s.state === 'connected'
                    ? el('button', { type: 'button', class: 'btn btn-small', 'data-action': 'disconnect',
                                     onclick: () => sessionAction(s, 'disconnect') }, 'Disconnect')
                    : null,
                el('button', { type: 'button', class: 'btn btn-small btn-danger-quiet', 'data-action': 'logoff',
                               onclick: (e) => confirmClick(e.currentTarget, 'Confirm',
                                                            () => sessionAction(s, 'logoff')) },
                   'Log off')),
        ]),
        'No live sessions.'));
}

// Every user the broker knows, and for each a way to end all their sign-ins (they sign
// in again, with the account and groups the directory has now).
function renderUsers(users) {
    put('admin-users', table(
        ['User', 'Source', 'Groups', 'Last sign-in', ''],
        users.map((u) => [
            el('span', {}, el('strong', {}, u.username),
               u.display_name && u.display_name !== u.username
                   ? el('span', { class: 'muted small' }, ` ${u.display_name}`) : null),
            u.source || '–',
            (u.groups || []).join(', ') || '–',
            ago(u.last_login),
            el('span', { class: 'row-actions', dataset: { user: u.username } },
                el('button', { type: 'button', class: 'btn btn-small btn-danger-quiet', 'data-action': 'revoke',
                               onclick: (e) => confirmClick(e.currentTarget, 'Confirm',
                                                            () => revokeUser(u.username)) },
                   'Sign out everywhere')),
        ]),
        'No users yet.'));
}

async function revokeUser(name) {
    try {
        await api('DELETE', `/api/v1/admin/users/${path(name)}/web-sessions`);
        message(`Signed ${name} out everywhere.`, 'ok');
    } catch (e) {
        if (e.status === 401) return onUnauthorized();
        message(describe(e));
    }
}

async function sessionAction(s, action) {
    try {
        await api('POST', `/api/v1/admin/sessions/${path(s.id)}/${action}`);
        message(`${action === 'logoff' ? 'Logged off' : 'Disconnected'} ${s.username} from ${s.pool_id}.`, 'ok');
    } catch (e) {
        if (e.status === 401) return onUnauthorized();
        message(describe(e));
    }
    refresh();
}

// A pool's health as the broker reports it: a badge, and for a pool that is unavailable
// or degraded the reason (which hosts cannot run its engine, the last failure's cause);
// a template no host could check yet, said so.
const HEALTH = {
    ok: ['Enabled', 'ok'],
    disabled: ['Disabled', 'off'],
    unavailable: ['Unavailable', 'bad'],
    degraded: ['Degraded', 'warn'],
};

function poolHealth(p) {
    const health = p.health || { state: p.enabled ? 'ok' : 'disabled' };
    const [label, tone] = HEALTH[health.state] || [health.state, 'off'];
    const node = el('span', { 'data-role': 'health', 'data-state': health.state }, badge(label, tone));
    if (health.detail) node.append(el('br'), el('span', { class: 'small' }, health.detail));
    if (p.failures > 0 && health.state !== 'degraded') {
        node.append(el('br'), el('span', { class: 'small muted' },
                                 `${p.failures} failure${p.failures > 1 ? 's' : ''} in a row`));
    }
    // The broker could not check the template with any host yet (none up, say).
    if (p.template_warning) {
        node.append(el('br'), el('span', { class: 'small', 'data-role': 'template-warning' },
                                 p.template_warning));
    }
    return node;
}

function renderPools(pools) {
    put('admin-pools', table(
        ['Pool', 'Kind', 'Desktops', 'Entitled', 'State'],
        pools.map((p) => {
            const desktops = p.desktops || [];
            const inUse = desktops.filter((d) => d.in_use).length;
            const ents = (p.entitlements || []).map((e) => (e.kind === 'group' ? `@${e.name}` : e.name));
            return [
                el('span', {}, el('strong', {}, p.name || p.id), el('br'), el('code', { class: 'small' }, p.id)),
                `${p.kind === 'dedicated' ? 'Dedicated' : 'Floating'}, ${p.source}`,
                p.source === 'automated' ? `${desktops.length} (min ${p.min}, max ${p.max}), ${inUse} in use`
                                         : `${desktops.length}, ${inUse} in use`,
                ents.length ? ents.join(', ') : el('span', { class: 'muted' }, 'nobody'),
                poolHealth(p),
            ];
        }),
        'No pools yet. Create one with: vdictl pool create'));
}

function auditRows(entries) {
    return entries.map((a) => [
        el('span', { class: 'nowrap small' }, when(a.time)),
        a.actor || '–',
        a.action,
        el('code', { class: 'small' }, a.target || ''),
        badge(a.result, a.result === 'success' ? 'ok' : a.result === 'denied' ? 'warn' : 'bad'),
        a.client_addr || '',
        el('span', { class: 'small' }, a.detail || ''),
    ]);
}

const AUDIT_HEADERS = ['Time', 'Actor', 'Action', 'Target', 'Result', 'Client', 'Detail'];

function renderAudit(entries, append) {
    if (append) {
        const body = $('#admin-audit tbody');
        if (body) {
            for (const cells of auditRows(entries)) {
                body.append(el('tr', {}, cells.map((c, i) => el('td', { 'data-label': AUDIT_HEADERS[i] }, c))));
            }
        }
    } else {
        put('admin-audit', table(AUDIT_HEADERS, auditRows(entries), 'The audit log is empty.'));
    }
    if (entries.length) auditOldest = entries[entries.length - 1].id;
    show($('#audit-more'), entries.length === AUDIT_PAGE);
}

async function olderAudit() {
    if (!auditOldest) return;
    try {
        const d = await load(`/api/v1/admin/audit?limit=${AUDIT_PAGE}&before=${auditOldest}`);
        auditPaged = true;
        renderAudit(d.entries || [], true);
    } catch { /* reported by load() */ }
}
