"""The demo desktop guest (tests/guest/desktop.c) seen as a user sees it: it boots under
vdi-hv (and under QEMU with the std VGA), text typed over the control socket runs
commands in its terminal window, the answers come back on the serial mirror, and the
screendumps are read back glyph by glyph with the same console font the guest was built
with (build/guests/desktop_font.h). Also: an idle desktop changes only its clock, and a
pointer move redraws only the cursor's old and new rectangles."""
import json
import os
import re
import shutil
import socket
import time

import pytest

import mkfont
from conftest import GUESTS, HvProcess, guest_path
from pictures import decode_png

BOOT_TIMEOUT = 60
KEY_TIMEOUT = 60
BANNER = "vdi desktop demo: type 'help' for commands"
TEXT = 0xCCCCCC  # C_TERM_TEXT in desktop.c
CUR_W, CUR_H = 12, 19


class Geometry:
    """What the guest prints before "desktop: ready"."""

    def __init__(self, serial):
        t = re.search(r"desktop: terminal x=(\d+) y=(\d+) cols=(\d+) rows=(\d+) "
                      r"font=(\d+)x(\d+) bg=([0-9a-f]+)", serial)
        c = re.search(r"desktop: clock x=(\d+) y=(\d+) w=(\d+) h=(\d+)", serial)
        p = re.search(r"desktop: pointer x=(\d+) y=(\d+) mouse=(\d)-byte tablet=(yes|no)", serial)
        f = re.search(r"desktop: framebuffer (\d+)x(\d+) stride (\d+) at \w+ \(([\w-]+)\)", serial)
        assert t and c and p and f, serial
        self.x0, self.y0, self.cols, self.rows, self.fw, self.fh = map(int, t.groups()[:6])
        self.bg = int(t.group(7), 16)
        self.clock = tuple(map(int, c.groups()))
        self.pointer = (int(p.group(1)), int(p.group(2)))
        self.mouse_bytes, self.tablet = int(p.group(3)), p.group(4) == "yes"
        self.width, self.height = int(f.group(1)), int(f.group(2))
        self.fb_kind = f.group(4)


def font():
    path = os.path.join(GUESTS, "desktop_font.h")
    width, height, glyphs = mkfont.parse_header(path)
    return width, height, {tuple(rows): ch for ch, rows in reversed(sorted(glyphs.items()))}


