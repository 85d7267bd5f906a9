"""Monitoring: GET /metrics (Prometheus text format 0.0.4, parsed strictly here), /healthz
and /readyz on vdi-broker and vdi-hostd, who may read them, and counters that move with
what users do: logins right and wrong, a connect, a display connection through the
gateway to a manual desktop (a small VNC server in this file), a VMM that fails on hostd.
No VM runs: hostd's vdi-hv is a script that fails at once."""
import http.client
import math
import os
import re
import socket
import sqlite3
import ssl
import stat
import struct
import subprocess
import threading
import time
from types import SimpleNamespace

import pytest

from broker_fixture import BROKER, Broker, free_port
from conftest import MKCERTS
from gw_client import Tunnel
import hostd_fixture
from hostd_fixture import HOSTD, Hostd
from rfb_client import Rfb

pytestmark = pytest.mark.skipif(not os.path.exists(BROKER) or not os.path.exists(HOSTD),
                                reason="needs vdi-broker and vdi-hostd")

METRIC = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
SAMPLE = re.compile(r"^(%s)(\{%s(?:,%s)*\})? (\S+)$" % (METRIC, LABEL, LABEL))
VALUE = re.compile(r"^(?:[+-]?Inf|NaN|[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)$")


def parse(text):
    """Parses exposition text strictly: every line a HELP, a TYPE or a sample
    `name{labels} value`, every family with HELP and TYPE before its samples, counters
    ending in _total, histograms with cumulative buckets ending at +Inf whose count is
    _count. Returns {(name, frozenset(labels.items())): value} and {family: type}."""
    assert text.endswith("\n"), "the text must end with a newline"
    types, helps, samples = {}, {}, {}
    for line in text.splitlines():
        assert line, "empty line"
        if line.startswith("# HELP "):
            name, _, doc = line[7:].partition(" ")
            assert re.fullmatch(METRIC, name) and doc, line
            assert name not in helps, "HELP twice: " + line
            helps[name] = doc
            continue
        if line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert kind in ("counter", "gauge", "histogram"), line
            assert name in helps and name not in types, "TYPE without HELP or twice: " + line
            types[name] = kind
            if kind == "counter":
                assert name.endswith("_total"), "counter not ending in _total: " + name
            continue
        assert not line.startswith("#"), "unknown comment: " + line
        m = SAMPLE.match(line)
        assert m, "not `name{labels} value`: %r" % line
        name, labels, value = m.groups()
        assert VALUE.match(value), line
        lab = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels or ""))
        family = name
        if name not in types:
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix) and types.get(name[:-len(suffix)]) == "histogram":
                    family = name[:-len(suffix)]
        assert family in types, "sample before its HELP and TYPE: " + line
        if types[family] == "histogram":
            assert name != family, "a histogram sample without suffix: " + line
            assert (name.endswith("_bucket")) == ("le" in lab), line
        key = (name, frozenset(lab.items()))
        assert key not in samples, "sample twice: " + line
        samples[key] = float(value)
    for family, kind in types.items():
        if kind != "histogram":
            continue
        groups = {}
        for (name, lab), v in samples.items():
            if name == family + "_bucket":
                d = dict(lab)
                le = d.pop("le")
                groups.setdefault(frozenset(d.items()), []).append((float(le), v))
        assert groups, "histogram without buckets: " + family
        for rest, buckets in groups.items():
            buckets.sort()
            assert math.isinf(buckets[-1][0]), family + ": no +Inf bucket"
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), family + ": buckets not cumulative"
            assert samples[(family + "_count", rest)] == counts[-1], family
            assert (family + "_sum", rest) in samples, family
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def https_get(port, path, ctx, headers=None):
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=ctx)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    finally:
        conn.close()


# ---- a manual desktop: just enough of a VNC server ----

