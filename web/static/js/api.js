// Client of the broker's JSON API (docs/api.md) for the portal and the viewer: JSON in
// and out, the CSRF token from the login or session answer on every state-changing call,
// errors as ApiError (status, code, retry_after) and human wording for the API's codes.
// Not a cache: callers ask again when they need fresh state.

let csrfToken = null;

export class ApiError extends Error {
    constructor(status, body) {
        super((body && body.error) || (status ? `HTTP ${status}` : 'network error'));
        this.status = status;
        this.code = (body && body.code) || (status ? `http_${status}` : 'network');
        this.retryAfter = body && Number.isFinite(body.retry_after) ? body.retry_after : null;
    }
}

// One request. Resolves to {status, data} for 2xx (202 included), throws ApiError else.
export async function api(method, path, body) {
    const init = { method, headers: { Accept: 'application/json' },
                   credentials: 'same-origin', cache: 'no-store' };
    if (method !== 'GET' && method !== 'HEAD') {
        init.headers['Content-Type'] = 'application/json';
        if (csrfToken) init.headers['X-CSRF-Token'] = csrfToken;
        init.body = JSON.stringify(body ?? {});
    }
    let res;
    try {
        res = await fetch(path, init);
    } catch {
        throw new ApiError(0, null);
    }
    let data = null;
    if (res.status !== 204) {
        try { data = await res.json(); } catch { data = null; }
    }
    if (!res.ok) throw new ApiError(res.status, data);
    return { status: res.status, data };
}

// The signed-in user ({username, display_name, admin}) or null; keeps the CSRF token.
export async function currentUser() {
    try {
        const { data } = await api('GET', '/api/v1/session');
        csrfToken = data.csrf_token;
        return data.user;
    } catch (e) {
        if (e.status === 401) return null;
        throw e;
    }
}

export async function login(username, password) {
    const { data } = await api('POST', '/api/v1/login', { username, password });
    csrfToken = data.csrf_token;
    return data.user;
}

// Changes the password of username (no session needed: the old password proves who
// asks); a user whose directory wants a new password before sign-in changes it here.
export async function changePassword(username, password, newPassword) {
    await api('POST', '/api/v1/password', { username, password, new_password: newPassword });
}

export async function logout() {
    try { await api('POST', '/api/v1/logout'); } finally { csrfToken = null; }
}

export const path = (...segments) => segments.map(encodeURIComponent).join('/');

// Why a pool is starting or unavailable, or why a request failed, in words.
const REASONS = {
    not_entitled: 'You are not entitled to this desktop.',
    pool_disabled: 'This desktop pool has been disabled by your administrator.',
    address_denied: 'Not available from your current network.',
    outside_hours: 'Not available at this time.',
    session_limit: 'You have too many open sessions. Log off another desktop first.',
    no_desktop_available: 'All desktops in this pool are in use.',
    desktops_preparing: 'Desktops are being prepared.',
    desktop_busy: 'Your desktop is busy. Try again in a moment.',
    desktop_failed: 'Your desktop failed to start. Contact your administrator.',
    no_host: 'No host is available to run this desktop.',
    engine_unavailable: 'This desktop is not available right now.',
    no_capacity: 'The hosts are full right now.',
    host_unavailable: 'The host of your desktop is not available.',
    not_found: 'No such desktop.',
    logged_off: 'The session has already ended.',
    not_logged_in: 'Your sign-in has expired. Sign in again.',
    csrf: 'The request was refused as a possible forgery. Reload the page.',
    forbidden: 'Administrators only.',
    directory_unavailable: 'The sign-in service is not answering. Try again later.',
    password_change_required: 'Your password must be changed before you can sign in.',
    password_rejected: 'The new password does not meet the password rules (length, complexity, or one used before). Choose another.',
    password_change_not_allowed: 'Passwords cannot be changed here. Ask your administrator.',
    account_disabled: 'Your account is disabled. Contact your administrator.',
    account_expired: 'Your account has expired. Contact your administrator.',
    account_locked: 'Your account is locked after too many wrong passwords. Try again later or contact your administrator.',
    network: 'Cannot reach the server. Check your connection.',
};

export function describe(codeOrError) {
    const code = typeof codeOrError === 'string' ? codeOrError : codeOrError.code;
    if (REASONS[code]) return REASONS[code];
    if (typeof codeOrError !== 'string' && codeOrError.message) return codeOrError.message;
    const words = String(code || 'unknown error').replace(/_/g, ' ');
    return words.charAt(0).toUpperCase() + words.slice(1) + '.';
}
