"""vdi-hostd without a Linux guest: configuration checking, mutual TLS on the API and the
display relay, refusal of bad input (malformed JSON, unknown fields, oversized bodies,
path traversal), definitions that survive a restart, and the vdi-hv engine with the
freestanding test guests (copy-on-write overlay, clean exit, crash report, ticket and
relay, forced stop). Also the harness the QEMU tests (test_hostd_qemu.py) share: hostd
in a temporary directory on free loopback ports, an HTTPS client with the broker's
certificate, and a small RFB client (VNC authentication needs DES, which Python's standard
library lacks: a compact DES is here)."""
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time
from types import SimpleNamespace

import pytest

from conftest import BIN, GUESTS, TOP, hostd_launcher
from daemon import Daemon

HOSTD = os.path.join(BIN, "vdi-hostd")
VDIHV = os.path.join(BIN, "vdi-hv")
MKCERTS = os.path.join(TOP, "hostd", "mkcerts.sh")

pytestmark = pytest.mark.skipif(not os.path.exists(HOSTD), reason="vdi-hostd not built")


# ---- certificates, ports, the daemon ----

@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """A CA with hostd and broker certificates, and a second CA whose certificates hostd
    must refuse (made with hostd/mkcerts.sh, as `make certs` does)."""
    good = tmp_path_factory.mktemp("certs")
    other = tmp_path_factory.mktemp("other-ca")
    for d in (good, other):
        subprocess.run([MKCERTS, str(d)], check=True, capture_output=True)
    return SimpleNamespace(dir=good, ca=good / "ca.crt", hostd_crt=good / "hostd.crt",
                           hostd_key=good / "hostd.key", broker_crt=good / "broker.crt",
                           broker_key=good / "broker.key", other=other)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client_context(certs, which="broker"):
    """TLS client context trusting our CA; which: broker (good cert), other (a cert from
    another CA) or None (no client certificate)."""
    ctx = ssl.create_default_context(cafile=str(certs.ca))
    if which == "broker":
        ctx.load_cert_chain(str(certs.broker_crt), str(certs.broker_key))
    elif which == "other":
        ctx.load_cert_chain(str(certs.other / "broker.crt"), str(certs.other / "broker.key"))
    return ctx


