"""vdi-broker's API against a real slapd (conf/test-ldap/directory.ldif): configuration
checks, logins and the session cookie, CSRF, hostile input, static files and security
headers, entitlements (nested groups) with address and time-window rules, dedicated and
floating pools with reconnect, the disconnect timeout, the per-user session limit,
one-time tickets (replay, expiry, concurrent redemption), the admin role and vdictl, and
a manual pool whose desktop is a vdi-hv VNC endpoint. Pools here are manual (no hosts):
test_broker_hosts.py drives automated pools on a real vdi-hostd."""
import datetime
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
from types import SimpleNamespace

import pytest

from broker_fixture import BROKER, VDICTL, Broker, free_port
from conftest import GUESTS, TOP
from ldap_fixture import BASE, SLAPD, Slapd
from rfb_client import Rfb

pytestmark = pytest.mark.skipif(
    not os.path.exists(BROKER) or not os.path.exists(SLAPD) or not shutil.which("ldapmodify"),
    reason="needs vdi-broker, slapd and ldap-utils")

PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw", "dave": 'd)(*ve\\2a "pw"=+,#',
             "erin": "erin-pw", "frank": "frank-pw"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    slapd = Slapd(str(tmp_path_factory.mktemp("slapd")))
    work = str(tmp_path_factory.mktemp("broker"))
    static = os.path.join(work, "static")
    os.makedirs(static)
    with open(os.path.join(static, "index.html"), "w") as f:
        f.write("<!doctype html><title>vdi</title>portal\n")
    with open(os.path.join(static, "app.js"), "w") as f:
        f.write("console.log('vdi');\n")
    with open(os.path.join(static, ".secret"), "w") as f:
        f.write("hidden\n")
    os.symlink(os.path.join(work, "broker.conf"), os.path.join(static, "leak.txt"))
    broker = Broker(work, f"""
[broker]
admin_users = carol
max_sessions_per_user = 2
ticket_lifetime = 5s
[http]
static_dir = {static}
[auth]
backend = ldap
max_user_failures = 100
max_address_failures = 10000
[ldap]
uri = {slapd.uri}
base_dn = {BASE}
""")
    try:
        broker.start()
        admin = broker.client()
        admin.login("carol", "carol-pw", bearer=True)
        yield SimpleNamespace(slapd=slapd, broker=broker, admin=admin, pools=set())
    finally:
        status = broker.stop()
        slapd.stop()
    assert status == 0, "vdi-broker did not exit cleanly:\n" + broker.log()


def user(env, name, bearer=False):
    c = env.broker.client()
    c.login(name, PASSWORDS[name], bearer=bearer)
    return c


def manual_pool(env, pid, kind="floating", desktops=1, entitle=(), **extra):
    body = {"id": pid, "kind": kind, "source": "manual",
            "desktops": [{"address": "127.0.0.1:%d" % (5900 + i), "password": "pw%d" % i}
                         for i in range(desktops)],
            "entitlements": [{"kind": k, "name": n} for k, n in entitle]}
    body.update(extra)
    env.admin.ok("POST", "/api/v1/admin/pools", body, expect=(201,))
    env.pools.add(pid)


def logoff_all(env, name):
    for s in env.admin.ok("GET", "/api/v1/admin/sessions")["sessions"]:
        if s["username"] == name:
            env.admin.ok("POST", "/api/v1/admin/sessions/%s/logoff" % s["id"], expect=(204,))


def audit(env, limit=200):
    return env.admin.ok("GET", "/api/v1/admin/audit?limit=%d" % limit)["entries"]


# ---- configuration ----

def test_config_check(tmp_path):
    good = tmp_path / "good.conf"
    good.write_text("[broker]\nstate_dir = %s\n[http]\nlisten = 127.0.0.1:1\n" % tmp_path)
    assert subprocess.run([BROKER, "-n", "-c", str(good)]).returncode == 0
    for text, message in [
        ("[broker]\nstate_dir = /tmp\n[http]\nmax_body = 12\n", "bad.conf:4: "),
        ("[broker]\nstate_dir = /tmp\nbogus = 1\n", "bad.conf:3: "),
        ("[broker]\nstate_dir = /tmp\n[auth]\nbackend = ldap\n", "bad.conf: [ldap]"),
        ("[broker]\nstate_dir = /tmp\n[hosts]\nheartbeat_listen = 127.0.0.1:1\n",
         "heartbeat_listen needs cert, key and ca"),
    ]:
        bad = tmp_path / "bad.conf"
        bad.write_text(text)
        p = subprocess.run([BROKER, "-n", "-c", str(bad)], capture_output=True, text=True)
        assert p.returncode == 2 and p.stderr.startswith(str(bad)), p.stderr
        assert message in p.stderr, p.stderr


# ---- logins, cookies, CSRF ----

