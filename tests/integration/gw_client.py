"""Clients of vdi-broker's display gateway for tests and bench/gateway: a WebSocket
client (RFC 6455, stdlib only, masked binary frames) and the vdi-tunnel/1 upgrade, each
giving a socket-like object (sendall/recv/close) that rfb_client.Rfb can drive."""
import base64
import hashlib
import os
import socket
import ssl
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Refused(Exception):
    def __init__(self, status, head):
        super().__init__("gateway answered %d" % status)
        self.status = status
        self.head = head


class CountedTLS:
    """TLS over memory BIOs on a TCP socket, counting the bytes on the wire: what it took
    to carry the plain bytes shows the server's TLS record sizes."""

    def __init__(self, raw, ctx):
        self.raw = raw
        self.wire_in = 0
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname="127.0.0.1")
        self._call(self.tls.do_handshake)

    def _flush(self):
        data = self.outgoing.read()
        if data:
            self.raw.sendall(data)

    def _call(self, fn, *args):
        while True:
            try:
                result = fn(*args)
                self._flush()
                return result
            except ssl.SSLWantReadError:
                self._flush()
                data = self.raw.recv(65536)
                if not data:
                    self.incoming.write_eof()
                self.wire_in += len(data)
                self.incoming.write(data)

    def sendall(self, data):
        self._call(self.tls.write, data)

    def recv(self, n):
        try:
            return self._call(self.tls.read, n)
        except ssl.SSLZeroReturnError:
            return b""

    def close(self):
        self.raw.close()


def _open(port, ctx, timeout, counted=False):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if counted:
        return CountedTLS(raw, ctx)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def _read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("closed during the HTTP answer: %r" % data)
        data += chunk
    head = data.decode("latin-1")
    status = int(head.split(" ", 2)[1])
    headers = {}
    for line in head.split("\r\n")[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return status, headers


class WebSocket:
    def __init__(self, port, ctx, ticket, origin=None, protocol="binary", timeout=10,
                 extra_headers="", counted=False, path=None):
        self.sock = _open(port, ctx, timeout, counted)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n" % (path or "/gateway?ticket=" + ticket, port, key))
        if protocol:
            req += "Sec-WebSocket-Protocol: %s\r\n" % protocol
        if origin:
            req += "Origin: %s\r\n" % origin
        self.sock.sendall((req + extra_headers + "\r\n").encode())
        self.status, self.headers = _read_head(self.sock)
        if self.status != 101:
            raise Refused(self.status, self.headers)
        want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        assert self.headers.get("sec-websocket-accept") == want, self.headers
        self.buf, self.pos = bytearray(), 0
        self.closed_with, self.close_reason = None, None

    def send_frame(self, opcode, payload, fin=True, mask=True):
        head = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        mbit = 0x80 if mask else 0
        if n < 126:
            head += bytes([mbit | n])
        elif n < 65536:
            head += bytes([mbit | 126]) + struct.pack(">H", n)
        else:
            head += bytes([mbit | 127]) + struct.pack(">Q", n)
        if mask:
            m = os.urandom(4)
            payload = bytes(b ^ m[i & 3] for i, b in enumerate(payload))
            head += m
        self.sock.sendall(head + payload)

    def sendall(self, data):
        self.send_frame(2, data)

    def _read(self, n):
        while len(self.buf) - self.pos < n:
            chunk = self.sock.recv(262144)
            if not chunk:
                raise ConnectionError("gateway closed the connection")
            del self.buf[:self.pos]
            self.pos = 0
            self.buf += chunk
        data = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return data

    def frame(self):
        """One server frame: (opcode, payload)."""
        b0, b1 = self._read(2)
        assert not b1 & 0x80, "server frames are never masked"
        n = b1 & 0x7f
        if n == 126:
            n = struct.unpack(">H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._read(8))[0]
        return b0 & 0x0f, self._read(n)

    def recv(self, n):
        while True:
            op, payload = self.frame()
            if op == 2:
                return payload
            if op == 8:
                self.closed_with = struct.unpack(">H", payload[:2])[0] if payload else 1005
                self.close_reason = payload[2:].decode()
                return b""

    def close(self):
        self.sock.close()


class Tunnel:
    """The native clients' upgrade: 101, then raw RFB."""

    def __init__(self, port, ctx, ticket, timeout=10, counted=False):
        self.sock = _open(port, ctx, timeout, counted)
        self.sock.sendall(("GET /gateway?ticket=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                           "Connection: Upgrade\r\nUpgrade: vdi-tunnel/1\r\n\r\n"
                           % (ticket, port)).encode())
        self.status, self.headers = _read_head(self.sock)
        if self.status != 101:
            raise Refused(self.status, self.headers)

    def sendall(self, data):
        self.sock.sendall(data)

    def recv(self, n):
        return self.sock.recv(n)

    def close(self):
        self.sock.close()
