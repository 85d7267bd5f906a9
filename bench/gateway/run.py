#!/usr/bin/python3
"""Gateway cost: full-screen framebuffer updates per second and the round trip of a small
request (a one-row FramebufferUpdateRequest -> its update), directly from vdi-hv's VNC
server, through vdi-broker's gateway (wss:// and vdi-tunnel/1), through the gateway and a
vdi-hostd display relay (an automated pool: the production path), and through websockify
(noVNC's WebSocket-to-TCP proxy, the peer: TLS WebSocket in front of the same VNC port),
in one run on loopback. Each path is measured --runs times, interleaved; medians reported.
Usage: bench/gateway/run.py [-n UPDATES] [--rounds N] [--runs N] [--out FILE]"""
import argparse
import datetime
import faulthandler
import os
import pathlib
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

from broker_fixture import Broker, free_port  # noqa: E402
from conftest import BIN, GUESTS, MKCERTS, HvProcess  # noqa: E402
from gw_client import Tunnel, WebSocket  # noqa: E402
from hostd_fixture import Hostd  # noqa: E402
from rfb_client import Rfb  # noqa: E402

PASSWORD = "bench-desktop-pw"


def cpu_seconds(pid, children=False):
    """User + system CPU time so far of a process, and of its live descendants with
    children (websockify forks one per connection; vdi-hostd's children are the VMs,
    not relay work)."""
    total = 0.0
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in os.listdir("/proc/%d/task" % pid) if children else []:
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                total += sum(cpu_seconds(int(c), True) for c in f.read().split())
    except FileNotFoundError:
        pass
    return total


def measure(rfb, n, rounds, proxy_cpu):
    """(updates/s, MB/s, round-trip median us, p95 us, proxy CPU ms per 100 MB) on an
    authenticated client; proxy_cpu() gives the proxies' CPU seconds so far."""
    rfb.update()
    t0, c0 = time.perf_counter(), proxy_cpu()
    nbytes = sum(rfb.update() for _ in range(n))
    dt = time.perf_counter() - t0
    cpu_per_100mb = (proxy_cpu() - c0) * 1e3 / (nbytes / 1e8)
    rtts = []
    for _ in range(rounds):
        t = time.perf_counter()
        rfb.sock.sendall(bytes([3, 0, 0, 0, 0, 0, 4, 0, 0, 1]))
        assert rfb.read(1)[0] == 0
        rfb.read(1)
        for _ in range(int.from_bytes(rfb.read(2), "big")):
            hdr = rfb.read(12)
            w, h = int.from_bytes(hdr[4:6], "big"), int.from_bytes(hdr[6:8], "big")
            rfb.read(w * h * 4)
        rtts.append((time.perf_counter() - t) * 1e6)
    rtts.sort()
    return (n / dt, nbytes / dt / 1e6, statistics.median(rtts), rtts[int(len(rtts) * .95)],
            cpu_per_100mb)


