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
import json
import os
import pathlib
import shutil
import time
from types import SimpleNamespace

import pytest

from broker_fixture import Broker, free_port
from browser_fixture import ARTIFACTS, CHROMIUM, host_state, missing, run_node, stage_static, wait_for
from hostd_fixture import HOSTD, Hostd
from test_browser_linux_hv import GUEST, IMAGE, console_font_header, manifest, tail

QEMU = "/usr/bin/qemu-system-x86_64"
# vga=0x344: a 1024x768x32 VESA mode, the console drawn on it by fbcon.
CMDLINE = "console=ttyS0 console=tty0 vga=0x344 panic=-1 vdi.net=off"
BOOT_TIMEOUT = 240  # seconds from Connect to the prompt on the canvas (TCG)
USER, PASSWORD = "alice", "alice-pw"
ADMIN, ADMIN_PASSWORD = "carol", "carol-pw"
POOL = "linux-qemu"
HOST = "dc1-host1"


def why_not():
    why = missing()
    if why:
        return why
    if not os.path.exists(HOSTD):
        return "vdi-hostd is not built (%s)" % HOSTD
    if not os.path.exists(QEMU):
        return "qemu-system-x86_64 is not installed"
    absent = [f for f in IMAGE if not os.path.isfile(os.path.join(GUEST, f))]
    if absent:
        return "the guest image is not built (%s missing in %s): run `make guest`" % (
            ", ".join(absent), GUEST)
    return None


pytestmark = pytest.mark.skipif(why_not() is not None, reason=why_not() or "")


@pytest.fixture(scope="module")
def qemu_stack(tmp_path_factory, certs):
    work = str(tmp_path_factory.mktemp("linux-qemu"))
    static = os.path.join(work, "static")
    stage_static(static)
    tpl = os.path.join(work, "templates")
    os.makedirs(tpl)
    for f in IMAGE:
        shutil.copyfile(os.path.join(GUEST, f), os.path.join(tpl, f))
    font = console_font_header(os.path.join(tpl, "initrd.img"), work)
    hb_port = free_port()
    hostd_work = pathlib.Path(work) / "hostd"
    hostd_work.mkdir()
    hostd = Hostd(hostd_work, certs, tpl,
                  "[broker]\nheartbeat_url = https://127.0.0.1:%d/api/v1/hosts/heartbeat\n"
                  "[desktops]\nstop_timeout = 2s\n" % hb_port, host_id=HOST)
    broker = Broker(work, f"""
[broker]
admin_users = {ADMIN}
maintenance_interval = 1s
[http]
static_dir = {static}
[hosts]
cert = {certs.broker_crt}
key = {certs.broker_key}
ca = {certs.ca}
heartbeat_listen = 127.0.0.1:{hb_port}
""")
    broker.add_user(USER, PASSWORD, display_name="Alice Example")
    broker.add_user(ADMIN, ADMIN_PASSWORD)
    broker.start()
    hostd_status = None
    try:
        hostd.start()
        admin = broker.client()
        admin.login(ADMIN, ADMIN_PASSWORD, bearer=True)
        admin.ok("POST", "/api/v1/admin/hosts",
                 {"id": HOST, "url": "https://127.0.0.1:%d" % hostd.api_port,
                  "relay": "127.0.0.1:%d" % hostd.relay_port}, expect=(201,))
        wait_for(lambda: host_state(admin, HOST) == "up", "the host to report", hostd.log)
        # One spare desktop: it boots while the browser signs in.
        admin.ok("POST", "/api/v1/admin/pools", {
            "id": POOL, "name": "Linux desktop (QEMU)", "kind": "floating",
            "source": "automated", "min": 0, "max": 1, "spare": 1, "memory_mib": 256,
            "template": {"engine": "qemu", "kernel": "vmlinuz", "initrd": "initrd.img",
                         "disk": "home.img", "cmdline": CMDLINE},
            "entitlements": [{"kind": "user", "name": USER}]}, expect=(201,))
        logs = hostd.state / "logs"
        wait_for(lambda: logs.is_dir() and any(logs.glob("*.serial")), "hostd to start the desktop",
                 lambda: hostd.log() + "\n--- broker ---\n" + broker.log(), timeout=60)
        serial = str(next(logs.glob("*.serial")))
        env = dict(os.environ, VDI_URL=broker.url, VDI_USER=USER, VDI_PASSWORD=PASSWORD,
                   VDI_QEMU_POOL=POOL, VDI_KERNEL_RELEASE=manifest()["kernel_release"],
                   VDI_BOOT_TIMEOUT_MS=str(BOOT_TIMEOUT * 1000), VDI_SERIAL=serial,
                   VDI_FONT=font, VDI_ARTIFACTS=ARTIFACTS, VDI_CHROMIUM=CHROMIUM)
        yield SimpleNamespace(broker=broker, hostd=hostd, admin=admin, env=env, serial=serial)
    finally:
        hostd_status = hostd.stop()
        hostd.kill_vms()
        status = broker.stop()
    assert status == 0, "vdi-broker did not exit cleanly:\n" + broker.log()
    assert hostd_status in (0, None), hostd.log()


def test_keys_on_a_qemu_desktop_through_the_portal_viewer(qemu_stack):
    """Sign in, Connect, the prompt on the canvas; `echo Hello-$((6*7))` typed as a US
    keyboard does and `echo Phone-$((6*7))` sent as keysyms alone both answered on the
    canvas (`Hello-42`, `Phone-42`); the relay says it synthesised Shift."""
    start = time.monotonic()
    try:
        run_node(qemu_stack, "qemu_keys.test.mjs", "qemu-keys", timeout=BOOT_TIMEOUT + 240)
    except AssertionError as e:
        desktops = qemu_stack.admin.ok("GET", "/api/v1/admin/pools/%s" % POOL)
        raise AssertionError("%s\n--- pool ---\n%s\n--- guest serial ---\n%s\n--- hostd log ---\n%s" % (
            e, json.dumps(desktops, indent=1)[-2000:], tail(qemu_stack.serial),
            qemu_stack.hostd.log()[-4000:])) from None
    print("the QEMU keys test took %.1f s" % (time.monotonic() - start))
    assert "(Shift synthesis)" in qemu_stack.hostd.log(), qemu_stack.hostd.log()[-3000:]
