"""Which certificate speaks for whom. Every host's certificate comes from the one CA that
also signs the broker's, so a verified chain proves little; the name (CN) does: hostd
lets in the broker's name only ([api] broker_name) on its API and display relay, the
broker takes a host's heartbeats only for the host id its certificate names, and calls a
host's API only when the certificate there names that host. Two hosts (host-a, host-b,
each with its own certificate from hostd/mkcerts.sh) and a broker; no desktop VM runs."""
import http.client
import json
import os
import re
import ssl
import time

import pytest

from broker_fixture import BROKER, Broker, free_port, hosts_section, wait
from hostd_fixture import HOSTD, Hostd, closed_without_data, heartbeat_section

pytestmark = [
    pytest.mark.skipif(not os.path.exists(BROKER), reason="vdi-broker not built"),
    pytest.mark.skipif(not os.path.exists(HOSTD), reason="vdi-hostd not built"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, certs):
    work = tmp_path_factory.mktemp("host-identity")
    tpl = work / "tpl"
    tpl.mkdir()
    hb_port = free_port()
    (work / "broker").mkdir()
    broker = Broker(str(work / "broker"), f"""
[broker]
admin_users = admin
maintenance_interval = 1s
""" + hosts_section(certs, hb_port, host_timeout="3s"))
    broker.add_user("admin", "admin-pw")
    beat = heartbeat_section(hb_port)
    hostds = {}
    for hid in ("host-a", "host-b"):
        (work / hid).mkdir()
        hostds[hid] = Hostd(work / hid, certs, str(tpl), beat, host_id=hid)
    try:
        broker.start()
        for h in hostds.values():
            h.start()
        admin = broker.client()
        admin.login("admin", "admin-pw", bearer=True)
        for hid, h in hostds.items():
            admin.ok("POST", "/api/v1/admin/hosts",
                     {"id": hid, "url": "https://127.0.0.1:%d" % h.api_port,
                      "relay": "127.0.0.1:%d" % h.relay_port}, expect=(201,))
        yield type("Stack", (), dict(broker=broker, a=hostds["host-a"], b=hostds["host-b"],
                                     admin=admin, hb_port=hb_port, certs=certs, work=work,
                                     beat=beat, tpl=tpl))
    finally:
        statuses = [h.stop() for h in hostds.values()]
        status = broker.stop()
    assert status == 0, "vdi-broker did not exit cleanly:\n" + broker.log()
    assert all(s in (0, None) for s in statuses)


def hosts(env):
    return {h["id"]: h for h in env.admin.ok("GET", "/api/v1/admin/hosts")["hosts"]}


def heartbeat(env, cert_of, body):
    """POSTs body as a heartbeat with cert_of's host certificate; (status, decoded)."""
    ctx = ssl.create_default_context(cafile=str(env.certs.ca))
    ctx.load_cert_chain(*(str(p) for p in env.certs.host(cert_of)))
    conn = http.client.HTTPSConnection("127.0.0.1", env.hb_port, timeout=10, context=ctx)
    try:
        conn.request("POST", "/api/v1/hosts/heartbeat", body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        text = r.read()
        return r.status, json.loads(text) if text else None
    finally:
        conn.close()


def test_a_hosts_certificate_cannot_use_another_hosts_api(stack):
    """host-a's certificate, signed by the right CA, is not the broker's: host-b's API
    refuses it whatever it asks (reading, creating a desktop, registering a ticket)."""
    who = ("host", "host-a")
    for method, path, body in (("GET", "/api/v1/capacity", None),
                               ("POST", "/api/v1/desktops",
                                {"id": "stolen", "engine": "qemu", "disk": "base.img"}),
                               ("POST", "/api/v1/desktops/stolen/ticket",
                                {"ticket": "t" * 32, "expires": int(time.time()) + 60})):
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
            stack.b.request(method, path, body, cert=who)
    wait("host-b's log line", lambda: "api: connection from 127.0.0.1 refused: its certificate "
         "names 'host-a', not 'vdi-broker'" in stack.b.log())
    # the broker's certificate still gets in, and nothing was created
    status, listed = stack.b.request("GET", "/api/v1/desktops")
    assert status == 200 and listed == {"desktops": []}, listed
    status, cap = stack.b.request("GET", "/api/v1/capacity")
    assert status == 200 and cap["host_id"] == "host-b"
    assert stack.b.proc.poll() is None


def test_a_hosts_certificate_cannot_present_a_ticket_at_another_hosts_relay(stack):
    """The relay refuses host-a's certificate before it reads the ticket line: nothing is
    redeemed. The broker's certificate gets as far as the ticket (unknown here)."""
    line = b"VDI-TICKET " + b"u" * 32 + b"\n"
    unknown = lambda: stack.b.log().count("unknown or used ticket from")
    before = unknown()
    assert closed_without_data(stack.b.relay(line, cert=("host", "host-a")))
    wait("host-b's relay log line", lambda: re.search(
        r"relay: connection from 127\.0\.0\.1:\d+ refused: its certificate names 'host-a', "
        r"not 'vdi-broker'", stack.b.log()))
    assert unknown() == before, stack.b.log()
    assert closed_without_data(stack.b.relay(line))
    wait("the broker's ticket to be looked up", lambda: unknown() == before + 1)


def test_a_host_cannot_send_heartbeats_for_another_host(stack):
    wait("both hosts up", lambda: all(h["state"] == "up" for h in hosts(stack).values()))
    # host-b goes quiet so that its record stays as it is; host-a's heartbeats go on
    stack.b.stop()
    try:
        record = lambda: {k: hosts(stack)["host-b"][k] for k in (
            "last_heartbeat", "mem_free_mib", "vcpus_free", "max_desktops", "capacity",
            "desktop_ids")}
        before = record()
        forged = {"host_id": "host-b", "time": int(time.time()),
                  "capacity": {"host_id": "host-b", "cpus": 999,
                               "memory_available_mib": 12345, "desktops_defined": 0,
                               "max_desktops": 777},
                  "desktops": [{"id": "ghost", "state": "running"}]}
        status, reply = heartbeat(stack, "host-a", forged)
        assert status == 403, reply
        assert reply == {"code": "wrong_host",
                         "error": "the host certificate names 'host-a', not host 'host-b'"}
        assert "host=host-b: heartbeat refused: the host certificate presented names " \
               "'host-a'" in stack.broker.log()
        assert record() == before
        alert = hosts(stack)["host-b"]["identity_error"]
        assert alert["message"].startswith("heartbeat refused: the host certificate "
                                           "presented names 'host-a'"), alert
        assert abs(alert["time"] - time.time()) < 30
        # host-a's certificate speaks for host-a
        status, reply = heartbeat(stack, "host-a", dict(forged, host_id="host-a"))
        assert status == 204, reply
        # host-b's own certificate speaks for host-b
        status, reply = heartbeat(stack, "host-b", forged)
        assert status == 204, reply
        assert hosts(stack)["host-b"]["mem_free_mib"] == 12345
    finally:
        stack.b.start()


def test_a_hostd_with_another_hosts_certificate_is_refused_by_the_broker(stack):
    """A vdi-hostd registered as host-c but holding host-a's certificate: its heartbeats
    are refused (it says why in its log) and host-c stays down."""
    stack.admin.ok("POST", "/api/v1/admin/hosts",
                   {"id": "host-c", "url": "https://127.0.0.1:1", "relay": "127.0.0.1:1"},
                   expect=(201,))
    (stack.work / "host-c").mkdir()
    c = Hostd(stack.work / "host-c", stack.certs, str(stack.tpl), stack.beat,
              host_id="host-c", cert_of="host-a")
    c.start()
    try:
        wait("host-c's refusal", lambda: "the broker answered HTTP 403: the host certificate "
             "names 'host-a', not host 'host-c'" in c.log())
        h = hosts(stack)["host-c"]
        assert h["state"] == "down" and h["last_heartbeat"] == 0, h
        assert "names 'host-a'" in h["identity_error"]["message"], h
    finally:
        assert c.stop() == 0, c.log()


def test_the_broker_calls_a_host_only_if_its_certificate_names_it(stack):
    """host-b's registered address leads to host-a (misrouted, or an impostor there):
    the certificate is valid for the address and from the CA, but names host-a. The
    broker does not send host-b's desktop there, and says why."""
    stack.admin.ok("DELETE", "/api/v1/admin/hosts/host-b", expect=(204,))
    stack.admin.ok("POST", "/api/v1/admin/hosts",
                   {"id": "host-b", "url": "https://127.0.0.1:%d" % stack.a.api_port,
                    "relay": "127.0.0.1:%d" % stack.a.relay_port}, expect=(201,))
    wait("host-b up (its own heartbeats)", lambda: hosts(stack)["host-b"]["state"] == "up")
    stack.admin.ok("POST", "/api/v1/admin/pools", {
        "id": "onb", "kind": "floating", "source": "automated", "min": 1, "max": 1,
        "spare": 1, "memory_mib": 64, "disconnect_timeout": 60, "hosts": "host-b",
        "template": {"engine": "qemu", "kernel": "none.elf", "disk": "none.img"}},
        expect=(201,))
    wait("the broker's refusal", lambda: re.search(
        r"host=host-b: desktop=\S+: https://127\.0\.0\.1:%d: refused: the certificate there "
        r"names 'host-a', not host 'host-b'" % stack.a.api_port, stack.broker.log()))
    assert "the certificate there names 'host-a'" in \
        hosts(stack)["host-b"]["identity_error"]["message"]
    status, listed = stack.a.request("GET", "/api/v1/desktops")
    assert status == 200 and listed == {"desktops": []}, listed
    stack.admin.ok("DELETE", "/api/v1/admin/pools/onb", expect=(204,))
