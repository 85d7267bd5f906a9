"""vdi-hostd without a Linux guest: configuration checking, mutual TLS on the API and the
display relay, refusal of bad input (malformed JSON, unknown fields, oversized bodies,
path traversal), symlinks planted in its directories refused, definitions that survive
a restart, and the vdi-hv engine with the
freestanding test guests (copy-on-write overlay, clean exit, crash report, ticket and
relay, forced stop). The harness (hostd in a temporary directory on free loopback ports,
an HTTPS client with the broker's certificate) is in hostd_fixture.py, the RFB client in
rfb_client.py, the certificates in conftest.py's `certs` fixture."""
import hashlib
import http.client
import json
import os
import pathlib
import re
import shutil
import ssl
import struct
import subprocess
import tempfile
import time

import pytest

from conftest import GUESTS, box_pid_of, kvm_prefix
from hostd_fixture import HOSTD, VDIHV, Hostd, closed_without_data
from rfb_client import Rfb

pytestmark = pytest.mark.skipif(not os.path.exists(HOSTD), reason="vdi-hostd not built")


@pytest.fixture
def hostd_factory(tmp_path, certs):
    """hostd_factory(template_dirs, extra_conf) -> a started Hostd; all are stopped (and
    must exit 0) and their VMMs killed at teardown."""
    daemons = []

    def make(template_dirs, extra="", name="hostd", vdihv=VDIHV):
        work = tmp_path / name
        work.mkdir(exist_ok=True)
        h = Hostd(work, certs, template_dirs, extra, vdihv=vdihv)
        daemons.append(h)
        return h.start()

    yield make
    bad = []
    for h in daemons:
        status = h.stop()
        h.kill_vms()
        if status not in (0, None):
            bad.append((status, h.log()))
    assert not bad, "vdi-hostd did not exit cleanly: %s" % bad


# ---- tests: configuration, TLS, input ----

