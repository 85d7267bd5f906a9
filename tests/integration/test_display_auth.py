"""Who gets in to vdi-hv's VNC server: nobody without a ticket, nobody with a wrong or
expired one, guessing slowed down, view-only tickets apart from the full one, tickets
cleared (and viewers dropped) on request, and never a ticket in the log. Viewers are
our libvncclient test client; the tickets go in over the control socket."""
import os
import re
import subprocess
import time

from conftest import guest_path, hv_argv
from vnc_fixture import PASSWORD, TOOL, ok, set_ticket, vnc, vnc_vm, wait_log

BOOT_TIMEOUT = 90


def test_no_ticket_no_viewer(hv, tmp_path):
    vm, addr = vnc_vm(hv, tmp_path, "framebuffer", ticket=False)
    rc, out, err = vnc(addr)
    assert rc != 0 and "connected" not in out
    wait_log(vm, r"refused: no ticket set")
    rc, out, err = vnc(addr, password=None)  # nor without a password
    assert rc != 0
    ok(vm.control({"cmd": "quit"}))
    assert vm.wait(60) == 0


def test_tickets_are_checked_and_never_logged(hv, tmp_path):
    vm, addr = vnc_vm(hv, tmp_path, "framebuffer")
    rc, out, err = vnc(addr, password="wrong-ticket")
    assert rc == 3, (rc, err)
    wait_log(vm, r"refused: wrong or expired ticket")
    rc, out, err = vnc(addr)
    assert rc == 0, err

    # Refused settings, each with a reason.
    now = int(time.time())
    for req in ({"password": "short7!", "expires": now + 60},
                {"password": "x" * 65, "expires": now + 60},
                {"password": "fine-but-late", "expires": now - 1},
                {"password": PASSWORD[:8] + "other", "expires": now + 60, "view_only": True},
                {"password": "fine-pass", "expires": "soon"},
                {"password": "fine-pass"}):
        reply = vm.control(dict(req, cmd="set-ticket"))
        assert "error" in reply, (req, reply)

    # Only the first 8 bytes count (RFB's DES scheme).
    rc, out, err = vnc(addr, password=PASSWORD[:8] + "anything")
    assert rc == 0, err

    # Rotation: the old ticket stops working, the new one works.
    ok(set_ticket(vm, "rotated-ticket"))
    assert vnc(addr)[0] == 3
    assert vnc(addr, password="rotated-ticket")[0] == 0

    # Expiry.
    ok(set_ticket(vm, "short-lived", ttl=2))
    assert vnc(addr, password="short-lived")[0] == 0
    time.sleep(2.2)
    assert vnc(addr, password="short-lived")[0] != 0

    for secret in (PASSWORD, PASSWORD[:8], "rotated-", "short-li"):
        assert secret not in vm.stderr()
    ok(vm.control({"cmd": "quit"}))
    assert vm.wait(60) == 0


def test_guessing_is_throttled(hv, tmp_path):
    vm, addr = vnc_vm(hv, tmp_path, "framebuffer")
    throttled = "too many authentication failures"
    for attempt in range(12):
        assert vnc(addr, password="guess-%04d" % attempt)[0] != 0
        wait_log(vm, r"viewer %d from .* refused" % (attempt + 1))
        if throttled in vm.stderr():
            break
    assert throttled in vm.stderr(), vm.stderr()[-2000:]
    retry_ms = max(int(ms) for ms in re.findall(r"retry in (\d+) ms", vm.stderr()))
    # While blocked even the right ticket is refused; afterwards it works again.
    if vnc(addr)[0] != 0:
        wait_log(vm, throttled, count=2)
    time.sleep(retry_ms / 1000 + 2.5)
    rc, out, err = vnc(addr)
    assert rc == 0, err
    assert ok(vm.control({"cmd": "display"}))["auth_failures"] >= 4
    ok(vm.control({"cmd": "quit"}))
    assert vm.wait(60) == 0


def test_clear_tickets_drops_viewers(hv, tmp_path):
    vm, addr = vnc_vm(hv, tmp_path, "framebuffer")
    ok(set_ticket(vm, "watch-only", view_only=True))
    viewer = subprocess.Popen([TOOL, addr, "--idle", "30"], env=dict(os.environ, VNC_PASSWORD=PASSWORD),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while ok(vm.control({"cmd": "display"}))["viewers"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    t0 = time.monotonic()
    ok(vm.control({"cmd": "clear-tickets", "disconnect": True}))
    viewer.communicate(timeout=30)
    assert viewer.returncode != 0 and time.monotonic() - t0 < 10
    assert vnc(addr)[0] != 0
    assert vnc(addr, password="watch-only")[0] != 0
    assert ok(vm.control({"cmd": "display"}))["viewers"] == 0
    ok(vm.control({"cmd": "quit"}))
    assert vm.wait(60) == 0


def test_insecure_mode_is_loud(hv, tmp_path):
    vm, addr = vnc_vm(hv, tmp_path, "framebuffer", "--vnc-insecure", ticket=False)
    rc, out, err = vnc(addr, password=None)
    assert rc == 0, err
    wait_log(vm, r"WITHOUT AUTHENTICATION")
    ok(vm.control({"cmd": "quit"}))
    assert vm.wait(60) == 0


def test_bad_vnc_options(tmp_path):
    kernel = guest_path("framebuffer")
    for args in (["--vnc", "unix:"], ["--vnc", "host:"], ["--vnc", "127.0.0.1:70000"],
                 ["--vnc", "5900", "--fb", "none"], ["--vnc-insecure"]):
        p = subprocess.run(hv_argv("--kernel", kernel, *args), capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 2, (args, p.stderr)


def test_ticket_verbs_without_vnc(hv):
    vm = hv("framebuffer")
    reply = vm.control({"cmd": "set-ticket", "password": PASSWORD,
                        "expires": int(time.time()) + 60})
    assert "no VNC server" in reply.get("error", ""), reply
    assert "error" in vm.control({"cmd": "display"})
    ok(vm.control({"cmd": "quit"}))
    assert vm.wait(60) == 0
