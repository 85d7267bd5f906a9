"""Fixtures shared by the integration tests: where the build is, where vdi-hv runs
(this machine's KVM when it runs at hardware speed, otherwise the KVM host in a box that
the session starts once: `kvmbox probe` decides, VDI_KVM=direct|box forces), and `hv`, a
factory that boots a guest under a real vdi-hv on a temporary control socket and always
stops it. Tests talk to it as a user would: serial console, control socket, exit status.
Also `certs`, the certificates vdi-hostd and the broker's host client use, for every test
module that runs a vdi-hostd."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from types import SimpleNamespace

import pytest

TOP = os.environ.get("VDI_TOP", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.environ.get("VDI_BUILD", os.path.join(TOP, "build"))
BIN = os.path.join(BUILD, "bin")
GUESTS = os.path.join(BUILD, "guests")
# tests/guest/mkfont.py, which makes the guests' console font, reads fonts for the tests
# that read text back from a screen: they `import mkfont`.
sys.path.insert(0, os.path.join(TOP, "tests", "guest"))
SANITIZED = os.environ.get("SAN") == "1"
# The box runner and its images are built into build/ whatever SAN says, like the guest.
KVMBOX = os.path.join(TOP, "build", "bin", "kvmbox")
# Memory of the session's box: room for the largest test (a 512 MiB Linux desktop next
# to smaller guests) with the box's own kernel.
KVMBOX_MEMORY_MIB = 3072
MKCERTS = os.path.join(TOP, "hostd", "mkcerts.sh")


class Kvm:
    """Where vdi-hv runs in this session: mode "direct" or "box", why, and the box."""
    mode = None
    why = ""
    box_dir = None
    error = None


KVM = Kvm()


def start_box():
    out = subprocess.run([KVMBOX, "start", "--memory", str(KVMBOX_MEMORY_MIB), KVM.box_dir],
                         capture_output=True, text=True, timeout=300)
    KVM.error = None if out.returncode == 0 else (
        "the KVM box did not start: " + (out.stderr + out.stdout).strip())


def box_alive():
    """Whether the box's QEMU runs (not a zombie nobody reaped)."""
    try:
        with open(os.path.join(KVM.box_dir, "qemu.pid")) as f:
            pid = int(f.read())
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, ValueError, IndexError):
        return False


# What the box's failures to run a guest look like (kvmbox's and vdi-hv's own words).
BOX_FAULTS = [r"the box stopped or died", r"vm stopping: vcpu[0-9]+: triple fault",
              r"box fault: "]
# Run in the box with a pid: each thread's name, state, wait channel and kernel stack.
BOX_THREADS = r"""for t in /proc/$1/task/*; do
  printf 'thread %s %s %s\n' "$(cat $t/comm)" "$(sed -n 's/^State:.\(.\).*/\1/p' $t/status)" \
    "$(cat $t/wchan 2>/dev/null)"
  head -n 6 $t/stack 2>/dev/null | sed 's/^/    /'
done"""


def kvm_prefix():
    """The words to put before a vdi-hv command line: none with hardware KVM, else
    `kvmbox run --box DIR --`. A box that died (the runs in it said so) is started
    again, once per test that finds it dead; a box that cannot start fails the test."""
    if KVM.mode != "box":
        return []
    if not KVM.error and not box_alive():
        with open(os.path.join(KVM.box_dir, "console.log"), errors="replace") as f:
            tail = f.read()[-2000:]
        print("kvm: the box died; starting it again. Its console ended with:\n" + tail,
              file=sys.stderr)
        start_box()
    if KVM.error:
        raise AssertionError(KVM.error)
    return [KVMBOX, "run", "--box", KVM.box_dir, "--"]


def hv_argv(*args):
    """A vdi-hv command line that runs where KVM works."""
    return kvm_prefix() + [os.path.join(BIN, "vdi-hv"), *args]


def hostd_launcher():
    """vdi-hostd's `[vdi-hv] launcher` value for this session."""
    return " ".join(kvm_prefix())


