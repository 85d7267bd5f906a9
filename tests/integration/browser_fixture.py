"""What the Python side of the browser tests needs: whether they can run here (vdi-broker,
vdi-hv, node, the npm packages, headless Chromium: Debian's or VDI_CHROMIUM), the portal
staged with noVNC as the broker serves it, waiting on the broker's view of a host, and a
tests/browser/*.test.mjs file run with node's test runner (its TAP report, and the
screenshots it takes, in build/artifacts/browser/). Shared by test_browser_portal.py and
test_browser_linux_hv.py."""
import os
import shutil
import subprocess
import time

from broker_fixture import BROKER
from conftest import BIN, BUILD, TOP, guest_path

NODE = shutil.which("node")
CHROMIUM = os.environ.get("VDI_CHROMIUM", "/usr/bin/chromium")
NODE_MODULES = os.path.join(TOP, "node_modules")
NOVNC = os.path.join(NODE_MODULES, "@novnc", "novnc")
ARTIFACTS = os.path.join(BUILD, "artifacts", "browser")


def missing():
    """Why these tests cannot run here, or None."""
    if not os.path.exists(BROKER):
        return "vdi-broker is not built yet (%s)" % BROKER
    if not os.path.exists(os.path.join(BIN, "vdi-hv")) or not os.path.exists(guest_path("desktop")):
        return "vdi-hv or the demo desktop guest (build/guests/desktop.elf) is not built"
    if not NODE:
        return "node is not installed"
    if not os.path.exists(os.path.join(NODE_MODULES, "playwright-core")) or not os.path.exists(NOVNC):
        return "npm packages missing: run `make web-deps` (npm ci)"
    if not os.access(CHROMIUM, os.X_OK):
        return "%s is missing: install the Debian package chromium" % CHROMIUM
    return None



def stage_static(dest):
    """The portal as the broker serves it: web/static with noVNC under novnc/ (what
    `make web-static` stages for a broker without a /novnc/ route)."""
    shutil.copytree(os.path.join(TOP, "web", "static"), dest)
    for part in ("core", "vendor"):
        shutil.copytree(os.path.join(NOVNC, part), os.path.join(dest, "novnc", part))


def host_state(admin, host_id):
    return {h["id"]: h for h in admin.ok("GET", "/api/v1/admin/hosts")["hosts"]}[host_id]["state"]


def wait_for(check, what, log, timeout=30):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for %s:\n%s" % (what, log())
        time.sleep(0.2)


def run_node(stack, test_file, suite, extra_env=None, timeout=120):
    """Runs one tests/browser file with node's test runner; fails with its report."""
    os.makedirs(ARTIFACTS, exist_ok=True)
    tap = os.path.join(ARTIFACTS, suite + ".tap")
    env = dict(stack.env, **(extra_env or {}))
    start = time.monotonic()
    p = subprocess.run([NODE, "--test", "--test-reporter=spec", "--test-reporter-destination=stdout",
                        "--test-reporter=tap", "--test-reporter-destination=" + tap,
                        os.path.join(TOP, "tests", "browser", test_file)],
                       cwd=TOP, env=env, capture_output=True, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")
    print(out)
    print("%s: %.1f s" % (test_file, time.monotonic() - start))
    with open(tap) as f:
        summary = {k: int(v) for k, v in (line[2:].split() for line in f
                                          if line.startswith(("# pass ", "# fail ")))}
    assert p.returncode == 0 and summary.get("fail") == 0, (
        "browser tests failed (%s):\n%s\n--- broker log ---\n%s" % (test_file, out[-12000:],
                                                                  stack.broker.log()[-4000:]))
    assert summary.get("pass", 0) > 0, "no browser test ran:\n" + out
