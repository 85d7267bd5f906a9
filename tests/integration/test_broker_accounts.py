"""Sessions follow the account, not the login: a user deleted by an admin loses their web
and desktop sessions at once; with LDAP, a user removed from the directory loses them,
and one taken out of a group loses the admin role and the desktop sessions of pools the
group entitled them to, within [broker] account_recheck (here 1 s)."""
import os
import time

import pytest

from broker_fixture import BROKER, Broker
from ldap_fixture import BASE, SLAPD, Slapd

pytestmark = pytest.mark.skipif(not os.path.exists(BROKER), reason="vdi-broker not built")


def manual_pool(admin, pid, entitle):
    admin.ok("POST", "/api/v1/admin/pools", {
        "id": pid, "kind": "floating", "source": "manual",
        "desktops": [{"address": "127.0.0.1:5999", "password": "pw"}],
        "entitlements": [{"kind": k, "name": n} for k, n in entitle]}, expect=(201,))


def live_sessions(admin, user):
    """The states of user's live sessions (the admin list shows only those)."""
    return [s["state"] for s in admin.ok("GET", "/api/v1/admin/sessions")["sessions"]
            if s["username"] == user]


def eventually(check, what, timeout=10):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_deleted_local_user_loses_every_session_at_once(tmp_path):
    b = Broker(str(tmp_path), "[broker]\nadmin_users = admin\naccount_recheck = 0\n")
    b.add_user("admin", "admin-pw")
    b.add_user("bob", "bob-pw")
    b.start()
    try:
        admin = b.client()
        admin.login("admin", "admin-pw", bearer=True)
        manual_pool(admin, "p", [("user", "bob")])
        bob = b.client()
        bob.login("bob", "bob-pw")
        assert bob.connect("p").status == 200
        assert live_sessions(admin, "bob") == ["connected"]
        admin.ok("DELETE", "/api/v1/admin/users/bob", expect=(204,))
        # no recheck configured: the deletion itself ends them
        assert bob.request("GET", "/api/v1/session").status == 401
        assert live_sessions(admin, "bob") == []
        rows = [e for e in admin.ok("GET", "/api/v1/admin/audit")["entries"]
                if e["action"] == "sessions_end" and e["target"] == "bob"]
        assert rows and "the user was deleted" in rows[0]["detail"], rows
    finally:
        assert b.stop() == 0, b.log()


@pytest.mark.skipif(not os.path.exists(SLAPD), reason="slapd not installed")
def test_directory_changes_reach_signed_in_users(tmp_path):
    slapd = Slapd(str(tmp_path / "slapd"))
    (tmp_path / "broker").mkdir()
    b = Broker(str(tmp_path / "broker"), f"""
[broker]
admin_users = carol
admin_groups = sales
account_recheck = 1s
maintenance_interval = 1s
[auth]
backend = ldap
[ldap]
uri = {slapd.uri}
base_dn = {BASE}
""")
    try:
        b.start()
        carol = b.client()
        carol.login("carol", "carol-pw", bearer=True)
        manual_pool(carol, "sales-desks", [("group", "sales")])
        bob = b.client()  # in sales: an admin, entitled to sales-desks
        bob.login("bob", "bob-pw")
        assert bob.ok("GET", "/api/v1/session")["user"]["admin"] is True
        assert bob.connect("sales-desks").status == 200
        assert live_sessions(carol, "bob") == ["connected"]
        alice = b.client()
        alice.login("alice", "alice-pw")

        change = tmp_path / "change.ldif"
        change.write_text(f"""dn: cn=sales,ou=groups,{BASE}
changetype: modify
delete: member
member: uid=bob,ou=people,{BASE}

dn: uid=alice,ou=people,{BASE}
changetype: delete
""")
        slapd.modify(str(change))
        eventually(lambda: bob.ok("GET", "/api/v1/session")["user"]["admin"] is False,
                   "bob kept the admin role of a group he left")
        assert bob.request("GET", "/api/v1/admin/pools").status == 403
        eventually(lambda: live_sessions(carol, "bob") == [],
                   "bob kept a desktop session of a pool he is no longer entitled to")
        eventually(lambda: alice.request("GET", "/api/v1/session").status == 401,
                   "a user deleted from the directory kept her web session")
    finally:
        status = b.stop()
        slapd.stop()
    assert status == 0, b.log()


