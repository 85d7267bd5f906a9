"""Durability of what vdi-broker acknowledges: during a burst of logins, connects and
logoffs from many clients the broker is killed with SIGKILL; after it every connect
answered 200 has its session in the store (and every logoff answered 204 its state),
no desktop holds two live sessions, and the broker starts again on the same store."""
import os
import sqlite3
import threading
import time

import pytest

from broker_fixture import BROKER, Broker

pytestmark = pytest.mark.skipif(not os.path.exists(BROKER), reason="vdi-broker not built")

USERS = 16


def test_kill_9_loses_no_acknowledged_assignment(tmp_path):
    b = Broker(str(tmp_path), "[broker]\nadmin_users = admin\n")
    b.add_user("admin", "admin-pw")
    for i in range(USERS):
        b.add_user("u%d" % i, "pw-%d" % i, groups="staff")
    b.start()
    admin = b.client()
    admin.login("admin", "admin-pw", bearer=True)
    admin.ok("POST", "/api/v1/admin/pools", {
        "id": "burst", "kind": "floating", "source": "manual",
        "desktops": [{"address": "127.0.0.1:%d" % (6000 + i)} for i in range(USERS * 2)],
        "entitlements": [{"kind": "group", "name": "staff"}]}, expect=(201,))
    connected, logged_off, errors = [], [], []
    lock = threading.Lock()
    stop = threading.Event()

    def work(i):
        while not stop.is_set():
            try:
                c = b.client()
                c.login("u%d" % i, "pw-%d" % i, bearer=True)
                r = c.request("POST", "/api/v1/desktops/burst/connect", timeout=10)
                if r.status != 200:
                    with lock:
                        errors.append(r)
                    continue
                with lock:
                    connected.append(r.json["session"])
                r2 = c.request("POST", "/api/v1/sessions/%s/logoff" % r.json["session"],
                               timeout=10)
                if r2.status == 204:
                    with lock:
                        logged_off.append(r.json["session"])
            except (OSError, AssertionError, ValueError):
                if stop.is_set():
                    return
                time.sleep(0.01)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(USERS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(connected) < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    b.kill()  # in the middle of the burst
    stop.set()
    for t in threads:
        t.join(15)
    assert len(connected) >= 20, (len(connected), errors[:5], b.log())
    assert not [e for e in errors if e.status >= 500 and e.status != 503], errors[:5]
    db = os.path.join(b.state, "broker.db")
    with sqlite3.connect(db) as con:
        rows = dict(con.execute("SELECT id, state FROM sessions").fetchall())
        doubled = con.execute("SELECT desktop_id, count(*) FROM sessions WHERE state <> "
                              "'logged_off' GROUP BY desktop_id HAVING count(*) > 1").fetchall()
    missing = [s for s in connected if s not in rows]
    assert not missing, "acknowledged sessions lost: %s" % missing
    assert all(rows[s] == "logged_off" for s in logged_off)
    assert not doubled
    print("kill -9 after %d acknowledged connects and %d logoffs: all in the store"
          % (len(connected), len(logged_off)))
    b.start()
    listed = {s["id"] for s in admin.ok("GET", "/api/v1/admin/sessions?all")["sessions"]}
    assert set(connected) <= listed
    assert b.stop() == 0, b.log()