def box_pid_of(proc_pid):
    """The pid in the box of the program a `kvmbox run` with pid proc_pid runs, or None
    when vdi-hv runs directly."""
    if KVM.mode != "box":
        return None
    path = os.path.join(KVM.box_dir, "runs", str(proc_pid))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                return int(f.read())
        except (OSError, ValueError):
            time.sleep(0.05)
    raise AssertionError("no box pid for kvmbox run %d" % proc_pid)


def pytest_sessionstart(session):
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    try:
        out = subprocess.run([KVMBOX, "probe"], capture_output=True, text=True, timeout=60)
        KVM.mode, _, KVM.why = out.stdout.strip().partition(": ")
        if out.returncode != 0 or KVM.mode not in ("direct", "box"):
            raise OSError(out.stderr.strip() or out.stdout.strip())
    except OSError as e:
        KVM.mode, KVM.error = "box", "kvmbox probe failed (run `make kvmbox`): %s" % e
    if KVM.mode == "box" and not KVM.error:
        KVM.box_dir = tempfile.mkdtemp(prefix="vdi-kvmbox-")
        start_box()
        # The box is QEMU's software emulation of SVM: now and then it loses a nested
        # guest (a triple fault no hardware shows, or the box itself dies). A test that
        # fails that way, and only that way, runs once more (shown as R; a second such
        # failure stands). On hardware KVM nothing is run again.
        session.config.option.reruns = 1
        session.config.option.only_rerun = BOX_FAULTS
    where = ("this machine's KVM" if KVM.mode == "direct" else "the KVM host in a box")
    line = "kvm: vdi-hv runs on %s: %s" % (where, KVM.why)
    if KVM.error:
        line += "; " + KVM.error
    elif KVM.box_dir:
        line += "; box %s" % KVM.box_dir
    if tr:
        tr.write_line(line)


def pytest_sessionfinish(session):
    if KVM.box_dir:
        subprocess.run([KVMBOX, "stop", KVM.box_dir], capture_output=True, timeout=60)
        shutil.rmtree(KVM.box_dir, ignore_errors=True)


def guest_path(name):
    """The freestanding test guest build/guests/<name>.elf."""
    return os.path.join(GUESTS, name + ".elf")


