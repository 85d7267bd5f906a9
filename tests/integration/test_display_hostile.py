"""Hostile VNC clients on raw sockets: garbage before and during the handshake, bogus
message types, huge and oversized cut text, pointers far outside the framebuffer,
truncated messages and random bytes after a valid handshake. vdi-hv must keep running
and keep serving a good viewer. The post-handshake cases run with --vnc-insecure so that
a plain socket gets past authentication (the handlers behind it are the same); the
authentication step itself gets garbage with tickets on."""
import random
import socket
import struct

from vnc_fixture import ok, vnc, vnc_vm, wait_log


def connect(addr):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(addr[len("unix:"):])
    return s


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def handshake(addr):
    """RFB 3.8 with security type None, ClientInit shared; returns the socket."""
    s = connect(addr)
    assert recv_exact(s, 12) == b"RFB 003.008\n"
    s.sendall(b"RFB 003.008\n")
    count = recv_exact(s, 1)[0]
    types = recv_exact(s, count)
    assert 1 in types, types
    s.sendall(b"\x01")
    assert recv_exact(s, 4) == b"\0\0\0\0"
    s.sendall(b"\x01")
    header = recv_exact(s, 24)
    recv_exact(s, struct.unpack(">I", header[20:24])[0])
    return s


def closes(s, timeout=10):
    """Whether the server ends the connection (reads until EOF or error)."""
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
    except (ConnectionError, socket.timeout):
        pass
    s.close()
    return True


def send_and_close(s, data):
    try:
        s.sendall(data)
    except OSError:
        pass  # the server may have hung up already
    s.close()


def assert_still_serving(vm, addr, password=None):
    assert ok(vm.control({"cmd": "status"}))["state"] == "running"
    rc, out, err = vnc(addr, "--pointer", "10,10,0", password=password)
    assert rc == 0, err
    assert (out["width"], out["height"]) == ("1024", "768")


def test_hostile_messages_after_handshake(hv, tmp_path):
    vm, addr = vnc_vm(hv, tmp_path, "framebuffer", "--vnc-insecure", ticket=False)
    vm.expect(r"framebuffer: drawn", timeout=90)

    # Bogus message types: the viewer is dropped.
    for msg_type in (0x07, 0x42, 0xEE, 0xFF):
        s = handshake(addr)
        s.sendall(bytes([msg_type]) + b"\0" * 32)
        closes(s)
    # Cut text: an absurd length (libvncserver hangs up), then 200 KiB actually sent
    # (vdi-hv drops it and logs), then a small one.
    s = handshake(addr)
    s.sendall(b"\x06\0\0\0" + struct.pack(">I", 0xFFFFFFFF))
    closes(s)
    s = handshake(addr)
    s.sendall(b"\x06\0\0\0" + struct.pack(">I", 200 * 1024) + b"A" * (200 * 1024))
    s.sendall(b"\x06\0\0\0" + struct.pack(">I", 5) + b"hello")
    wait_log(vm, r"client cut text of 204800 bytes dropped \(limit 65536\)")
    # Pointer far outside the framebuffer, every button bit, keysyms of no key.
    for x, y in ((65535, 65535), (1024, 768), (0, 65535)):
        s.sendall(struct.pack(">BBHH", 5, 0xFF, x, y))
    s.sendall(struct.pack(">BBxxI", 4, 1, 0xFFFFFFFF) + struct.pack(">BBxxI", 4, 0, 0xFFFFFFFF))
    # Update requests beyond the screen, odd pixel formats, too many encodings.
    s.sendall(struct.pack(">BBHHHH", 3, 0, 60000, 60000, 65535, 65535))
    s.sendall(struct.pack(">BBHHHH", 3, 1, 1000, 700, 500, 500))
    s.sendall(struct.pack(">Bxxx", 0) + bytes([7, 3, 0, 0]) + b"\0" * 12)
    closes(s)
    s = handshake(addr)
    s.sendall(struct.pack(">BxH", 2, 65535) + b"\0\0\0\0" * 10)
    s.close()
    # Truncated messages, each followed by the end of the stream.
    for partial in (b"\x04\x01\0", b"\x05\x01", b"\x06\0\0\0\0\0\x10\0abc", b"\x03\0\0",
                    b"\x00\0\0\0\x20"):
        send_and_close(handshake(addr), partial)
    # Random bytes after a valid handshake.
    rng = random.Random(20261121)
    for _ in range(16):
        send_and_close(handshake(addr), bytes(rng.getrandbits(8) for _ in range(4096)))
    # Nothing of that stopped the VM or the server.
    assert_still_serving(vm, addr)
    vm.send_serial(b"done\n")
    vm.expect(r"PASS framebuffer", timeout=90)
    assert vm.wait(60) == 0


def test_hostile_handshakes(hv, tmp_path):
    vm, addr = vnc_vm(hv, tmp_path, "framebuffer")
    vm.expect(r"framebuffer: drawn", timeout=90)
    rng = random.Random(7)
    openings = [
        b"",                                     # connect and hang up
        b"RFB 003.008",                          # a version cut short
        b"RFB 004.000\n",                        # another major version
        b"HELLO WORLD\n",                        # not RFB at all
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",    # an HTTP (WebSocket) request
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc",  # a TLS client hello
        bytes(rng.getrandbits(8) for _ in range(2048)),
    ]
    for data in openings:
        s = connect(addr)
        send_and_close(s, data)
    # Valid versions, then nonsense in place of the security type or the response.
    for tail in (b"\x00", b"\x01", b"\x10", b"\x02" + b"\0" * 3, b"\x02" + bytes(range(16))):
        s = connect(addr)
        recv_exact(s, 12)
        s.sendall(b"RFB 003.008\n")
        recv_exact(s, 2)  # one security type: VNC authentication
        send_and_close(s, tail)
    s = connect(addr)
    recv_exact(s, 12)
    s.sendall(b"RFB 003.003\n")  # the old protocol: still VNC authentication
    assert struct.unpack(">I", recv_exact(s, 4))[0] == 2
    send_and_close(s, b"\xff" * 16)
    # Two wrong responses: still under the throttle's free failures.
    assert_still_serving(vm, addr, password="s3cret-ticket-1")
    vm.send_serial(b"done\n")
    vm.expect(r"PASS framebuffer", timeout=90)
    assert vm.wait(60) == 0
