"""The web portal (web/static/) in real headless Chromium: starts the real vdi-broker
(local users, temporary state, the portal with noVNC as its static_dir), a real
vdi-hostd (engine vdi-hv) for an automated pool, and a real vdi-hv running the demo
desktop guest as a manual pool's desktop, then runs the Node browser tests in
tests/browser/ (playwright-core driving Debian's /usr/bin/chromium) with the URLs and
credentials in VDI_* variables. Screenshots: build/artifacts/browser/."""
import http.client
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time
from types import SimpleNamespace

import pytest

from broker_fixture import Broker, free_port
from browser_fixture import ARTIFACTS, CHROMIUM, host_state, missing, run_node, stage_static, wait_for
from conftest import BUILD, guest_path, hv_argv
from hostd_fixture import HOSTD, Hostd, heartbeat_section

FONT = os.path.join(BUILD, "guests", "desktop_font.h")
VNC_PASSWORD = "desk-ticket-7f3a"

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")

# Local users: password, groups, display name (alice is in staff; carol is the admin;
# zed gets throttled; pat only probes the gateway).
USERS = {"alice": ("alice-pw", "staff", "Alice Example"), "bob": ("bob-pw", "sales", "Bob Builder"),
         "carol": ("carol-pw", "", "Carol Admin"), "zed": ("zed-pw", "", None),
         "pat": ("pat-pw", "", None), "petra": ("petra-pw", "", None)}
MAX_FAILURES = 3


