"""vdi-broker driving a real vdi-hostd (engine vdi-hv, the serial test guest): heartbeats
over mutual TLS (refused without a host certificate), an automated floating pool whose
spare desktop is created and started ahead of the first user, a connect whose ticket the
host's display relay accepts, a logoff that refreshes the desktop (stopped, deleted and
created anew on the host), and a host that goes silent: marked down, its desktops lost
and their sessions ended, then recovered when it comes back."""
import os
import shutil
import socket
import ssl
import time
from types import SimpleNamespace

import pytest

from broker_fixture import BROKER, Broker, free_port, hosts_section, wait
from conftest import GUESTS
from hostd_fixture import HOSTD, Hostd, heartbeat_section
from rfb_client import Rfb

pytestmark = [
    pytest.mark.skipif(not os.path.exists(BROKER), reason="vdi-broker not built"),
    pytest.mark.skipif(not os.path.exists(HOSTD), reason="vdi-hostd not built"),
    pytest.mark.skipif(not os.path.exists(os.path.join(GUESTS, "serial.elf")),
                       reason="test guest serial.elf not built"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, certs):
    work = tmp_path_factory.mktemp("broker-hosts")
    tpl = work / "tpl"
    tpl.mkdir()
    shutil.copyfile(os.path.join(GUESTS, "serial.elf"), tpl / "serial.elf")
    (tpl / "base.img").write_bytes(bytes(1 << 20))
    hb_port = free_port()
    (work / "broker").mkdir()
    (work / "hostd-work").mkdir()
    broker = Broker(str(work / "broker"), f"""
[broker]
admin_users = admin
maintenance_interval = 1s
""" + hosts_section(certs, hb_port, host_timeout="3s"))
    broker.add_user("admin", "admin-pw")
    broker.add_user("alice", "alice-pw", groups="staff")
    hostd = Hostd(work / "hostd-work", certs, str(tpl),
                  heartbeat_section(hb_port) +
                  "[desktops]\nstop_timeout = 2s\n")
    try:
        broker.start()
        hostd.start()
        admin = broker.client()
        admin.login("admin", "admin-pw", bearer=True)
        admin.ok("POST", "/api/v1/admin/hosts",
                 {"id": "test-host", "url": "https://127.0.0.1:%d" % hostd.api_port,
                  "relay": "127.0.0.1:%d" % hostd.relay_port}, expect=(201,))
        yield SimpleNamespace(broker=broker, hostd=hostd, admin=admin, hb_port=hb_port,
                              certs=certs)
    finally:
        hostd_status = hostd.stop()
        hostd.kill_vms()
        status = broker.stop()
    assert status == 0, "vdi-broker did not exit cleanly:\n" + broker.log()
    assert hostd_status in (0, None), hostd.log()


def host(env):
    return {h["id"]: h for h in env.admin.ok("GET", "/api/v1/admin/hosts")["hosts"]}["test-host"]


def pool_desktops(env, pid):
    return env.admin.ok("GET", "/api/v1/admin/pools/" + pid)["desktops"]


def ready_free(env, pid):
    return [d for d in pool_desktops(env, pid) if d["state"] == "ready" and not d["in_use"]]


def test_heartbeats_mark_the_host_up(stack):
    h = wait("host up", lambda: host(stack) if host(stack)["state"] == "up" else None)
    assert h["capacity"]["host_id"] == "test-host" and h["mem_free_mib"] > 0
    assert time.time() - h["last_heartbeat"] < 5


def test_heartbeats_need_a_host_certificate(stack):
    def post(ctx, host_id=b"test-host"):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", stack.hb_port), timeout=5),
                            server_hostname="127.0.0.1")
        body = b'{"host_id": "%s", "time": 1, "capacity": {}, "desktops": []}' % host_id
        s.sendall(b"POST /api/v1/hosts/heartbeat HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  b"application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        data = s.recv(4096)
        s.close()
        return data

    bare = ssl.create_default_context(cafile=str(stack.certs.ca))
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        if not post(bare):
            raise ConnectionError("closed without an answer")
    other = ssl.create_default_context(cafile=str(stack.certs.ca))
    other.load_cert_chain(str(stack.certs.other / "broker.crt"),
                          str(stack.certs.other / "broker.key"))
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        if not post(other):
            raise ConnectionError("closed without an answer")
    good = ssl.create_default_context(cafile=str(stack.certs.ca))
    good.load_cert_chain(str(stack.certs.hostd_crt), str(stack.certs.hostd_key))
    assert post(good).startswith(b"HTTP/1.1 204")
    # another host's id: refused whether registered or not
    assert post(good, b"nohost").startswith(b"HTTP/1.1 403")
    # a host with a certificate of its own that is not registered
    unknown = ssl.create_default_context(cafile=str(stack.certs.ca))
    unknown.load_cert_chain(*(str(p) for p in stack.certs.host("host-a")))
    assert post(unknown, b"host-a").startswith(b"HTTP/1.1 404")
    # the user-facing port does not take heartbeats
    r = stack.broker.client().request("POST", "/api/v1/hosts/heartbeat", {"host_id": "test-host"})
    assert r.status == 404


def test_automated_pool_keeps_a_spare_ready_and_connects_without_waiting(stack):
    stack.admin.ok("POST", "/api/v1/admin/pools", {
        "id": "auto", "kind": "floating", "source": "automated", "min": 1, "max": 3, "spare": 1,
        "memory_mib": 64, "disconnect_timeout": 60,
        "template": {"engine": "vdi-hv", "kernel": "serial.elf", "disk": "base.img"},
        "entitlements": [{"kind": "group", "name": "staff"}]}, expect=(201,))
    spare = wait("a spare desktop ready", lambda: ready_free(stack, "auto"), timeout=60)[0]
    assert stack.hostd.desktop(spare["id"])["state"] == "running"
    alice = stack.broker.client()
    alice.login("alice", "alice-pw")
    t0 = time.monotonic()
    r = alice.request("POST", "/api/v1/desktops/auto/connect")
    assert r.status == 200, (r, stack.broker.log())
    assert time.monotonic() - t0 < 2  # the spare was ready: no boot to wait for
    assert r.json["desktop"] == spare["id"]
    # the host's display relay takes the ticket the broker registered
    ticket = r.json["ticket"]
    rfb = Rfb(stack.hostd.relay(("VDI-TICKET %s\n" % ticket).encode()), ticket)
    assert (rfb.width, rfb.height) == (1024, 768)
    rfb.sock.close()
    # maintenance puts another spare in place
    wait("a new spare", lambda: [d for d in ready_free(stack, "auto") if d["id"] != spare["id"]],
         timeout=60)
    stack.session = r.json["session"]
    stack.desktop = spare["id"]
    stack.alice = alice


def test_logoff_refreshes_the_floating_desktop(stack):
    alice = stack.alice
    alice.ok("POST", "/api/v1/sessions/%s/logoff" % stack.session, expect=(204,))
    wait("the desktop refreshed", lambda: "desktop=%s destroyed" % stack.desktop in
         stack.hostd.log(), timeout=30)

    def again():
        d = [x for x in pool_desktops(stack, "auto") if x["id"] == stack.desktop]
        return d and d[0]["state"] == "ready"

    wait("the refreshed desktop ready", again, timeout=60)
    assert stack.hostd.desktop(stack.desktop)["state"] == "running"


def test_a_silent_host_is_down_and_its_desktops_lost(stack):
    alice = stack.alice
    r = alice.connect("auto")
    assert r.status == 200, r
    session = r.json["session"]
    assert stack.hostd.stop() == 0  # VMMs keep running; heartbeats stop
    t0 = time.monotonic()
    wait("host down", lambda: host(stack)["state"] == "down", timeout=15)
    assert time.monotonic() - t0 > 2
    sessions = {s["id"]: s for s in stack.admin.ok("GET", "/api/v1/admin/sessions?all")["sessions"]}
    assert sessions[session]["state"] == "logged_off"
    assert {d["state"] for d in pool_desktops(stack, "auto")} == {"lost"}
    entries = stack.admin.ok("GET", "/api/v1/admin/audit?limit=50")["entries"]
    assert any(e["action"] == "host_down" for e in entries)
    assert any(e["action"] == "session_lost" and e["target"] == session for e in entries)
    # back: lost desktops are replaced, the pool is whole again
    stack.hostd.start()
    wait("host up", lambda: host(stack)["state"] == "up", timeout=15)
    wait("a ready desktop", lambda: ready_free(stack, "auto"), timeout=60)
    assert alice.connect("auto").status == 200


def test_deleting_the_pool_removes_its_desktops_from_the_host(stack):
    for s in stack.admin.ok("GET", "/api/v1/admin/sessions")["sessions"]:
        stack.admin.ok("POST", "/api/v1/admin/sessions/%s/logoff" % s["id"], expect=(204,))
    stack.admin.ok("DELETE", "/api/v1/admin/pools/auto", expect=(204,))
    wait("the host empty", lambda: not stack.hostd.ok("GET", "/api/v1/desktops")["desktops"],
         timeout=60)
    assert stack.admin.request("GET", "/api/v1/admin/pools/auto").status == 404
    # the pool itself is gone once its desktops are: its id can be used again
    again = {"id": "auto", "kind": "floating", "source": "automated",
             "template": {"engine": "vdi-hv", "kernel": "serial.elf", "disk": "base.img"}}
    wait("the pool removed", lambda: stack.admin.request("POST", "/api/v1/admin/pools",
                                                         again).status == 201, timeout=10)
    stack.admin.ok("DELETE", "/api/v1/admin/pools/auto", expect=(204,))