def test_login_sets_a_fresh_strict_cookie(env):
    c = env.broker.client()
    r = c.login("alice", "alice-pw")
    assert r.json["user"] == {"username": "alice", "display_name": "Alice Example",
                              "admin": False}
    cookie = r.header("Set-Cookie")[0]
    assert cookie.startswith("__Host-vdi_session="), cookie  # HTTPS, this host, Path=/
    assert "Domain=" not in cookie
    for attr in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert attr in cookie.split("; "), cookie
    first = c.cookie
    assert len(first) == 43 and c.csrf and c.csrf != first
    assert c.request("GET", "/api/v1/session").json["csrf_token"] == c.csrf
    again = c.login("ALICE", "alice-pw")  # a new id each login: no fixation
    assert c.cookie != first and again.json["user"]["username"] == "alice"
    # wrong password, unknown user: 401 with error and code, nothing more
    for name, pw in (("alice", "wrong"), ("mallory", "x"), ("ghost", "x")):
        r = env.broker.client().request("POST", "/api/v1/login", {"username": name, "password": pw})
        assert r.status == 401 and r.json == {"error": "invalid username or password",
                                              "code": "bad_credentials"}
    # logout needs the CSRF token; then the cookie is dead
    assert c.request("POST", "/api/v1/logout", csrf=False).status == 403
    r = c.request("POST", "/api/v1/logout")
    assert r.status == 204 and "Max-Age=0" in r.header("Set-Cookie")[0]
    assert c.request("GET", "/api/v1/session").status == 401
    entries = audit(env)
    fails = [e for e in entries if e["action"] == "login" and e["result"] == "failure"]
    assert any(e["actor"] == "alice" and "Invalid credentials" in (e["detail"] or "")
               for e in fails), fails
    assert not any("wrong" in str(e) for e in entries)
    assert "alice-pw" not in env.broker.log()


def test_csrf_missing_or_forged_is_refused(env):
    manual_pool(env, "csrf", entitle=[("user", "erin")])
    c = user(env, "erin")
    path = "/api/v1/desktops/csrf/connect"
    assert c.request("POST", path, csrf=False).json["code"] == "csrf"
    forged = c.csrf[:-1] + ("A" if c.csrf[-1] != "A" else "B")  # one character off
    r = c.request("POST", path, headers={"X-CSRF-Token": forged})
    assert (r.status, r.json["code"]) == (403, "csrf")
    r = c.request("POST", path, headers={"Origin": "https://evil.example"})
    assert (r.status, r.json["code"]) == (403, "csrf")
    r = c.request("POST", path, headers={"Origin": "https://127.0.0.1:%d" % env.broker.port})
    assert r.status == 200, r
    # a cross-origin login (login CSRF) is refused too
    r = env.broker.client().request("POST", "/api/v1/login",
                                    {"username": "erin", "password": "erin-pw"},
                                    headers={"Origin": "https://evil.example"})
    assert r.status == 403
    # bearer sessions (vdictl) carry no cookie and need no CSRF token, but a bearer
    # token is not accepted as a cookie
    b = user(env, "erin", bearer=True)
    b.csrf = None
    assert b.request("GET", "/api/v1/desktops").status == 200
    b.cookie, b.token = b.token, None
    assert b.request("GET", "/api/v1/desktops").status == 401
    logoff_all(env, "erin")


@pytest.mark.parametrize("name", ["*", "alice)(|(uid=*", "*)(uid=*))(|(uid=*", "\\2a",
                                  "alice)(objectClass=*"])
def test_ldap_injection_in_user_names(env, name):
    r = env.broker.client().request("POST", "/api/v1/login",
                                    {"username": name, "password": "alice-pw"})
    assert r.status == 401 and r.json["code"] == "bad_credentials", r


