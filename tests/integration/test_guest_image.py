"""The Linux desktop guest image (`make guest`: build/guest/) under QEMU TCG: it boots to
VDI-GUEST-READY, answers commands on the serial line and on the framebuffer console,
mounts the ext4 home disk on /home, powers off cleanly, and keeps /home across boots.
Not a test of vdi-hv or hostd: QEMU is driven directly, serial on a pipe, QMP on a socket.
"""
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

TOP = Path(os.environ.get("VDI_TOP", Path(__file__).resolve().parents[2]))
GUEST = Path(os.environ.get("VDI_GUEST_DIR", TOP / "build" / "guest"))
QEMU = shutil.which("qemu-system-x86_64")
READY = "VDI-GUEST-READY"
BOOT_TIMEOUT = 120
# vga=0x344: VESA 1024x768x32, so the console is vesafb + fbcon (README: kernel command line).
CMDLINE = "console=ttyS0 console=tty0 vga=0x344 panic=-1"

_missing = [f.name for f in (GUEST / "vmlinuz", GUEST / "initrd.img", GUEST / "home.img")
            if not f.is_file()]
pytestmark = [
    pytest.mark.skipif(bool(_missing), reason=f"guest image not built ({', '.join(_missing)} "
                       f"missing in {GUEST}): run `make guest`"),
    pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 not installed (Debian qemu-system-x86)"),
]


class Guest:
    """One QEMU TCG machine booting the guest image: serial on stdin/stdout pipes, QMP on
    a unix socket. stop() kills it; it is always called by the fixture."""

    def __init__(self, workdir, sockdir, disk, hostname):
        self.serial_log = open(workdir / f"serial-{hostname}.log", "ab")
        self.buf = b""
        self.qmp_path = os.path.join(sockdir, f"qmp-{uuid.uuid4().hex[:8]}.sock")
        qemu_log = open(workdir / f"qemu-{hostname}.log", "ab")
        self.proc = subprocess.Popen(
            [QEMU, "-machine", "pc", "-accel", "tcg", "-m", "512", "-no-reboot",
             "-display", "none", "-vga", "std", "-monitor", "none", "-serial", "stdio",
             "-nic", "none", "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
             "-kernel", str(GUEST / "vmlinuz"), "-initrd", str(GUEST / "initrd.img"),
             "-append", f"{CMDLINE} vdi.hostname={hostname}",
             "-drive", f"file={disk},if=virtio,format=raw"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=qemu_log, start_new_session=True)
        qemu_log.close()
        self.qmp_sock = None
        self.qmp_file = None
        self.marker = 0

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.qmp_file, self.qmp_sock):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        self.serial_log.close()

    def tail(self):
        return self.buf[-1500:].decode(errors="replace")

    def expect(self, pattern, timeout):
        """Reads the serial line until the regex pattern (bytes) appears; returns what came
        before it and the match, and consumes both."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.buf)
            if m:
                before = self.buf[:m.start()]
                self.buf = self.buf[m.end():]
                return before, m
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no {pattern!r} on the serial line within {timeout} s; "
                            f"last output:\n{self.tail()}")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                data = os.read(self.proc.stdout.fileno(), 65536)
                if not data:
                    pytest.fail(f"QEMU exited ({self.proc.wait()}) waiting for {pattern!r}; "
                                f"last output:\n{self.tail()}")
                self.serial_log.write(data)
                self.serial_log.flush()
                self.buf += data

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def run(self, command, timeout=30):
        """Runs a shell command on the serial console; returns (exit status, output).
        The markers are built by the shell ($((...))), so the echo of the typed line
        never matches them."""
        self.marker += 1
        n = self.marker
        self.send(f"echo BEGIN-$(({n}*1)); {command}; echo END-$(({n}*1))-$?\n")
        self.expect(rb"BEGIN-%d\r?\n" % n, timeout)
        output, m = self.expect(rb"END-%d-(\d+)" % n, timeout)
        return int(m.group(1)), output.decode(errors="replace").replace("\r", "").strip()

    def boot(self):
        self.expect(READY.encode(), BOOT_TIMEOUT)

    def qmp(self, command, **arguments):
        if self.qmp_file is None:
            deadline = time.monotonic() + 10
            while True:
                try:
                    s = socket.socket(socket.AF_UNIX)
                    s.connect(self.qmp_path)
                    break
                except OSError:
                    s.close()
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            s.settimeout(30)
            self.qmp_sock = s
            self.qmp_file = s.makefile("rw")
            self.qmp_file.readline()  # greeting
            self.qmp("qmp_capabilities")
        self.qmp_file.write(json.dumps({"execute": command, "arguments": arguments}) + "\n")
        self.qmp_file.flush()
        while True:
            reply = json.loads(self.qmp_file.readline())
            if "error" in reply:
                pytest.fail(f"QMP {command}: {reply['error']}")
            if "return" in reply:
                return reply["return"]

    def wait_exit(self, timeout):
        """Waits for QEMU to exit on its own (poweroff, or reboot under -no-reboot)."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                pytest.fail(f"QEMU still running {timeout} s after the guest was told to stop; "
                            f"last output:\n{self.tail()}")
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                data = os.read(self.proc.stdout.fileno(), 65536)
                self.serial_log.write(data)
                self.buf += data
        return self.proc.returncode

    def type_on_console(self, text):
        """Types text on the machine's keyboard (what a VNC user does): QMP send-key."""
        for ch in text:
            keys = KEYS.get(ch, [ch])
            self.qmp("send-key", keys=[{"type": "qcode", "data": k} for k in keys])

    def screendump(self, path):
        """Saves the display as PPM; returns (width, height, pixel bytes)."""
        self.qmp("screendump", filename=str(path))
        data = Path(path).read_bytes()
        magic, size, maxval, pixels = data.split(b"\n", 3)
        assert magic == b"P6" and maxval == b"255", f"unexpected screendump header {data[:20]!r}"
        width, height = map(int, size.split())
        return width, height, pixels


