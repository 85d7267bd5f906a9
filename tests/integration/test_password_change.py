"""Users change their password themselves (POST /api/v1/password, the portal's "change
password" form): against OpenLDAP with RFC 3062 password modify after the user's bind,
against local users in the broker's store. The old password proves who asks, so a
wrong one is a failed guess like a wrong login; a directory that does not let users
write their password says so (403 password_change_not_allowed). Active Directory's
change, including for a user who must change it before signing in, is in
test_directory_ad.py."""
import os

import pytest

from broker_fixture import BROKER, Broker
from ldap_fixture import BASE, SLAPD, Slapd

pytestmark = pytest.mark.skipif(not os.path.exists(BROKER), reason="vdi-broker not built")


def change(broker, user, old, new):
    return broker.client().request("POST", "/api/v1/password",
                                   {"username": user, "password": old, "new_password": new})


def login_status(broker, user, password):
    return broker.client().request("POST", "/api/v1/login",
                                   {"username": user, "password": password}).status


def ldap_broker(workdir, slapd, extra=""):
    os.makedirs(workdir)
    return Broker(workdir, f"[auth]\nbackend = ldap\n{extra}\n[ldap]\nuri = {slapd.uri}\n"
                           f"base_dn = {BASE}\n")


@pytest.mark.skipif(not os.path.exists(SLAPD), reason="slapd not installed")
def test_openldap_users_change_their_password(tmp_path):
    slapd = Slapd(str(tmp_path / "slapd"), self_password=True)
    b = ldap_broker(str(tmp_path / "b"), slapd, "max_user_failures = 2")
    b.start()
    try:
        r = change(b, "alice", "alice-pw", "alice-new-pw")
        assert r.status == 204, (r, b.log())
        assert login_status(b, "alice", "alice-new-pw") == 200
        assert login_status(b, "alice", "alice-pw") == 401
        # an empty new password is the client's mistake, not a guess
        r = change(b, "bob", "bob-pw", "")
        assert (r.status, r.json["code"]) == (400, "password_rejected"), r
        # wrong old passwords are guesses: two, and bob is throttled, right or not
        for _ in range(2):
            r = change(b, "bob", "wrong-pw", "bob-new-pw")
            assert (r.status, r.json["code"]) == (401, "bad_credentials"), r
        r = change(b, "bob", "bob-pw", "bob-new-pw")
        assert (r.status, r.json["code"]) == (429, "throttled"), r
        assert login_status(b, "bob", "bob-pw") == 429
        assert "password changed user=alice" in b.log()
        assert "alice-new-pw" not in b.log() and "bob-pw" not in b.log(), "a password logged"
    finally:
        assert b.stop() == 0, b.log()
        slapd.stop()


@pytest.mark.skipif(not os.path.exists(SLAPD), reason="slapd not installed")
def test_a_directory_that_does_not_let_users_write_says_so(tmp_path):
    slapd = Slapd(str(tmp_path / "slapd"))  # userPassword: auth only
    b = ldap_broker(str(tmp_path / "b"), slapd)
    b.start()
    try:
        r = change(b, "alice", "alice-pw", "alice-new-pw")
        assert (r.status, r.json["code"]) == (403, "password_change_not_allowed"), r
        assert login_status(b, "alice", "alice-pw") == 200
    finally:
        assert b.stop() == 0, b.log()
        slapd.stop()


def test_local_users_change_their_password(tmp_path):
    b = Broker(str(tmp_path), "[broker]\nadmin_users = admin\n")
    b.add_user("dora", "dora-pw")
    b.start()
    try:
        assert change(b, "dora", "nope", "dora-new-pw").status == 401
        assert change(b, "dora", "dora-pw", "dora-new-pw").status == 204
        assert login_status(b, "dora", "dora-new-pw") == 200
        assert login_status(b, "dora", "dora-pw") == 401
        assert change(b, "ghost", "x", "y").status == 401  # no such user: a guess too
    finally:
        assert b.stop() == 0, b.log()