def test_bad_input_gets_4xx_never_a_crash(env):
    c = env.broker.client()
    cases = [
        ("POST", "/api/v1/login", b"{not json", "application/json", 400),
        ("POST", "/api/v1/login", b"[1, 2]", "application/json", 400),
        ("POST", "/api/v1/login", b'{"username": "alice", "password": "alice-pw", "x": 1}',
         "application/json", 400),
        ("POST", "/api/v1/login", b'{"username": "alice", "password": 5}', "application/json",
         400),
        ("POST", "/api/v1/login", b'{"username": "alice", "password": "alice-pw"}',
         "text/plain", 415),
        ("POST", "/api/v1/login", b'{"username": "alice", "password": "alice-pw"}', None, 415),
        ("POST", "/api/v1/login", b'{"username": "alice\\u0000", "password": "alice-pw"}',
         "application/json", 400),
        ("POST", "/api/v1/login", b'{"username": "%s", "password": "x"}' % (b"a" * 300),
         "application/json", 400),
        ("POST", "/api/v1/login", b'{"username": "' + b"a" * 70000 + b'"}', "application/json",
         413),
        ("POST", "/api/v1/login", b'{"username": "alice", "username": "bob", "password": "x"}',
         "application/json", 400),
        ("GET", "/api/v1/login", None, None, 405),
        ("GET", "/api/v1/nothing", None, None, 404),
        ("POST", "/api/v1/desktops/%00/connect", None, None, 400),
        ("GET", "/gateway", None, None, 400),
        ("GET", "/gateway?ticket=" + "z" * 40, None, None, 426),  # no upgrade
    ]
    for method, path, raw, ctype, status in cases:
        r = c.request(method, path, raw=raw, content_type=ctype)
        assert r.status == status, (method, path, raw[:60] if raw else None, r)
        assert set(r.json) == {"error", "code"}, r
    assert r.header("Content-Type") == ["application/json"]
    # admins get the same treatment
    a = env.admin
    for body in ({"id": "x", "kind": "floating", "source": "manual", "windows": "Funday 9-5"},
                 {"id": "x", "kind": "floating", "source": "manual", "networks": "10.1.2.3/8"},
                 {"id": "x", "kind": "sometimes", "source": "manual"},
                 {"id": "X/../y", "kind": "floating", "source": "manual"},
                 {"id": "x", "kind": "floating", "source": "automated"},
                 {"id": "x", "kind": "floating", "source": "manual", "size": 3},
                 {"id": "x", "kind": "floating", "source": "manual",
                  "desktops": [{"address": "no-port"}]},
                 {"id": "x", "kind": "floating", "source": "manual", "min": 5, "max": 2}):
        r = a.request("POST", "/api/v1/admin/pools", body)
        assert r.status == 400 and r.json["code"] == "bad_request", (body, r)
    assert a.request("GET", "/api/v1/admin/audit?limit=0").status == 400
    assert a.request("GET", "/api/v1/admin/pools/x").status == 404
    assert env.broker.proc.poll() is None


def test_static_files_and_security_headers(env):
    c = env.broker.client()
    r = c.request("GET", "/")
    assert r.status == 200 and b"portal" in r.raw
    assert r.header("Content-Type") == ["text/html; charset=utf-8"]
    for resp in (r, c.request("GET", "/api/v1/session")):
        csp = resp.header("Content-Security-Policy")[0]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
        assert resp.header("X-Frame-Options") == ["DENY"]
        assert resp.header("X-Content-Type-Options") == ["nosniff"]
        assert resp.header("Referrer-Policy") == ["no-referrer"]
        assert resp.header("Strict-Transport-Security")[0].startswith("max-age=")
    assert c.request("GET", "/app.js").header("Content-Type")[0].startswith("text/javascript")
    for path in ("/.secret", "/../broker.conf", "/%2e%2e/broker.conf", "/leak.txt",
                 "/static/../broker.conf", "/%00", "/a%5c..%5cbroker.conf", "/nothing.html"):
        r = c.request("GET", path)
        assert r.status in (400, 404), (path, r)
        assert b"state_dir" not in r.raw and b"hidden" not in r.raw


# ---- entitlements and rules ----

def test_entitlements_nested_groups_address_and_time_rules(env):
    now = datetime.datetime.now(datetime.timezone.utc)
    other_day = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[(now.weekday() + 3) % 7]
    manual_pool(env, "eng", entitle=[("group", "staff")])      # alice via engineering
    manual_pool(env, "sales", entitle=[("group", "sales")])
    manual_pool(env, "office", entitle=[("user", "alice")], networks="10.0.0.0/8, 2001:db8::/32")
    manual_pool(env, "closed", entitle=[("user", "alice")], windows=other_day + " 10:00-11:00")
    manual_pool(env, "lab", entitle=[("group", "r&d (lab)")])
    alice, bob, erin = user(env, "alice"), user(env, "bob"), user(env, "erin")
    seen = {p["id"] for p in alice.ok("GET", "/api/v1/desktops")["pools"]}
    assert {"eng", "lab"} <= seen and not seen & {"sales", "office", "closed"}
    assert {p["id"] for p in bob.ok("GET", "/api/v1/desktops")["pools"]} == {"sales"}
    assert not {p["id"] for p in erin.ok("GET", "/api/v1/desktops")["pools"]} & \
        {"eng", "sales", "office", "closed", "lab"}
    for pool, status, code in (("sales", 403, "not_entitled"), ("office", 403, "address_denied"),
                               ("closed", 403, "outside_hours"), ("nosuch", 404, "not_found")):
        r = alice.request("POST", "/api/v1/desktops/%s/connect" % pool)
        assert (r.status, r.json["code"]) == (status, code), (pool, r)
    r = alice.connect("eng")
    assert r.status == 200 and r.json["gateway_url"].startswith(
        "wss://127.0.0.1:%d/gateway?ticket=" % env.broker.port)
    # the window opens when it includes now; the network when it includes loopback
    env.admin.ok("PUT", "/api/v1/admin/pools/closed", {"windows": "* 00:00-24:00"})
    env.admin.ok("PUT", "/api/v1/admin/pools/office", {"networks": "127.0.0.0/8"})
    assert alice.connect("closed").status == 200
    # a group name with special characters, removed through its escaped path
    env.admin.ok("DELETE", "/api/v1/admin/pools/lab/entitlements/group/r%26d%20(lab)",
                 expect=(204,))
    assert "lab" not in {p["id"] for p in alice.ok("GET", "/api/v1/desktops")["pools"]}
    denied = [e for e in audit(env) if e["action"] == "assign" and e["result"] == "denied"]
    assert {e["detail"] for e in denied} >= {"not_entitled", "address_denied", "outside_hours"}
    logoff_all(env, "alice")


