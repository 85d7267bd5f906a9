"""vdi-broker's TLS front (web/tls_front.c) against clients that misbehave before HTTP
starts: silent TCP connections get dropped at the handshake deadline and do not hold up
others, plain HTTP and random bytes on the TLS port are dropped, the connection limit
refuses the surplus and recovers, and the broker stops promptly with handshakes pending."""
import os
import socket
import ssl
import time

import pytest

from broker_fixture import BROKER, Broker, flood

pytestmark = pytest.mark.skipif(not os.path.exists(BROKER), reason="vdi-broker not built")


@pytest.fixture
def broker(tmp_path):
    b = Broker(str(tmp_path), "[http]\nidle_timeout = 2s\nmax_connections = 4\n")
    b.start()
    yield b
    status = b.stop()
    assert status == 0, "vdi-broker did not exit cleanly:\n" + b.log()


def tcp(broker):
    return socket.create_connection(("127.0.0.1", broker.port), timeout=10)


def closed_by_server(sock, timeout):
    """True when the server closes sock (EOF or reset) within timeout seconds."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def healthy(broker):
    r = broker.client().request("GET", "/api/v1/session")
    return r.status == 401  # answered: nobody is signed in


def test_silent_clients_are_dropped_at_the_handshake_deadline(broker):
    silent = tcp(broker)
    start = time.monotonic()
    assert healthy(broker)  # served meanwhile
    assert closed_by_server(silent, 10)
    assert time.monotonic() - start < 8, "the handshake deadline (2 s here) was not kept"
    assert "TLS handshake with 127.0.0.1 failed" in broker.log()


@pytest.mark.parametrize("opening", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(4096),
                                     b"\x16\x03\x01\xff\xff" + bytes(64)],
                         ids=["plain-http", "random", "huge-record"])
def test_garbage_on_the_tls_port_is_dropped(broker, opening):
    s = tcp(broker)
    s.sendall(opening)
    assert closed_by_server(s, 5)
    assert healthy(broker)


def test_connection_limit_refuses_the_surplus_and_recovers(broker):
    held = [tcp(broker) for _ in range(4)]
    time.sleep(0.3)  # all four accepted and in their handshakes
    extra = tcp(broker)
    assert closed_by_server(extra, 1.5), "a fifth connection was kept beyond the limit of 4"
    assert "connection limit reached" in broker.log()
    for s in held:
        s.close()
    deadline = time.monotonic() + 5
    while True:  # the threads of the four notice the close and end
        try:
            if healthy(broker):
                break
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        assert time.monotonic() < deadline, "the broker did not recover from the limit"
        time.sleep(0.1)


def test_stops_promptly_with_handshakes_pending(tmp_path):
    b = Broker(str(tmp_path), "[http]\nidle_timeout = 60s\n")
    b.start()
    held = [tcp(b) for _ in range(3)]
    time.sleep(0.2)
    start = time.monotonic()
    status = b.stop()
    assert status == 0, b.log()
    assert time.monotonic() - start < 5, "stop waited for the 10 s handshake deadline"
    for s in held:
        s.close()


def test_an_early_answer_reaches_a_client_still_sending(broker):
    """A 413 decided from the headers while the client is still sending its 1 MiB body:
    the answer arrives instead of a reset (the front drains before it closes)."""
    body = b'{"username": "' + b"a" * (1 << 20) + b'"}'
    for _ in range(5):
        r = broker.client().request("POST", "/api/v1/login", raw=body,
                                    content_type="application/json")
        assert r.status == 413, r


def test_a_flood_from_one_address_does_not_lock_others_out(tmp_path):
    """1,000 idle or trickling connections from 127.0.0.2: logins from 127.0.0.1 are
    answered at once; the flood's surplus is refused at accept, its tricklers dropped at
    the request deadline."""
    b = Broker(str(tmp_path), "[http]\nmax_connections = 256\nmax_connections_per_address = 32\n"
                              "request_timeout = 3s\n")
    b.add_user("alice", "alice-pw")
    b.start()
    socks, stop, t = [], None, None
    try:
        socks, stop, t = flood(b.port, 980, 20)
        time.sleep(1)
        slowest = 0
        for _ in range(10):
            start = time.monotonic()
            r = b.client().login("alice", "alice-pw")
            slowest = max(slowest, time.monotonic() - start)
            assert r.status == 200
        print("slowest login during the flood: %.3f s" % slowest)
        assert slowest < 5, "a login took %.1f s during the flood" % slowest
        time.sleep(4)  # the tricklers pass the 3 s request deadline
        log = open(b.log_path, errors="replace").read()
        assert "127.0.0.2 refused: as many connections from this address as allowed" in log
        assert "127.0.0.2 dropped: a request still arriving after 3 s" in log
        assert "FD_SETSIZE" not in log
    finally:
        if stop:
            stop.set()
            t.join()
        for s in socks:
            s.close()
        assert b.stop() == 0, b.log()
