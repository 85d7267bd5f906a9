"""The broker keeps its directory connections between logins: searches on connections
bound as the service account, users' binds on others. A login then costs the user's bind
and the searches: no new TCP connection, TLS handshake or service bind. The server
closing idle connections (its idle timeout, a restart) costs nothing but a reconnect: it
is not the server's failure. Connections are counted by a TCP relay in front of slapd,
binds in slapd's log."""
import os
import select
import socket
import threading
import time

import pytest

from broker_fixture import BROKER, Broker
from ldap_fixture import BASE, SLAPD
from test_auth_ldap import SERVICE, certs, slapd  # noqa: F401

pytestmark = [pytest.mark.skipif(not os.path.exists(BROKER), reason="vdi-broker not built"),
              pytest.mark.skipif(not os.path.exists(SLAPD), reason="slapd not installed")]


class CountingRelay:
    """Relays TCP connections from a loopback port to target_port; counts them, and can
    cut every open one (as a server closing idle connections does)."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._pairs = []
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                continue
            server = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self.accepted += 1
                self._pairs.append((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 0.5)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except OSError:
            return
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut_all(self):
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def stop(self):
        self._stop = True
        self._thread.join(5)
        self.cut_all()
        self.sock.close()


@pytest.fixture
def relay(slapd):
    r = CountingRelay(int(slapd.ldaps_uri.rsplit(":", 1)[1].strip("/")))
    yield r
    r.stop()


def pooled_broker(tmp_path, relay, certs, extra=""):
    return Broker(str(tmp_path), f"""
[broker]
admin_groups = sales
[auth]
backend = ldap
[ldap]
uri = ldaps://127.0.0.1:{relay.port}/
base_dn = {BASE}
bind_dn = {SERVICE}
bind_password = broker-secret
ca_file = {certs["ca"]}
{extra}
""")


def open_to(port):
    """Established TCP connections to 127.0.0.1:port (the broker's to the relay)."""
    return sum(1 for ln in open("/proc/net/tcp").read().splitlines()[1:]
               if ln.split()[3] == "01" and int(ln.split()[2].split(":")[1], 16) == port)


def login(broker, user, password):
    return broker.client().request("POST", "/api/v1/login",
                                   {"username": user, "password": password})


def binds(slapd, start, marker):
    """The binds slapd was asked for since start: (service binds, users' binds); the
    marker search's anonymous bind is not counted."""
    lines = [ln for ln in slapd.log_after(start, marker).splitlines()
             if " BIND dn=" in ln and " method=128" in ln and ' BIND dn=""' not in ln]
    service = sum(1 for ln in lines if SERVICE in ln)
    return service, len(lines) - service


def test_logins_reuse_connections_and_never_mix_users(slapd, relay, certs, tmp_path):
    b = pooled_broker(tmp_path, relay, certs)
    b.start()
    try:
        assert login(b, "alice", "alice-pw").status == 200
        assert relay.accepted == 2, "one connection for searches, one for users' binds"
        start = len(slapd.log())
        for i in range(10):
            # alternating users on the same two connections: each gets their own
            # identity (bob is in sales, the admin group; alice is not)
            r = login(b, "bob", "bob-pw")
            assert r.status == 200 and r.json["user"]["admin"] is True, r
            assert login(b, "bob", "wrong-pw").status == 401
            r = login(b, "alice", "alice-pw")
            assert r.status == 200 and r.json["user"]["admin"] is False, r
        assert relay.accepted == 2, "logins in turn need no new connection"
        service, users = binds(slapd, start, "pool-marker-1")
        assert (service, users) == (0, 30), "a login costs the user's bind and the searches"
    finally:
        assert b.stop() == 0, b.log()


def test_connections_the_server_closed_are_replaced(slapd, relay, certs, tmp_path):
    """The server closes the idle connections: the next login reconnects at once and
    works, and the server is not marked as failing; the same with an idle limit."""
    b = pooled_broker(tmp_path, relay, certs, "pool_idle = 2s\n[broker]\nmaintenance_interval = 1s")
    b.start()
    try:
        assert login(b, "alice", "alice-pw").status == 200
        relay.cut_all()
        time.sleep(0.2)
        r = login(b, "alice", "alice-pw")
        assert r.status == 200, (r, b.log())
        assert login(b, "alice", "wrong-pw").status == 401
        assert relay.accepted == 4, relay.accepted
        assert "ldap: directory server" not in b.log(), b.log()
        admin = b.client()
        admin.login("bob", "bob-pw", bearer=True)
        (server,) = admin.ok("GET", "/api/v1/admin/directory")["servers"]
        assert server["state"] == "ok", server
        # past pool_idle, the maintenance pass closes idle connections, logins or not,
        # and the next login makes new ones
        deadline = time.monotonic() + 8
        while open_to(relay.port):
            assert time.monotonic() < deadline, "idle connections kept past pool_idle"
            time.sleep(0.2)
        accepted = relay.accepted
        assert login(b, "alice", "alice-pw").status == 200
        assert relay.accepted == accepted + 2, (accepted, relay.accepted)
    finally:
        assert b.stop() == 0, b.log()


def test_concurrent_logins_each_get_their_own_connections(slapd, relay, certs, tmp_path):
    """Logins at once take connections of their own; at most pool_size of each kind stay
    open afterwards, and the next round reuses them."""
    b = pooled_broker(tmp_path, relay, certs, "pool_size = 2")
    b.start()
    try:
        def round_of(n):
            statuses = []
            threads = [threading.Thread(target=lambda u=("alice", "bob")[i % 2]: statuses.append(
                login(b, u, u + "-pw").status)) for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            return statuses
        assert round_of(8) == [200] * 8
        time.sleep(0.5)
        assert open_to(relay.port) <= 4, "pool_size = 2 per kind: at most 4 stay open"
        accepted = relay.accepted
        for user in ("alice", "bob", "alice"):
            assert login(b, user, user + "-pw").status == 200
        assert relay.accepted == accepted, "sequential logins reuse what the pool kept"
    finally:
        assert b.stop() == 0, b.log()
