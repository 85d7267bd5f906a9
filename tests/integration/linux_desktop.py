"""The Linux desktop image (`make guest`: build/guest/vmlinuz, initrd.img, home.img) served
end to end for a browser test: a real vdi-broker with an automated pool of one spare
desktop on a real vdi-hostd, the image copied into the host's template directory, and
the console font the image loads taken out of its initramfs so that a test can read
the viewer's canvas glyph by glyph (tests/guest/mkfont.py)."""
import contextlib
import gzip
import json
import os
import pathlib
import shutil
from types import SimpleNamespace

import mkfont
from broker_fixture import Broker, free_port
from browser_fixture import ARTIFACTS, CHROMIUM, host_state, missing, run_node, stage_static, wait_for
from conftest import BUILD
from hostd_fixture import HOSTD, Hostd, heartbeat_section

GUEST = os.path.join(BUILD, "guest")
IMAGE = ("vmlinuz", "initrd.img", "home.img")
# Where guest/build-image.sh puts the console font guest/init loads on tty0.
FONT_IN_IMAGE = "usr/share/consolefonts/console.psf"
USER, PASSWORD = "alice", "alice-pw"
ADMIN, ADMIN_PASSWORD = "carol", "carol-pw"
HOST = "dc1-host1"


def why_not(*programs):
    """Why the stack cannot run here (None when it can): Chromium or Node missing,
    vdi-hostd or one of programs not built or installed, the image not built."""
    why = missing()
    if why:
        return why
    for path in (HOSTD,) + programs:
        if not os.path.exists(path):
            return "%s is not built or installed" % path
    absent = [f for f in IMAGE if not os.path.isfile(os.path.join(GUEST, f))]
    if absent:
        return "the guest image is not built (%s missing in %s): run `make guest`" % (
            ", ".join(absent), GUEST)
    return None


def initramfs_file(path, name):
    """The contents of file `name` in a gzip-compressed newc cpio archive (an initramfs
    as guest/mkcpio.py writes it), or None."""
    with open(path, "rb") as f:
        data = gzip.decompress(f.read())
    pos = 0
    while pos + 110 <= len(data):
        assert data[pos:pos + 6] in (b"070701", b"070702"), "%s: not a newc cpio at %d" % (path, pos)
        fields = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        size, namesize = fields[6], fields[11]
        entry = data[pos + 110:pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        if entry == name:
            return data[pos:pos + size]
        if entry == "TRAILER!!!":
            break
        pos += size
        pos += -pos % 4
    return None


def console_font_header(initrd, work):
    """The image's console font as the header screen.mjs reads (tests/guest/mkfont.py)."""
    font = initramfs_file(initrd, FONT_IN_IMAGE)
    assert font, "%s has no %s: rebuild the image (`make guest`)" % (initrd, FONT_IN_IMAGE)
    psf = os.path.join(work, "console.psf")
    with open(psf, "wb") as f:
        f.write(font)
    width, height, glyphs = mkfont.load_font(psf)
    header = os.path.join(work, "linux_font.h")
    mkfont.write_header(header, "%s:/%s" % (initrd, FONT_IN_IMAGE), width, height, glyphs)
    return header


def manifest():
    with open(os.path.join(GUEST, "manifest")) as f:
        return dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)


def tail(path, n=4000):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-n:]
    except OSError as e:
        return "(%s)" % e


@contextlib.contextmanager
def linux_desktop_stack(work, certs, pool, boot_timeout):
    """Broker and host on loopback with pool (the admin API's pool object, entitled to
    USER, one spare desktop) created and its desktop starting; yields a namespace with
    broker, hostd, admin (a signed-in API client), serial (the desktop's serial log) and
    env (what tests/browser/*.test.mjs read: VDI_URL, VDI_USER, VDI_PASSWORD, VDI_POOL,
    VDI_FONT, ...). Everything is stopped on the way out."""
    static = os.path.join(work, "static")
    stage_static(static)
    # The template directory: copies of the image (hostd resolves template files to real
    # paths inside its template directories, so symlinks into build/ would be refused;
    # copies also keep a concurrent `make guest` from changing the image under the test).
    tpl = os.path.join(work, "templates")
    os.makedirs(tpl)
    for f in IMAGE:
        shutil.copyfile(os.path.join(GUEST, f), os.path.join(tpl, f))
    font = console_font_header(os.path.join(tpl, "initrd.img"), work)
    hb_port = free_port()
    hostd_work = pathlib.Path(work) / "hostd"
    hostd_work.mkdir()
    hostd = Hostd(hostd_work, certs, tpl,
                  heartbeat_section(hb_port) +
                  "[desktops]\nstop_timeout = 2s\n", host_id=HOST)
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
        # One spare desktop: it starts booting while the browser signs in.
        admin.ok("POST", "/api/v1/admin/pools", dict(
            pool, kind="floating", source="automated", min=0, max=1, spare=1,
            entitlements=[{"kind": "user", "name": USER}]), expect=(201,))
        logs = hostd.state / "logs"
        wait_for(lambda: logs.is_dir() and any(logs.glob("*.serial")), "hostd to start the desktop",
                 lambda: hostd.log() + "\n--- broker ---\n" + broker.log(), timeout=60)
        serial = str(next(logs.glob("*.serial")))
        env = dict(os.environ, VDI_URL=broker.url, VDI_USER=USER, VDI_PASSWORD=PASSWORD,
                   VDI_POOL=pool["id"], VDI_KERNEL_RELEASE=manifest()["kernel_release"],
                   VDI_BOOT_TIMEOUT_MS=str(boot_timeout * 1000), VDI_SERIAL=serial,
                   VDI_FONT=font, VDI_ARTIFACTS=ARTIFACTS, VDI_CHROMIUM=CHROMIUM)
        yield SimpleNamespace(broker=broker, hostd=hostd, admin=admin, env=env, serial=serial,
                              pool=pool["id"])
    finally:
        hostd_status = hostd.stop()
        hostd.kill_vms()
        status = broker.stop()
    assert status == 0, "vdi-broker did not exit cleanly:\n" + broker.log()
    assert hostd_status in (0, None), hostd.log()


def run_browser_test(stack, script, artifacts, timeout):
    """Runs tests/browser/<script> against the stack; a failure carries the pool, the
    guest's serial log and hostd's log."""
    try:
        run_node(stack, script, artifacts, timeout=timeout)
    except AssertionError as e:
        desktops = stack.admin.ok("GET", "/api/v1/admin/pools/%s" % stack.pool)
        raise AssertionError("%s\n--- pool ---\n%s\n--- guest serial ---\n%s\n--- hostd log ---\n%s" % (
            e, json.dumps(desktops, indent=1)[-2000:], tail(stack.serial),
            stack.hostd.log()[-4000:])) from None
