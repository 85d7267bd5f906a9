#!/usr/bin/env python3
"""Login throughput and latency of one vdi-broker: POST /api/v1/login at 1, 10 and 100
concurrent clients (Python threads, http.client, one keep-alive TLS connection per
client), against LDAP (a real slapd with conf/test-ldap/directory.ldif), against Active
Directory (a Samba AD DC over ldaps:// with tls_name, tests/integration/samba_fixture.py;
needs root) and against local users in the broker's store (scrypt at the default cost
ln=15, and at ln=10 to show the rest of the path). Prints a Markdown table; --out writes
it with the command and machine. --before BINARY runs every row a second time, right
after this build's, with another vdi-broker (an older commit's build), for before/after
ratios from the same run.

usage: bench/broker/run.py [--seconds S] [--levels 1,10,100] [--backends ldap,ad,local]
                           [--before BINARY] [--out FILE]"""
import argparse
import http.client
import json
import os
import platform
import sys
import tempfile
import threading
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
os.environ.setdefault("VDI_TOP", TOP)

from broker_fixture import BROKER, Broker  # noqa: E402
from ldap_fixture import BASE, Slapd  # noqa: E402
from samba_fixture import ADMIN_PW, SambaDC  # noqa: E402
from samba_fixture import BASE as AD_BASE  # noqa: E402
from samba_fixture import why_not as samba_why_not  # noqa: E402

LDAP_USERS = [("alice", "alice-pw"), ("bob", "bob-pw"), ("carol", "carol-pw"),
              ("erin", "erin-pw"), ("frank", "frank-pw")]


def run_level(broker, users, clients, seconds):
    """Each client logs in again and again for `seconds`; returns (count, latencies)."""
    lat, errors = [], []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(i):
        conn = http.client.HTTPSConnection("127.0.0.1", broker.port, timeout=60,
                                           context=broker.ssl_context())
        name, pw = users[i % len(users)]
        body = json.dumps({"username": name, "password": pw}).encode()
        mine = []
        start.wait()
        while time.monotonic() < stop_at[0]:
            t0 = time.monotonic()
            try:
                conn.request("POST", "/api/v1/login", body=body,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
            except (OSError, http.client.HTTPException) as e:
                ok = False
                conn.close()
                conn = http.client.HTTPSConnection("127.0.0.1", broker.port, timeout=60,
                                                   context=broker.ssl_context())
                r = e
            if ok:
                mine.append(time.monotonic() - t0)
            else:
                with lock:
                    errors.append(getattr(r, "status", repr(r)))
        conn.close()
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.monotonic() + seconds
    t0 = time.monotonic()
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    return len(lat) / elapsed, lat, errors


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--levels", default="1,10,100")
    ap.add_argument("--backends", default="ldap,ad,local")
    ap.add_argument("--before", help="another vdi-broker binary to run the same rows with")
    ap.add_argument("--out")
    args = ap.parse_args()
    builds = [("this build", BROKER)] + ([("before", args.before)] if args.before else [])
    levels = [int(x) for x in args.levels.split(",")]
    backends = args.backends.split(",")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-broker-") as tmp:
        slapd = Slapd(os.path.join(tmp, "slapd"))
        dc = None
        setups = []
        if "ldap" in backends:
            setups.append(("LDAP (slapd, loopback)",
                           f"[auth]\nbackend = ldap\n[ldap]\nuri = {slapd.uri}\n"
                           f"base_dn = {BASE}\n", LDAP_USERS, None))
        if "ad" in backends and samba_why_not() is None:
            ad_users = [("user%d" % i, "Ad-pw-%d" % i) for i in range(5)]
            dc = SambaDC(os.path.join(tmp, "samba"), ad_users,
                         [("staff", [u for u, _ in ad_users])])
            setups.append(("Active Directory (Samba, ldaps://, tls_name)",
                           f"[auth]\nbackend = ldap\n[ldap]\nuri = ldaps://127.0.0.1/\n"
                           f"server_type = ad\nbase_dn = {AD_BASE}\n"
                           f"bind_dn = CN=Administrator,CN=Users,{AD_BASE}\n"
                           f"bind_password = {ADMIN_PW}\nca_file = {dc.ca}\n"
                           f"tls_name = dc1.vdi.test\n", ad_users, None))
        elif "ad" in backends:
            print("bench/broker: no Active Directory rows: %s" % samba_why_not(), flush=True)
        if "local" in backends:
            setups += [("local, scrypt ln=15 (default)", "[broker]\npassword_cost = 15\n", None, 15),
                       ("local, scrypt ln=10", "[broker]\npassword_cost = 10\n", None, 10)]
        try:
            for (name, conf, users, cost), (build, binary) in (
                    (setup, build) for setup in setups for build in builds):
                work = os.path.join(tmp, "b%d" % len(rows))
                os.makedirs(work)
                # all clients come from 127.0.0.1: lift the per-address cap (64) that
                # would otherwise refuse clients past the 64th
                conf += "[http]\nmax_connections = 1024\nmax_connections_per_address = 1024\n"
                b = Broker(work, conf, binary=binary)
                if users is None:
                    users = [("u%d" % i, "pw-u%d" % i) for i in range(10)]
                    for u, pw in users:
                        b.add_user(u, pw)
                b.start()
                try:
                    for clients in levels:
                        rate, lat, errors = run_level(b, users, clients, args.seconds)
                        busy = sum(1 for e in errors if e == 503)
                        rows.append((name, build, clients, rate, pct(lat, 50), pct(lat, 99),
                                     len(lat), busy, len(errors) - busy))
                        print("%-32s %-10s %4d clients: %7.1f logins/s  p50 %7.1f ms  p99 %7.1f"
                              " ms  (%d logins, %d busy, %d errors)" % rows[-1], flush=True)
                finally:
                    b.stop()
        finally:
            slapd.stop()
            if dc:
                dc.stop()
    # busy: 503 with Retry-After, more password checks waiting than [auth]
    # password_check_queue allows (the client would retry); errors: anything else
    table = ["| users from | build | clients | logins/s | p50 ms | p99 ms | logins | busy (503) "
             "| errors |", "|---|---|---|---|---|---|---|---|---|"]
    table += ["| %s | %s | %d | %.1f | %.1f | %.1f | %d | %d | %d |" % r for r in rows]
    text = "\n".join(table) + "\n"
    if args.before:  # this build against the other, row by row
        text += ("\n| users from | clients | logins/s ratio (this / before) | p50 ratio | "
                 "p99 ratio |\n|---|---|---|---|---|\n")
        before = {(r[0], r[2]): r for r in rows if r[1] == "before"}
        for r in rows:
            o = before.get((r[0], r[2]))
            if r[1] == "this build" and o and o[3] and o[4] and o[5]:
                text += "| %s | %d | %.2f | %.2f | %.2f |\n" % (
                    r[0], r[2], r[3] / o[3], r[4] / o[4], r[5] / o[5])
    print(text)
    if args.out:
        cpus = os.cpu_count()
        with open(args.out, "w") as f:
            f.write("# bench/broker, %s\n\n" % time.strftime("%Y-%m-%d"))
            f.write("Command: `bench/broker/run.py %s`\n\n" % " ".join(sys.argv[1:]))
            f.write("Machine: %s, %d CPUs, kernel %s. Client and broker share the machine "
                    "(Python threads, one keep-alive TLS connection per client).\n\n"
                    % (platform.machine(), cpus, platform.release()))
            f.write(text)


if __name__ == "__main__":
    main()
