"""Active Directory for real: a Samba AD DC (samba_fixture) on loopback, asked over
ldaps:// by address with the name its certificate bears given as tls_name. Logins by
sAMAccountName, nested groups through LDAP_MATCHING_RULE_IN_CHAIN, the certificate's
name checked (a wrong name is a TLS failure that says so), and the account states AD
reports in its bind refusals mapped to their own answers."""
import os

import pytest

from broker_fixture import Broker
from samba_fixture import ADMIN_PW, BASE, SambaDC, why_not
from test_auth_ldap import authcheck, ok, refused

pytestmark = pytest.mark.skipif(why_not() is not None, reason=why_not() or "")

USERS = [("alice", "Alice-pw1", ["--given-name=Alice", "--surname=Example"]),
         ("bob", "Bob-pw1"), ("carol", "Carol-pw1", ["--must-change-at-next-login"]),
         ("dave", "Dave-pw1"), ("erin", "Erin-pw1"), ("o'hara(ops)&co", "Hara-pw1"),
         ("frank", "Frank-pw1", ["--must-change-at-next-login"])]
GROUPS = [("staff", ["alice"]), ("engineering", ["staff"]), ("everyone", ["engineering"]),
          ("all-users", ["Domain Users"]), ("loop-a", ["alice"]), ("loop-b", ["loop-a"])]
SETUP = [("user", "disable", "bob"), ("user", "setexpiry", "dave", "--days=0"),
         ("group", "addmembers", "loop-a", "loop-b"),  # a cycle: loop-a in loop-b in loop-a
         ("computer", "add", "PC1"), ("user", "setpassword", "PC1$", "--newpassword=Pc1-pw1"),
         ("domain", "passwordsettings", "set", "--account-lockout-threshold=3",
          "--reset-account-lockout-after=30", "--account-lockout-duration=30")]


@pytest.fixture(scope="module")
def dc(tmp_path_factory):
    server = SambaDC(str(tmp_path_factory.mktemp("samba")), USERS, GROUPS, SETUP)
    yield server
    server.stop()


def conf(tmp_path, dc, **extra):
    options = dict(server_type="ad", bind_dn="CN=Administrator,CN=Users," + BASE,
                   bind_password=ADMIN_PW, ca_file=dc.ca, tls_name="dc1.vdi.test")
    options.update(extra)
    path = tmp_path / ("ad-%d.conf" % len(list(tmp_path.glob("ad-*.conf"))))
    lines = ["[auth]", "backend = ldap", "[ldap]", "uri = ldaps://127.0.0.1/",
             "base_dn = " + BASE]
    lines += ["%s = %s" % kv for kv in options.items() if kv[1] is not None]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_login_and_nested_groups(dc, tmp_path):
    alice = ok(conf(tmp_path, dc), "alice", "Alice-pw1")
    assert alice["username"] == "alice"
    assert alice["dn"] == "CN=Alice Example,CN=Users," + BASE
    assert {"staff", "engineering", "everyone"} <= set(alice["groups"]), alice
    refused(conf(tmp_path, dc), "alice", "wrong-pw", "EACCES")
    refused(conf(tmp_path, dc), "nobody", "Alice-pw1", "EACCES")


def test_group_cycles_and_special_characters(dc, tmp_path):
    """A cycle of groups ends (each once); a name with filter characters is escaped, and
    a wildcard typed as a name matches nobody. (Samba answers subtree searches from the
    domain root with referrals too: they are not followed, the login still works.)"""
    groups = ok(conf(tmp_path, dc), "alice", "Alice-pw1")["groups"]
    assert groups.count("loop-a") == 1 and groups.count("loop-b") == 1, groups
    assert ok(conf(tmp_path, dc), "o'hara(ops)&co", "Hara-pw1")["username"] == "o'hara(ops)&co"
    refused(conf(tmp_path, dc), "*", "Hara-pw1", "EACCES")
    refused(conf(tmp_path, dc), "o'hara*", "Hara-pw1", "EACCES")


def test_primary_group_counts(dc, tmp_path):
    """AD keeps Domain Users out of the group's member list (primaryGroupID on the user):
    it is found through the SID, and so is a group that holds it."""
    groups = set(ok(conf(tmp_path, dc), "alice", "Alice-pw1")["groups"])
    assert {"Domain Users", "all-users"} <= groups, groups


def test_upn_and_down_level_names(dc, tmp_path):
    """alice@vdi.test (userPrincipalName) and VDI\\alice reach the same account, whose
    name is the sAMAccountName."""
    for typed in ("alice@vdi.test", "VDI\\alice", "vdi\\alice"):
        assert ok(conf(tmp_path, dc), typed, "Alice-pw1")["username"] == "alice", typed
    refused(conf(tmp_path, dc), "alice@vdi.test", "wrong-pw", "EACCES")


def test_computer_accounts_cannot_sign_in(dc, tmp_path):
    """A machine account with its password is not a user (objectCategory=person)."""
    reply = refused(conf(tmp_path, dc), "PC1$", "Pc1-pw1", "EACCES")
    assert "no such user" in reply["message"], reply


