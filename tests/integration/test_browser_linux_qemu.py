"""The Linux desktop image (`make guest`) on the QEMU engine (TCG here) end to end in a
real browser, for what only QEMU needs: the keys. QEMU's VNC server maps a keysym to its
key without the Shift the keysym needs, so a viewer that sends keysyms alone (a phone's
on-screen keyboard, noVNC's rfb.sendKey()) typed '$' as '4' (issue [10]); the host's
relay now adds Shift. tests/browser/qemu_keys.test.mjs signs in to the portal in headless
Chromium, connects through the broker's gateway and the host's relay, types a command
as a US keyboard does (Shift held: QEMU extended key events), with Playwright's
keyboard.type (no Shift: the relay adds it) and then as keysyms alone,
and reads each answer back from the viewer's canvas. Screenshots:
build/artifacts/browser/qemu-keys/."""
import time

import pytest

from linux_desktop import linux_desktop_stack, run_browser_test, why_not

QEMU = "/usr/bin/qemu-system-x86_64"
# vga=0x344: a 1024x768x32 VESA mode, the console drawn on it by fbcon.
CMDLINE = "console=ttyS0 console=tty0 vga=0x344 panic=-1 vdi.net=off"
BOOT_TIMEOUT = 240  # seconds from Connect to the prompt on the canvas (TCG)

pytestmark = pytest.mark.skipif(why_not(QEMU) is not None, reason=why_not(QEMU) or "")


@pytest.fixture(scope="module")
def qemu_stack(tmp_path_factory, certs):
    pool = {"id": "linux-qemu", "name": "Linux desktop (QEMU)", "memory_mib": 256,
            "template": {"engine": "qemu", "kernel": "vmlinuz", "initrd": "initrd.img",
                         "disk": "home.img", "cmdline": CMDLINE}}
    with linux_desktop_stack(str(tmp_path_factory.mktemp("linux-qemu")), certs, pool,
                             BOOT_TIMEOUT) as stack:
        yield stack


def test_keys_on_a_qemu_desktop_through_the_portal_viewer(qemu_stack):
    """Sign in, Connect, the prompt on the canvas; `echo Hello-$((6*7))` typed as a US
    keyboard does and `echo Phone-$((6*7))` sent as keysyms alone both answered on the
    canvas (`Hello-42`, `Phone-42`); the relay says it synthesised Shift."""
    start = time.monotonic()
    run_browser_test(qemu_stack, "qemu_keys.test.mjs", "qemu-keys", timeout=BOOT_TIMEOUT + 240)
    print("the QEMU keys test took %.1f s" % (time.monotonic() - start))
    assert "(Shift synthesis)" in qemu_stack.hostd.log(), qemu_stack.hostd.log()[-3000:]
