// Tiny DOM helpers for the portal pages: build elements from data with textContent only
// (never innerHTML with server text), format times. No framework.

// el('td', {class: 'x', dataset: {id: 1}, onclick: fn}, 'text', child, ...)
export function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
        if (value === undefined || value === null || value === false) continue;
        if (key === 'class') node.className = value;
        else if (key === 'dataset') Object.assign(node.dataset, value);
        else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
        else if (value === true) node.setAttribute(key, '');
        else node.setAttribute(key, String(value));
    }
    for (const child of children.flat()) {
        if (child === null || child === undefined || child === false) continue;
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);

export function show(node, visible) {
    node.hidden = !visible;
}

// "just now", "5 min ago", "3 h ago", else a local date and time; epoch seconds in.
export function ago(seconds) {
    if (!seconds) return 'never';
    const delta = Math.round(Date.now() / 1000 - seconds);
    if (delta < 45) return 'just now';
    if (delta < 3600) return `${Math.round(delta / 60)} min ago`;
    if (delta < 86400) return `${Math.round(delta / 3600)} h ago`;
    return when(seconds);
}

// "21 Nov, 14:05:09" (the year too when it is not this one).
export function when(seconds) {
    const date = new Date(seconds * 1000);
    return date.toLocaleString(undefined, {
        year: date.getFullYear() === new Date().getFullYear() ? undefined : 'numeric',
        month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
        hourCycle: 'h23',
    });
}

// For actions that end a user's work: the first click arms the button ("Confirm ..."),
// a second within five seconds runs action.
export function confirmClick(button, confirmLabel, action) {
    if (button.dataset.armed) {
        action();
        return;
    }
    const label = button.textContent;
    button.dataset.armed = '1';
    button.textContent = confirmLabel;
    button.classList.add('btn-danger');
    setTimeout(() => {
        if (!button.isConnected) return;
        delete button.dataset.armed;
        button.textContent = label;
        button.classList.remove('btn-danger');
    }, 5000);
}