class HvProcess:
    """A running vdi-hv: serial console on pipes, control socket, stderr captured."""

    def __init__(self, args, control_path, workdir):
        self.control_path = control_path
        self.args = args
        self._out = bytearray()
        self._err = bytearray()
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=workdir)
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self._out), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self._err), daemon=True),
        ]
        for t in self._threads:
            t.start()
        self._sock = None
        self._sockbuf = b""

    def _pump(self, stream, buf):
        while True:
            chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(4096)
            if not chunk:
                break
            with self._cond:
                buf.extend(chunk)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def serial(self):
        """Everything the guest wrote on COM1 so far, as text."""
        with self._cond:
            return self._out.decode("utf-8", "replace")

    def stderr(self):
        with self._cond:
            return self._err.decode("utf-8", "replace")

    def expect(self, pattern, timeout=60, start=0):
        """Waits until the serial output (from offset start) matches pattern."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                m = rx.search(self._out.decode("utf-8", "replace"), start)
                if m:
                    return m
                if self.proc.poll() is not None and not any(t.is_alive() for t in self._threads[:1]):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
        raise AssertionError(
            "serial output never matched %r within %ss (exit=%r)\n--- serial ---\n%s\n--- stderr ---\n%s%s"
            % (pattern, timeout, self.proc.poll(), self.serial()[-4000:], self.stderr()[-4000:],
               self.box_report()))

    def box_report(self):
        """In the box, for a failure's message: what each of vdi-hv's threads is doing
        there (state, wait channel, kernel stack) and whether its vCPUs still take
        exits. A guest that stopped making progress inside KVM_RUN, or output stuck on
        its way out of the box, is a box fault (BOX_FAULTS): no hardware shows either.
        Elsewhere, or once vdi-hv has exited: nothing."""
        if KVM.mode != "box" or self.proc.poll() is not None:
            return ""
        report, faults = [], []
        try:
            threads = subprocess.run(
                [KVMBOX, "run", "--box", KVM.box_dir, "--", "sh", "-c", BOX_THREADS,
                 "sh", str(box_pid_of(self.proc.pid))],
                capture_output=True, text=True, timeout=30).stdout
        except (AssertionError, OSError, subprocess.TimeoutExpired) as e:
            threads = "(cannot look into the box: %s)" % e
        report.append(threads)
        try:
            before = self.control({"cmd": "status"}, timeout=5)
            time.sleep(2)
            after = self.control({"cmd": "status"}, timeout=5)
            report.append("vCPU exits: %s, 2 s later %s (%s)" % (before.get("exits"),
                                                                after.get("exits"),
                                                                after.get("state")))
            stuck_vcpu = re.search(r"^thread vcpu\d+ R", threads, re.M)
            if after.get("state") == "running" and before.get("exits") == after.get("exits") \
                    and stuck_vcpu:
                faults.append("the guest made no progress inside KVM_RUN for 2 s")
        except (AssertionError, OSError, ValueError) as e:
            report.append("(no stats from the control socket: %s)" % e)
        if "pipe_write" in threads:
            faults.append("vdi-hv is blocked writing its output to the box's runner")
        return "\n--- in the box ---\n%s%s" % ("\n".join(report), "".join(
            "\nbox fault: " + f for f in faults))

    def send_serial(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def connect(self, timeout=30):
        """A new connection to the control socket (waits for it to appear)."""
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.control_path)
                s.settimeout(timeout)
                return s
            except OSError:
                s.close()
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.05)

    def control_raw(self, line, timeout=30):
        """Sends raw bytes (one request line) and returns the decoded reply object."""
        if self._sock is None:
            self._sock = self.connect(timeout)
        self._sock.settimeout(timeout)
        self._sock.sendall(line)
        while b"\n" not in self._sockbuf:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise AssertionError("control socket closed")
            self._sockbuf += chunk
        reply, self._sockbuf = self._sockbuf.split(b"\n", 1)
        return json.loads(reply)

    def control(self, request, timeout=30):
        return self.control_raw(json.dumps(request).encode() + b"\n", timeout)

    def wait(self, timeout=60):
        """Waits for vdi-hv to exit and returns its status."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("vdi-hv still running after %ss\n--- serial ---\n%s\n--- stderr ---\n%s%s"
                                 % (timeout, self.serial()[-4000:], self.stderr()[-4000:],
                                    self.box_report()))

    def stop(self):
        if self._sock:
            self._sock.close()
            self._sock = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for t in self._threads:
            t.join(5)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass


@pytest.fixture
def hv(tmp_path):
    """hv(guest_or_kernel, *extra_args) boots a guest under vdi-hv with --serial stdio
    and a control socket in tmp_path; every VM is stopped at teardown."""
    procs = []

    def start(guest, *extra, control=True, memory=None):
        kernel = guest if os.path.sep in guest else guest_path(guest)
        args = hv_argv("--kernel", kernel, "--serial", "stdio")
        control_path = str(tmp_path / ("hv%d.sock" % len(procs)))
        if control:
            args += ["--control", "unix:" + control_path]
        if memory:
            args += ["--memory", str(memory)]
        args += list(extra)
        p = HvProcess(args, control_path, str(tmp_path))
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()


# The host ids the tests run vdi-hostd as; each has its own certificate (CN = the id).
CERT_HOSTS = ("test-host", "host-a", "host-b", "dc1-host1")


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """A CA with the broker's certificate and one per host id of CERT_HOSTS (host(id)
    gives its (certificate, key)), and a second CA whose certificates hostd must refuse
    (made with hostd/mkcerts.sh, as `make certs` does). hostd_crt/hostd_key: test-host's."""
    good = tmp_path_factory.mktemp("certs")
    other = tmp_path_factory.mktemp("other-ca")
    for d in (good, other):
        subprocess.run([MKCERTS, str(d), *CERT_HOSTS], check=True, capture_output=True)
    return SimpleNamespace(dir=good, ca=good / "ca.crt",
                           hostd_crt=good / "hosts" / "test-host.crt",
                           hostd_key=good / "hosts" / "test-host.key",
                           broker_crt=good / "broker.crt", broker_key=good / "broker.key",
                           host=lambda hid: (good / "hosts" / f"{hid}.crt",
                                             good / "hosts" / f"{hid}.key"),
                           other=other)