class FakeVnc:
    """RFB 3.8 without authentication (the broker's gateway logs in with the desktop's
    password, offered none), answering ClientInit with a 64x48 ServerInit, then reading
    until the client goes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(c,), daemon=True).start()

    @staticmethod
    def session(c):
        try:
            c.sendall(b"RFB 003.008\n")
            c.recv(12)
            c.sendall(b"\x01\x01")  # one security type: None
            c.recv(1)
            c.sendall(b"\0\0\0\0")
            c.recv(1)  # ClientInit
            c.sendall(struct.pack(">HH16sI", 64, 48, bytes(16), 4) + b"fake")
            while c.recv(65536):
                pass
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    work = str(tmp_path_factory.mktemp("metrics-broker"))
    vnc = FakeVnc()
    mport = free_port()
    b = Broker(work, f"""
[broker]
admin_users = admin
[auth]
max_user_failures = 100
max_address_failures = 10000
[metrics]
listen = 127.0.0.1:{mport}
""")
    try:
        b.add_user("admin", "admin-pw")
        b.add_user("alice", "alice-pw")
        b.start()
        admin = b.client()
        admin.login("admin", "admin-pw", bearer=True)
        admin.ok("POST", "/api/v1/admin/pools", {
            "id": "m", "kind": "floating", "source": "manual",
            "desktops": [{"id": "m-1", "address": "127.0.0.1:%d" % vnc.port,
                          "password": "unused"}],
            "entitlements": [{"kind": "user", "name": "alice"}]}, expect=(201,))
        b.metrics_port = mport
        b.admin = admin
        yield b
    finally:
        status = b.stop()
        vnc.close()
    assert status == 0, "vdi-broker did not exit cleanly:\n" + b.log()


def scrape(b):
    status, ctype, text = https_get(b.metrics_port, "/metrics", b.ssl_context())
    assert status == 200, text
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    return parse(text)[0]


def test_broker_metrics_parse_and_name_every_family(broker):
    samples, types = parse(https_get(broker.metrics_port, "/metrics", broker.ssl_context())[2])
    for family, kind in {
            "vdi_broker_logins_total": "counter", "vdi_broker_connects_total": "counter",
            "vdi_broker_connect_seconds": "histogram", "vdi_broker_sessions": "gauge",
            "vdi_broker_desktops": "gauge", "vdi_broker_desktop_failures_total": "counter",
            "vdi_broker_desktop_restarts_total": "counter",
            "vdi_broker_pool_spare_desktops": "gauge", "vdi_broker_pool_spare_target": "gauge",
            "vdi_broker_pool_desktops": "gauge", "vdi_broker_host_up": "gauge",
            "vdi_broker_host_vcpus_free": "gauge",
            "vdi_broker_host_memory_available_bytes": "gauge",
            "vdi_broker_gateway_connections_total": "counter",
            "vdi_broker_gateway_connections_open": "gauge",
            "vdi_broker_gateway_bytes_total": "counter",
            "vdi_broker_store_transaction_seconds": "histogram",
            "vdi_broker_store_up": "gauge"}.items():
        assert types.get(family) == kind, (family, types.get(family))
    assert value(samples, "vdi_broker_store_up") == 1
    assert value(samples, "vdi_broker_pool_desktops", pool="m") == 1
    assert value(samples, "vdi_broker_pool_spare_desktops", pool="m") == 1
    assert value(samples, "vdi_broker_pool_spare_target", pool="m") == 0
    assert value(samples, "vdi_broker_desktops", state="ready", engine="manual") == 1
    # the admin's bearer login and the pool's creation went through the store
    assert value(samples, "vdi_broker_store_transaction_seconds_count") >= 1
    # a host registered, never heard from: down, its figures unknown
    broker.admin.ok("POST", "/api/v1/admin/hosts",
                    {"id": "h-9", "url": "https://127.0.0.1:%d" % free_port()}, expect=(201,))
    samples, _ = parse(https_get(broker.metrics_port, "/metrics", broker.ssl_context())[2])
    assert value(samples, "vdi_broker_host_up", host="h-9") == 0
    assert value(samples, "vdi_broker_host_cpus", host="h-9") == -1
    assert value(samples, "vdi_broker_host_memory_available_bytes", host="h-9") == -1
    broker.admin.ok("DELETE", "/api/v1/admin/hosts/h-9", expect=(204,))


def test_logins_connect_and_gateway_move_the_counters(broker):
    before = scrape(broker)
    alice = broker.client()
    alice.login("alice", "wrong", expect=401)
    alice.login("alice", "wrong-again", expect=401)
    alice.login("alice", "alice-pw")
    r = alice.connect("m")
    assert r.status == 200, (r, broker.log()[-2000:])
    mid = scrape(broker)
    for result, moved in (("ok", 1), ("bad_credentials", 2), ("throttled", 0)):
        assert value(mid, "vdi_broker_logins_total", result=result) - \
            value(before, "vdi_broker_logins_total", result=result) == moved, result
    assert value(mid, "vdi_broker_connects_total", result="ok") - \
        value(before, "vdi_broker_connects_total", result="ok") == 1
    assert value(mid, "vdi_broker_connect_seconds_count") - \
        value(before, "vdi_broker_connect_seconds_count") == 1
    assert value(mid, "vdi_broker_connect_seconds_bucket", le="+Inf") == \
        value(mid, "vdi_broker_connect_seconds_count")
    assert value(mid, "vdi_broker_sessions", state="connected") + \
        value(mid, "vdi_broker_sessions", state="disconnected") == 1
    assert value(mid, "vdi_broker_store_transaction_seconds_count") > \
        value(before, "vdi_broker_store_transaction_seconds_count")

    t = Tunnel(broker.port, broker.ssl_context(), r.json["ticket"])
    rfb = Rfb(t, r.json["ticket"])
    assert (rfb.width, rfb.height) == (64, 48)
    during = scrape(broker)
    assert value(during, "vdi_broker_gateway_connections_open") == 1
    assert value(during, "vdi_broker_gateway_connections_total", protocol="tunnel") - \
        value(before, "vdi_broker_gateway_connections_total", protocol="tunnel") == 1
    t.close()
    deadline = time.monotonic() + 10
    while True:
        after = scrape(broker)
        if value(after, "vdi_broker_gateway_connections_open") == 0:
            break
        assert time.monotonic() < deadline, broker.log()[-2000:]
        time.sleep(0.1)
    # ServerInit (28 bytes) and the VNC handshake went to the client; ClientInit,
    # SetPixelFormat (20) and SetEncodings (8) came from it
    to_client = value(after, "vdi_broker_gateway_bytes_total", direction="to_client") - \
        value(before, "vdi_broker_gateway_bytes_total", direction="to_client")
    from_client = value(after, "vdi_broker_gateway_bytes_total", direction="from_client") - \
        value(before, "vdi_broker_gateway_bytes_total", direction="from_client")
    assert to_client >= 28 and from_client >= 29, (to_client, from_client)


def test_broker_metrics_on_the_api_port_are_for_admins(broker):
    ctx = broker.ssl_context()
    status, _, _ = https_get(broker.port, "/metrics", ctx)
    assert status == 401
    alice = broker.client()
    alice.login("alice", "alice-pw", bearer=True)
    status, _, _ = https_get(broker.port, "/metrics", ctx,
                             {"Authorization": "Bearer " + alice.token})
    assert status == 403
    status, ctype, text = https_get(broker.port, "/metrics", ctx,
                                    {"Authorization": "Bearer " + broker.admin.token})
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    parse(text)


def test_broker_health_and_readiness(broker):
    for port in (broker.port, broker.metrics_port):
        assert https_get(port, "/healthz", broker.ssl_context())[::2] == (200, "ok\n")
        assert https_get(port, "/readyz", broker.ssl_context())[::2] == (200, "ready\n")
    # the scrape listener serves nothing else
    assert https_get(broker.metrics_port, "/api/v1/session", broker.ssl_context())[0] == 404


def test_broker_with_an_unusable_store_is_not_ready(tmp_path):
    port = free_port()
    b = Broker(str(tmp_path), "[metrics]\nlisten = 127.0.0.1:%d\n" % port)
    try:
        b.start()
        assert https_get(b.port, "/readyz", b.ssl_context())[::2] == (200, "ready\n")
        # another process breaks the database under the broker
        db = sqlite3.connect(os.path.join(b.state, "broker.db"))
        db.execute("DROP TABLE schema_version")
        db.commit()
        db.close()
        status, _, text = https_get(b.port, "/readyz", b.ssl_context())
        assert (status, text) == (503, "not ready: the store does not answer\n")
        assert https_get(b.port, "/healthz", b.ssl_context())[::2] == (200, "ok\n")
        samples, _ = parse(https_get(port, "/metrics", b.ssl_context())[2])
        assert value(samples, "vdi_broker_store_up") == 0
        assert value(samples, "vdi_broker_logins_total", result="ok") == 0
    finally:
        status = b.stop()
    assert status == 0, b.log()


def test_broker_metrics_listen_checked_and_documented(tmp_path):
    b = Broker(str(tmp_path), "[metrics]\nlisten = 127.0.0.1:%d\n" % free_port())
    p = subprocess.run([BROKER, "-n", "-v", "-c", b.conf], capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert b"[metrics]" in p.stdout


# ---- vdi-hostd ----

FAKE_VDIHV = """#!/bin/sh
# answers the --help probe like vdi-hv, fails at once otherwise
case "$1" in --help) echo "usage: vdi-hv --kernel FILE --vnc unix:PATH"; exit 0;; esac
exit 3
"""


@pytest.fixture(scope="module")
def hostcerts(tmp_path_factory):
    d = tmp_path_factory.mktemp("metrics-certs")
    subprocess.run([MKCERTS, str(d), "test-host", "vdi-metrics"], check=True,
                   capture_output=True)
    return d


def hostd_with(tmp_path, hostcerts, monkeypatch, extra):
    certs = SimpleNamespace(dir=hostcerts, ca=hostcerts / "ca.crt",
                            broker_crt=hostcerts / "broker.crt",
                            broker_key=hostcerts / "broker.key")
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "base.img").write_bytes(bytes(1 << 20))
    (templates / "kernel").write_bytes(b"not a kernel")
    fake = tmp_path / "fake-vdi-hv"
    fake.write_text(FAKE_VDIHV)
    fake.chmod(stat.S_IRWXU)
    # not the session's launcher (no KVM host in a box for a script): env runs it here
    monkeypatch.setattr(hostd_fixture, "hostd_launcher", lambda: "/usr/bin/env")
    h = Hostd(tmp_path, certs, str(templates), vdihv=str(fake))
    h.conf.write_text(h.conf.read_text() + extra)
    return h


def hostd_get(h, path, cert="broker", port=None):
    ctx = ssl.create_default_context(cafile=str(h.certs.ca))
    if cert == "broker":
        ctx.load_cert_chain(str(h.certs.broker_crt), str(h.certs.broker_key))
    elif cert:
        ctx.load_cert_chain(str(h.certs.dir / "hosts" / (cert + ".crt")),
                            str(h.certs.dir / "hosts" / (cert + ".key")))
    return https_get(port or h.api_port, path, ctx)


def test_hostd_metrics_vmm_failure_and_scraper_certificate(tmp_path, hostcerts, monkeypatch):
    mport = free_port()
    h = hostd_with(tmp_path, hostcerts, monkeypatch, f"[desktops]\ndefault_engine = vdi-hv\n"
                   f"[metrics]\nlisten = 127.0.0.1:{mport}\n")
    try:
        h.start()
        status, ctype, text = hostd_get(h, "/metrics")
        assert status == 200 and ctype.startswith("text/plain; version=0.0.4"), text
        samples, types = parse(text)
        for family in ("vdi_hostd_desktops", "vdi_hostd_vmm_starts_total",
                       "vdi_hostd_vmm_failures_total", "vdi_hostd_relay_sessions_total",
                       "vdi_hostd_relay_bytes_total", "vdi_hostd_cpus",
                       "vdi_hostd_memory_total_bytes", "vdi_hostd_memory_available_bytes",
                       "vdi_hostd_vcpus_committed", "vdi_hostd_engine_available"):
            assert family in types, family
        assert value(samples, "vdi_hostd_engine_available", engine="vdi-hv") == 1
        assert value(samples, "vdi_hostd_cpus") == os.cpu_count()
        assert value(samples, "vdi_hostd_memory_total_bytes") > 0

        h.ok("POST", "/api/v1/desktops", {"id": "d1", "disk": "base.img", "kernel": "kernel"})
        h.ok("POST", "/api/v1/desktops/d1/start")
        h.wait_state("d1", "failed", timeout=30)
        samples, _ = parse(hostd_get(h, "/metrics")[2])
        assert value(samples, "vdi_hostd_vmm_starts_total", engine="vdi-hv") == 1
        assert value(samples, "vdi_hostd_vmm_failures_total", engine="vdi-hv") == 1
        assert value(samples, "vdi_hostd_desktops", state="failed", engine="vdi-hv") == 1
        assert value(samples, "vdi_hostd_desktops", state="running", engine="vdi-hv") == 0

        # the scraper's own certificate on [metrics] listen, and nothing else there
        status, _, text = hostd_get(h, "/metrics", cert="vdi-metrics", port=mport)
        assert status == 200
        assert value(parse(text)[0], "vdi_hostd_vmm_starts_total", engine="vdi-hv") == 1
        assert hostd_get(h, "/readyz", cert="vdi-metrics", port=mport)[::2] == \
            (200, "ready\n")
        assert hostd_get(h, "/api/v1/capacity", cert="vdi-metrics", port=mport)[0] == 404
        # the broker's or a host's certificate is not the scraper's, nor is none
        for cert in ("broker", "test-host", None):
            with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
                hostd_get(h, "/metrics", cert=cert, port=mport)
        # and the scraper's certificate does not open the API
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
            hostd_get(h, "/metrics", cert="vdi-metrics")
    finally:
        h.stop()
        h.kill_vms()


FAKE_VMM = """#!/usr/bin/env python3
# vdi-hv's outside, no VM: --help, a control socket answering ok (quit ends it) and a
# VNC socket with RFB 3.8 without authentication, a 64x48 ServerInit, then silence
import json, os, socket, struct, sys, threading
if sys.argv[1:] == ["--help"]:
    print("usage: vdi-hv --kernel FILE --vnc unix:PATH")
    sys.exit(0)
