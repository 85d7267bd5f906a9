// Shared by the tests of the Linux desktop image (linux.test.mjs on vdi-hv,
// qemu_keys.test.mjs on QEMU): typing as a person on a US keyboard does, and the shell's
// prompt and answers read from the viewer's canvas with the image's console font, the
// guest's serial log quoted when they do not come.
import { env } from './harness.mjs';
import { serial, waitForTerminal } from './screen.mjs';

// guest/profile: PS1='\u@\h:\w\$ ' with HOME=/home; the host name is the image's default.
export const PROMPT = 'root@vdi-desktop:~#';

// On a US keyboard a person types '$', '(', '*' ... with Shift held on the key that
// carries them. (Keysyms sent alone get their Shift from vdi-hv, and on QEMU from the
// relay: qemu_keys.test.mjs.)
const SHIFTED = {
    '~': 'Backquote', '!': 'Digit1', '@': 'Digit2', '#': 'Digit3', $: 'Digit4', '%': 'Digit5',
    '^': 'Digit6', '&': 'Digit7', '*': 'Digit8', '(': 'Digit9', ')': 'Digit0', _: 'Minus',
    '+': 'Equal', '{': 'BracketLeft', '}': 'BracketRight', '|': 'Backslash', ':': 'Semicolon',
    '"': 'Quote', '<': 'Comma', '>': 'Period', '?': 'Slash',
};
export async function typeOnUsKeyboard(page, text) {
    for (const ch of text) {
        if (SHIFTED[ch]) await page.keyboard.press(`Shift+${SHIFTED[ch]}`);
        else if (/[A-Z]/.test(ch)) await page.keyboard.press(`Shift+Key${ch}`);
        else await page.keyboard.type(ch);
    }
}

function serialTail() {
    try {
        return serial(env.serial).slice(-3000);
    } catch (e) {
        return `(no serial log: ${e.message})`;
    }
}

// waitForTerminal; when it times out, a screenshot named shotName and the guest's serial
// log (diagnostics: the shell on the screen is not the one on the serial line).
export async function waitOnCanvas(page, { geo, font, shot }, check, what, shotName, timeout, interval) {
    try {
        return await waitForTerminal(page, geo, font, check, what, timeout, interval);
    } catch (e) {
        await shot(page, shotName);
        e.message += `\n--- the guest's serial log (diagnostics) ---\n${serialTail()}`;
        throw e;
    }
}

export function waitForPrompt(page, screen) {
    return waitOnCanvas(page, screen, (l) => l.some((x) => x.startsWith(PROMPT)), 'the shell prompt',
                        'no-prompt', env.bootTimeout, 1000);
}

// The typed command line, the shell's answer on the next row and a new prompt under it;
// returns what was seen and the row of the command. (In the KVM box the answer's row
// sometimes keeps stale glyphs to the right of the answer, cells the canvas was not sent
// again: startsWith, and the caller may report them.)
export async function expectAnswer(page, screen, command, answer, name) {
    const typed = `${PROMPT} ${command}`;
    const at = (lines) => lines.findIndex((x, i) => x === typed &&
                                          (lines[i + 1] || '').startsWith(answer) &&
                                          (lines[i + 2] || '').startsWith(PROMPT));
    const seen = await waitOnCanvas(page, screen, (l) => at(l) >= 0, `"${typed}" answered "${answer}"`,
                                    `no-answer-${name}`, 60000, 500);
    await screen.shot(page, `answered-${name}`);
    return { seen, row: at(seen.lines) };
}