# ---- assignment ----

def test_dedicated_and_floating_pools_and_reconnect(env):
    manual_pool(env, "ded", kind="dedicated", desktops=2,
                entitle=[("group", "staff"), ("user", "frank")])
    manual_pool(env, "flo", kind="floating", desktops=1, entitle=[("group", "staff")])
    alice, dave, frank = user(env, "alice"), user(env, "dave"), user(env, "frank")
    a1 = alice.connect("ded").json
    again = alice.connect("ded").json
    assert (again["session"], again["desktop"]) == (a1["session"], a1["desktop"])
    assert again["ticket"] != a1["ticket"]
    pools = {p["id"]: p for p in alice.ok("GET", "/api/v1/desktops")["pools"]}
    assert pools["ded"]["state"] == "running" and pools["ded"]["session"]["id"] == a1["session"]
    alice.ok("POST", "/api/v1/sessions/%s/logoff" % a1["session"], expect=(204,))
    a2 = alice.connect("ded").json
    assert a2["session"] != a1["session"] and a2["desktop"] == a1["desktop"]  # hers for good
    d1 = dave.connect("ded").json
    assert d1["desktop"] != a1["desktop"]
    r = frank.request("POST", "/api/v1/desktops/ded/connect")
    assert (r.status, r.json["code"]) == (503, "no_desktop_available")
    # floating: one desktop, one user at a time; a logoff frees it
    f1 = alice.connect("flo").json
    r = dave.request("POST", "/api/v1/desktops/flo/connect")
    assert (r.status, r.json["code"]) == (503, "no_desktop_available")
    # another user cannot end alice's session
    assert dave.request("POST", "/api/v1/sessions/%s/logoff" % f1["session"]).status == 404
    alice.ok("POST", "/api/v1/sessions/%s/logoff" % f1["session"], expect=(204,))
    assert alice.request("POST", "/api/v1/sessions/%s/logoff" % f1["session"]).status == 409
    assert dave.connect("flo").json["desktop"] == f1["desktop"]
    for name in ("alice", "dave"):
        logoff_all(env, name)


def test_concurrent_connects_never_share_a_desktop(env):
    manual_pool(env, "race", kind="floating", desktops=3,
                entitle=[("user", n) for n in ("alice", "bob", "dave", "erin", "frank")])
    clients = [user(env, n) for n in ("alice", "bob", "dave", "erin", "frank")]
    results = [None] * len(clients)

    def go(i):
        results[i] = clients[i].request("POST", "/api/v1/desktops/race/connect")

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [r.json["desktop"] for r in results if r.status == 200]
    assert len(won) == 3 and len(set(won)) == 3, results
    assert sum(r.status == 503 for r in results) == 2, results
    for n in ("alice", "bob", "dave", "erin", "frank"):
        logoff_all(env, n)


def test_disconnect_timeout_logs_off(env):
    manual_pool(env, "short", entitle=[("user", "frank")], disconnect_timeout=2)
    frank = user(env, "frank")
    s = frank.connect("short").json["session"]
    frank.ok("POST", "/api/v1/sessions/%s/disconnect" % s, expect=(204,))
    state = {p["id"]: p for p in frank.ok("GET", "/api/v1/desktops")["pools"]}["short"]
    assert state["state"] == "disconnected" and state["session"]["state"] == "disconnected"
    # reconnecting within the timeout keeps the session
    assert frank.connect("short").json["session"] == s
    frank.ok("POST", "/api/v1/sessions/%s/disconnect" % s, expect=(204,))
    t0 = time.monotonic()
    while True:
        sessions = {x["id"]: x for x in env.admin.ok("GET", "/api/v1/admin/sessions?all")["sessions"]}
        if sessions[s]["state"] == "logged_off":
            break
        assert time.monotonic() - t0 < 8, sessions[s]
        time.sleep(0.2)
    assert time.monotonic() - t0 > 1.0
    assert frank.connect("short").json["session"] != s
    assert any(e["action"] == "logoff" and e["target"] == s and "disconnect_timeout" in e["detail"]
               for e in audit(env))
    logoff_all(env, "frank")


