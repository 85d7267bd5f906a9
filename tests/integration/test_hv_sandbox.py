"""vdi-hv's sandbox (SANDBOX in vdi-hv(1)) seen from outside: a VM with the sandbox on
(the default) boots, serves a VNC viewer with a ticket set over the control socket,
rotates its capped serial file and quits cleanly, so nothing it needs is forbidden; the
running process shows the filter and no_new_privs in /proc/PID/status and its lowered
limits in /proc/PID/limits, read where it runs (here, or in the KVM box); started as root
it runs as nobody (or --user) without capabilities, in mount, network, IPC and UTS
namespaces of its own, with an empty root; --no-sandbox runs without any of it. That
forbidden calls kill is tests/unit/sandbox_test.c's part."""
import os
import re
import subprocess
import time

import pytest

from conftest import SANITIZED, box_pid_of, kvm_prefix
from pictures import assert_picture, decode_png, drawn, finish, pattern
from vnc_fixture import ok, vnc, vnc_vm, wait_log

BOOT_TIMEOUT = 90

pytestmark = pytest.mark.skipif(
    SANITIZED, reason="sanitizer builds run vdi-hv without its sandbox (LeakSanitizer)")


def proc_file(vm, name):
    """/proc/PID/<name> of the running vdi-hv, read where it runs."""
    box_pid = box_pid_of(vm.proc.pid)
    if box_pid:
        out = subprocess.run(kvm_prefix() + ["cat", "/proc/%d/%s" % (box_pid, name)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout
    with open("/proc/%d/%s" % (vm.proc.pid, name)) as f:
        return f.read()


def in_its_place(vm, script):
    """Runs a shell script where vdi-hv runs (here or in the box) with PID set to its pid
    there; returns the output."""
    pid = box_pid_of(vm.proc.pid) or vm.proc.pid
    out = subprocess.run(kvm_prefix() + ["sh", "-c", "PID=%d; %s" % (pid, script)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def assert_confined(vm, uid, gid):
    """vdi-hv, started as root, runs as uid:gid with no capabilities and no groups, in
    its own mount, network, IPC and UTS namespaces (not those of a process started
    beside it), under a root with nothing in it."""
    status = proc_file(vm, "status")
    assert status_field(status, "Uid") == str(uid), status
    assert re.search(r"^Uid:\s+%d\s+%d\s+%d\s+%d$" % ((uid,) * 4), status, re.M), status
    assert re.search(r"^Gid:\s+%d\s+%d\s+%d\s+%d$" % ((gid,) * 4), status, re.M), status
    assert re.search(r"^Groups:\s*$", status, re.M), status
    for cap in ("CapInh", "CapPrm", "CapEff"):
        assert int(status_field(status, cap), 16) == 0, status
    links = in_its_place(vm, "for n in mnt net ipc uts; do echo $n $(readlink /proc/$PID/ns/$n) "
                             "$(readlink /proc/self/ns/$n); done").split("\n")
    for line in filter(None, links):
        name, theirs, ours = line.split()
        assert theirs != ours, "vdi-hv shares the %s namespace: %s" % (name, line)
    assert in_its_place(vm, "ls -A /proc/$PID/root/ | wc -l").strip() == "0"


def status_field(status, name):
    m = re.search(r"^%s:\s*(\S+)" % name, status, re.M)
    assert m, "no %s in:\n%s" % (name, status)
    return m.group(1)


def test_sandboxed_vm_serves_viewer_and_control(hv, tmp_path):
    vm, addr = vnc_vm(hv, tmp_path, "framebuffer")
    drawn(vm, 1024, 768)
    wait_log(vm, r"sandbox: on")
    status = proc_file(vm, "status")
    assert status_field(status, "Seccomp") == "2", status  # a filter, not strict mode
    assert status_field(status, "NoNewPrivs") == "1", status
    limits = proc_file(vm, "limits")
    assert re.search(r"^Max open files\s+256\s+256\s", limits, re.M), limits
    if os.geteuid() == 0:
        wait_log(vm, r"sandbox: own namespaces, empty root, uid 65534 gid 65534")
        assert_confined(vm, 65534, 65534)
    assert re.search(r"^Max core file size\s+0\s+0\s", limits, re.M), limits
    # What it needs keeps working under the filter: a viewer (ticket, DES, the screen
    # read through the dirty log), a wrong ticket refused, the control verbs.
    png = tmp_path / "screen.png"
    rc, out, err = vnc(addr, "--save", png)
    assert rc == 0, err
    _, _, rows = decode_png(png.read_bytes())
    assert_picture(rows, pattern(1024, 768), "VNC screen under the sandbox")
    rc, _, _ = vnc(addr, "--save", tmp_path / "no.png", password="wrong-ticket")
    assert rc != 0
    assert ok(vm.control({"cmd": "status"}))["state"] == "running"
    ok(vm.control({"cmd": "pause"}))
    ok(vm.control({"cmd": "resume"}))
    finish(vm)  # exit status 0: not killed by SIGSYS
    assert "sandbox: on" in vm.stderr()


def test_sandboxed_serial_file_rotates(hv, tmp_path):
    """The capped serial file rotates under the sandbox, by descriptors opened before it."""
    log = tmp_path / "serial.log"
    vm = hv("serial", "--serial", "file:%s" % log, "--serial-max", "64")
    vm.connect()
    wait_log(vm, r"sandbox: on")
    for i in range(4):
        ok(vm.control({"cmd": "serial", "text": "line %d of input to be echoed\n" % i}))
    older = tmp_path / "serial.log.1"
    deadline = time.monotonic() + 90  # the box under a loaded CI machine is slow
    while b"echo: line 3" not in older.read_bytes() + log.read_bytes():
        assert time.monotonic() < deadline, (older.read_bytes(), log.read_bytes())
        time.sleep(0.1)
    ok(vm.control({"cmd": "quit"}))
    assert vm.wait(60) == 0, vm.stderr()
    assert len(older.read_bytes()) == 64 and len(log.read_bytes()) <= 64


@pytest.mark.skipif(os.geteuid() != 0, reason="the user change needs root")
def test_sandboxed_as_given_user(hv, tmp_path):
    """--user UID:GID is the user the guest runs as; the viewer and control still work."""
    vm, addr = vnc_vm(hv, tmp_path, "framebuffer", "--user", "4242:4343")
    drawn(vm, 1024, 768)
    wait_log(vm, r"sandbox: on")
    assert_confined(vm, 4242, 4343)
    rc, _, err = vnc(addr, "--save", tmp_path / "screen.png")
    assert rc == 0, err
    finish(vm)


def test_user_option_is_checked(hv, tmp_path):
    for bad in ("0", "root", "12:0", "1:", ":1", "99999999999"):
        vm = hv("framebuffer", "--user", bad, control=False)
        assert vm.wait(30) == 2, (bad, vm.stderr())
        assert "--user" in vm.stderr(), vm.stderr()


def test_no_sandbox(hv, tmp_path):
    vm, _ = vnc_vm(hv, tmp_path, "framebuffer", "--no-sandbox")
    drawn(vm, 1024, 768)
    wait_log(vm, r"sandbox: off \(--no-sandbox\)")
    status = proc_file(vm, "status")
    assert status_field(status, "Seccomp") == "0", status
    assert status_field(status, "Uid") == str(os.geteuid()), status
    finish(vm)
