"""A small RFB 3.8 client for tests and bench/gateway on a connected socket (plain, TLS,
or a gateway tunnel from gw_client): VNC authentication, 32 bpp raw updates, key events.
VNC authentication needs DES, which Python's standard library lacks: a compact DES is
here. Shared by test_hostd*.py, test_broker_*.py, test_gateway.py and bench/gateway/run.py."""
import struct


_IP = [58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14,
       6, 64, 56, 48, 40, 32, 24, 16, 8, 57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11,
       3, 61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7]
_FP = [40, 8, 48, 16, 56, 24, 64, 32, 39, 7, 47, 15, 55, 23, 63, 31, 38, 6, 46, 14, 54, 22, 62,
       30, 37, 5, 45, 13, 53, 21, 61, 29, 36, 4, 44, 12, 52, 20, 60, 28, 35, 3, 43, 11, 51, 19,
       59, 27, 34, 2, 42, 10, 50, 18, 58, 26, 33, 1, 41, 9, 49, 17, 57, 25]
_E = [32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17, 16, 17,
      18, 19, 20, 21, 20, 21, 22, 23, 24, 25, 24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1]
_P = [16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9,
      19, 13, 30, 6, 22, 11, 4, 25]
_PC1 = [57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11,
        3, 60, 52, 44, 36, 63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53,
        45, 37, 29, 21, 13, 5, 28, 20, 12, 4]
_PC2 = [14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
        41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36,
        29, 32]
_SHIFTS = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1]
_S = [bytes.fromhex(h) for h in (
    "0e040d01020f0b08030a060c05090007000f07040e020d010a060c0b09050308"
    "04010e080d06020b0f0c0907030a05000f0c080204090107050b030e0a00060d",
    "0f01080e060b03040907020d0c00050a030d04070f02080e0c00010a06090b05"
    "000e070b0a040d0105080c060903020f0d080a01030f04020b06070c00050e09",
    "0a00090e06030f05010d0c070b0402080d0700090304060a0208050e0c0b0f01"
    "0d060409080f03000b01020c050a0e07010a0d0006090807040f0e030b05020c",
    "070d0e030006090a010208050b0c040f0d080b05060f00030407020c010a0e09"
    "0a0609000c0b070d0f01030e05020804030f00060a010d080904050b0c07020e",
    "020c0401070a0b060805030f0d000e090e0b020c04070d0105000f0a03090806"
    "0402010b0a0d07080f090c050603000e0b080c07010e020d060f00090a040503",
    "0c010a0f09020608000d03040e07050b0a0f0402070c090506010d0e000b0308"
    "090e0f0502080c030700040a010d0b060403020c09050f0a0b0e01070600080d",
    "040b020e0f00080d030c0907050a06010d000b070409010a0e03050c020f0806"
    "01040b0d0c03070e0a0f060800050902060b0d0801040a070905000f0e02030c",
    "0d020804060f0b010a09030e05000c07010f0d080a0307040c05060b000e0902"
    "070b0401090c0e0200060a0d0f03050802010e07040a080d0f0c09000305060b",
)]


def _perm(v, table, width):
    out = 0
    for pos in table:
        out = (out << 1) | ((v >> (width - pos)) & 1)
    return out


def des_encrypt(key, data):
    """DES-ECB, as VNC authentication needs it."""
    k = _perm(int.from_bytes(key, "big"), _PC1, 64)
    c, d = k >> 28, k & 0xfffffff
    subkeys = []
    for s in _SHIFTS:
        c = ((c << s) | (c >> (28 - s))) & 0xfffffff
        d = ((d << s) | (d >> (28 - s))) & 0xfffffff
        subkeys.append(_perm((c << 28) | d, _PC2, 56))
    out = b""
    for i in range(0, len(data), 8):
        v = _perm(int.from_bytes(data[i:i + 8], "big"), _IP, 64)
        left, right = v >> 32, v & 0xffffffff
        for sk in subkeys:
            x = _perm(right, _E, 32) ^ sk
            f = 0
            for j in range(8):
                six = (x >> (42 - 6 * j)) & 0x3f
                f = (f << 4) | _S[j][(((six >> 4) & 2) | (six & 1)) * 16 + ((six >> 1) & 0xf)]
            left, right = right, left ^ _perm(f, _P, 32)
        out += _perm((right << 32) | left, _FP, 64).to_bytes(8, "big")
    return out


