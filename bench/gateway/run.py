#!/usr/bin/python3
"""Gateway cost: full-screen framebuffer updates per second and the round trip of a
small request (FramebufferUpdateRequest of one pixel row -> its update) directly from
vdi-hv's VNC server and through vdi-broker's gateway (wss:// and vdi-tunnel/1), in one
run on loopback. Usage: bench/gateway/run.py [-n UPDATES] [--rounds N] [--out FILE]"""
import argparse
import faulthandler
import datetime
import os
import socket
import statistics
import sys
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

from broker_fixture import Broker, free_port  # noqa: E402
from conftest import BIN, GUESTS, HvProcess  # noqa: E402
from gw_client import Tunnel, WebSocket  # noqa: E402
from test_hostd import Rfb  # noqa: E402

PASSWORD = "bench-desktop-pw"


def measure(rfb, n, rounds):
    rfb.update()
    t0 = time.perf_counter()
    nbytes = sum(rfb.update() for _ in range(n))
    dt = time.perf_counter() - t0
    rtts = []
    for _ in range(rounds):
        t = time.perf_counter()
        rfb.sock.sendall(bytes([3, 0, 0, 0, 0, 0, 4, 0, 0, 1]))
        kind = rfb.read(1)[0]
        assert kind == 0
        rfb.read(1)
        for _ in range(int.from_bytes(rfb.read(2), "big")):
            hdr = rfb.read(12)
            w, h = int.from_bytes(hdr[4:6], "big"), int.from_bytes(hdr[6:8], "big")
            rfb.read(w * h * 4)
        rtts.append((time.perf_counter() - t) * 1e6)
    return n / dt, nbytes / dt / 1e6, statistics.median(rtts), sorted(rtts)[int(len(rtts) * .95)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100, help="full-screen updates per path")
    ap.add_argument("--rounds", type=int, default=300, help="round trips per path")
    ap.add_argument("--out", help="markdown file to write")
    a = ap.parse_args()
    faulthandler.dump_traceback_later(float(os.environ.get("BENCH_TIMEOUT", "600")), exit=True)
    work = tempfile.mkdtemp(prefix="bench-gw-")
    port = free_port()
    vm = HvProcess([os.path.join(BIN, "vdi-hv"), "--kernel", os.path.join(GUESTS, "serial.elf"),
                    "--serial", "stdio", "--control", "unix:%s/hv.sock" % work,
                    "--vnc", "127.0.0.1:%d" % port], "%s/hv.sock" % work, work)
    os.mkdir(work + "/broker")
    broker = Broker(work + "/broker", "[broker]\nadmin_users = admin\nmax_sessions_per_user = 0\n")
    rows = []
    try:
        vm.connect()
        vm.control({"cmd": "set-ticket", "password": PASSWORD, "expires": int(time.time()) + 3600})
        broker.add_user("admin", "admin-pw")
        broker.start()
        admin = broker.client()
        admin.login("admin", "admin-pw", bearer=True)
        admin.ok("POST", "/api/v1/admin/pools", {
            "id": "b", "kind": "floating", "source": "manual",
            "desktops": [{"address": "127.0.0.1:%d" % port, "password": PASSWORD}],
            "entitlements": [{"kind": "user", "name": "admin"}]}, expect=(201,))
        ctx = broker.ssl_context()

        def ticket():
            for s in admin.ok("GET", "/api/v1/admin/sessions")["sessions"]:
                if s["state"] != "logged_off":
                    admin.request("POST", "/api/v1/admin/sessions/%s/logoff" % s["id"])
            return admin.connect("b").json["ticket"]

        direct = socket.create_connection(("127.0.0.1", port))
        direct.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rows.append(("direct (TCP to vdi-hv)",) + measure(Rfb(direct, PASSWORD), a.n, a.rounds))
        direct.close()
        t = ticket()
        ws = WebSocket(broker.port, ctx, t)
        rows.append(("gateway wss://",) + measure(Rfb(ws, t), a.n, a.rounds))
        ws.close()
        t = ticket()
        tun = Tunnel(broker.port, ctx, t)
        rows.append(("gateway vdi-tunnel/1",) + measure(Rfb(tun, t), a.n, a.rounds))
        tun.close()
    finally:
        broker.stop()
        vm.stop()
    out = ["# Gateway benchmark %s" % datetime.date.today().isoformat(), "",
           "Command: `%s`" % " ".join(["bench/gateway/run.py"] + sys.argv[1:]), "",
           "Host: %s, %d CPUs. 1024x768x32 raw full-screen updates (3 MiB each); round trip "
           "= one-row FramebufferUpdateRequest to its update. Python client, loopback." % (
               os.uname().nodename, os.cpu_count()), "",
           "| path | updates/s | MB/s | RTT median (us) | RTT p95 (us) |",
           "|---|---|---|---|---|"]
    for name, ups, mbs, med, p95 in rows:
        out.append("| %s | %.1f | %.0f | %.0f | %.0f |" % (name, ups, mbs, med, p95))
    text = "\n".join(out) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
