"""vdi-hv's linear framebuffer seen from outside: the framebuffer test guest draws a
fixed pattern, the control socket's screendump writes it as a PNG, and the PNG is
decoded (stdlib only) and compared pixel by pixel with the same pattern computed in
Python: the decoder and the pattern are in pictures.py (keep pattern() in step with
tests/guest/framebuffer.c); the decoder is tested here."""

import os
import struct
import zlib

import pytest

from pictures import ANTI, BANDS, DIAG, RECTS, assert_picture, decode_png, drawn, finish, paeth, pattern, rgb

# How vdi-hv passes a command line to the guest (the guest reads "fb=WxH" from it).
CMDLINE_OPT = "--cmdline"
# Screendumps write files, which vdi-hv's sandbox forbids once the guest runs: the tests
# that take them run without it (test_screendump_refused_in_the_sandbox shows why).
NO_SANDBOX = "--no-sandbox"


def screendump(vm, path, width, height):
    reply = vm.control({"cmd": "screendump", "path": str(path)})
    assert reply.get("ok") is True and "error" not in reply, reply
    with open(path, "rb") as f:
        w, h, rows = decode_png(f.read())
    assert (w, h) == (width, height)
    return rows


# ---- the decoder itself, against a PNG built here with every filter type ----

def _encode_png(width, height, rows, filters):
    """A minimal encoder: row y uses filter filters[y % len(filters)]."""
    raw, prev, bpp = bytearray(), bytearray(width * 3), 3
    for y, row in enumerate(rows):
        ftype = filters[y % len(filters)]
        out = bytearray(len(row))
        for i, v in enumerate(row):
            left = row[i - bpp] if i >= bpp else 0
            upleft = prev[i - bpp] if i >= bpp else 0
            pred = [0, left, prev[i], (left + prev[i]) >> 1, paeth(left, prev[i], upleft)][ftype]
            out[i] = (v - pred) & 0xFF
        raw += bytes([ftype]) + out
        prev = row

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(raw)))
            + chunk(b"IEND", b""))


def test_png_decoder_all_filters():
    w, h = 13, 10
    rows = [bytearray((x * 37 + y * 101 + c * 53) & 0xFF for x in range(w) for c in range(3))
            for y in range(h)]
    data = _encode_png(w, h, rows, [0, 1, 2, 3, 4])
    assert decode_png(data) == (w, h, rows)
    with pytest.raises(AssertionError):
        decode_png(data[:-20] + bytes([data[-20] ^ 1]) + data[-19:])


def test_pattern_matches_guest_layout():
    rows = pattern(1024, 768)
    assert rows[0][0:3] == rgb(DIAG) and rows[0][3 * 1023:] == rgb(ANTI)
    assert rows[0][3:6] == rgb(BANDS[0]) and rows[767][0:3] == rgb(BANDS[7])
    assert rows[200][3 * 102:3 * 103] == rgb(RECTS[0])  # x = 1024/10, y = 768*2/10


# ---- vdi-hv ----

@pytest.fixture
def dumps(tmp_path):
    """An empty directory for screendumps (tmp_path also holds the control socket)."""
    d = tmp_path / "dumps"
    d.mkdir()
    return d


def test_screendump_default_geometry(hv, dumps):
    vm = hv("framebuffer", NO_SANDBOX)
    drawn(vm, 1024, 768)
    rows = screendump(vm, dumps / "x.png", 1024, 768)
    assert_picture(rows, pattern(1024, 768), "1024x768 screendump")
    assert os.listdir(dumps) == ["x.png"], "temporary file left behind"
    finish(vm)


def test_screendump_other_geometry(hv, dumps):
    vm = hv("framebuffer", NO_SANDBOX, "--fb", "800x600", CMDLINE_OPT, "fb=800x600")
    drawn(vm, 800, 600)
    rows = screendump(vm, dumps / "y.png", 800, 600)
    assert_picture(rows, pattern(800, 600), "800x600 screendump")
    finish(vm)


def test_screendump_refused_in_the_sandbox(hv, dumps):
    """With the sandbox on (the default) a screendump is refused with a reason, nothing
    is written, and the VM runs on: the refusal is vdi-hv's, not the sandbox killing it."""
    vm = hv("framebuffer")
    drawn(vm, 1024, 768)
    reply = vm.control({"cmd": "screendump", "path": str(dumps / "x.png")})
    assert "--no-sandbox" in reply.get("error", ""), reply
    assert os.listdir(dumps) == []
    assert vm.control({"cmd": "status"}).get("ok") is True
    finish(vm)


def test_screendump_errors_keep_vm_running(hv, dumps):
    vm = hv("framebuffer", NO_SANDBOX)
    drawn(vm, 1024, 768)
    bad_paths = [dumps / "missing" / "x.png", dumps]
    if os.geteuid() != 0:  # root writes anywhere
        ro = dumps / "ro"
        ro.mkdir(mode=0o555)
        bad_paths.append(ro / "x.png")
    for path in bad_paths:
        reply = vm.control({"cmd": "screendump", "path": str(path)})
        assert isinstance(reply.get("error"), str) and reply["error"], (path, reply)
        assert "ok" not in reply or reply["ok"] is not True
    assert sorted(os.listdir(dumps)) == (["ro"] if os.geteuid() else []), "file left behind"
    if os.geteuid() != 0:
        assert os.listdir(dumps / "ro") == []
    reply = vm.control({"cmd": "screendump"})
    assert "error" in reply, reply
    # Still running and still serving screendumps.
    assert vm.control({"cmd": "status"}).get("ok") is True
    rows = screendump(vm, dumps / "after.png", 1024, 768)
    assert_picture(rows, pattern(1024, 768), "screendump after the errors")
    finish(vm)