def test_session_limit(env):
    for pid in ("lim1", "lim2", "lim3"):
        manual_pool(env, pid, entitle=[("user", "bob")])
    bob = user(env, "bob")
    s1 = bob.connect("lim1").json["session"]
    assert bob.connect("lim2").status == 200
    r = bob.request("POST", "/api/v1/desktops/lim3/connect")
    assert (r.status, r.json["code"]) == (409, "session_limit")
    assert bob.connect("lim1").json["session"] == s1  # a reconnect is never limited
    logoff_all(env, "bob")
    assert bob.connect("lim3").status == 200
    logoff_all(env, "bob")


# The gateway's native-client upgrade (the tunnel itself: test_gateway.py).
TUNNEL = {"Connection": "Upgrade", "Upgrade": "vdi-tunnel/1"}

# ---- tickets ----

def test_tickets_single_use_expiring_and_hashed(env):
    manual_pool(env, "tk", entitle=[("user", "dave")])
    dave = user(env, "dave")
    t1 = dave.connect("tk").json["ticket"]
    assert len(t1) == 32 and int(t1, 16) >= 0
    gw = env.broker.client()
    assert gw.request("GET", "/gateway?ticket=" + t1, headers=TUNNEL).status in (101, 502)
    r = gw.request("GET", "/gateway?ticket=" + t1, headers=TUNNEL)
    assert (r.status, r.json["code"]) == (403, "bad_ticket")  # replay
    # two (here sixteen) concurrent redemptions: exactly one wins
    t2 = dave.connect("tk").json["ticket"]
    results = []
    barrier = threading.Barrier(16)

    def redeem():
        barrier.wait()
        results.append(gw.request("GET", "/gateway?ticket=" + t2, headers=TUNNEL).status)

    threads = [threading.Thread(target=redeem) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results)[:15] == [403] * 15 and sorted(results)[15] in (101, 502), results
    # expiry (ticket_lifetime = 5s here)
    t3 = dave.connect("tk").json
    assert t3["expires"] - time.time() <= 5.5
    time.sleep(max(0.0, t3["expires"] - time.time()) + 0.3)
    assert gw.request("GET", "/gateway?ticket=" + t3["ticket"], headers=TUNNEL).status == 403
    # never stored or logged in clear
    db = os.path.join(env.broker.state, "broker.db")
    blob = b"".join(open(p, "rb").read() for p in (db, db + "-wal") if os.path.exists(p))
    for t in (t1, t2, t3["ticket"]):
        assert t.encode() not in blob and t not in env.broker.log()
    with sqlite3.connect("file:%s?mode=ro" % db, uri=True) as con:
        rows = con.execute("SELECT redeemed_at FROM tickets WHERE username = 'dave'").fetchall()
    assert sum(r[0] is not None for r in rows) == 2
    logoff_all(env, "dave")


# ---- administration ----

def test_admin_role_and_vdictl(env):
    alice = user(env, "alice", bearer=True)
    r = alice.request("GET", "/api/v1/admin/pools")
    assert (r.status, r.json["code"]) == (403, "forbidden")
    b = env.broker
    out = b.vdictl("login", "carol", stdin="carol-pw\n").stdout.decode()
    assert "token saved" in out
    token_file = os.path.join(b.workdir, "home", ".config", "vdi", "token")
    assert oct(os.stat(token_file).st_mode & 0o777) == "0o600"
    assert "eng" in b.vdictl("pools", "list").stdout.decode()
    b.vdictl("pools", "create", "vp", "--kind", "floating", "--source", "manual",
             "--desktop", "127.0.0.1:5999", "--disconnect-timeout", "60")
    b.vdictl("entitlements", "add", "vp", "group", "r&d (lab)")
    shown = json.loads(b.vdictl("--json", "pools", "show", "vp").stdout)
    assert shown["entitlements"] == [{"kind": "group", "name": "r&d (lab)"}]
    assert shown["desktops"][0]["address"] == "127.0.0.1:5999"
    b.vdictl("entitlements", "remove", "vp", "group", "r&d (lab)")
    b.vdictl("hosts", "add", "h9", "https://127.0.0.1:1")
    assert "h9" in b.vdictl("hosts", "list").stdout.decode()
    b.vdictl("hosts", "remove", "h9")
    b.vdictl("users", "add", "local1", "--groups", "staff,qa", stdin="pw-1\n")
    users = json.loads(b.vdictl("--json", "users", "list").stdout)["users"]
    assert [u["groups"] for u in users if u["username"] == "local1"] == [["staff", "qa"]]
    assert "password" not in str(users)
    b.vdictl("users", "delete", "local1")
    b.vdictl("pools", "delete", "vp")
    assert "vp" not in b.vdictl("pools", "list").stdout.decode()
    entries = json.loads(b.vdictl("--json", "audit", "--limit", "30").stdout)["entries"]
    actions = [e["action"] for e in entries]
    for a in ("pool_create", "entitlement_add", "entitlement_remove", "host_add", "host_remove",
              "user_add", "user_delete", "pool_delete"):
        assert a in actions, actions
    assert "pw-1" not in str(entries) and "pw-1" not in b.log()
    # failures: 1 for a refused request, 2 for usage
    assert b.vdictl("pools", "delete", "nosuch", check=False).returncode == 1
    assert b.vdictl("pools", "frobnicate", check=False).returncode == 2
    assert b.vdictl("pools", "list", token="x" * 43, check=False).returncode == 1
    # a non-admin's token works for login but not for administration
    p = b.vdictl("pools", "list", token=alice.token, check=False)
    assert p.returncode == 1 and b"administrators only" in p.stderr