def test_the_certificate_name_is_checked_and_said(dc, tmp_path):
    """By address without tls_name the certificate (for dc1.vdi.test) does not fit: a TLS
    failure that says so and points at tls_name, not 'cannot contact'; a tls_name the
    certificate does not bear is refused by name."""
    reply = refused(conf(tmp_path, dc, tls_name=None), "alice", "Alice-pw1", "EPROTO")
    assert "TLS with ldaps://127.0.0.1/ failed" in reply["message"], reply
    assert "tls_name sets another" in reply["message"], reply
    reply = refused(conf(tmp_path, dc, tls_name="dc9.vdi.test"), "alice", "Alice-pw1", "EPROTO")
    assert "not trusted for the name 'dc9.vdi.test'" in reply["message"], reply
    other_ca = os.path.join(os.path.dirname(dc.ca), "dc.pem")  # not a CA of the chain
    reply = refused(conf(tmp_path, dc, ca_file=other_ca), "alice", "Alice-pw1", "EPROTO")
    assert "not trusted" in reply["message"], reply


@pytest.mark.parametrize("user,password,error,words", [
    ("carol", "Carol-pw1", "EKEYEXPIRED", "the password must be changed (Active Directory data 773)"),
    ("bob", "Bob-pw1", "EKEYREVOKED", "the account is disabled (Active Directory data 533)"),
    ("dave", "Dave-pw1", "ETIME", "the account has expired (Active Directory data 701)"),
])
def test_account_states_have_their_own_answers(dc, tmp_path, user, password, error, words):
    reply = refused(conf(tmp_path, dc), user, password, error)
    assert words in reply["message"], reply


def test_a_locked_account_says_so(dc, tmp_path):
    c = conf(tmp_path, dc)
    for _ in range(3):
        refused(c, "erin", "wrong-pw", "EACCES")
    reply = refused(c, "erin", "Erin-pw1", "ENOLCK")
    assert "the account is locked out (Active Directory data 775)" in reply["message"], reply


def ad_broker(tmp_path, dc):
    work = tmp_path / "broker"
    work.mkdir()
    return Broker(str(work), f"""
[auth]
backend = ldap
max_user_failures = 3
[ldap]
uri = ldaps://127.0.0.1/
server_type = ad
base_dn = {BASE}
bind_dn = CN=Administrator,CN=Users,{BASE}
bind_password = {ADMIN_PW}
ca_file = {dc.ca}
tls_name = dc1.vdi.test
""")


def test_the_broker_answers_each_state_and_does_not_count_them(dc, tmp_path):
    """403 with its own code and message; a password that must be changed is not a
    failed guess: ten in a row are not throttled."""
    broker = ad_broker(tmp_path, dc)
    broker.start()
    try:
        for _ in range(10):
            r = broker.client().request("POST", "/api/v1/login",
                                        {"username": "carol", "password": "Carol-pw1"})
            assert (r.status, r.json["code"]) == (403, "password_change_required"), r
        assert r.json["error"] == "your password must be changed before you can sign in", r
        r = broker.client().request("POST", "/api/v1/login",
                                    {"username": "bob", "password": "Bob-pw1"})
        assert (r.status, r.json["code"]) == (403, "account_disabled"), r
        assert broker.client().request(
            "POST", "/api/v1/login", {"username": "alice", "password": "Alice-pw1"}).status == 200
        assert "login refused user=carol" in broker.log()
    finally:
        assert broker.stop() == 0, broker.log()


def test_a_user_changes_the_password_the_directory_asks_for(dc, tmp_path):
    """frank must change his password before he signs in: POST /api/v1/password does it
    (AD's own change of unicodePwd: the DC checks the old password and its policy), then
    he signs in with the new one. A wrong old password is a 401 guess; a new one the
    domain's policy refuses is 400 password_rejected, and nothing changes."""
    broker = ad_broker(tmp_path, dc)
    broker.start()

    def change(old, new):
        return broker.client().request("POST", "/api/v1/password", {
            "username": "frank", "password": old, "new_password": new})

    def login(password):
        return broker.client().request("POST", "/api/v1/login",
                                       {"username": "frank", "password": password})
    try:
        assert login("Frank-pw1").json["code"] == "password_change_required"
        r = change("Wrong-pw1", "Frank-new-pw2")
        assert (r.status, r.json["code"]) == (401, "bad_credentials"), (r, broker.log())
        r = change("Frank-pw1", "abc")  # the test domain wants 4 characters or more
        assert (r.status, r.json["code"]) == (400, "password_rejected"), (r, broker.log())
        assert r.json["error"] == "the new password does not meet the password policy", r
        assert login("Frank-pw1").json["code"] == "password_change_required"
        r = change("Frank-pw1", "Frank-new-pw2")
        assert r.status == 204, (r, broker.log())
        assert login("Frank-new-pw2").status == 200
        assert login("Frank-pw1").status == 401
        assert "password changed user=frank" in broker.log()
    finally:
        assert broker.stop() == 0, broker.log()
