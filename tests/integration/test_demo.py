"""`make demo`'s script in its smoke mode: demo/run-demo.sh --smoke starts a broker and a
host agent (with a QEMU pool of the Linux desktop image and a vdi-hv pool of the demo
desktop guest), logs in as alice with curl, lists her desktops and stops everything. It
must exit 0 and leave none of the processes it started (vdi-broker, vdi-hostd, vdi-hv,
QEMU) behind. Runs in a temporary state directory on free ports."""
import os
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
    assert not left, "processes left behind: %r\n%s" % (left, text)