class Hostd(Daemon):
    """One vdi-hostd with its own state directory, run directory (short: unix socket
    paths), ports and configuration. stop() ends it; kill_vms() ends every VMM it left."""

    def __init__(self, workdir, certs, template_dirs, extra=""):
        super().__init__(HOSTD, workdir / "hostd.conf", workdir / "hostd.log")
        self.workdir = workdir
        self.certs = certs
        self.state = workdir / "state"
        self.run = tempfile.mkdtemp(prefix="vh-", dir="/tmp")
        self.api_port, self.relay_port = free_port(), free_port()
        self.conf.write_text(f"""[hostd]
host_id = test-host
state_dir = {self.state}
run_dir = {self.run}
template_dirs = {template_dirs}
[api]
listen = 127.0.0.1:{self.api_port}
cert = {certs.hostd_crt}
key = {certs.hostd_key}
ca = {certs.ca}
max_body = 4096
[relay]
listen = 127.0.0.1:{self.relay_port}
handshake_timeout = 3s
[qemu]
accel = tcg
[vdi-hv]
binary = {VDIHV}
launcher = {hostd_launcher()}
{extra}
""")

    def vmm_pids(self, desktop):
        """(vmm pid, monitor pid) from the desktop's pid file."""
        fields = open(os.path.join(self.run, desktop, "vmm.pid")).read().split()
        return int(fields[0]), int(fields[2])

    def kill_vms(self):
        for name in os.listdir(self.run) if os.path.isdir(self.run) else []:
            try:
                vmm, monitor = self.vmm_pids(name)
            except (OSError, ValueError, IndexError):
                continue
            for pid in (vmm, monitor):
                try:
                    os.killpg(pid, signal.SIGKILL)  # the monitor leads the VMM's group
                except OSError:
                    pass
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        shutil.rmtree(self.run, ignore_errors=True)

    # ---- the API ----

    def request(self, method, path, body=None, raw=None, cert="broker", timeout=30):
        """Returns (status, decoded JSON or None)."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.api_port, timeout=timeout,
                                           context=client_context(self.certs, cert))
        try:
            data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                                 else None)
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            text = resp.read()
            try:
                return resp.status, json.loads(text) if text else None
            except ValueError:
                return resp.status, text
        finally:
            conn.close()

    def raw_request(self, head, body):
        """Sends head, then as much of body as the server takes; returns the status line."""
        s = client_context(self.certs).wrap_socket(
            socket.create_connection(("127.0.0.1", self.api_port), timeout=30),
            server_hostname="127.0.0.1")
        try:
            s.sendall(head)
            try:
                for i in range(0, len(body), 16384):
                    s.sendall(body[i:i + 16384])
            except (ssl.SSLError, ConnectionError):
                pass  # closed on us after the answer
            reply = b""
            while b"\r\n" not in reply:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
            return reply.split(b"\r\n")[0]
        except (ssl.SSLError, ConnectionError) as e:
            return repr(e).encode()
        finally:
            s.close()

    def ok(self, method, path, body=None, expect=(200, 201, 202)):
        status, reply = self.request(method, path, body)
        assert status in expect, f"{method} {path} -> {status} {reply}\n{self.log()}"
        return reply

    def desktop(self, did):
        return self.ok("GET", f"/api/v1/desktops/{did}", expect=(200,))

    def wait_state(self, did, states, timeout=60):
        states = (states,) if isinstance(states, str) else states
        deadline = time.monotonic() + timeout
        while True:
            d = self.desktop(did)
            if d["state"] in states:
                return d
            assert time.monotonic() < deadline, \
                f"desktop {did} still {d['state']} after {timeout}s, not {states}: {d}\n{self.log()}"
            time.sleep(0.1)

    def ticket(self, did, ticket, ttl=60, view_only=False):
        return self.request("POST", f"/api/v1/desktops/{did}/ticket",
                            {"ticket": ticket, "expires": int(time.time()) + ttl,
                             "view_only": view_only})

    def relay(self, ticket_line, cert="broker"):
        """A TLS connection to the relay that has sent its first line."""
        ctx = client_context(self.certs, cert)
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.relay_port), timeout=30),
                            server_hostname="127.0.0.1")
        s.sendall(ticket_line)
        return s


@pytest.fixture
def hostd_factory(tmp_path, certs):
    """hostd_factory(template_dirs, extra_conf) -> a started Hostd; all are stopped (and
    must exit 0) and their VMMs killed at teardown."""
    daemons = []

    def make(template_dirs, extra="", name="hostd"):
        work = tmp_path / name
        work.mkdir(exist_ok=True)
        h = Hostd(work, certs, template_dirs, extra)
        daemons.append(h)
        return h.start()

    yield make
    bad = []
    for h in daemons:
        status = h.stop()
        h.kill_vms()
        if status not in (0, None):
            bad.append((status, h.log()))
    assert not bad, "vdi-hostd did not exit cleanly: %s" % bad


def closed_without_data(sock, timeout=5):
    """Whether the peer closed the connection without sending anything."""
    sock.settimeout(timeout)
    try:
        return sock.recv(100) == b""
    except (ssl.SSLError, ConnectionError):
        return True
    finally:
        sock.close()


# ---- RFB with VNC authentication ----

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

    def type(self, text):
        for ch in text:
            sym = 0xff0d if ch == "\n" else ord(ch)
            shift = ch in self.SHIFTED or ch.isupper()
            if shift:
                self.key(0xffe1, True)
            self.key(sym, True)
            self.key(sym, False)
            if shift:
                self.key(0xffe1, False)

    def lit_pixels(self):
        return sum(1 for i in range(0, len(self.fb), 4) if self.fb[i:i + 3] != b"\0\0\0")


# ---- tests: configuration, TLS, input ----

def test_config_check(tmp_path, certs):
    h = Hostd(tmp_path, certs, str(tmp_path))
    ok = subprocess.run([HOSTD, "-n", "-c", str(h.conf)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.conf"
    bad.write_text("[hostd]\nstate_dir = /tmp/x\n\n[relay]\nmax_sessions = lots\n")
    r = subprocess.run([HOSTD, "-n", "-c", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.startswith(f"{bad}:5: [relay] max_sessions: 'lots' is not an integer"), r.stderr
    bad.write_text("[api]\nlisten = 0.0.0.0\n")
    r = subprocess.run([HOSTD, "-n", "-c", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2 and "[api] listen" in r.stderr, r.stderr
    shutil.rmtree(h.run, ignore_errors=True)


def test_mutual_tls_refuses_clients_without_a_ca_signed_certificate(hostd_factory, certs, tmp_path):
    h = hostd_factory(str(tmp_path))
    status, cap = h.request("GET", "/api/v1/capacity")
    assert status == 200 and cap["host_id"] == "test-host" and cap["cpus"] >= 1
    assert cap["memory_total_mib"] > 0 and cap["desktops_running"] == 0
    for who in (None, "other"):
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
            h.request("GET", "/api/v1/capacity", cert=who)
    # The relay too: no certificate, no connection.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        s = h.relay(b"VDI-TICKET " + b"x" * 20 + b"\n", cert=None)
        s.settimeout(5)
        if s.recv(10) == b"":
            raise ConnectionError("closed")
    assert h.proc.poll() is None


def test_bad_requests_get_4xx_and_never_a_crash(hostd_factory, tmp_path):
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "disk.img").write_bytes(b"\0" * 65536)
    (tmp_path / "secret.img").write_bytes(b"\0" * 512)
    os.symlink("/etc/passwd", tpl / "escape.img")
    os.symlink(tmp_path / "secret.img", tpl / "sneaky.img")
    h = hostd_factory(str(tpl))

    def expect(status, code, method, path, body=None, raw=None):
        got, reply = h.request(method, path, body, raw)
        assert got == status, (method, path, body, raw, got, reply)
        assert reply["code"] == code and reply["error"], reply

    expect(400, "bad_request", "POST", "/api/v1/desktops", raw=b'{"disk": "disk.img"')
    expect(400, "bad_request", "POST", "/api/v1/desktops", raw=b"[1, 2]")
    expect(400, "bad_request", "POST", "/api/v1/desktops", raw=b"")
    expect(400, "bad_request", "POST", "/api/v1/desktops", {"disk": "disk.img", "colour": "red"})
    expect(400, "bad_request", "POST", "/api/v1/desktops", {"disk": 5})
    expect(400, "bad_request", "POST", "/api/v1/desktops", {"disk": "disk.img", "memory_mib": 3})
    expect(400, "bad_request", "POST", "/api/v1/desktops", {"disk": "disk.img", "vcpus": 1000})
    expect(400, "bad_request", "POST", "/api/v1/desktops", {"disk": "disk.img", "engine": "xen"})
    expect(400, "bad_request", "POST", "/api/v1/desktops", {"disk": "disk.img", "id": "../../etc"})
    expect(400, "bad_request", "POST", "/api/v1/desktops", {"disk": "disk.img", "id": "a" * 41})
    for disk in ("../secret.img", "/etc/passwd", "escape.img", "sneaky.img", str(tmp_path / "secret.img"),
                 "nonexistent.img", "", "disk.img\n", ".", "/"):
        expect(400, "bad_request", "POST", "/api/v1/desktops", {"disk": disk})
    expect(400, "bad_request", "POST", "/api/v1/desktops",
           {"disk": "disk.img", "cmdline": "console=ttyS0\u0001"})
    expect(413, "too_large", "POST", "/api/v1/desktops",
           raw=json.dumps({"disk": "disk.img", "cmdline": "x" * 8000}).encode())
    # A huge body is answered 413 as soon as its Content-Length is read and the connection
    # closed: read the early answer while still sending, as a careful client does.
    status_line = h.raw_request(b"POST /api/v1/desktops HTTP/1.1\r\nHost: x\r\n"
                                b"Content-Length: 2000000\r\n\r\n", b" " * 2_000_000)
    assert status_line.startswith(b"HTTP/1.1 413"), status_line
    expect(404, "not_found", "GET", "/api/v1/desktops/nope")
    expect(400, "bad_request", "GET", "/api/v1/desktops/..%2F..%2Fetc")
    expect(400, "bad_request", "GET", "/api/v1/desktops/bad%00id")
    expect(404, "not_found", "POST", "/api/v1/desktops/nope/start")
    expect(404, "not_found", "POST", "/api/v1/desktops/nope/explode")
    expect(404, "not_found", "GET", "/api/v2/desktops")
    expect(404, "not_found", "GET", "/")
    expect(405, "method_not_allowed", "PUT", "/api/v1/desktops")
    expect(405, "method_not_allowed", "DELETE", "/api/v1/capacity")
    expect(405, "method_not_allowed", "GET", "/api/v1/desktops/x/start")
    # A good desktop, then bad operations on it.
    d = h.ok("POST", "/api/v1/desktops", {"id": "d1", "disk": "disk.img", "kernel": "disk.img"})
    assert d["state"] == "stopped" and d["disk"] == str((tpl / "disk.img").resolve())
    expect(409, "exists", "POST", "/api/v1/desktops", {"id": "d1", "disk": "disk.img"})
    expect(400, "bad_request", "POST", "/api/v1/desktops/d1/stop", {"force": "yes"})
    expect(400, "bad_request", "POST", "/api/v1/desktops/d1/start", {"now": True})
    expect(400, "bad_request", "POST", "/api/v1/desktops/d1/ticket", {"ticket": "short", "expires": 1})
    expect(400, "bad_request", "POST", "/api/v1/desktops/d1/ticket",
           {"ticket": "a" * 20, "expires": int(time.time()) + 100000})
    expect(409, "wrong_state", "POST", "/api/v1/desktops/d1/ticket",
           {"ticket": "a" * 20, "expires": int(time.time()) + 30})
    # The relay drops garbage, an unknown ticket and an over-long line.
    for line in (b"GET / HTTP/1.0\r\n\r\n", b"VDI-TICKET " + b"z" * 32 + b"\n",
                 b"VDI-TICKET " + b"z" * 5000 + b"\n", b"\n"):
        assert closed_without_data(h.relay(line))
    status, cap = h.request("GET", "/api/v1/capacity")
    assert status == 200 and cap["desktops_defined"] == 1
    assert h.proc.poll() is None


def test_definitions_persist_across_restarts(hostd_factory, tmp_path):
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "base.img").write_bytes(b"\0" * 1048576)
    h = hostd_factory(str(tpl))
    h.ok("POST", "/api/v1/desktops", {"id": "keep", "disk": "base.img", "memory_mib": 256,
                                      "engine": "qemu"})
    h.ok("POST", "/api/v1/desktops", {"id": "gone", "disk": "base.img"})
    assert (h.state / "desktops" / "keep.json").exists()
    assert (h.state / "disks" / "keep.qcow2").exists()
    assert h.ok("DELETE", "/api/v1/desktops/gone") == {"deleted": "gone"}
    assert not (h.state / "disks" / "gone.qcow2").exists()
    assert h.stop() == 0
    h.start()
    listed = h.ok("GET", "/api/v1/desktops")["desktops"]
    assert [(d["id"], d["memory_mib"], d["state"]) for d in listed] == [("keep", 256, "stopped")]


# ---- the vdi-hv engine, with the freestanding test guests ----

@pytest.fixture
def guest_templates(tmp_path):
    """Template directory: test guests as kernels and a raw base disk with the marker the
    virtio-blk guest looks for."""
    tpl = tmp_path / "guest-tpl"
    tpl.mkdir()
    for name in ("virtio_blk", "serial", "triplefault"):
        src = os.path.join(GUESTS, name + ".elf")
        if not os.path.exists(src):
            pytest.skip(f"test guest {src} not built")
        shutil.copyfile(src, tpl / (name + ".elf"))
    base = bytearray(2048 * 512)
    base[:25] = b"vdi virtio-blk test image"
    (tpl / "base.img").write_bytes(bytes(base))
    return tpl


def overlay_block(path, block):
    """Block `block` of a vdi-hv overlay, or None when the overlay does not hold it."""
    data = open(path, "rb").read()
    assert data[:8] == b"VDIOVRL1"
    data_off = struct.unpack("<Q", data[56:64])[0]
    if not data[4096 + block // 8] >> (block % 8) & 1:
        return None
    return data[data_off + block * 65536:data_off + (block + 1) * 65536]


def test_vdihv_desktop_writes_to_its_overlay_only(hostd_factory, guest_templates):
    h = hostd_factory(str(guest_templates))
    base_hash = hashlib.sha256((guest_templates / "base.img").read_bytes()).hexdigest()
    for did in ("v1", "v2"):
        h.ok("POST", "/api/v1/desktops", {"id": did, "engine": "vdi-hv", "kernel": "virtio_blk.elf",
                                          "disk": "base.img", "memory_mib": 64})
        h.ok("POST", f"/api/v1/desktops/{did}/start")
        # The guest writes, reads back, prints PASS and resets: vdi-hv exits 0, which is
        # a guest shutting down, not a failure.
        d = h.wait_state(did, "stopped", timeout=60)
        assert "failure" not in d, d
        serial = (h.state / "logs" / f"{did}.serial").read_text()
        assert "PASS virtio-blk" in serial, serial
        block = overlay_block(h.state / "disks" / f"{did}.ovl", 0)
        assert block is not None and block[:25] == b"vdi virtio-blk test image"
        assert block[512:516] == bytes([31, 38, 45, 52])  # the guest's pattern, sector 1
        assert os.stat(h.state / "disks" / f"{did}.ovl").st_blocks * 512 < 256 * 1024
    assert hashlib.sha256((guest_templates / "base.img").read_bytes()).hexdigest() == base_hash
    assert "stopped: vdi-hv" in h.log() and "(the guest shut down)" in h.log()


def test_vdihv_crash_is_reported_with_its_serial_lines(hostd_factory, guest_templates):
    h = hostd_factory(str(guest_templates))
    h.ok("POST", "/api/v1/desktops", {"id": "crash", "engine": "vdi-hv", "kernel": "triplefault.elf",
                                      "disk": "base.img", "memory_mib": 64})
    h.ok("POST", "/api/v1/desktops/crash/start")
    d = h.wait_state("crash", "failed", timeout=60)
    f = d["failure"]
    assert f["exit"] == "exited with status 1" and "unexpectedly" in f["reason"], f
    assert any("triplefault: about to fault" in line for line in f["serial_tail"]), f
    assert f["vmm_log_tail"], f  # vdi-hv's register dump
    # Failed desktops stay failed across a restart, and can be started again.
    assert h.stop() == 0
    h.start()
    assert h.desktop("crash")["state"] == "failed"
    h.ok("POST", "/api/v1/desktops/crash/start")
    h.wait_state("crash", "failed", timeout=60)


def test_vdihv_ticket_relay_and_forced_stop(hostd_factory, guest_templates):
    h = hostd_factory(str(guest_templates), "[desktops]\nstop_timeout = 2s\n")
    if not h.ok("GET", "/api/v1/capacity")["engines"]["vdi-hv"]["vnc"]:
        pytest.skip("this vdi-hv has no --vnc yet")
    h.ok("POST", "/api/v1/desktops", {"id": "s1", "engine": "vdi-hv", "kernel": "serial.elf",
                                      "disk": "base.img", "memory_mib": 64})
    h.ok("POST", "/api/v1/desktops/s1/start")
    h.wait_state("s1", "running", timeout=60)
    ticket = "T" + os.urandom(12).hex()
    assert h.ticket("s1", ticket)[0] == 200
    rfb = Rfb(h.relay(f"VDI-TICKET {ticket}\n".encode()), ticket)
    assert (rfb.width, rfb.height) == (1024, 768)
    assert rfb.update() == 1024 * 768 * 4
    rfb.sock.close()
    # Stop: the test guest ignores Ctrl-Alt-Del, so after stop_timeout hostd quits it.
    t0 = time.monotonic()
    assert h.ok("POST", "/api/v1/desktops/s1/stop")["state"] == "stopping"
    d = h.wait_state("s1", "stopped", timeout=30)
    assert 1.5 < time.monotonic() - t0 < 15 and "failure" not in d
    assert "quitting it" in h.log()
    assert not os.path.exists(os.path.join(h.run, "s1"))
