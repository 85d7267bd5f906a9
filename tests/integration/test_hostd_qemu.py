"""vdi-hostd running Linux desktops (the `make guest` image) on the QEMU engine under TCG,
as the broker would drive it: two desktops on one base image boot to VDI-GUEST-READY; a
VNC client with a ticket, through the TLS display relay, sees the console and types a
command whose effect shows on the screen and the serial line; wrong, reused, expired
tickets and wrong passwords are refused, view-only tickets cannot type; hostd restarted
re-adopts the running VMs; `kill -9` of a VM is reported as failed with its last serial
lines; a stop powers the guest off through ACPI; heartbeats reach a (test) broker every
second. The tests share two VMs and run in order (never more than 2 VMs at once)."""
import hashlib
import http.server
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import TOP
from hostd_fixture import HOSTD, Hostd, closed_without_data
from rfb_client import AuthRefused, Rfb

GUEST = Path(os.environ.get("VDI_GUEST_DIR", Path(TOP) / "build" / "guest"))
QEMU = "/usr/bin/qemu-system-x86_64"
CMDLINE = "console=ttyS0 console=tty0 vga=0x344 panic=-1"
READY = "VDI-GUEST-READY"

_missing = [f.name for f in (GUEST / "vmlinuz", GUEST / "initrd.img", GUEST / "home.img")
            if not f.is_file()]
pytestmark = [
    pytest.mark.skipif(not os.path.exists(HOSTD), reason="vdi-hostd not built"),
    pytest.mark.skipif(bool(_missing), reason=f"guest image not built ({', '.join(_missing)} "
                       f"missing in {GUEST}): run `make guest`"),
    pytest.mark.skipif(not os.path.exists(QEMU), reason="qemu-system-x86_64 not installed"),
]