def rgb(v):
    return bytes(((v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF))


def read_terminal(rows, geo):
    """The terminal's text, one string per row: a cell whose ink (pixels not in the
    background colour) matches a glyph of the font reads as that character, else '?'."""
    fw, fh, lookup = font()
    assert (fw, fh) == (geo.fw, geo.fh)
    bg = rgb(geo.bg)
    lines = []
    for r in range(geo.rows):
        line = []
        for c in range(geo.cols):
            x, y = geo.x0 + c * fw, geo.y0 + r * fh
            bits = []
            for gy in range(fh):
                row, v = rows[y + gy], 0
                for gx in range(fw):
                    v = v << 1 | (row[3 * (x + gx):3 * (x + gx) + 3] != bg)
                bits.append(v << (8 - fw))
            line.append(lookup.get(tuple(bits), "?"))
        lines.append("".join(line).rstrip())
    return lines


def diff_box(a, b):
    """The pixels that differ between two frames, as a set of (x, y)."""
    out = set()
    for y, (ra, rb) in enumerate(zip(a, b)):
        if ra == rb:
            continue
        for x in range(len(ra) // 3):
            if ra[3 * x:3 * x + 3] != rb[3 * x:3 * x + 3]:
                out.add((x, y))
    return out


def inside(points, box):
    x0, y0, w, h = box
    return all(x0 <= x < x0 + w and y0 <= y < y0 + h for x, y in points)


def screendump(vm, path):
    reply = vm.control({"cmd": "screendump", "path": str(path)})
    assert reply.get("ok") is True, reply
    with open(path, "rb") as f:
        w, h, rows = decode_png(f.read())
    return rows


def boot(hv, *extra):
    start = time.monotonic()
    # --no-sandbox: these tests read the screen back with screendumps, which write files.
    vm = hv("desktop", "--no-sandbox", *extra)
    vm.expect(r"desktop: ready", timeout=BOOT_TIMEOUT)
    ready = time.monotonic() - start
    print("desktop ready after %.2f s" % ready)
    return vm, Geometry(vm.serial()), ready


def type_line(vm, text, answer):
    mark = len(vm.serial())
    reply = vm.control({"cmd": "type", "text": text + "\n"})
    assert reply.get("ok") is True, reply
    vm.expect(r"desktop: \$ %s\r?\n" % re.escape(text), timeout=KEY_TIMEOUT, start=mark)
    if answer is not None:
        vm.expect(r"desktop: %s\r?\n" % re.escape(answer), timeout=KEY_TIMEOUT, start=mark)


# ---- the font reader itself ----

def test_font_header_matches_the_console_font():
    path = os.path.join(GUESTS, "desktop_font.h")
    width, height, glyphs = mkfont.parse_header(path)
    assert (width, height) == (8, 16)
    source = re.search(r"from (\S+): do not edit", open(path).read()).group(1)
    if not os.path.exists(source):
        pytest.skip("%s is not installed here (console-setup-linux)" % source)
    w, h, raw = mkfont.load_font(source)
    assert {c: [r << (8 - w) for r in rows] for c, rows in raw.items()} == glyphs
    assert len(set(map(tuple, glyphs.values()))) == len(glyphs), "two characters look alike"


# ---- vdi-hv ----

def test_desktop_terminal_commands(hv, tmp_path):
    vm, geo, ready = boot(hv)
    assert ready < 30, "desktop took %.1f s to become ready" % ready
    assert (geo.width, geo.height, geo.fb_kind) == (1024, 768, "vdi-hv")
    before = screendump(vm, tmp_path / "before.png")
    text = read_terminal(before, geo)
    assert text[0] == BANNER and text[1].startswith("$"), text[:3]
    assert all(not line for line in text[2:]), text

    type_line(vm, "echo hello vdi", "hello vdi")
    type_line(vm, "calc 6*7", "42")
    after = screendump(vm, tmp_path / "after.png")
    text = read_terminal(after, geo)
    assert text[1:5] == ["$ echo hello vdi", "hello vdi", "$ calc 6*7", "42"], text[:6]
    assert text[5].startswith("$"), text[:6]

    # The output line in the text colour exactly, on the terminal's background.
    y = geo.y0 + 2 * geo.fh
    row_colours = {bytes(after[yy][3 * x:3 * x + 3])
                   for yy in range(y, y + geo.fh)
                   for x in range(geo.x0, geo.x0 + 9 * geo.fw)}
    assert row_colours == {rgb(TEXT), rgb(geo.bg)}, row_colours

    # Only the terminal (and the clock) changed.
    term_box = (geo.x0, geo.y0, geo.cols * geo.fw, geo.rows * geo.fh)
    changed = {p for p in diff_box(before, after) if not inside([p], geo.clock)}
    assert changed and inside(changed, term_box)

    type_line(vm, "reboot", "rebooting")
    assert vm.wait(BOOT_TIMEOUT) == 0


def test_desktop_other_commands(hv):
    vm, geo, _ = boot(hv)
    type_line(vm, "help", "commands: help, echo TEXT, date, uname, clear, calc A+B, stats, reboot")
    type_line(vm, "uname", "vdi-desktop 1.0 x86_64 (freestanding demo guest)")
    mark = len(vm.serial())
    type_line(vm, "date", None)
    m = vm.expect(r"desktop: (\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d) UTC", start=mark,
                  timeout=KEY_TIMEOUT)
    now = time.gmtime()
    assert int(m.group(1)) in (now.tm_year, now.tm_year - 1), m.group(0)
    type_line(vm, "calc -7 / 2", "-3")
    type_line(vm, "calc 9223372036854775807+1", "calc: overflow")
    type_line(vm, "calc 1/0", "calc: division by zero")
    type_line(vm, "calc six", "usage: calc A+B (integers; + - * / %)")
    type_line(vm, "frobnicate now", "frobnicate: command not found")
    type_line(vm, "echo Shift Works: A~!", "Shift Works: A~!")
    type_line(vm, "clear", None)
    type_line(vm, "reboot", "rebooting")
    assert vm.wait(BOOT_TIMEOUT) == 0


def test_desktop_idle_changes_only_the_clock(hv, tmp_path):
    vm, geo, _ = boot(hv)
    first = screendump(vm, tmp_path / "a.png")
    time.sleep(2.2)  # at least one second boundary plus a timer tick
    second = screendump(vm, tmp_path / "b.png")
    changed = diff_box(first, second)
    assert changed, "the clock did not tick in 2 s"
    assert inside(changed, geo.clock), sorted(changed)[:10]
    type_line(vm, "stats", None)
    m = vm.expect(r"desktop: clock: (\d+) redraws, (\d+) pixels; timer ticks (\d+)\r?\n",
                  timeout=KEY_TIMEOUT)
    redraws, pixels, ticks = map(int, m.groups())
    print("clock: %d redraws, %d pixels (%.0f bytes a redraw), %d timer ticks"
          % (redraws, pixels, 4.0 * pixels / max(redraws, 1), ticks))
    assert redraws >= 2 and ticks >= 4
    # The first redraw draws all 8 glyphs; after that, about one glyph a second.
    assert pixels <= 8 * 128 + (redraws - 1) * 3 * 128
    type_line(vm, "reboot", "rebooting")
    assert vm.wait(BOOT_TIMEOUT) == 0


def cursor_box(x, y, geo):
    return (x, y, min(CUR_W, geo.width - x), min(CUR_H, geo.height - y))


def test_desktop_pointer(hv, tmp_path):
    vm, geo, _ = boot(hv)
    assert geo.mouse_bytes == 4  # IntelliMouse
    x0, y0 = geo.pointer
    before = screendump(vm, tmp_path / "before.png")
    assert before[y0][3 * x0:3 * x0 + 3] == rgb(0)  # the arrow's tip
    mark = len(vm.serial())
    assert vm.control({"cmd": "mouse", "dx": -100, "dy": -50, "buttons": 1}).get("ok")
    vm.expect(r"desktop: pointer x=%d y=%d buttons=1 via=ps2" % (x0 - 100, y0 - 50),
              timeout=KEY_TIMEOUT, start=mark)
    assert vm.control({"cmd": "mouse", "dx": 0, "dy": 0, "buttons": 0}).get("ok")
    vm.expect(r"desktop: pointer x=%d y=%d buttons=0 via=ps2" % (x0 - 100, y0 - 50),
              timeout=KEY_TIMEOUT, start=mark)
    after = screendump(vm, tmp_path / "after.png")
    x1, y1 = x0 - 100, y0 - 50
    assert after[y1][3 * x1:3 * x1 + 3] == rgb(0)
    assert after[y1 + 2][3 * (x1 + 1):3 * (x1 + 1) + 3] == rgb(0xFFFFFF)
    # The save-under put the old spot back exactly; nothing but the two cursor
    # rectangles (and the clock) changed.
    old, new = cursor_box(x0, y0, geo), cursor_box(x1, y1, geo)
    changed = {p for p in diff_box(before, after) if not inside([p], geo.clock)}
    assert changed and all(inside([p], old) or inside([p], new) for p in changed)
    assert after[y0][3 * x0:3 * x0 + 3] == before[y0][3 * (x0 + 11):3 * (x0 + 12)]

    # Through the tablet, when vdi-hv has the pointer verb and the guest drives it.
    reply = vm.control({"cmd": "pointer", "x": 300, "y": 600, "buttons": 1})
    if "unknown command" in str(reply.get("error", "")):
        pytest.skip("vdi-hv has no 'pointer' control verb yet (hv/control.c)")
    assert reply.get("ok") is True, reply
    if reply.get("device") != "tablet" or not geo.tablet:
        pytest.skip("no virtio tablet in this vdi-hv (device %s)" % reply.get("device"))
    vm.expect(r"desktop: pointer x=300 y=600 buttons=1 via=tablet", timeout=KEY_TIMEOUT)
    reply = vm.control({"cmd": "pointer", "x": 1023, "y": 0, "buttons": 0})
    vm.expect(r"desktop: pointer x=1023 y=0 buttons=0 via=tablet", timeout=KEY_TIMEOUT)
    type_line(vm, "reboot", "rebooting")
    assert vm.wait(BOOT_TIMEOUT) == 0


def test_desktop_other_geometry(hv, tmp_path):
    vm, geo, _ = boot(hv, "--fb", "800x600", "--cmdline", "fb=800x600")
    assert (geo.width, geo.height) == (800, 600)
    assert geo.x0 + geo.cols * geo.fw <= 800 and geo.y0 + geo.rows * geo.fh <= 600
    type_line(vm, "echo small screen", "small screen")
    rows = screendump(vm, tmp_path / "s.png")
    assert len(rows) == 600 and len(rows[0]) == 800 * 3
    assert read_terminal(rows, geo)[:3] == [BANNER, "$ echo small screen", "small screen"]
    type_line(vm, "reboot", "rebooting")
    assert vm.wait(BOOT_TIMEOUT) == 0


def test_desktop_scrolls(hv, tmp_path):
    vm, geo, _ = boot(hv)
    mark = len(vm.serial())
    lines = ["echo %d" % i for i in range(geo.rows)]
    reply = vm.control({"cmd": "type", "text": "".join(l + "\n" for l in lines)})
    assert reply.get("ok") is True, reply
    vm.expect(r"desktop: %d\r?\n" % (geo.rows - 1), timeout=KEY_TIMEOUT, start=mark)
    text = read_terminal(screendump(vm, tmp_path / "s.png"), geo)
    # Every line ever written, of which the screen shows the last rows.
    written = [BANNER] + [l for i in range(geo.rows) for l in ("$ echo %d" % i, "%d" % i)]
    assert text[:-1] == written[-(geo.rows - 1):], text
    assert text[-1].startswith("$")
    type_line(vm, "reboot", "rebooting")
    assert vm.wait(BOOT_TIMEOUT) == 0


# ---- QEMU: the same ELF through -kernel (PVH), std VGA programmed through VBE ----

QEMU = shutil.which("qemu-system-x86_64")


class Qmp:
    def __init__(self, path, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.sock.settimeout(timeout)
        self.file = self.sock.makefile("rw")
        assert "QMP" in json.loads(self.file.readline())
        self.command("qmp_capabilities")

    def command(self, name, **args):
        self.file.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.file.flush()
        while True:
            reply = json.loads(self.file.readline())
            if "return" in reply or "error" in reply:
                assert "error" not in reply, reply
                return reply["return"]

    def close(self):
        self.sock.close()


def read_ppm(path):
    with open(path, "rb") as f:
        data = f.read()
    magic, dims, maxval, pixels = data.split(b"\n", 3)
    w, h = map(int, dims.split())
    assert magic == b"P6" and maxval == b"255" and len(pixels) == w * h * 3
    return w, h, [pixels[y * w * 3:(y + 1) * w * 3] for y in range(h)]


QCODES = {" ": "spc", "\n": "ret", "*": "asterisk", "-": "minus", "+": "shift-equal"}


def qemu_type(qmp, text):
    for ch in text:
        keys = QCODES.get(ch, ch).split("-")
        qmp.command("send-key", keys=[{"type": "qcode", "data": k} for k in keys])


@pytest.fixture
def qemu(tmp_path):
    if not QEMU:
        pytest.skip("qemu-system-x86_64 is not installed")
    procs = []

    def start(*extra):
        qmp_path = str(tmp_path / "qmp.sock")
        args = [QEMU, "-M", "pc", "-accel", "tcg", "-m", "64", "-nodefaults", "-no-user-config",
                "-kernel", guest_path("desktop"), "-serial", "stdio", "-display", "none",
                "-vga", "std", "-no-reboot", "-qmp", "unix:%s,server=on,wait=off" % qmp_path]
        p = HvProcess(args + list(extra), qmp_path, str(tmp_path))
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()


def test_desktop_under_qemu(qemu, tmp_path):
    start = time.monotonic()
    vm = qemu("-device", "virtio-tablet-pci")
    vm.expect(r"desktop: ready", timeout=BOOT_TIMEOUT)
    print("QEMU desktop ready after %.2f s" % (time.monotonic() - start))
    geo = Geometry(vm.serial())
    assert (geo.width, geo.height, geo.fb_kind) == (1024, 768, "bochs-vbe")
    assert geo.tablet and geo.mouse_bytes == 4
    qmp = Qmp(vm.control_path)
    try:
        mark = len(vm.serial())
        qemu_type(qmp, "calc 6*7\n")
        vm.expect(r"desktop: 42\r?\n", timeout=KEY_TIMEOUT, start=mark)
        # QEMU's own virtio tablet: the middle of its axes is the middle of the screen.
        qmp.command("input-send-event", events=[
            {"type": "abs", "data": {"axis": "x", "value": 16384}},
            {"type": "abs", "data": {"axis": "y", "value": 16384}},
            {"type": "btn", "data": {"button": "left", "down": True}}])
        vm.expect(r"desktop: pointer x=512 y=384 buttons=1 via=tablet", timeout=KEY_TIMEOUT)
        path = tmp_path / "q.ppm"
        qmp.command("screendump", filename=str(path))
        w, h, rows = read_ppm(path)
        assert (w, h) == (1024, 768)
        text = read_terminal(rows, geo)
        assert text[:4] == [BANNER, "$ calc 6*7", "42", text[3]] and text[3].startswith("$"), text
        assert rows[384][3 * 512:3 * 513] == rgb(0)  # the arrow's tip
        mark = len(vm.serial())
        qemu_type(qmp, "reboot\n")
        vm.expect(r"desktop: rebooting", timeout=KEY_TIMEOUT, start=mark)
    finally:
        qmp.close()
    assert vm.wait(BOOT_TIMEOUT) == 0