def vdictl_bare(b, home, *args, stdin=None, env=None):
    """vdictl as an admin runs it: no --ca unless given, HOME of its own."""
    e = dict(os.environ, HOME=str(home))
    e.pop("VDICTL_CA", None)
    e.pop("VDICTL_TOKEN", None)
    e.update(env or {})
    return subprocess.run([VDICTL, "-u", b.url, *args], input=(stdin or "").encode(),
                          capture_output=True, timeout=60, env=e)


def test_vdictl_keeps_the_ca_of_its_login(env, tmp_path):
    b = env.broker
    home = tmp_path / "home"
    ca = os.path.join(b.state, "https.crt")
    # without a CA the broker's self-signed certificate is refused
    p = vdictl_bare(b, home, "login", "carol", stdin="carol-pw\n")
    assert p.returncode == 1 and b"--ca" in p.stderr, p.stderr
    p = vdictl_bare(b, home, "--ca", ca, "login", "carol", stdin="carol-pw\n")
    assert p.returncode == 0, p.stderr
    saved = home / ".config" / "vdi" / "ca.pem"
    assert oct(os.stat(saved).st_mode & 0o777) == "0o600"
    assert saved.read_bytes() == open(ca, "rb").read()
    # later commands need no --ca
    p = vdictl_bare(b, home, "pools", "list")
    assert p.returncode == 0 and p.stdout.startswith(b"id "), p.stderr
    # VDICTL_CA comes before the saved one, --ca before VDICTL_CA
    wrong = tmp_path / "wrong.pem"  # a CA that did not sign the broker's certificate
    other = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-keyout", str(tmp_path / "k.pem"), "-out", str(wrong), "-days",
                            "1", "-subj", "/CN=someone-else"], capture_output=True)
    assert other.returncode == 0, other.stderr
    p = vdictl_bare(b, home, "pools", "list", env={"VDICTL_CA": str(wrong)})
    assert p.returncode == 1, p.stdout
    p = vdictl_bare(b, home, "--ca", ca, "pools", "list", env={"VDICTL_CA": str(wrong)})
    assert p.returncode == 0, p.stderr
    # VDICTL_CA alone, in a HOME without a saved CA
    home2 = tmp_path / "home2"
    p = vdictl_bare(b, home2, "login", "carol", stdin="carol-pw\n", env={"VDICTL_CA": ca})
    assert p.returncode == 0, p.stderr
    assert vdictl_bare(b, home2, "pools", "list").returncode == 0


def test_vdictl_tables_show_times_for_people(env):
    b = env.broker
    b.vdictl("login", "carol", stdin="carol-pw\n")
    # --json prints the API's object, not only its list
    answer = json.loads(b.vdictl("--json", "audit", "--limit", "5").stdout)
    assert isinstance(answer, dict) and set(answer) >= {"entries"}, answer
    raw = answer["entries"]
    assert all(isinstance(e["time"], int) and e["time"] > 1e9 for e in raw)
    table = b.vdictl("audit", "--limit", "5").stdout.decode()
    assert re.search(r"\b\d+ (s|min|h) ago\b", table), table
    for e in raw:
        assert str(e["time"]) not in table, table
    b.vdictl("hosts", "add", "h-never", "https://127.0.0.1:1")
    try:
        hosts = b.vdictl("hosts", "list").stdout.decode()
        row = [line for line in hosts.splitlines() if line.startswith("h-never")][0]
        assert "never" in row.split(), hosts
    finally:
        b.vdictl("hosts", "remove", "h-never")