def test_config_check(tmp_path, certs):
    h = Hostd(tmp_path, certs, str(tmp_path))
    ok = subprocess.run([HOSTD, "-n", "-c", str(h.conf)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.conf"
    bad.write_text("[hostd]\nstate_dir = /tmp/x\n\n[relay]\nmax_sessions = lots\n")
    r = subprocess.run([HOSTD, "-n", "-c", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.startswith(f"{bad}:5: [relay] max_sessions: 'lots' is not an integer"), r.stderr
    bad.write_text("[api]\nlisten = 0.0.0.0\n")
    r = subprocess.run([HOSTD, "-n", "-c", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2 and "[api] listen" in r.stderr, r.stderr
    shutil.rmtree(h.run, ignore_errors=True)


def test_directories_others_can_change_are_refused(tmp_path, certs):
    """hostd keeps sockets, pid files and desktop definitions in its run and state
    directories: one another local user could write to, replace or own is refused at
    start, with the reason in the log."""
    h = Hostd(tmp_path, certs, str(tmp_path))
    run = pathlib.Path(h.run)
    state = pathlib.Path(h.state)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def refused(why):
        r = subprocess.run([HOSTD, "-c", str(h.conf)], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode != 0 and why in r.stderr, (why, r.returncode, r.stderr)

    try:
        os.chmod(run, 0o777)
        refused("is writable by others (mode 0777)")
        os.chmod(run, 0o700)
        os.chown(run, 65534, 65534)
        refused("belongs to uid 65534")
        os.chown(run, os.geteuid(), os.getegid())
        shutil.rmtree(state, ignore_errors=True)
        state.symlink_to(elsewhere)
        refused("is not a directory (a symlink?)")
        state.unlink()
        loose = pathlib.Path(tempfile.mkdtemp(prefix="vh-", dir="/tmp"))  # short: sockets
        os.chmod(loose, 0o777)  # others could rename the run directory away
        (loose / "run").mkdir(mode=0o700)
        h.conf.write_text(h.conf.read_text().replace(f"run_dir = {run}", f"run_dir = {loose}/run"))
        refused("which others can write without the sticky bit")
    finally:
        shutil.rmtree(h.run, ignore_errors=True)
        if "loose" in locals():
            shutil.rmtree(loose, ignore_errors=True)


def test_mutual_tls_refuses_clients_without_a_ca_signed_certificate(hostd_factory, certs, tmp_path):
    h = hostd_factory(str(tmp_path))
    status, cap = h.request("GET", "/api/v1/capacity")
    assert status == 200 and cap["host_id"] == "test-host" and cap["cpus"] >= 1
    assert cap["memory_total_mib"] > 0 and cap["desktops_running"] == 0
    for who in (None, "other"):
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
            h.request("GET", "/api/v1/capacity", cert=who)
    # The relay too: no certificate, no connection.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        s = h.relay(b"VDI-TICKET " + b"x" * 20 + b"\n", cert=None)
        s.settimeout(5)
        if s.recv(10) == b"":
            raise ConnectionError("closed")
    assert h.proc.poll() is None


def test_bad_requests_get_4xx_and_never_a_crash(hostd_factory, tmp_path):
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "disk.img").write_bytes(b"\0" * 65536)
    (tmp_path / "secret.img").write_bytes(b"\0" * 512)
    os.symlink("/etc/passwd", tpl / "escape.img")
    os.symlink(tmp_path / "secret.img", tpl / "sneaky.img")
    h = hostd_factory(str(tpl))

    def expect(status, code, method, path, body=None, raw=None):
        got, reply = h.request(method, path, body, raw)
        assert got == status, (method, path, body, raw, got, reply)
        assert reply["code"] == code and reply["error"], reply

    expect(400, "bad_request", "POST", "/api/v1/desktops", raw=b'{"disk": "disk.img"')
    expect(400, "bad_request", "POST", "/api/v1/desktops", raw=b"[1, 2]")
    expect(400, "bad_request", "POST", "/api/v1/desktops", raw=b"")
    expect(400, "bad_request", "POST", "/api/v1/desktops", {"disk": "disk.img", "colour": "red"})
    expect(400, "bad_request", "POST", "/api/v1/desktops", {"disk": 5})
    expect(400, "bad_request", "POST", "/api/v1/desktops", {"disk": "disk.img", "memory_mib": 3})
    expect(400, "bad_request", "POST", "/api/v1/desktops", {"disk": "disk.img", "vcpus": 1000})
    expect(400, "bad_request", "POST", "/api/v1/desktops", {"disk": "disk.img", "engine": "xen"})
    expect(400, "bad_request", "POST", "/api/v1/desktops", {"disk": "disk.img", "id": "../../etc"})
    expect(400, "bad_request", "POST", "/api/v1/desktops", {"disk": "disk.img", "id": "a" * 41})
    for disk in ("../secret.img", "/etc/passwd", "escape.img", "sneaky.img", str(tmp_path / "secret.img"),
                 "nonexistent.img", "", "disk.img\n", ".", "/"):
        expect(400, "bad_request", "POST", "/api/v1/desktops", {"disk": disk})
    expect(400, "bad_request", "POST", "/api/v1/desktops",
           {"disk": "disk.img", "cmdline": "console=ttyS0\u0001"})
    expect(413, "too_large", "POST", "/api/v1/desktops",
           raw=json.dumps({"disk": "disk.img", "cmdline": "x" * 8000}).encode())
    # A huge body is answered 413 as soon as its Content-Length is read and the connection
    # closed: read the early answer while still sending, as a careful client does.
    status_line = h.raw_request(b"POST /api/v1/desktops HTTP/1.1\r\nHost: x\r\n"
                                b"Content-Length: 2000000\r\n\r\n", b" " * 2_000_000)
    assert status_line.startswith(b"HTTP/1.1 413"), status_line
    expect(404, "not_found", "GET", "/api/v1/desktops/nope")
    expect(400, "bad_request", "GET", "/api/v1/desktops/..%2F..%2Fetc")
    expect(400, "bad_request", "GET", "/api/v1/desktops/bad%00id")
    expect(404, "not_found", "POST", "/api/v1/desktops/nope/start")
    expect(404, "not_found", "POST", "/api/v1/desktops/nope/explode")
    expect(404, "not_found", "GET", "/api/v2/desktops")
    expect(404, "not_found", "GET", "/")
    expect(405, "method_not_allowed", "PUT", "/api/v1/desktops")
    expect(405, "method_not_allowed", "DELETE", "/api/v1/capacity")
    expect(405, "method_not_allowed", "GET", "/api/v1/desktops/x/start")
    # A good desktop, then bad operations on it.
    d = h.ok("POST", "/api/v1/desktops", {"id": "d1", "disk": "disk.img", "kernel": "disk.img"})
    assert d["state"] == "stopped" and d["disk"] == str((tpl / "disk.img").resolve())
    expect(409, "exists", "POST", "/api/v1/desktops", {"id": "d1", "disk": "disk.img"})
    expect(400, "bad_request", "POST", "/api/v1/desktops/d1/stop", {"force": "yes"})
    expect(400, "bad_request", "POST", "/api/v1/desktops/d1/start", {"now": True})
    expect(400, "bad_request", "POST", "/api/v1/desktops/d1/ticket", {"ticket": "short", "expires": 1})
    expect(400, "bad_request", "POST", "/api/v1/desktops/d1/ticket",
           {"ticket": "a" * 20, "expires": int(time.time()) + 100000})
    expect(409, "wrong_state", "POST", "/api/v1/desktops/d1/ticket",
           {"ticket": "a" * 20, "expires": int(time.time()) + 30})
    # The relay drops garbage, an unknown ticket and an over-long line.
    for line in (b"GET / HTTP/1.0\r\n\r\n", b"VDI-TICKET " + b"z" * 32 + b"\n",
                 b"VDI-TICKET " + b"z" * 5000 + b"\n", b"\n"):
        assert closed_without_data(h.relay(line))
    status, cap = h.request("GET", "/api/v1/capacity")
    assert status == 200 and cap["desktops_defined"] == 1
    assert h.proc.poll() is None


def test_definitions_persist_across_restarts(hostd_factory, tmp_path):
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "base.img").write_bytes(b"\0" * 1048576)
    h = hostd_factory(str(tpl))
    h.ok("POST", "/api/v1/desktops", {"id": "keep", "disk": "base.img", "memory_mib": 256,
                                      "engine": "qemu"})
    h.ok("POST", "/api/v1/desktops", {"id": "gone", "disk": "base.img"})
    assert (h.state / "desktops" / "keep.json").exists()
    assert (h.state / "disks" / "keep.qcow2").exists()
    assert h.ok("DELETE", "/api/v1/desktops/gone") == {"deleted": "gone"}
    assert not (h.state / "disks" / "gone.qcow2").exists()
    assert h.stop() == 0
    h.start()
    listed = h.ok("GET", "/api/v1/desktops")["desktops"]
    assert [(d["id"], d["memory_mib"], d["state"]) for d in listed] == [("keep", 256, "stopped")]


def test_symlinks_planted_in_hostd_directories_are_refused(hostd_factory, tmp_path):
    """A symlink at a desktop's serial log, VMM log or run directory is refused with an
    error naming it, and what it points at is left alone (hostd used to follow it and
    truncate the target). QEMU, since it is available everywhere; no VM starts."""
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "base.img").write_bytes(b"\0" * 1048576)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    h = hostd_factory(str(tpl))
    planted = [h.state / "logs" / "s.serial", h.state / "logs" / "s.vmm",
               pathlib.Path(h.run) / "s"]
    for where in planted:
        h.ok("POST", "/api/v1/desktops", {"id": "s", "disk": "base.img", "engine": "qemu",
                                          "memory_mib": 64})
        where.symlink_to(elsewhere if where.name == "s" else victim)
        status, reply = h.request("POST", "/api/v1/desktops/s/start")
        assert status == 500, reply
        assert reply["error"].startswith(str(where) + " is ") and "refused" in reply["error"]
        assert "symbolic link" in reply["error"], reply
        assert h.desktop("s")["state"] == "stopped"
        assert victim.read_text() == "precious\n"
        assert list(elsewhere.iterdir()) == []
        where.unlink()
        h.ok("DELETE", "/api/v1/desktops/s")
    assert "refused" in h.log()


# ---- the vdi-hv engine, with the freestanding test guests ----

@pytest.fixture
def guest_templates(tmp_path):
    """Template directory: test guests as kernels and a raw base disk with the marker the
    virtio-blk guest looks for."""
    tpl = tmp_path / "guest-tpl"
    tpl.mkdir()
    for name in ("virtio_blk", "serial", "triplefault"):
        src = os.path.join(GUESTS, name + ".elf")
        if not os.path.exists(src):
            pytest.skip(f"test guest {src} not built")
        shutil.copyfile(src, tpl / (name + ".elf"))
    base = bytearray(2048 * 512)
    base[:25] = b"vdi virtio-blk test image"
    (tpl / "base.img").write_bytes(bytes(base))
    return tpl


def overlay_block(path, block):
    """Block `block` of a vdi-hv overlay, or None when the overlay does not hold it."""
    data = open(path, "rb").read()
    assert data[:8] == b"VDIOVRL1"
    data_off = struct.unpack("<Q", data[56:64])[0]
    if not data[4096 + block // 8] >> (block % 8) & 1:
        return None
    return data[data_off + block * 65536:data_off + (block + 1) * 65536]


def test_vdihv_desktop_writes_to_its_overlay_only(hostd_factory, guest_templates):
    h = hostd_factory(str(guest_templates))
    base_hash = hashlib.sha256((guest_templates / "base.img").read_bytes()).hexdigest()
    for did in ("v1", "v2"):
        h.ok("POST", "/api/v1/desktops", {"id": did, "engine": "vdi-hv", "kernel": "virtio_blk.elf",
                                          "disk": "base.img", "memory_mib": 64})
        h.ok("POST", f"/api/v1/desktops/{did}/start")
        # The guest writes, reads back, prints PASS and resets: vdi-hv exits 0, which is
        # a guest shutting down, not a failure.
        d = h.wait_state(did, "stopped", timeout=60)
        assert "failure" not in d, d
        serial = (h.state / "logs" / f"{did}.serial").read_text()
        assert "PASS virtio-blk" in serial, serial
        block = overlay_block(h.state / "disks" / f"{did}.ovl", 0)
        assert block is not None and block[:25] == b"vdi virtio-blk test image"
        assert block[512:516] == bytes([31, 38, 45, 52])  # the guest's pattern, sector 1
        assert os.stat(h.state / "disks" / f"{did}.ovl").st_blocks * 512 < 256 * 1024
    assert hashlib.sha256((guest_templates / "base.img").read_bytes()).hexdigest() == base_hash
    assert "stopped: vdi-hv" in h.log() and "(the guest shut down)" in h.log()


def test_vdihv_crash_is_reported_with_its_serial_lines(hostd_factory, guest_templates):
    h = hostd_factory(str(guest_templates))
    h.ok("POST", "/api/v1/desktops", {"id": "crash", "engine": "vdi-hv", "kernel": "triplefault.elf",
                                      "disk": "base.img", "memory_mib": 64})
    h.ok("POST", "/api/v1/desktops/crash/start")
    d = h.wait_state("crash", "failed", timeout=60)
    f = d["failure"]
    assert f["exit"] == "exited with status 1" and "unexpectedly" in f["reason"], f
    assert any("triplefault: about to fault" in line for line in f["serial_tail"]), f
    assert f["vmm_log_tail"], f  # vdi-hv's register dump
    # Failed desktops stay failed across a restart, and can be started again.
    assert h.stop() == 0
    h.start()
    assert h.desktop("crash")["state"] == "failed"
    h.ok("POST", "/api/v1/desktops/crash/start")
    h.wait_state("crash", "failed", timeout=60)


def test_vdihv_killed_by_its_sandbox_is_reported_as_such(hostd_factory, guest_templates,
                                                        tmp_path):
    """A VMM ended by SIGSYS (what vdi-hv's seccomp filter sends for a forbidden system
    call) is reported as killed by its sandbox, in the failure and hostd's log. vdi-hv
    has no way to make a forbidden call on request, so a stand-in answers hostd's
    `--help` probe with the real vdi-hv's and otherwise ends as a launcher reports a
    program the signal killed (exit status 128 + SIGSYS: as the first process of its PID
    namespace the stand-in itself would ignore a SIGSYS sent with kill)."""
    fake = tmp_path / "vdi-hv-sigsys"
    fake.write_text('#!/bin/sh\n'
                    'case " $* " in *" --help "*) exec %s --help ;; esac\n'
                    'sh -c \'kill -SYS $$\'\n'
                    'exit $?\n' % VDIHV)
    fake.chmod(0o755)
    h = hostd_factory(str(guest_templates), vdihv=str(fake))
    h.ok("POST", "/api/v1/desktops", {"id": "sys", "engine": "vdi-hv", "kernel": "serial.elf",
                                      "disk": "base.img", "memory_mib": 64})
    h.ok("POST", "/api/v1/desktops/sys/start")
    d = h.wait_state("sys", "failed", timeout=60)
    f = d["failure"]
    assert "was killed by its sandbox (forbidden system call" in f["reason"], f
    assert f["reason"].startswith("vdi-hv"), f
    assert "killed by its sandbox" in f["exit"], f
    assert "was killed by its sandbox (forbidden system call" in h.log()


def test_vdihv_ticket_relay_and_forced_stop(hostd_factory, guest_templates):
    h = hostd_factory(str(guest_templates), "[desktops]\nstop_timeout = 2s\n")
    if not h.ok("GET", "/api/v1/capacity")["engines"]["vdi-hv"]["vnc"]:
        pytest.skip("this vdi-hv has no --vnc yet")
    h.ok("POST", "/api/v1/desktops", {"id": "s1", "engine": "vdi-hv", "kernel": "serial.elf",
                                      "disk": "base.img", "memory_mib": 64})
    h.ok("POST", "/api/v1/desktops/s1/start")
    h.wait_state("s1", "running", timeout=60)
    ticket = "T" + os.urandom(12).hex()
    assert h.ticket("s1", ticket)[0] == 200
    rfb = Rfb(h.relay(f"VDI-TICKET {ticket}\n".encode()), ticket)
    assert (rfb.width, rfb.height) == (1024, 768)
    assert rfb.update() == 1024 * 768 * 4
    rfb.sock.close()
    # Stop: the test guest ignores Ctrl-Alt-Del, so after stop_timeout hostd quits it.
    t0 = time.monotonic()
    assert h.ok("POST", "/api/v1/desktops/s1/stop")["state"] == "stopping"
    d = h.wait_state("s1", "stopped", timeout=30)
    assert 1.5 < time.monotonic() - t0 < 15 and "failure" not in d
    assert "quitting it" in h.log()
    assert not os.path.exists(os.path.join(h.run, "s1"))


@pytest.mark.skipif(os.geteuid() != 0, reason="hostd gives VMMs their own users only as root")
def test_vdihv_desktops_run_as_users_of_their_own(hostd_factory, guest_templates):
    """hostd started as root runs each vdi-hv as its own uid ([vdi-hv] uid_base plus the
    lowest free slot, shown as the desktop's uid); a slot is free again when its desktop
    stops. Without a launcher vdi-hv is also the first process of a PID namespace."""
    h = hostd_factory(str(guest_templates), "[vdi-hv]\nuid_base = 812000\n")
    for i in (1, 2):
        h.ok("POST", "/api/v1/desktops", {"id": "u%d" % i, "engine": "vdi-hv",
                                          "kernel": "serial.elf", "disk": "base.img",
                                          "memory_mib": 64})
        h.ok("POST", "/api/v1/desktops/u%d/start" % i)
    d1, d2 = h.wait_state("u1", "running", 60), h.wait_state("u2", "running", 60)
    assert (d1["uid"], d2["uid"]) == (812000, 812001), (d1, d2)
    for d in (d1, d2):
        box_pid = box_pid_of(d["pid"])
        status = subprocess.run(kvm_prefix() + ["cat", "/proc/%d/status" % (box_pid or d["pid"])],
                                capture_output=True, text=True, timeout=60).stdout
        assert re.search(r"^Uid:\s+%d\s" % d["uid"], status, re.M), status
        if not box_pid:
            assert re.search(r"^NSpid:\s+%d\s+1$" % d["pid"], status, re.M), status
    h.ok("POST", "/api/v1/desktops/u1/stop")
    h.wait_state("u1", "stopped", timeout=60)
    h.ok("POST", "/api/v1/desktops/u1/start")
    assert h.wait_state("u1", "running", 60)["uid"] == 812000


@pytest.mark.skipif(os.geteuid() != 0, reason="a PID namespace needs root")
def test_monitor_starts_the_vmm_first_in_a_pid_namespace(tmp_path):
    """`vdi-hostd --monitor EXIT --pid-namespace -- VMM...` (how hostd starts a confined
    VMM) makes the VMM process 1 of a new PID namespace, sends its pid (as hostd sees it)
    on descriptor 3 and records its exit status."""
    exit_path = tmp_path / "exit"
    r, w = os.pipe()
    vmm = subprocess.run(
        [HOSTD, "--monitor", str(exit_path), "--pid-namespace", "--", "/bin/sh", "-c",
         "echo $$; readlink /proc/self/ns/pid; exit 7"],
        capture_output=True, text=True, timeout=30,
        preexec_fn=lambda: os.dup2(w, 3), pass_fds=(3,))  # kept, then made the pipe
    os.close(w)
    assert vmm.returncode == 0, vmm
    with os.fdopen(r) as f:
        pid = int(f.read().strip())
    inside, ns = vmm.stdout.split()
    assert inside == "1" and pid > 1
    assert ns != os.readlink("/proc/self/ns/pid")
    assert os.WEXITSTATUS(int(exit_path.read_text())) == 7
