"""vdi-hv's VNC server for tests: a guest booted with --vnc on a unix socket and a ticket
set over the control socket, our libvncclient test client (tests/tools/vnc_client.c) run
against it, and vdi-hv's log waited on. Shared by test_display_*.py."""
import os
import re
import subprocess
import time

from conftest import BUILD

TOOL = os.path.join(BUILD, "tests", "tools", "vnc_client")
PASSWORD = "s3cret-ticket-1"


def vnc(addr, *actions, password=PASSWORD, timeout=60, encodings=None):
    """Runs the test client against addr; returns (exit status, key=value dict, stderr)."""
    env = dict(os.environ)
    env.pop("VNC_PASSWORD", None)
    if password is not None:
        env["VNC_PASSWORD"] = password
    args = [TOOL, "--timeout", str(timeout)]
    if encodings:
        args += ["--encodings", encodings]
    args += [addr] + [str(a) for a in actions]
    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout + 30)
    values = {}
    for line in p.stdout.splitlines():
        for m in re.finditer(r"(\w+)=(\S+)", line):
            values[m.group(1)] = m.group(2)
    return p.returncode, values, p.stderr


def ok(reply):
    assert reply.get("ok") is True, reply
    return reply


def set_ticket(vm, password=PASSWORD, ttl=120, view_only=False):
    return vm.control({"cmd": "set-ticket", "password": password,
                       "expires": int(time.time()) + ttl, "view_only": view_only})


def vnc_vm(hv, tmp_path, guest, *extra, ticket=True):
    """Boots guest with a VNC server on a unix socket; returns (vm, "unix:PATH")."""
    sock = str(tmp_path / "vnc.sock")
    vm = hv(guest, "--vnc", "unix:" + sock, *extra)
    vm.connect()  # the control socket is up: so is the VNC socket
    if ticket:
        ok(set_ticket(vm))
    return vm, "unix:" + sock


def wait_log(vm, pattern, timeout=20, count=1):
    """Waits until vdi-hv's standard error matches pattern count times; returns it."""
    deadline = time.monotonic() + timeout
    while len(re.findall(pattern, vm.stderr())) < count:
        assert time.monotonic() < deadline, "log never matched %r:\n%s" % (
            pattern, vm.stderr()[-3000:])
        time.sleep(0.05)
    return vm.stderr()