def test_vdictl_usage_errors_name_the_argument(env):
    b = env.broker
    for args, expect in [
        (("pools", "create", "x", "--kernal", "k"),
         "vdictl: pools create: unknown option '--kernal'; see vdictl pools create --help"),
        (("pools", "create", "x", "--min", "two"),
         "vdictl: pools create: --min takes a number, not 'two'; see vdictl pools create --help"),
        (("pools", "frobnicate"),
         "vdictl: pools: unknown subcommand 'frobnicate'; see vdictl pools --help"),
        (("pools", "show"), "vdictl: pools show: missing the pool id; see vdictl pools show --help"),
        (("hosts", "drain"), "vdictl: hosts drain: missing the host id; see vdictl hosts drain --help"),
        (("users", "add", "u1", "--grops", "g"),
         "vdictl: users add: unknown option '--grops'; see vdictl users add --help"),
        (("audit", "--limit"), "vdictl: audit: option '--limit' needs a value; see vdictl audit --help"),
        (("frob",), "vdictl: unknown command 'frob'; see vdictl --help"),
        (("hosts",), "vdictl: hosts: missing a subcommand (list, add, remove, drain, resume, "
                     "stop-desktops); see vdictl hosts --help"),
    ]:
        p = b.vdictl(*args, check=False)
        assert p.returncode == 2, (args, p.stderr)
        assert p.stderr.decode() == expect + "\n", (args, p.stderr)
        assert p.stdout == b""
    p = b.vdictl("pools", "create", "--help")
    assert b"--kernel" in p.stdout and b"entitlements" not in p.stdout
    assert b"hosts drain ID" in b.vdictl("hosts", "--help").stdout


def test_vdictl_pools_show_and_list_for_people(env):
    b = env.broker
    b.vdictl("login", "carol", stdin="carol-pw\n")
    manual_pool(env, "vshow", desktops=2, entitle=[("user", "alice")], name="Show pool")
    manual_pool(env, "voff", desktops=1, enabled=False)
    env.admin.ok("POST", "/api/v1/admin/pools",  # automated, and there is no host
                 {"id": "vnone", "kind": "floating", "source": "automated",
                  "template": {"disk": "base.img"}}, expect=(201,))
    env.pools.add("vnone")
    alice = user(env, "alice")
    assert alice.connect("vshow").status == 200
    try:
        shown = b.vdictl("pools", "show", "vshow").stdout.decode()
        with pytest.raises(ValueError):
            json.loads(shown)
        assert re.search(r"(?m)^kind:\s+floating$", shown), shown
        assert re.search(r"(?m)^name:\s+Show pool$", shown), shown
        assert re.search(r"(?m)^entitlements:\s+user alice$", shown), shown
        assert re.search(r"(?m)^created:\s+\d+ (s|min) ago$", shown), shown
        assert shown.count("127.0.0.1:590") == 2, shown
        raw = json.loads(b.vdictl("--json", "pools", "show", "vshow").stdout)
        assert (raw["health"]["state"], raw["desktops_ready"], raw["desktops_in_use"],
                raw["desktops_failed"]) == ("ok", 1, 1, 0)
        listed = {p["id"]: p for p in
                  env.admin.ok("GET", "/api/v1/admin/pools")["pools"]}
        assert listed["voff"]["health"]["state"] == "disabled"
        assert listed["vnone"]["health"]["state"] == "unavailable"
        table = b.vdictl("pools", "list").stdout.decode().splitlines()
        head = table[0].split()
        for col in ("state", "ready", "in", "use", "failed"):
            assert col in head, table[0]
        rows = {line.split()[0]: line.split() for line in table[1:]}
        assert rows["vshow"][1:3] == ["ok", "floating"], rows["vshow"]
        assert rows["vshow"][4:7] == ["1", "1", "0"], (table[0], rows["vshow"])
        assert rows["voff"][1] == "disabled" and rows["vnone"][1] == "unavailable"
    finally:
        logoff_all(env, "alice")
        for pid in ("vshow", "voff", "vnone"):
            env.admin.ok("DELETE", "/api/v1/admin/pools/" + pid, expect=(204,))
            env.pools.discard(pid)


def test_vdictl_users_list_shows_directory_users(env):
    b = env.broker
    b.vdictl("login", "carol", stdin="carol-pw\n")
    user(env, "erin")  # an LDAP user, not in the broker's store
    b.vdictl("users", "add", "local2", stdin="pw-2\n")
    try:
        users = {u["username"]: u for u in json.loads(b.vdictl("--json", "users", "list").stdout)["users"]}
        assert users["erin"]["source"] == "ldap" and users["erin"]["last_login"] > 1e9
        assert users["erin"]["display_name"] == "Erin Cycle"
        assert "cycle-b" in users["erin"]["groups"]
        assert users["carol"]["source"] == "ldap"
        assert users["local2"]["source"] == "local" and users["local2"]["last_login"] is None
        table = b.vdictl("users", "list").stdout.decode()
        erin = [line for line in table.splitlines() if line.startswith("erin ")]
        assert erin and "ldap" in erin[0] and re.search(r"\d+ (s|min|h) ago", erin[0]), table
    finally:
        b.vdictl("users", "delete", "local2")


