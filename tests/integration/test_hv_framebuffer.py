"""vdi-hv's linear framebuffer seen from outside: the framebuffer test guest draws a
fixed pattern, the control socket's screendump writes it as a PNG, and the PNG is
decoded here (stdlib only) and compared pixel by pixel with the same pattern computed
in Python. Keep pattern() in step with tests/guest/framebuffer.c."""

import os
import re
import struct
import zlib

import pytest

BOOT_TIMEOUT = 90
# How vdi-hv passes a command line to the guest (the guest reads "fb=WxH" from it).
CMDLINE_OPT = "--cmdline"

BANDS = [0x00FF0000, 0xA500FF00, 0x000000FF, 0x5AFFFF00,
         0x0000FFFF, 0xFFFF00FF, 0x00808080, 0x3C123456]
RECTS = [0x00202020, 0x00C0FFEE, 0x80FF8000, 0x00400080]
DIAG = 0x00FFFFFF
ANTI = 0x7F010203


def rgb(xrgb):
    """The three bytes a PNG row holds for an XRGB8888 pixel (X dropped)."""
    return bytes(((xrgb >> 16) & 0xFF, (xrgb >> 8) & 0xFF, xrgb & 0xFF))


def pattern(w, h):
    """The guest's picture as a list of h RGB rows of w * 3 bytes."""
    rows = [None] * h
    for i, colour in enumerate(BANDS):
        for y in range(i * h // 8, (i + 1) * h // 8):
            rows[y] = bytearray(rgb(colour) * w)
    for k, colour in enumerate(RECTS):
        x0, y0 = w * (2 * k + 1) // 10, h * (k + 2) // 10
        for y in range(y0, y0 + h // 6):
            rows[y][3 * x0:3 * (x0 + w // 8)] = rgb(colour) * (w // 8)
    for i in range(min(w, h)):
        rows[i][3 * i:3 * i + 3] = rgb(DIAG)
        x = w - 1 - i
        rows[i][3 * x:3 * x + 3] = rgb(ANTI)
    return rows


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(data):
    """Decodes an 8-bit RGB, non-interlaced PNG; returns (width, height, rows) with each
    row width * 3 bytes. Checks the signature, chunk CRCs and the header."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    pos, header, idat, seen_end = 8, None, [], False
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert len(body) == length, f"chunk {kind!r} truncated"
        assert zlib.crc32(kind + body) == crc, f"bad CRC in chunk {kind!r}"
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            seen_end = True
            break
    assert header, "no IHDR"
    assert seen_end and pos == len(data), "no IEND at the end"
    width, height, depth, colour, method, filt, interlace = header
    assert (depth, colour, method, filt, interlace) == (8, 2, 0, 0, 0), \
        f"not 8-bit RGB non-interlaced: {header}"
    raw = zlib.decompress(b"".join(idat))
    stride, bpp = width * 3, 3
    assert len(raw) == height * (stride + 1), "image data of the wrong size"
    rows, prev = [], bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        row = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ftype == 0:
            pass
        elif ftype == 1:
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
        elif ftype == 2:
            row = bytearray((a + b) & 0xFF for a, b in zip(row, prev))
        elif ftype == 3:
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(stride):
                if i >= bpp:
                    row[i] = (row[i] + _paeth(row[i - bpp], prev[i], prev[i - bpp])) & 0xFF
                else:
                    row[i] = (row[i] + prev[i]) & 0xFF
        else:
            raise AssertionError(f"row {y}: unknown filter type {ftype}")
        rows.append(row)
        prev = row
    return width, height, rows


def assert_picture(rows, want, what):
    assert len(rows) == len(want), f"{what}: {len(rows)} rows, want {len(want)}"
    for y, (got, exp) in enumerate(zip(rows, want)):
        if got != exp:
            x = next(i for i in range(len(exp)) if got[i] != exp[i]) // 3
            pytest.fail(f"{what}: pixel ({x}, {y}) is {bytes(got[3 * x:3 * x + 3]).hex()},"
                        f" want {bytes(exp[3 * x:3 * x + 3]).hex()}")


def drawn(vm, width, height):
    m = vm.expect(r"framebuffer: drawn (\d+)x(\d+) stride", timeout=BOOT_TIMEOUT)
    if hasattr(m, "group"):
        assert (int(m.group(1)), int(m.group(2))) == (width, height)


def screendump(vm, path, width, height):
    reply = vm.control({"cmd": "screendump", "path": str(path)})
    assert reply.get("ok") is True and "error" not in reply, reply
    with open(path, "rb") as f:
        w, h, rows = decode_png(f.read())
    assert (w, h) == (width, height)
    return rows


def finish(vm):
    vm.send_serial(b"done\n")
    vm.expect(r"PASS framebuffer", timeout=BOOT_TIMEOUT)
    assert vm.wait(BOOT_TIMEOUT) == 0


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
            pred = [0, left, prev[i], (left + prev[i]) >> 1, _paeth(left, prev[i], upleft)][ftype]
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
    vm = hv("framebuffer")
    drawn(vm, 1024, 768)
    rows = screendump(vm, dumps / "x.png", 1024, 768)
    assert_picture(rows, pattern(1024, 768), "1024x768 screendump")
    assert os.listdir(dumps) == ["x.png"], "temporary file left behind"
    finish(vm)


def test_screendump_other_geometry(hv, dumps):
    vm = hv("framebuffer", "--fb", "800x600", CMDLINE_OPT, "fb=800x600")
    drawn(vm, 800, 600)
    rows = screendump(vm, dumps / "y.png", 800, 600)
    assert_picture(rows, pattern(800, 600), "800x600 screendump")
    finish(vm)


def test_screendump_errors_keep_vm_running(hv, dumps):
    vm = hv("framebuffer")
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