class HeartbeatReceiver:
    """A stand-in broker endpoint: HTTPS with client certificates required, records every
    heartbeat POSTed to it with the client certificate's common name."""

    def __init__(self, certs):
        beats = self.beats = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                peer = dict(x[0] for x in self.connection.getpeercert()["subject"])
                beats.append((time.monotonic(), peer.get("commonName"), json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(certs.broker_crt), str(certs.broker_key))
        ctx.load_verify_locations(str(certs.ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = "https://127.0.0.1:%d/api/v1/hosts/heartbeat" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def states(self, since=0.0):
        """The desktop states of each heartbeat received after `since` (monotonic)."""
        return [{d["id"]: d["state"] for d in b["desktops"]} for t, _, b in self.beats if t > since]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def serial(h, did):
    return (h.state / "logs" / f"{did}.serial").read_text(errors="replace")


def wait_serial(h, did, pattern, timeout):
    deadline = time.monotonic() + timeout
    while not re.search(pattern, serial(h, did)):
        d = h.desktop(did)
        assert d["state"] in ("starting", "running"), d
        assert time.monotonic() < deadline, \
            f"no {pattern!r} on {did}'s serial line within {timeout}s:\n{serial(h, did)[-2000:]}"
        time.sleep(0.2)


def base_hash():
    return hashlib.sha256((GUEST / "home.img").read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def desk(tmp_path_factory, certs):
    """hostd with a heartbeat receiver and two desktops, d1 and d2, on home.img, booted."""
    work = tmp_path_factory.mktemp("hostd-qemu")
    receiver = HeartbeatReceiver(certs)
    h = Hostd(work, certs, str(GUEST),
              f"[broker]\nheartbeat_url = {receiver.url}\n[desktops]\nstop_timeout = 30s\n")
    h.base_hash = base_hash()
    h.receiver = receiver
    h.boot_s = {}
    h.start()
    try:
        for did in ("d1", "d2"):
            d = h.ok("POST", "/api/v1/desktops",
                     {"id": did, "engine": "qemu", "kernel": "vmlinuz", "initrd": "initrd.img",
                      "disk": "home.img", "cmdline": f"{CMDLINE} vdi.hostname={did} vdi.net=off",
                      "memory_mib": 256, "vcpus": 1})
            assert d["state"] == "stopped"
        t0 = time.monotonic()
        for did in ("d1", "d2"):
            assert h.ok("POST", f"/api/v1/desktops/{did}/start")["state"] == "starting"
        for did in ("d1", "d2"):
            wait_serial(h, did, READY, 120)
            h.boot_s[did] = time.monotonic() - t0
        print("boot to %s via hostd, two at once: %s" % (
            READY, ", ".join("%s %.1f s" % kv for kv in h.boot_s.items())))
        yield h
    finally:
        status = h.stop()
        h.kill_vms()
        receiver.close()
    assert status == 0, "vdi-hostd did not exit cleanly:\n" + h.log()


def test_two_desktops_share_one_base_image(desk):
    h = desk
    for did in ("d1", "d2"):
        assert h.desktop(did)["state"] == "running"
        info = json.loads(subprocess.run(
            ["qemu-img", "info", "--output=json", "-U", str(h.state / "disks" / f"{did}.qcow2")],
            capture_output=True, text=True, check=True).stdout)
        assert info["backing-filename"] == str((GUEST / "home.img").resolve())
        assert info["backing-filename-format"] == "raw"
        used = info["actual-size"]
        print(f"{did}: overlay {used / 1024:.0f} KiB on a "
              f"{(GUEST / 'home.img').stat().st_size >> 20} MiB base")
        assert used < 8 << 20, f"{did}'s overlay is {used} bytes: the base was copied?"
    assert "vdi desktop guest d1" in serial(h, "d1")  # its own command line
    cap = h.ok("GET", "/api/v1/capacity")
    assert cap["desktops_running"] == 2 and cap["memory_committed_mib"] == 512
    assert cap["engines"]["qemu"]["accel"] in ("kvm", "tcg")


def test_heartbeats_arrive_every_second(desk):
    h = desk
    t0 = time.monotonic()
    time.sleep(3.2)
    beats = [b for b in h.receiver.beats if b[0] > t0]
    assert 2 <= len(beats) <= 5, [b[0] - t0 for b in beats]
    _, common_name, body = beats[-1]
    assert common_name == "test-host"  # hostd presented its own certificate, named by its id
    assert body["host_id"] == "test-host" and body["capacity"]["desktops_running"] == 2
    assert {d["id"]: d["state"] for d in body["desktops"]} == {"d1": "running", "d2": "running"}


def test_idle_connections_from_one_address_take_no_places(desk):
    """300 silent TCP connections from 127.0.0.2 on the relay and on the API (in their
    TLS handshake, so unauthenticated): the surplus is refused at accept, and the broker's
    address still gets its API answers and a display session."""
    h = desk
    held = []
    try:
        for port in (h.relay_port, h.api_port):
            for _ in range(150):
                held.append(socket.create_connection(("127.0.0.1", port), timeout=5,
                                                     source_address=("127.0.0.2", 0)))
        refusals = ("too many connections from this address before their ticket",
                    "127.0.0.2 refused: as many connections from this address as allowed")
        deadline = time.monotonic() + 20
        while not all(r in open(h.log_path, errors="replace").read() for r in refusals):
            assert time.monotonic() < deadline, "no refusal logged for the surplus"
            time.sleep(0.2)
        assert h.ok("GET", "/api/v1/capacity")["host_id"] == "test-host"
        ticket = "tk-" + os.urandom(16).hex()
        assert h.ticket("d1", ticket)[0] == 200
        rfb = Rfb(h.relay(f"VDI-TICKET {ticket}\n".encode()), ticket)
        assert rfb.update() == 1024 * 768 * 4
        rfb.sock.close()
    finally:
        for s in held:
            s.close()


def test_vnc_through_the_relay_sees_the_console_and_types(desk):
    h = desk
    ticket = "tk-" + os.urandom(16).hex()
    assert h.ticket("d1", ticket)[0] == 200
    rfb = Rfb(h.relay(f"VDI-TICKET {ticket}\n".encode()), ticket)
    assert (rfb.width, rfb.height) == (1024, 768)
    t0 = time.monotonic()
    carried = rfb.update()
    elapsed = time.monotonic() - t0
    print(f"relay: full 1024x768x32 update, {carried >> 20} MiB in {elapsed * 1000:.0f} ms "
          f"({carried / elapsed / 1e6:.0f} MB/s, TLS + QEMU raw encoding)")
    assert rfb.lit_pixels() > 2000, "the console is blank"
    before = bytes(rfb.fb)
    token = "vnc" + os.urandom(4).hex()
    rfb.type(f"echo {token} >/dev/ttyS0\n")
    wait_serial(h, "d1", token, 30)  # the tty1 shell ran it: its output is on ttyS0
    deadline = time.monotonic() + 10
    while bytes(rfb.fb) == before:
        assert time.monotonic() < deadline, "typing did not change the screen"
        rfb.update(incremental=True)
    rfb.sock.close()
    # The ticket was used: a second connection with it is dropped.
    assert closed_without_data(h.relay(f"VDI-TICKET {ticket}\n".encode()))


def test_keysyms_without_shift_type_what_they_name(desk):
    """QEMU maps a keysym to its key without Shift ('$' typed '4'); the relay adds Shift
    around keysyms that need it when the client sends none (issue [10]), and a client
    that sends its own Shift is typed as before."""
    h = desk
    ticket = "tk-" + os.urandom(16).hex()
    assert h.ticket("d1", ticket)[0] == 200
    rfb = Rfb(h.relay(f"VDI-TICKET {ticket}\n".encode()), ticket)
    rfb.update()
    token = "Ks" + os.urandom(4).hex()
    rfb.type(f"echo {token}-$((6*7))_A >/dev/ttyS0\n", shift_keys=False)
    wait_serial(h, "d1", re.escape(f"{token}-42_A"), 30)
    token = "Rs" + os.urandom(4).hex()
    rfb.type(f"echo {token}-$((6*7))_A >/dev/ttyS0\n")
    wait_serial(h, "d1", re.escape(f"{token}-42_A"), 30)
    rfb.sock.close()
    deadline = time.monotonic() + 5
    while not re.search(r"desktop=d1: session from .* ended .*; [1-9][0-9]* Shift events synthesised",
                        h.log()):
        assert time.monotonic() < deadline, h.log()[-3000:]
        time.sleep(0.1)


def test_bad_tickets_are_refused(desk):
    h = desk
    # Never registered.
    assert closed_without_data(h.relay(b"VDI-TICKET " + os.urandom(16).hex().encode() + b"\n"))
    # A ticket names its desktop: this one reaches d2.
    t2 = "tk-" + os.urandom(16).hex()
    assert h.ticket("d2", t2)[0] == 200
    rfb = Rfb(h.relay(f"VDI-TICKET {t2}\n".encode()), t2)
    assert b"d2" in rfb.name  # QEMU names its display after -name guest=d2
    rfb.sock.close()
    # Expired.
    t3 = "tk-" + os.urandom(16).hex()
    # (a whole-second expiry a few seconds ahead: ttl=1 could be in the past on arrival
    # at a loaded machine, int() taking up to a second off it)
    assert h.ticket("d1", t3, ttl=3)[0] == 200
    time.sleep(4.1)
    assert closed_without_data(h.relay(f"VDI-TICKET {t3}\n".encode()))
    # A good ticket but the wrong VNC password: QEMU refuses the authentication.
    t4 = "tk-" + os.urandom(16).hex()
    status, _ = h.request("POST", "/api/v1/desktops/d1/ticket",
                          {"ticket": t4, "expires": int(time.time()) + 60, "password": "other-pw"})
    assert status == 200
    with pytest.raises((AuthRefused, ConnectionError)):
        Rfb(h.relay(f"VDI-TICKET {t4}\n".encode()), t4)
    assert "unknown or used ticket" in h.log() and "expired ticket" in h.log()


def test_view_only_ticket_cannot_type(desk):
    h = desk
    ticket = "tk-" + os.urandom(16).hex()
    assert h.ticket("d1", ticket, view_only=True)[0] == 200
    rfb = Rfb(h.relay(f"VDI-TICKET {ticket}\n".encode()), ticket)
    rfb.update()
    assert rfb.lit_pixels() > 2000
    token = "vo" + os.urandom(4).hex()
    rfb.type(f"echo {token} >/dev/ttyS0\n")
    rfb.update(incremental=True)
    time.sleep(3)
    assert token not in serial(h, "d1")
    rfb.sock.close()
    deadline = time.monotonic() + 5
    while "input dropped: view only" not in h.log():
        assert time.monotonic() < deadline, h.log()
        time.sleep(0.1)


def test_restarted_hostd_readopts_running_desktops(desk):
    h = desk
    pids = {did: h.desktop(did)["pid"] for did in ("d1", "d2")}
    assert h.stop() == 0, h.log()
    for pid in pids.values():
        os.kill(pid, 0)  # still running without hostd
    h.start()
    for did, pid in pids.items():
        d = h.wait_state(did, "running", timeout=10)
        assert d["pid"] == pid
    assert "adopted qemu" in h.log()
    # Adopted desktops are fully usable: a new ticket, a VNC session.
    ticket = "tk-" + os.urandom(16).hex()
    assert h.ticket("d1", ticket)[0] == 200
    rfb = Rfb(h.relay(f"VDI-TICKET {ticket}\n".encode()), ticket)
    assert rfb.update() > 0
    rfb.sock.close()


def test_killed_vm_is_reported_failed_with_its_last_serial_lines(desk):
    h = desk
    pid = h.desktop("d2")["pid"]
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    d = h.wait_state("d2", "failed", timeout=10)
    print(f"kill -9 reported as failed after {time.monotonic() - t0:.2f} s")
    f = d["failure"]
    assert "killed by signal 9" in f["exit"] and "unexpectedly" in f["reason"], f
    assert any(READY in line for line in f["serial_tail"]), f["serial_tail"]
    assert all("\x1b" not in line for line in f["serial_tail"])
    deadline = time.monotonic() + 5
    while not any(s.get("d2") == "failed" for s in h.receiver.states(t0)):
        assert time.monotonic() < deadline, "no heartbeat reported d2 failed"
        time.sleep(0.2)
    # The failure is kept across a restart.
    assert h.stop() == 0, h.log()
    h.start()
    assert h.desktop("d2")["state"] == "failed"
    assert h.desktop("d2")["failure"]["exit"] == f["exit"]


def test_stop_shuts_the_guest_down_then_destroy(desk):
    h = desk
    t0 = time.monotonic()
    assert h.ok("POST", "/api/v1/desktops/d1/stop")["state"] == "stopping"
    d = h.wait_state("d1", "stopped", timeout=60)
    print(f"graceful stop (ACPI power button) took {time.monotonic() - t0:.1f} s")
    assert "failure" not in d
    assert "Power down" in serial(h, "d1"), serial(h, "d1")[-1000:]
    assert "exited with status 0" in h.log()
    assert h.request("DELETE", "/api/v1/desktops/d1")[0] == 200
    assert h.request("DELETE", "/api/v1/desktops/d2")[0] == 200
    assert h.ok("GET", "/api/v1/desktops")["desktops"] == []
    assert list((h.state / "disks").iterdir()) == []
    assert list((h.state / "desktops").iterdir()) == []
    assert base_hash() == h.base_hash, "the base image changed"