def vnc_response(password, challenge):
    """The VNC authentication response: DES with the password's bits mirrored per byte."""
    key = bytes(int(f"{b:08b}"[::-1], 2) for b in password.encode()[:8].ljust(8, b"\0"))
    return des_encrypt(key, challenge)


class AuthRefused(Exception):
    pass


class Rfb:
    """An RFB 3.8 client on a connected socket: VNC authentication, 32 bpp raw updates,
    key events."""

    SHIFTED = '~!@#$%^&*()_+{}|:"<>?'

    def __init__(self, sock, password):
        self.sock = sock
        self.buf, self.pos = bytearray(), 0
        version = self.read(12)
        assert version.startswith(b"RFB 003."), version
        sock.sendall(b"RFB 003.008\n")
        types = self.read(self.read(1)[0])
        assert 2 in types, f"no VNC authentication offered: {list(types)}"
        sock.sendall(b"\x02")
        sock.sendall(vnc_response(password, self.read(16)))
        if struct.unpack(">I", self.read(4))[0] != 0:
            raise AuthRefused(self.read(struct.unpack(">I", self.read(4))[0]).decode())
        sock.sendall(b"\x01")  # shared
        self.width, self.height = struct.unpack(">HH", self.read(4))
        self.read(16)
        self.name = self.read(struct.unpack(">I", self.read(4))[0])
        # 32 bpp little-endian true colour, raw encoding only.
        sock.sendall(struct.pack(">B3xBBBBHHHBBB3x", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
        sock.sendall(struct.pack(">BxHi", 2, 1, 0))
        self.fb = bytearray(self.width * self.height * 4)

    def read(self, n):
        while len(self.buf) - self.pos < n:
            chunk = self.sock.recv(262144)
            if not chunk:
                raise ConnectionError("VNC server closed the connection")
            del self.buf[:self.pos]  # linear: large reads are not copied row by row
            self.pos = 0
            self.buf += chunk
        data = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return data

    def update(self, incremental=False):
        """Requests and reads one framebuffer update; returns the bytes it carried."""
        self.sock.sendall(struct.pack(">BBHHHH", 3, int(incremental), 0, 0, self.width,
                                      self.height))
        while True:
            kind = self.read(1)[0]
            if kind == 0:
                break
            if kind == 2:  # bell
                continue
            if kind == 3:  # server cut text
                self.read(3)
                self.read(struct.unpack(">I", self.read(4))[0])
                continue
            raise AssertionError(f"unexpected server message {kind}")
        self.read(1)
        carried = 0
        for _ in range(struct.unpack(">H", self.read(2))[0]):
            x, y, w, h, enc = struct.unpack(">HHHHi", self.read(12))
            assert enc == 0, f"unexpected encoding {enc}"
            for row in range(h):
                line = self.read(w * 4)
                off = ((y + row) * self.width + x) * 4
                self.fb[off:off + w * 4] = line
            carried += w * h * 4
        return carried

    def key(self, keysym, down):
        self.sock.sendall(struct.pack(">BBxxI", 4, int(down), keysym))

    def type(self, text, shift_keys=True):
        """Types text as a US keyboard does (Shift held for the shifted symbols and
        capitals), or with shift_keys=False as keysyms alone, as a phone's on-screen
        keyboard does."""
        for ch in text:
            sym = 0xff0d if ch == "\n" else ord(ch)
            shift = shift_keys and (ch in self.SHIFTED or ch.isupper())
            if shift:
                self.key(0xffe1, True)
            self.key(sym, True)
            self.key(sym, False)
            if shift:
                self.key(0xffe1, False)

    def lit_pixels(self):
        return sum(1 for i in range(0, len(self.fb), 4) if self.fb[i:i + 3] != b"\0\0\0")