def start_hostd(request, work, hb_port):
    """vdi-hostd (engine vdi-hv) whose template directory has the demo desktop guest as
    kernel and an empty base disk, and a second one (host-a) that cannot run vdi-hv;
    None, None when vdi-hostd is not built."""
    if not os.path.exists(HOSTD):
        return None, None
    certs_ = request.getfixturevalue("certs")
    tpl = os.path.join(work, "templates")
    os.makedirs(tpl)
    shutil.copyfile(guest_path("desktop"), os.path.join(tpl, "desktop.elf"))
    # a template QEMU refuses at once (a bzImage cut short), for the broken pool
    with open(os.path.join(BUILD, "guest", "vmlinuz"), "rb") as f:
        head = f.read(8192)
    with open(os.path.join(tpl, "cut-short.bzImage"), "wb") as f:
        f.write(head)
    with open(os.path.join(tpl, "base.img"), "wb") as f:
        f.truncate(1 << 20)
    hostd_work = pathlib.Path(work) / "hostd"
    hostd_work.mkdir()
    hostd = Hostd(hostd_work, certs_, tpl,
                  heartbeat_section(hb_port) +
                  "[desktops]\nstop_timeout = 2s\n", host_id="dc1-host1")
    # a host on which vdi-hv cannot run: pools only it may run are not available
    (pathlib.Path(work) / "host-a").mkdir()
    no_kvm = Hostd(pathlib.Path(work) / "host-a", certs_, tpl, heartbeat_section(hb_port),
                   host_id="host-a", vdihv="/nonexistent/vdi-hv")
    return hostd, no_kvm


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory):
    work = str(tmp_path_factory.mktemp("browser"))
    static = os.path.join(work, "static")
    stage_static(static)
    vnc_port = free_port()
    hb_port = free_port()
    hostd, no_kvm = start_hostd(request, work, hb_port)
    hosts_conf = ""
    if hostd:
        hosts_conf = f"""
[hosts]
cert = {hostd.certs.broker_crt}
key = {hostd.certs.broker_key}
ca = {hostd.certs.ca}
heartbeat_listen = 127.0.0.1:{hb_port}
"""
    broker = Broker(work, f"""
[broker]
admin_users = carol
maintenance_interval = 1s
[http]
static_dir = {static}
[auth]
max_user_failures = {MAX_FAILURES}
max_address_failures = 10000
lockout = 60s
{hosts_conf}""")
    for name, (pw, groups, display) in USERS.items():
        broker.add_user(name, pw, groups=groups, display_name=display)
    broker.start()
    try:
        if hostd:
            hostd.start()
            no_kvm.start()
        admin = broker.client()
        admin.login("carol", "carol-pw", bearer=True)
        pools = [
            ("desk", "Demo desktop", "floating", [{"address": "127.0.0.1:%d" % vnc_port,
                                                   "password": VNC_PASSWORD}], [("user", "alice")]),
            ("office", "Office PC", "dedicated", [{"address": "127.0.0.1:%d" % free_port()}],
             [("group", "staff")]),
            ("lab", "Lab workstation", "floating", [], [("user", "alice")]),
            ("finance", "Finance desktop", "floating", [{"address": "127.0.0.1:%d" % free_port()}],
             [("user", "bob")]),
            ("probe", "Gateway probe", "floating", [{"address": "127.0.0.1:%d" % free_port()}],
             [("user", "pat")]),
        ]
        for pid, name, kind, desktops, ents in pools:
            admin.ok("POST", "/api/v1/admin/pools",
                     {"id": pid, "name": name, "kind": kind, "source": "manual",
                      "desktops": desktops,
                      "entitlements": [{"kind": k, "name": n} for k, n in ents]}, expect=(201,))
        expect = {"desk": {"name": "Demo desktop", "state": "ready"},
                  "office": {"name": "Office PC", "state": "ready"},
                  "lab": {"name": "Lab workstation", "state": "unavailable",
                          "reason": "All desktops in this pool are in use."}}
        if hostd:
            admin.ok("POST", "/api/v1/admin/hosts",
                     {"id": "dc1-host1", "url": "https://127.0.0.1:%d" % hostd.api_port,
                      "relay": "127.0.0.1:%d" % hostd.relay_port}, expect=(201,))
            admin.ok("POST", "/api/v1/admin/pools", {
                "id": "eng", "name": "Engineering desktops", "kind": "floating",
                "source": "automated", "min": 0, "max": 2, "spare": 0, "memory_mib": 64,
                "template": {"engine": "vdi-hv", "kernel": "desktop.elf", "disk": "base.img"},
                "entitlements": [{"kind": "group", "name": "staff"}]}, expect=(201,))
            expect["eng"] = {"name": "Engineering desktops", "state": "ready"}
            admin.ok("POST", "/api/v1/admin/pools", {
                "id": "broken", "name": "Broken template", "kind": "floating",
                "source": "automated", "min": 0, "max": 2, "spare": 0, "memory_mib": 64,
                "template": {"engine": "qemu", "kernel": "cut-short.bzImage", "disk": "base.img"},
                "entitlements": [{"kind": "user", "name": "alice"}]}, expect=(201,))
            expect["broken"] = {"name": "Broken template", "state": "ready"}
            # a pool only a host that never reports may run: unavailable, and why
            admin.ok("POST", "/api/v1/admin/pools", {
                "id": "offsite", "name": "Offsite desktops", "kind": "floating",
                "source": "automated", "min": 0, "max": 1, "spare": 0, "memory_mib": 64,
                "hosts": "dc2-host7",
                "template": {"engine": "vdi-hv", "kernel": "desktop.elf", "disk": "base.img"},
                "entitlements": [{"kind": "user", "name": "alice"}]}, expect=(201,))
            expect["offsite"] = {"name": "Offsite desktops", "state": "unavailable",
                                 "reason": "No host is available to run this desktop."}
            admin.ok("POST", "/api/v1/admin/hosts",
                     {"id": "host-a", "url": "https://127.0.0.1:%d" % no_kvm.api_port,
                      "relay": "127.0.0.1:%d" % no_kvm.relay_port}, expect=(201,))
            wait_for(lambda: host_state(admin, "dc1-host1") == "up", "the host to report",
                     lambda: hostd.log())
            wait_for(lambda: host_state(admin, "host-a") == "up", "host-a to report",
                     lambda: no_kvm.log())
            # a pool only host-a may run: its engine cannot run there
            admin.ok("POST", "/api/v1/admin/pools", {
                "id": "gpu", "name": "GPU workstation", "kind": "floating",
                "source": "automated", "min": 0, "max": 1, "spare": 0, "memory_mib": 64,
                "hosts": "host-a",
                "template": {"engine": "vdi-hv", "kernel": "desktop.elf", "disk": "base.img"},
                "entitlements": [{"kind": "user", "name": "alice"}]}, expect=(201,))
            expect["gpu"] = {"name": "GPU workstation", "state": "unavailable",
                             "reason": "This desktop is not available right now."}
            # a pool whose spare desktop keeps failing: degraded after 3 in a row
            admin.ok("POST", "/api/v1/admin/pools", {
                "id": "crashy", "name": "Crashing template", "kind": "floating",
                "source": "automated", "min": 0, "max": 1, "spare": 1, "memory_mib": 64,
                "hosts": "dc1-host1",
                "template": {"engine": "qemu", "kernel": "cut-short.bzImage", "disk": "base.img"},
                "entitlements": []}, expect=(201,))
        # a host that never reports
        admin.ok("POST", "/api/v1/admin/hosts", {"id": "dc2-host7", "url": "https://127.0.0.1:%d" % free_port()},
                 expect=(201,))
        env = dict(os.environ,
                   VDI_URL=broker.url, VDI_USER="alice", VDI_PASSWORD="alice-pw",
                   VDI_DISPLAY_NAME="Alice Example", VDI_ADMIN="carol", VDI_ADMIN_PASSWORD="carol-pw",
                   VDI_THROTTLED_USER="zed", VDI_MAX_FAILURES=str(MAX_FAILURES),
                   VDI_PASSWORD_USER="petra", VDI_PASSWORD_USER_PASSWORD="petra-pw",
                   VDI_POOLS=json.dumps(expect), VDI_HIDDEN_POOLS=json.dumps(["finance", "probe"]),
                   VDI_DESK_POOL="desk", VDI_AUTO_POOL="eng" if hostd else "",
                   VDI_BROKEN_POOL="broken" if hostd else "",
                   VDI_DEGRADED_POOL="crashy" if hostd else "",
                   VDI_UNCHECKED_POOL="offsite" if hostd else "",
                   VDI_FONT=FONT, VDI_ARTIFACTS=ARTIFACTS,
                   VDI_CHROMIUM=CHROMIUM)
        yield SimpleNamespace(broker=broker, admin=admin, env=env, work=work, vnc_port=vnc_port,
                              hostd=hostd)
    finally:
        hostd_status = None
        if hostd:
            hostd_status = hostd.stop()
            hostd.kill_vms()
            no_kvm.stop()
        status = broker.stop()
    assert status == 0, "vdi-broker did not exit cleanly:\n" + broker.log()
    assert hostd_status in (0, None), hostd.log()