KEYS = {" ": ["spc"], "\n": ["ret"], ">": ["shift", "dot"], "/": ["slash"], ".": ["dot"],
        "-": ["minus"], "=": ["equal"], "_": ["shift", "minus"]}
KEYS.update({str(d): [str(d)] for d in range(10)})


@pytest.fixture
def guest_boot(tmp_path):
    """Returns boot(disk, hostname) -> a started Guest; every guest is killed at teardown."""
    sockdir = tempfile.mkdtemp(prefix="vdi-guest-")  # short path: unix socket names are <108
    guests = []

    def boot(disk, hostname):
        g = Guest(tmp_path, sockdir, disk, hostname)
        guests.append(g)
        g.boot()
        return g

    yield boot
    for g in guests:
        g.stop()
    shutil.rmtree(sockdir, ignore_errors=True)


@pytest.fixture
def home_disk(tmp_path):
    """A private copy of the pristine home disk (never boot build/guest/home.img itself)."""
    disk = tmp_path / "home.img"
    shutil.copyfile(GUEST / "home.img", disk)
    return disk


def test_guest_boots_and_answers_on_serial_and_framebuffer_console(guest_boot, home_disk, tmp_path):
    t0 = time.monotonic()
    g = guest_boot(home_disk, "desk-a1")
    boot_s = time.monotonic() - t0

    status, out = g.run("echo hi > /tmp/x; cat /tmp/x")
    assert (status, out) == (0, "hi"), f"boot took {boot_s:.1f} s"
    assert g.run("hostname") == (0, "desk-a1")
    assert g.run("false")[0] == 1
    manifest = dict(line.split("=", 1) for line in (GUEST / "manifest").read_text().splitlines())
    assert g.run("uname -r") == (0, manifest["kernel_release"])

    # /home is the ext4 disk, writable, holding the README the image was made with.
    assert g.run("awk '$2 == \"/home\" { print $1, $3 }' /proc/mounts") == (0, "/dev/vda ext4")
    assert g.run("test -f /home/README.txt && touch /home/w && rm /home/w")[0] == 0

    # The framebuffer console: vesafb with fbcon at 1024x768, and a shell on it that runs
    # what is typed on the keyboard, as a VNC user would.
    status, fb = g.run("cat /proc/fb")
    assert status == 0 and "VESA VGA" in fb, fb
    g.type_on_console("echo typed-on-tty1 > /tmp/y\n")
    deadline = time.monotonic() + 20
    while g.run("cat /tmp/y 2>/dev/null") != (0, "typed-on-tty1"):
        assert time.monotonic() < deadline, "the tty1 shell did not run the typed command"
        time.sleep(0.5)
    width, height, pixels = g.screendump(tmp_path / "screen.ppm")
    assert (width, height) == (1024, 768)
    assert pixels.count(0) < len(pixels) * 0.999, "the framebuffer console is blank"

    g.send("poweroff\n")
    assert g.wait_exit(30) == 0


def test_home_persists_across_poweroff_and_reboot(guest_boot, home_disk):
    token = uuid.uuid4().hex
    g = guest_boot(home_disk, "desk-p1")
    assert g.run(f"echo {token} > /home/kept.txt")[0] == 0
    g.send("poweroff\n")
    assert g.wait_exit(30) == 0
    # Cleanly unmounted: no journal left to replay (checked when e2fsprogs is installed).
    sbin_path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    dumpe2fs = shutil.which("dumpe2fs", path=sbin_path)
    if dumpe2fs:
        sb = subprocess.run([dumpe2fs, "-h", str(home_disk)], capture_output=True, text=True)
        assert sb.returncode == 0, sb.stderr
        assert "needs_recovery" not in sb.stdout, "/home was not unmounted cleanly at poweroff"
        assert re.search(r"Filesystem state:\s+clean\n", sb.stdout), sb.stdout

    g = guest_boot(home_disk, "desk-p1")
    assert g.run("cat /home/kept.txt") == (0, token)
    g.send("reboot\n")  # under -no-reboot QEMU exits: the guest did reboot
    assert g.wait_exit(30) == 0
