"""Pictures the tests compare, stdlib only: the pattern the framebuffer test guest
(tests/guest/framebuffer.c) draws, computed here (keep pattern() in step with the guest),
a decoder for the PNGs vdi-hv's screendump and the VNC test client write, a pixel-exact
comparison, and the framebuffer guest's "drawn" and "done" steps. Shared by
test_hv_framebuffer.py, test_display_vnc.py and test_hv_desktop.py."""
import struct
import zlib

import pytest

BOOT_TIMEOUT = 90

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


def paeth(a, b, c):
    """The Paeth predictor of PNG filter type 4."""
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
                    row[i] = (row[i] + paeth(row[i - bpp], prev[i], prev[i - bpp])) & 0xFF
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


def finish(vm):
    vm.send_serial(b"done\n")
    vm.expect(r"PASS framebuffer", timeout=BOOT_TIMEOUT)
    assert vm.wait(BOOT_TIMEOUT) == 0