def logoff_everyone(stack):
    for s in stack.admin.ok("GET", "/api/v1/admin/sessions")["sessions"]:
        stack.admin.ok("POST", "/api/v1/admin/sessions/%s/logoff" % s["id"], expect=(204, 409))


class Desktop:
    """vdi-hv running the demo desktop guest with its VNC server on the pool's port,
    protected by the pool's stored password (which the gateway logs in with); the serial
    console goes to a file the browser tests read."""

    def __init__(self, workdir, port):
        self.serial = os.path.join(workdir, "desktop-serial.txt")
        self.log = os.path.join(workdir, "desktop-hv.log")
        self.control = os.path.join(workdir, "desktop-control.sock")
        args = hv_argv("--kernel", guest_path("desktop"), "--serial", "stdio",
                       "--control", "unix:" + self.control, "--vnc", "127.0.0.1:%d" % port)
        with open(self.serial, "wb") as out, open(self.log, "wb") as err:
            self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=out, stderr=err,
                                         cwd=workdir)
        reply = self.command({"cmd": "set-ticket", "password": VNC_PASSWORD,
                              "expires": int(time.time()) + 3600})
        assert reply.get("ok") is True, reply

    def command(self, request, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(self.control)
                    s.settimeout(timeout)
                    s.sendall(json.dumps(request).encode() + b"\n")
                    reply = b""
                    while not reply.endswith(b"\n"):
                        chunk = s.recv(65536)
                        assert chunk, "control socket closed"
                        reply += chunk
                    return json.loads(reply)
            except (FileNotFoundError, ConnectionRefusedError):
                assert self.proc.poll() is None, "vdi-hv exited:\n" + self.stderr()
                assert time.monotonic() < deadline, "no control socket:\n" + self.stderr()
                time.sleep(0.05)

    def stderr(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")[-4000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdin.close()


@pytest.fixture
def desktop(stack, tmp_path):
    d = Desktop(str(tmp_path), stack.vnc_port)
    try:
        yield d
    finally:
        d.stop()


def test_gateway_refuses_unreachable_desktop(stack):
    """A WebSocket upgrade with a good ticket for a desktop nobody listens on: the gateway
    answers 502 instead of 101 (what the viewer test's "cannot reach the desktop" sees in
    the browser only as a failed WebSocket), and the session is left disconnected."""
    logoff_everyone(stack)
    c = stack.broker.client()
    c.login("pat", USERS["pat"][0])
    r = c.connect("probe")
    assert r.status == 200, r
    conn = http.client.HTTPSConnection("127.0.0.1", stack.broker.port, timeout=10,
                                       context=stack.broker.ssl_context())
    try:
        conn.request("GET", "/gateway?ticket=" + r.json["ticket"], headers={
            "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": stack.broker.url})
        answer = conn.getresponse()
        status, body = answer.status, answer.read()
    finally:
        conn.close()
    assert status == 502, "a WebSocket upgrade to an unreachable desktop got HTTP %d %r" % (status, body)
    assert json.loads(body)["code"] == "desktop_unreachable", body
    sessions = {s["id"]: s for s in stack.admin.ok("GET", "/api/v1/admin/sessions")["sessions"]}
    assert sessions[r.json["session"]]["state"] == "disconnected", sessions
    stack.admin.ok("POST", "/api/v1/admin/sessions/%s/logoff" % r.json["session"], expect=(204,))


def test_portal_pages(stack):
    """Sign-in (wrong password, throttling), entitled desktops and their states, session
    buttons, CSRF refusals, the admin console, sign-out, phone layout."""
    logoff_everyone(stack)
    run_node(stack, "portal.test.mjs", "portal")


def test_viewer_through_broker_gateway(stack, desktop):
    """The viewer, noVNC, the broker's gateway (wss://broker/gateway?ticket=...) and vdi-hv's
    VNC server end to end: the gateway authenticates to the desktop with the pool's stored
    password; connect, type, disconnect and reconnect, administrator disconnect and log
    off, takeover by a second Connect, touch input on a phone, refusals."""
    logoff_everyone(stack)
    run_node(stack, "viewer.test.mjs", "viewer", {"VDI_SERIAL": desktop.serial}, timeout=240)