arg = dict(zip(sys.argv[1::2], sys.argv[2::2]))
def listen(path):
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(8)
    return s
def control(c):
    for line in c.makefile():
        c.sendall(b'{"ok": true}\\n')
        if json.loads(line).get("cmd") == "quit":
            os._exit(0)
def vnc(c):
    c.sendall(b"RFB 003.008\\n"); c.recv(12)
    c.sendall(b"\\x01\\x01"); c.recv(1); c.sendall(bytes(4)); c.recv(1)
    c.sendall(struct.pack(">HH16sI", 64, 48, bytes(16), 4) + b"fake")
    while c.recv(65536):
        pass
def serve(s, fn):
    while True:
        threading.Thread(target=fn, args=(s.accept()[0],), daemon=True).start()
ctl, v = listen(arg["--control"][5:]), listen(arg["--vnc"][5:])
threading.Thread(target=serve, args=(v, vnc), daemon=True).start()
serve(ctl, control)
"""


def test_hostd_relay_sessions_and_bytes(tmp_path, hostcerts, monkeypatch):
    h = hostd_with(tmp_path, hostcerts, monkeypatch, "[desktops]\ndefault_engine = vdi-hv\n")
    (tmp_path / "fake-vdi-hv").write_text(FAKE_VMM)
    try:
        h.start()
        h.ok("POST", "/api/v1/desktops", {"id": "d2", "disk": "base.img", "kernel": "kernel",
                                          "vcpus": 2})
        h.ok("POST", "/api/v1/desktops/d2/start")
        h.wait_state("d2", "running", timeout=30)
        samples, _ = parse(hostd_get(h, "/metrics")[2])
        assert value(samples, "vdi_hostd_desktops", state="running", engine="vdi-hv") == 1
        assert value(samples, "vdi_hostd_vcpus_committed") == 2
        assert value(samples, "vdi_hostd_memory_committed_bytes") == 512 << 20
        ticket = "t" * 32
        assert h.ticket("d2", ticket)[0] == 200
        s = h.relay(("VDI-TICKET %s\n" % ticket).encode())
        got = b""
        while len(got) < 12:
            got += s.recv(12 - len(got))
        s.sendall(b"RFB 003.008\n")
        s.recv(2)
        s.sendall(b"\x01")
        s.recv(4)
        s.sendall(b"\x01")  # ClientInit
        got = b""
        while len(got) < 28:
            got += s.recv(28 - len(got))
        assert struct.unpack(">HH", got[:4]) == (64, 48)
        during, _ = parse(hostd_get(h, "/metrics")[2])
        assert value(during, "vdi_hostd_relay_sessions_total") == 1
        assert value(during, "vdi_hostd_relay_sessions_open") == 1
        s.close()
        deadline = time.monotonic() + 10
        while True:
            after, _ = parse(hostd_get(h, "/metrics")[2])
            if value(after, "vdi_hostd_relay_sessions_open") == 0:
                break
            assert time.monotonic() < deadline, h.log()
            time.sleep(0.1)
        assert value(after, "vdi_hostd_relay_bytes_total", direction="from_client") >= 14
        assert value(after, "vdi_hostd_relay_bytes_total", direction="to_client") >= 12 + 2 + 4 + 28
        h.ok("POST", "/api/v1/desktops/d2/stop", {"force": True})
        h.wait_state("d2", "stopped", timeout=30)
        samples, _ = parse(hostd_get(h, "/metrics")[2])
        assert value(samples, "vdi_hostd_vmm_starts_total", engine="vdi-hv") == 1
        assert value(samples, "vdi_hostd_vmm_failures_total", engine="vdi-hv") == 0
    finally:
        h.stop()
        h.kill_vms()


def test_hostd_health_and_readiness(tmp_path, hostcerts, monkeypatch):
    h = hostd_with(tmp_path, hostcerts, monkeypatch, "")
    try:
        h.start()
        assert hostd_get(h, "/healthz")[::2] == (200, "ok\n")
        assert hostd_get(h, "/readyz")[::2] == (200, "ready\n")
    finally:
        h.stop()


def test_hostd_without_an_engine_is_not_ready(tmp_path, hostcerts, monkeypatch):
    h = hostd_with(tmp_path, hostcerts, monkeypatch, "")
    h.conf.write_text(re.sub(r"binary = .*", "binary = /nonexistent/vdi-hv",
                             h.conf.read_text())
                      + "[qemu]\nbinary = /nonexistent/qemu\n")
    try:
        h.start()
        assert hostd_get(h, "/healthz")[::2] == (200, "ok\n")
        status, _, text = hostd_get(h, "/readyz")
        assert status == 503, text
        assert text.startswith("not ready: no engine can run desktops") and \
            text.count("\n") == 1 and "/nonexistent/qemu" in text, text
        samples, _ = parse(hostd_get(h, "/metrics")[2])
        assert value(samples, "vdi_hostd_engine_available", engine="qemu") == 0
        assert value(samples, "vdi_hostd_engine_available", engine="vdi-hv") == 0
    finally:
        h.stop()
