"""Several directory servers (uri = "ldaps://dc1 ldaps://dc2"), one or more of them hung:
they accept TCP and never answer, so a TLS handshake would wait forever. Each server
gets its own deadlines; one that answers decides (a wrong password is a wrong password,
whatever failed before it); a failed one is asked last for a while and named in the
log; a broker with logins in flight stops at once. authcheck runs one login per process;
the broker keeps what it learnt between logins."""
import threading
import time

import pytest

from broker_fixture import Broker
from ldap_fixture import BASE
from test_auth_ldap import SilentServer, authcheck, certs, ok, refused, slapd, write_conf  # noqa: F401

TIMEOUTS = {"timeout": "1s", "network_timeout": "1s"}


@pytest.fixture
def hung():
    """Two servers that accept and never answer."""
    servers = [SilentServer(), SilentServer()]
    yield servers
    for s in servers:
        s.stop()


def uris(*parts):
    return " ".join(parts)


def hung_uri(server):
    return "ldaps://127.0.0.1:%d/" % server.port


def test_a_hung_server_first_then_a_healthy_one(slapd, tmp_path, certs, hung):
    """The hung server costs its own deadline once, then the healthy one answers: the
    login works, and a wrong password there is a wrong password (EACCES, counted by
    the broker's throttle), not 'directory unavailable'."""
    conf = write_conf(tmp_path, uris(hung_uri(hung[0]), slapd.ldaps_uri), ca_file=certs["ca"],
                      **TIMEOUTS)
    t0 = time.monotonic()
    assert ok(conf, "alice", "alice-pw")["username"] == "alice"
    assert time.monotonic() - t0 < 8
    reply = refused(conf, "alice", "wrong-pw", "EACCES")
    assert "user bind refused" in reply["message"], reply
    assert hung[0].accepted == 2


def test_a_healthy_server_first_never_touches_the_hung_one(slapd, tmp_path, certs, hung):
    conf = write_conf(tmp_path, uris(slapd.ldaps_uri, hung_uri(hung[0])), ca_file=certs["ca"],
                      **TIMEOUTS)
    ok(conf, "alice", "alice-pw")
    refused(conf, "alice", "wrong-pw", "EACCES")
    assert hung[0].accepted == 0


def test_every_server_hung_ends_in_bounded_time(tmp_path, certs, hung):
    """Two hung servers: each its own deadline (before, the second handshake spun
    forever), then ETIMEDOUT naming the last server and saying the others failed too."""
    conf = write_conf(tmp_path, uris(hung_uri(hung[0]), hung_uri(hung[1])),
                      ca_file=certs["ca"], **TIMEOUTS)
    t0 = time.monotonic()
    reply = refused(conf, "alice", "alice-pw", "ETIMEDOUT")
    elapsed = time.monotonic() - t0
    assert elapsed < 15, elapsed
    assert hung[0].accepted == 1 and hung[1].accepted == 1
    assert hung_uri(hung[1]) in reply["message"], reply
    assert "every other directory server failed too" in reply["message"], reply


def broker_conf(uri_list, ca, timeout="1s"):
    return f"""
[broker]
maintenance_interval = 1s
admin_users = alice
[auth]
backend = ldap
[ldap]
uri = {uri_list}
base_dn = {BASE}
ca_file = {ca}
timeout = {timeout}
network_timeout = {timeout}
"""


def test_the_broker_remembers_a_failed_server_and_stops_at_once(slapd, tmp_path, certs, hung):
    """In the broker: the first login meets the hung server and logs it by name; the next
    logins skip it (its back-off), wrong passwords are 401 and counted; SIGTERM with a
    login in flight against an all-hung list stops the broker within 2 s."""
    (tmp_path / "b1").mkdir()
    (tmp_path / "b2").mkdir()
    broker = Broker(str(tmp_path / "b1"), broker_conf(uris(hung_uri(hung[0]), slapd.ldaps_uri),
                                                      certs["ca"]))
    broker.start()
    try:
        c = broker.client()
        assert c.request("POST", "/api/v1/login", {"username": "alice", "password": "alice-pw"}).status == 200
        assert hung[0].accepted == 1
        assert "ldap: directory server %s failed" % hung_uri(hung[0]) in broker.log()
        for _ in range(3):
            r = broker.client().request("POST", "/api/v1/login",
                                        {"username": "alice", "password": "wrong-pw"})
            assert r.status == 401, r
        assert hung[0].accepted == 1, "a server in back-off is asked last"
        # the administrator sees which server fails, why, and when it is asked again
        admin = broker.client()
        admin.login("alice", "alice-pw", bearer=True)
        d = admin.ok("GET", "/api/v1/admin/directory")
        assert d["backend"] == "ldap", d
        (bad, good) = d["servers"]
        assert (bad["uri"], bad["state"]) == (hung_uri(hung[0]), "failing"), d
        assert "in time" in bad["error"] and 0 <= bad["retry_in"] <= 300, d
        assert (good["uri"], good["state"]) == (slapd.ldaps_uri, "ok"), d
    finally:
        assert broker.stop() == 0, broker.log()

    broker = Broker(str(tmp_path / "b2"), broker_conf(uris(hung_uri(hung[0]), hung_uri(hung[1])),
                                                      certs["ca"], timeout="30s"))
    broker.start()
    statuses = []

    def login():  # answered (503) or cut off by the stop: either way it ends
        try:
            statuses.append(broker.client().request(
                "POST", "/api/v1/login", {"username": "alice", "password": "alice-pw"}).status)
        except OSError as e:
            statuses.append(type(e).__name__)
    threads = [threading.Thread(target=login) for _ in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while hung[0].accepted < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    t0 = time.monotonic()
    status = broker.stop()
    stopped = time.monotonic() - t0
    for t in threads:
        t.join(5)
    assert len(statuses) == 3 and 200 not in statuses, statuses
    assert status == 0, broker.log()
    assert stopped < 2, (stopped, broker.log()[-3000:])
