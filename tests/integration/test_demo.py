"""`make demo`'s script in its smoke mode: demo/run-demo.sh --smoke starts a broker and a
host agent (with a QEMU pool of the Linux desktop image and a vdi-hv pool of the demo
desktop guest), prints each pool with its engine and availability, logs in as alice with
curl, lists her desktops and stops everything. It must exit 0 and leave none of the
processes it started (vdi-broker, vdi-hostd, vdi-hv, QEMU) behind. Runs in a temporary
state directory on free ports. And `make demo` on a terminal ends with status 0 on
Ctrl-C (its make file runs the script as a job of its own)."""
import os
import re
import subprocess

import pytest

from conftest import BIN, BUILD, TOP

SCRIPT = os.path.join(TOP, "demo", "run-demo.sh")
NEEDED = [os.path.join(BIN, p) for p in ("vdi-broker", "vdi-hostd", "vdi-hv", "vdictl")] + [
    os.path.join(BUILD, "guest", f) for f in ("vmlinuz", "initrd.img", "home.img")] + [
    os.path.join(BUILD, "guests", "desktop.elf"), os.path.join(BUILD, "web", "static", "index.html")]


def missing():
    for f in NEEDED:
        if not os.path.exists(f):
            return "%s is not built (make all guest web-static)" % f
    if not os.path.exists("/usr/bin/qemu-system-x86_64"):
        return "qemu-system-x86_64 is not installed"
    return None


pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")


def processes_naming(text):
    """pid -> command line of every process whose command line contains text."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            with open("/proc/%s/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
        except OSError:
            continue
        if text in cmd and any(p in cmd for p in ("vdi-broker", "vdi-hostd", "vdi-hv", "qemu")):
            found[int(pid)] = cmd
    return found


def test_demo_smoke(tmp_path):
    demo_dir = str(tmp_path / "demo")
    env = dict(os.environ, VDI_DEMO_DIR=demo_dir, VDI_BUILD=BUILD)
    env.pop("VDI_DEMO_PORT", None)
    proc = subprocess.Popen([SCRIPT, "--smoke"], cwd=TOP, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.terminate()  # the script stops what it started
        out, _ = proc.communicate(timeout=60)
        pytest.fail("run-demo.sh --smoke took over 120 s:\n" + out.decode(errors="replace"))
    finally:
        run_dir = None
        try:
            run_dir = open(os.path.join(demo_dir, "run_dir")).read().strip()
        except OSError:
            pass
        left = processes_naming(demo_dir + "/")
        if run_dir:
            left.update(processes_naming(run_dir))
        for pid in left:  # do not leave them to the next test, but fail below
            try:
                os.kill(pid, 9)
            except OSError:
                pass
    text = out.decode(errors="replace")
    logs = ""
    for name in ("broker.log", "hostd.log"):
        try:
            logs += "\n---- %s\n%s" % (name, open(os.path.join(demo_dir, "logs", name)).read()[-3000:])
        except OSError:
            pass
    assert proc.returncode == 0, text + logs
    assert "https://127.0.0.1:" in text and "self-signed" in text, text
    assert "smoke: POST /api/v1/login as alice: 200" in text, text
    assert '"linux"' in text and '"demo-desktop"' in text, text
    # each pool with its engine and whether it can run here
    assert re.search(r"^  linux +qemu +available$", text, re.M), text
    assert re.search(r"^  demo-desktop +vdi-hv +available$", text, re.M), text
    assert not left, "processes left behind: %r\n%s" % (left, text)


def test_make_demo_recipe_exits_0_on_ctrl_c(tmp_path):
    """The demo recipe's way of running the script (bash -m on a terminal), with a stand-in
    script, under make on a pseudo-terminal: Ctrl-C reaches the script alone, which exits
    0, and so does make (without it make reports "Interrupt" and exits 2)."""
    import pty
    import time
    recipe = [line for line in open(os.path.join(TOP, "demo", "demo.mk")).read().split("\n")
              if "bash -mc" in line]
    assert recipe, "demo.mk does not run the script with bash -m"
    script = tmp_path / "run-demo.sh"
    script.write_text("#!/bin/bash\ntrap 'echo stopped; exit 0' INT\necho running\n"
                      "while :; do sleep 1 & wait $!; done\n")
    script.chmod(0o755)
    (tmp_path / "t.mk").write_text(".PHONY: demo\ndemo:\n\t@if [ -t 0 ]; then bash -mc %s; else %s; fi\n"
                                    % (script, script))
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("make", ["make", "-s", "-f", str(tmp_path / "t.mk"), "demo"])
    out = b""
    deadline = time.monotonic() + 10
    try:
        while b"running" not in out and time.monotonic() < deadline:
            out += os.read(fd, 1024)
    except OSError:
        _, status = os.waitpid(pid, 0)
        pytest.fail("make ended (%s) before the script ran: %r" % (status, out))
    os.write(fd, b"\x03")
    try:
        while True:
            data = os.read(fd, 1024)
            if not data:
                break
            out += data
    except OSError:
        pass
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    assert b"stopped" in out and b"Interrupt" not in out, out
