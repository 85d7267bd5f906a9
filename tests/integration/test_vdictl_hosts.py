"""vdictl hosts drain / resume / stop-desktops against a real vdi-broker. The host is a
stand-in for vdi-hostd that speaks its API and heartbeats over mutual TLS with the
test-host certificate (creates, starts, stops and deletes desktops in a table, no VM),
so what is checked is the broker: a draining host gets no new desktop while its own keep
running, a resumed one gets them again, and stop-desktops has the broker ask the host to
stop each desktop it runs, all audited."""
import http.server
import json
import os
import re
import ssl
import threading
import time
import urllib.request

import pytest

from broker_fixture import BROKER, Broker, VDICTL, free_port, hosts_section, wait

pytestmark = pytest.mark.skipif(not (os.path.exists(BROKER) and os.path.exists(VDICTL)),
                                reason="vdi-broker and vdictl not built")


class FakeHost:
    """vdi-hostd's API as the broker uses it, and its heartbeat, for host test-host."""

    def __init__(self, certs, hb_port, host_id="test-host"):
        self.host_id = host_id
        self.desktops = {}  # id -> state
        self.calls = []  # (method, path)
        self.lock = threading.Lock()
        crt, key = (str(p) for p in certs.host(host_id))
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs.ca))
        server_ctx.load_cert_chain(crt, key)
        server_ctx.verify_mode = ssl.CERT_REQUIRED
        self.client_ctx = ssl.create_default_context()
        self.client_ctx.check_hostname = False
        self.client_ctx.verify_mode = ssl.CERT_NONE
        self.client_ctx.load_cert_chain(crt, key)
        self.hb_url = "https://127.0.0.1:%d/api/v1/hosts/heartbeat" % hb_port
        host = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}") if n else {}
                parts = self.path.split("/")[4:]  # after /api/v1/desktops
                with host.lock:
                    host.calls.append((self.command, self.path))
                    if self.command == "POST" and not parts:
                        host.desktops[body["id"]] = "stopped"
                        return self.answer(201, {"id": body["id"], "state": "stopped"})
                    did = parts[0] if parts else ""
                    if did not in host.desktops:
                        return self.answer(404, {"error": "no such desktop"})
                    if self.command == "DELETE":
                        del host.desktops[did]
                        return self.answer(200, {"id": did})
                    if parts[1:] == ["start"]:
                        host.desktops[did] = "running"
                    elif parts[1:] == ["stop"]:
                        host.desktops[did] = "stopped"
                    return self.answer(202, {"id": did, "state": host.desktops[did]})

            do_GET = do_POST = do_DELETE = handle_any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = server_ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = "https://127.0.0.1:%d" % self.server.server_address[1]
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self.server.serve_forever, daemon=True),
                        threading.Thread(target=self.beat, daemon=True)]
        for t in self.threads:
            t.start()

    def beat(self):
        while not self.stop_event.wait(0.5):
            with self.lock:
                listed = [{"id": d, "state": s} for d, s in self.desktops.items()]
            running = sum(1 for d in listed if d["state"] == "running")
            body = {"host_id": self.host_id, "time": int(time.time()),
                    "capacity": {"host_id": self.host_id, "cpus": 4,
                                 "memory_available_mib": 8000, "max_desktops": 10,
                                 "desktops_defined": len(listed),
                                 "desktops_running": running},
                    "desktops": listed}
            req = urllib.request.Request(self.hb_url, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            try:
                urllib.request.urlopen(req, context=self.client_ctx, timeout=5).read()
            except OSError:
                pass

    def stops(self):
        with self.lock:
            return [p.split("/")[4] for m, p in self.calls if m == "POST" and p.endswith("/stop")]

    def creates(self):
        with self.lock:
            return [p for m, p in self.calls if m == "POST" and p == "/api/v1/desktops"]

    def close(self):
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stack(tmp_path, certs):
    hb_port = free_port()
    broker = Broker(str(tmp_path), f"""
[broker]
admin_users = admin
maintenance_interval = 1s
""" + hosts_section(certs, hb_port, host_timeout="5s"))
    broker.add_user("admin", "admin-pw")
    host = FakeHost(certs, hb_port)
    try:
        broker.start()
        broker.vdictl("login", "admin", stdin="admin-pw\n")
        broker.vdictl("hosts", "add", "test-host", host.url, "127.0.0.1:1")
        yield broker, host
    finally:
        host.close()
        status = broker.stop()
    assert status == 0, "vdi-broker did not exit cleanly:\n" + broker.log()


def hosts(b):
    return {h["id"]: h for h in json.loads(b.vdictl("--json", "hosts", "list").stdout)["hosts"]}


def pool(b, pid):
    return json.loads(b.vdictl("--json", "pools", "show", pid).stdout)


def test_drain_resume_and_stop_desktops(stack):
    b, host = stack
    wait("host up", lambda: hosts(b)["test-host"]["state"] == "up")
    assert hosts(b)["test-host"]["draining"] is False

    # draining: placement skips the host, and the hosts list says so
    assert b.vdictl("hosts", "drain", "test-host").returncode == 0
    assert hosts(b)["test-host"]["draining"] is True
    table = b.vdictl("hosts", "list").stdout.decode()
    assert re.search(r"(?m)^test-host\s+up, draining\s", table), table
    b.vdictl("pools", "create", "ap", "--kind", "floating", "--source", "automated",
             "--min", "1", "--max", "2", "--spare", "1", "--memory", "64", "--engine",
             "vdi-hv", "--kernel", "serial.elf", "--disk", "base.img")
    time.sleep(3)  # three maintenance passes
    assert pool(b, "ap")["desktops"] == [] and host.creates() == []
    assert pool(b, "ap")["health"]["state"] == "unavailable"

    # resumed: the pool's desktop is created there and becomes ready
    assert b.vdictl("hosts", "resume", "test-host").returncode == 0
    assert hosts(b)["test-host"]["draining"] is False
    ready = wait("a ready desktop", lambda: [d for d in pool(b, "ap")["desktops"]
                                             if d["state"] == "ready"])
    did = ready[0]["id"]
    assert host.desktops[did] == "running"
    rows = {line.split()[0]: line for line in
            b.vdictl("pools", "list").stdout.decode().splitlines()[1:]}
    assert re.match(r"ap\s+ok\s+floating\s+automated\s+1\s+0\s+0\s", rows["ap"]), rows

    # draining again: the running desktop stays
    b.vdictl("hosts", "drain", "test-host")
    time.sleep(2.5)
    assert [d["state"] for d in pool(b, "ap")["desktops"]] == ["ready"]
    assert host.stops() == [] and host.desktops[did] == "running"

    # stop-desktops: the broker asks the host to stop it (and, unowned, deletes it);
    # nothing new is placed on the draining host
    out = json.loads(b.vdictl("--json", "hosts", "stop-desktops", "test-host").stdout)
    assert out == {"host": "test-host", "desktops": [did]}
    wait("the host asked to stop it", lambda: did in host.stops())
    wait("the desktop gone", lambda: pool(b, "ap")["desktops"] == [])
    time.sleep(2)
    assert len(host.creates()) == 1 and host.desktops == {}

    # unknown hosts; the audit
    p = b.vdictl("hosts", "drain", "nosuch", check=False)
    assert p.returncode == 1 and b"no such host" in p.stderr
    entries = json.loads(b.vdictl("--json", "audit", "--limit", "100").stdout)["entries"]
    done = [(e["action"], e["target"], e["result"]) for e in entries if e["actor"] == "admin"]
    for action in ("host_drain", "host_resume", "host_stop_desktops"):
        assert (action, "test-host", "success") in done, done
    assert ("host_drain", "nosuch", "failure") in done
    b.vdictl("pools", "delete", "ap")