def test_vdictl_users_list_shows_users_file_users(tmp_path):
    b = Broker(str(tmp_path), f"""
[broker]
admin_users = admin
[auth]
backend = local
users_file = {TOP}/conf/demo/users.ini
""")
    b.start()
    try:
        b.vdictl("login", "admin", stdin="admin-demo\n")
        users = json.loads(b.vdictl("--json", "users", "list").stdout)["users"]
        by_name = {u["username"]: u for u in users}
        assert {"alice", "bob", "admin"} <= set(by_name), users
        assert all(u["source"] == "users_file" for u in users), users
        assert by_name["admin"]["last_login"] > 1e9 and by_name["bob"]["last_login"] is None
        assert "password" not in json.dumps(users) and "scrypt" not in json.dumps(users)
        assert [u["username"] for u in users] == sorted((u["username"] for u in users),
                                                        key=str.lower)
    finally:
        assert b.stop() == 0, b.log()


# ---- a manual pool on a real VNC endpoint ----

def test_manual_pool_on_a_vdi_hv_vnc_endpoint(env, hv):
    if not os.path.exists(os.path.join(GUESTS, "serial.elf")):
        pytest.skip("test guest serial.elf not built")
    port = free_port()
    vm = hv("serial", "--vnc", "127.0.0.1:%d" % port)
    reply = vm.control({"cmd": "set-ticket", "password": "pc-secret",
                        "expires": int(time.time()) + 3600})
    assert "error" not in reply, reply
    manual_pool(env, "pc", desktops=0, entitle=[("user", "bob")])
    env.admin.ok("POST", "/api/v1/admin/pools/pc/desktops",
                 {"id": "pc-7", "address": "127.0.0.1:%d" % port, "password": "pc-secret"},
                 expect=(201,))
    shown = env.admin.ok("GET", "/api/v1/admin/pools/pc")
    assert [d["address"] for d in shown["desktops"]] == ["127.0.0.1:%d" % port]
    assert "pc-secret" not in str(shown) and "vnc_password" not in str(shown)
    bob = user(env, "bob")
    r = bob.connect("pc").json
    assert r["desktop"] == "pc-7"
    assert env.broker.client().request("GET", "/gateway?ticket=" + r["ticket"],
                                       headers=TUNNEL).status == 101
    # the stored endpoint itself: VNC authentication works
    rfb = Rfb(socket.create_connection(("127.0.0.1", port), timeout=10), "pc-secret")
    assert (rfb.width, rfb.height) == (1024, 768)
    rfb.sock.close()
    logoff_all(env, "bob")
    env.admin.ok("DELETE", "/api/v1/admin/pools/pc", expect=(204,))
    assert env.admin.request("GET", "/api/v1/admin/pools/pc").status == 404
    manual_pool(env, "pc", desktops=0)  # the id is free again


def test_demo_configuration_logs_in_its_users(tmp_path):
    """conf/demo/broker.conf (what `make demo` runs) with this test's state and port."""
    text = open(os.path.join(TOP, "conf", "demo", "broker.conf")).read()
    port = free_port()
    text = re.sub(r"(?m)^state_dir = .*$", "state_dir = %s" % (tmp_path / "state"), text)
    text = re.sub(r"(?m)^listen = .*$", "listen = 127.0.0.1:%d" % port, text)
    text = re.sub(r"(?m)^(cert|key|ca|heartbeat_listen) = .*$", r"\1 =", text)
    text = text.replace("users_file = conf/", "users_file = %s/conf/" % TOP)
    conf = tmp_path / "demo.conf"
    conf.write_text(text)
    assert subprocess.run([BROKER, "-n", "-c", str(conf)]).returncode == 0
    b = Broker(str(tmp_path), port=port)
    b.conf = str(conf)
    b.state = str(tmp_path / "state")
    b.start()
    try:
        c = b.client()
        assert c.login("alice", "alice-demo").json["user"]["admin"] is False
        assert c.login("admin", "admin-demo").json["user"]["admin"] is True
        c.login("bob", "bob-demo")
        c.login("bob", "alice-demo", expect=401)
    finally:
        assert b.stop() == 0, b.log()


def test_failed_logins_are_throttled(tmp_path):
    b = Broker(str(tmp_path), "[auth]\nmax_user_failures = 2\nlockout = 30s\n")
    b.add_user("zed", "zed-pw")
    b.start()
    try:
        c = b.client()
        for _ in range(2):
            c.login("zed", "wrong", expect=401)
        r = c.request("POST", "/api/v1/login", {"username": "zed", "password": "zed-pw"})
        assert (r.status, r.json["code"]) == (429, "throttled"), r
        assert 0 < r.json["retry_after"] <= 30 and r.header("Retry-After")
        assert c.request("POST", "/api/v1/login",
                         {"username": "other", "password": "x"}).status == 401
    finally:
        assert b.stop() == 0, b.log()