def websockify(work, vnc_port):
    """websockify with TLS only on a free port in front of vdi-hv's VNC port."""
    cert, key = os.path.join(work, "ws.crt"), os.path.join(work, "ws.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key,
                    "-out", cert], check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen(["websockify", "--ssl-only", "--cert", cert, "--key", key,
                             "127.0.0.1:%d" % port, "127.0.0.1:%d" % vnc_port],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "websockify did not start"
            time.sleep(0.1)
    ctx = ssl.create_default_context(cafile=cert)
    return proc, port, ctx


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=50, help="full-screen updates per measurement")
    ap.add_argument("--rounds", type=int, default=200, help="round trips per measurement")
    ap.add_argument("--runs", type=int, default=5, help="measurements per path")
    ap.add_argument("--out", help="markdown file to write")
    a = ap.parse_args()
    faulthandler.dump_traceback_later(float(os.environ.get("BENCH_TIMEOUT", "900")), exit=True)
    work = tempfile.mkdtemp(prefix="bench-gw-")
    port = free_port()
    vm = HvProcess([os.path.join(BIN, "vdi-hv"), "--kernel",
                    os.path.join(GUESTS, "framebuffer.elf"), "--serial", "stdio", "--control",
                    "unix:%s/hv.sock" % work, "--vnc", "127.0.0.1:%d" % port],
                   "%s/hv.sock" % work, work)
    os.mkdir(work + "/broker")
    certs = pathlib.Path(work) / "certs"
    certs.mkdir()
    subprocess.run([MKCERTS, str(certs), "test-host"], check=True, capture_output=True)
    hb_port = free_port()
    broker = Broker(work + "/broker", f"""
[broker]
admin_users = admin
max_sessions_per_user = 0
[hosts]
cert = {certs}/broker.crt
key = {certs}/broker.key
ca = {certs}/ca.crt
heartbeat_listen = 127.0.0.1:{hb_port}
""")
    tpl = pathlib.Path(work) / "tpl"
    tpl.mkdir()
    shutil.copyfile(os.path.join(GUESTS, "framebuffer.elf"), tpl / "framebuffer.elf")
    (tpl / "base.img").write_bytes(bytes(1 << 20))
    (pathlib.Path(work) / "hostd").mkdir()
    hostd = Hostd(pathlib.Path(work) / "hostd",
                  SimpleNamespace(dir=certs, ca=certs / "ca.crt"), str(tpl),
                  f"[broker]\nheartbeat_url = https://127.0.0.1:{hb_port}/api/v1/hosts/heartbeat\n")
    proxy = None
    results = {}
    try:
        vm.connect()
        vm.expect("framebuffer: drawn")
        vm.control({"cmd": "set-ticket", "password": PASSWORD, "expires": int(time.time()) + 3600})
        broker.add_user("admin", "admin-pw")
        broker.start()
        hostd.start()
        admin = broker.client()
        admin.login("admin", "admin-pw", bearer=True)
        admin.ok("POST", "/api/v1/admin/hosts",
                 {"id": "test-host", "url": "https://127.0.0.1:%d" % hostd.api_port,
                  "relay": "127.0.0.1:%d" % hostd.relay_port}, expect=(201,))
        admin.ok("POST", "/api/v1/admin/pools", {
            "id": "r", "kind": "floating", "source": "automated", "min": 1, "max": 1,
            "memory_mib": 64,
            "template": {"engine": "vdi-hv", "kernel": "framebuffer.elf", "disk": "base.img"},
            "entitlements": [{"kind": "user", "name": "admin"}]}, expect=(201,))
        admin.ok("POST", "/api/v1/admin/pools", {
            "id": "b", "kind": "floating", "source": "manual",
            "desktops": [{"address": "127.0.0.1:%d" % port, "password": PASSWORD}],
            "entitlements": [{"kind": "user", "name": "admin"}]}, expect=(201,))
        deadline = time.monotonic() + 120
        while not any(d["state"] == "ready" for d in
                      admin.ok("GET", "/api/v1/admin/pools/r")["desktops"]):
            assert time.monotonic() < deadline, "the relay pool's desktop never got ready"
            time.sleep(0.5)
        ctx = broker.ssl_context()
        proxy, ws_port, ws_ctx = websockify(work, port)

        def ticket(pool="b"):
            """A ticket to the user's session in pool (reconnected after the first)."""
            r = admin.connect(pool, timeout=120)
            assert r.status == 200, (r, broker.log()[-3000:], hostd.log()[-3000:])
            return r.json["ticket"]

        def direct():
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s, PASSWORD

        def gateway_wss():
            t = ticket()
            return WebSocket(broker.port, ctx, t), t

        def gateway_tunnel():
            t = ticket()
            return Tunnel(broker.port, ctx, t), t

        def gateway_relay():
            t = ticket("r")
            return WebSocket(broker.port, ctx, t), t

        def peer_websockify():
            return WebSocket(ws_port, ws_ctx, None, path="/"), PASSWORD

        def broker_cpu():
            return cpu_seconds(broker.proc.pid)

        paths = [("direct TCP to vdi-hv", direct, lambda: 0.0),
                 ("vdi-broker gateway, wss://", gateway_wss, broker_cpu),
                 ("vdi-broker gateway, vdi-tunnel/1", gateway_tunnel, broker_cpu),
                 ("vdi-broker gateway + vdi-hostd relay, wss://", gateway_relay,
                  lambda: broker_cpu() + cpu_seconds(hostd.proc.pid)),
                 ("websockify (peer), wss://", peer_websockify,
                  lambda: cpu_seconds(proxy.pid, children=True))]
        for _ in range(a.runs):
            for name, open_path, proxy_cpu in paths:
                conn, password = open_path()
                results.setdefault(name, []).append(
                    measure(Rfb(conn, password), a.n, a.rounds, proxy_cpu))
                conn.close()
    finally:
        if proxy:
            proxy.terminate()
            proxy.wait(10)
        hostd.stop()
        hostd.kill_vms()
        broker.stop()
        vm.stop()
    med = {name: [statistics.median(r[i] for r in runs) for i in range(5)]
           for name, runs in results.items()}
    base, peer = med["direct TCP to vdi-hv"], med["websockify (peer), wss://"]
    out = ["# Gateway benchmark %s" % datetime.date.today().isoformat(), "",
           "Command: `%s`" % " ".join(["bench/gateway/run.py"] + sys.argv[1:]), "",
           "Host: %s, %d CPUs. The framebuffer test guest on vdi-hv, 1024x768x32 raw "
           "full-screen updates (3 MiB each), %d per measurement; round trip = one-row "
           "FramebufferUpdateRequest to its update, %d per measurement; %d measurements "
           "per path, interleaved, medians. One Python client for every path, on loopback: "
           "it is part of every number. Proxy CPU = the proxy processes' user + system time "
           "while they carried the updates, per 100 MB (broker and hostd for the relay "
           "path)." % (
               os.uname().nodename, os.cpu_count(), a.n, a.rounds, a.runs), "",
           "| path | updates/s | MB/s | RTT median (us) | RTT p95 (us) | "
           "throughput vs direct | added RTT vs direct (us) | proxy CPU (ms / 100 MB) |",
           "|---|---|---|---|---|---|---|---|"]
    for name, (ups, mbs, rtt, p95, cpu) in med.items():
        out.append("| %s | %.1f | %.0f | %.0f | %.0f | %.2f | %+.0f | %s |" % (
            name, ups, mbs, rtt, p95, ups / base[0], rtt - base[2],
            "%.0f" % cpu if name != "direct TCP to vdi-hv" else "-"))
    gw = med["vdi-broker gateway, wss://"]
    out += ["", "vdi-broker wss:// vs websockify: throughput %.2fx, round trip %.2fx, proxy "
            "CPU per byte %.2fx (lower is better for the last two)." % (
                gw[0] / peer[0], gw[2] / peer[2], gw[4] / peer[4])]
    text = "\n".join(out) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