def test_add_user_is_refused_where_the_store_has_no_say(tmp_path):
    """--add-user makes a user of the broker's store, which only backend = local without a
    users_file logs in with: elsewhere it is refused and says where users come from."""
    import subprocess
    conf = tmp_path / "broker.conf"
    conf.write_text(f"[broker]\nstate_dir = {tmp_path}/state\n[auth]\nbackend = ldap\n"
                    f"[ldap]\nuri = ldap://127.0.0.1:9\nbase_dn = {BASE}\n")
    p = subprocess.run([BROKER, "-c", str(conf), "--add-user", "vdiadmin"], input=b"pw\n",
                       capture_output=True, timeout=30)
    assert p.returncode == 2, p
    assert b"users come from the LDAP directory" in p.stderr and b"admin_users" in p.stderr
    assert not (tmp_path / "state" / "broker.db").exists()


def test_an_admin_lists_and_revokes_a_users_web_sessions(tmp_path):
    """GET and DELETE /admin/users/NAME/web-sessions, and vdictl users sessions / revoke:
    the user's two sign-ins are listed (named by an id that opens nothing), revoking
    ends both at once and is audited with how many."""
    b = Broker(str(tmp_path), "[broker]\nadmin_users = admin\n")
    b.add_user("admin", "admin-pw")
    b.add_user("bob", "bob-pw")
    b.start()
    try:
        admin = b.client()
        admin.login("admin", "admin-pw", bearer=True)
        phone, desk = b.client(), b.client()
        phone.login("bob", "bob-pw", bearer=True)
        desk.login("bob", "bob-pw")
        listed = admin.ok("GET", "/api/v1/admin/users/bob/web-sessions")["web_sessions"]
        assert len(listed) == 2, listed
        assert all(len(w["id"]) == 16 and w["client_addr"] == "127.0.0.1" for w in listed), listed
        assert sorted(bool(w["bearer"]) for w in listed) == [False, True], listed
        b.vdictl("login", "admin", stdin="admin-pw\n")
        out = b.vdictl("users", "sessions", "bob").stdout.decode()
        assert all(w["id"] in out for w in listed), out
        assert b.vdictl("users", "revoke", "bob").stdout.decode().strip() == "web sessions revoked"
        assert phone.request("GET", "/api/v1/session").status == 401
        assert desk.request("GET", "/api/v1/session").status == 401
        assert admin.ok("GET", "/api/v1/admin/users/bob/web-sessions")["web_sessions"] == []
        rows = [e for e in admin.ok("GET", "/api/v1/admin/audit")["entries"]
                if e["action"] == "websessions_revoke" and e["target"] == "bob"]
        assert rows and rows[0]["detail"] == "2 web session(s) ended", rows
        # the admin's own session is untouched
        assert admin.request("GET", "/api/v1/session").status == 200
    finally:
        assert b.stop() == 0, b.log()


def test_an_admin_request_checks_the_account_first(tmp_path):
    """No periodic check for an hour: bob, taken out of the admin group in the directory,
    is refused at his very next admin request, and his web session now says so."""
    slapd = Slapd(str(tmp_path / "slapd"))
    (tmp_path / "broker").mkdir()
    b = Broker(str(tmp_path / "broker"), f"""
[broker]
admin_groups = sales
account_recheck = 1h
[auth]
backend = ldap
[ldap]
uri = {slapd.uri}
base_dn = {BASE}
""")
    try:
        b.start()
        bob = b.client()
        bob.login("bob", "bob-pw", bearer=True)
        assert bob.request("GET", "/api/v1/admin/pools").status == 200
        change = tmp_path / "change.ldif"
        change.write_text(f"""dn: cn=sales,ou=groups,{BASE}
changetype: modify
delete: member
member: uid=bob,ou=people,{BASE}
""")
        slapd.modify(str(change))
        assert bob.request("GET", "/api/v1/admin/pools").status == 403
        assert bob.ok("GET", "/api/v1/session")["user"]["admin"] is False
    finally:
        status = b.stop()
        slapd.stop()
    assert status == 0, b.log()
