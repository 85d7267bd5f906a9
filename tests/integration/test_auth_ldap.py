"""auth/ against a real OpenLDAP slapd started on loopback in a temporary directory
(conf/test-ldap/directory.ldif), driven through tests/tools/authcheck as the broker
will drive the library: right, wrong and empty passwords, unknown and ambiguous users,
hostile usernames, groups (search, memberOf, uniqueMember, memberUid, nesting, cycles,
depth limit), the service account, TLS that fails hard, timeouts against a server that
never answers, referrals that are not followed. Also the local users file end to end."""
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import BUILD
from ldap_fixture import ADMIN, BASE, SERVICE, SLAPD, Slapd, free_port

AUTHCHECK = os.path.join(BUILD, "tests", "tools", "authcheck")
DAVE_PW = 'd)(*ve\\2a "pw"=+,#'

pytestmark = pytest.mark.skipif(
    not os.path.exists(SLAPD) or not shutil.which("ldapmodify") or not shutil.which("openssl"),
    reason="needs slapd, ldap-utils and openssl (make deps)")


# An LDAP ExtendedResponse, messageID 1, resultCode success: "StartTLS accepted".
STARTTLS_OK = bytes.fromhex("300c02010178070a010004000400")


class SilentServer:
    """Accepts TCP connections on loopback and never answers; counts them. With
    starttls_ok it accepts a StartTLS request first, then falls silent in the TLS
    handshake."""

    def __init__(self, starttls_ok=False):
        self.starttls_ok = starttls_ok
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._conns = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self._conns.append(conn)
            if self.starttls_ok:
                conn.settimeout(5)
                try:
                    conn.recv(4096)
                    conn.sendall(STARTTLS_OK)
                except OSError:
                    pass

    def stop(self):
        self._stop = True
        self._thread.join(5)
        for c in self._conns:
            c.close()
        self.sock.close()


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
            "-subj", "/CN=" + name, "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    return os.path.join(d, name + ".pem")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A test CA, a server certificate for 127.0.0.1 it signed, and an unrelated CA."""
    d = str(tmp_path_factory.mktemp("certs"))
    ca = make_ca(d, "test-ca")
    other = make_ca(d, "other-ca")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "test-ca.pem", "-CAkey", "test-ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    return {"ca": ca, "other_ca": other, "cert": os.path.join(d, "server.pem"),
            "key": os.path.join(d, "server.key")}


@pytest.fixture(scope="module")
def slapd(tmp_path_factory, certs):
    """The test directory on a slapd with TLS (StartTLS on ldap://, and ldaps://)."""
    server = Slapd(str(tmp_path_factory.mktemp("slapd")), tls=certs)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def slapd_plain(tmp_path_factory):
    """A slapd without any TLS configured, and an empty directory."""
    server = Slapd(str(tmp_path_factory.mktemp("slapd-plain")), load=False)
    yield server
    server.stop()


@pytest.fixture
def silent():
    server = SilentServer()
    yield server
    server.stop()


@pytest.fixture
def silent_tls():
    server = SilentServer(starttls_ok=True)
    yield server
    server.stop()


def write_conf(tmp_path, uri, **options):
    """An INI file with [auth] backend = ldap and [ldap] uri, base_dn and options."""
    path = tmp_path / ("auth-%d.conf" % len(list(tmp_path.glob("auth-*.conf"))))
    lines = ["[auth]", "backend = ldap", "[ldap]", "uri = " + uri, "base_dn = " + BASE]
    for name, value in options.items():
        if isinstance(value, bool):
            value = "yes" if value else "no"
        lines.append("%s = %s" % (name, value))
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def authcheck(conf, user, password, timeout=30):
    """Logs user in; returns (reply dict or None, exit status, stderr)."""
    args = [AUTHCHECK, conf]
    if isinstance(user, bytes):
        args += ["-x", user.hex()]
    else:
        args.append(user)
    p = subprocess.run(args, input=password.encode() if isinstance(password, str) else password,
                       capture_output=True, timeout=timeout)
    out = p.stdout.decode().strip()
    return (json.loads(out) if out else None), p.returncode, p.stderr.decode()


def ok(conf, user, password):
    reply, rc, err = authcheck(conf, user, password)
    assert rc == 0 and reply and reply["ok"], (reply, err)
    return reply["identity"]


def refused(conf, user, password, error="EACCES"):
    reply, rc, err = authcheck(conf, user, password)
    assert rc == 1 and reply and reply["ok"] is False, (reply, err)
    assert reply["error"] == error, (reply, err)
    if isinstance(password, str) and len(password) >= 6:  # never in logs or messages
        assert password not in err + reply["message"]
    return reply


def test_login_identity_and_nested_groups(slapd, tmp_path):
    conf = write_conf(tmp_path, slapd.uri)
    alice = ok(conf, "alice", "alice-pw")
    assert alice == {"username": "alice", "dn": "uid=alice,ou=people," + BASE,
                     "display_name": "Alice Example", "mail": "alice@example.com",
                     "groups": ["engineering", "r&d (lab)", "staff"]}
    # the directory's spelling, whatever case was typed
    assert ok(conf, "ALICE", "alice-pw")["username"] == "alice"
    # no displayName: cn; no mail: null
    bob = ok(conf, "bob", "bob-pw")
    assert bob["display_name"] == "Bob Builder" and bob["mail"] is None
    assert bob["groups"] == ["sales"]
    # without nesting only direct groups
    flat = write_conf(tmp_path, slapd.uri, nested_groups=False)
    assert ok(flat, "alice", "alice-pw")["groups"] == ["engineering", "r&d (lab)"]


def test_wrong_empty_and_unknown(slapd, tmp_path, silent):
    conf = write_conf(tmp_path, slapd.uri)
    assert "Invalid credentials" in refused(conf, "alice", "alice-PW")["message"]
    assert "Invalid credentials" in refused(conf, "alice", "alice-pw ")["message"]
    assert "no such user" in refused(conf, "mallory", "alice-pw")["message"]
    refused(conf, "ghost", "anything")  # an entry without a password
    assert refused(conf, "twin", "twin-pw", "ENOTUNIQ")
    # an empty password is refused before any packet: pointed at a listener, nothing
    # connects (RFC 4513 unauthenticated bind: servers would answer "success")
    quiet = write_conf(tmp_path, "ldap://127.0.0.1:%d/" % silent.port)
    assert "empty password" in refused(quiet, "alice", "")["message"]
    assert "empty password" in refused(conf, "alice", "\n")["message"]
    time.sleep(0.1)
    assert silent.accepted == 0


def test_special_characters(slapd, tmp_path):
    conf = write_conf(tmp_path, slapd.uri)
    # a password full of filter and DN metacharacters is just bytes in a bind
    assert ok(conf, "dave", DAVE_PW)["groups"] == ["staff"]
    refused(conf, "dave", DAVE_PW.replace("\\", ""))
    # a DN with ( ) * is escaped when it goes into the group filter
    carol = ok(conf, "carol", "carol-pw")
    assert carol["dn"] == "cn=Carol (QA) *Star*,ou=people," + BASE
    assert sorted(carol["groups"]) == ["qa", "sales"]
    # non-ASCII login name
    zoe = ok(conf, "zo\u00eb", "zoe-pw")
    assert zoe["username"] == "zo\u00eb" and zoe["display_name"] == "Zo\u00eb Example"


@pytest.mark.parametrize("user,escaped", [
    ("*", r"uid=\2A"),
    ("ali*", r"uid=ali\2A"),
    ("alice)(|(uid=*", r"uid=alice\29\28|\28uid=\2A"),
    ("*)(uid=*))(|(uid=*", r"uid=\2A\29\28uid=\2A\29\29\28|\28uid=\2A"),
    ("\\2a", r"uid=\5C2a"),
    ("alice)(objectClass=*", r"uid=alice\29\28objectClass=\2A"),
])
def test_filter_injection(slapd, tmp_path, user, escaped):
    """Hostile names with alice's password: no login, and the filter slapd received
    holds the name as an escaped value (slapd logs escapes in upper case)."""
    conf = write_conf(tmp_path, slapd.uri)
    start = len(slapd.log())
    reply = refused(conf, user, "alice-pw")
    assert "no such user" in reply["message"]
    log = slapd.log_after(start, "marker-%d" % free_port())
    filters = [line for line in log.splitlines() if "SRCH" in line and "filter=" in line]
    assert any(escaped.lower() in line.lower() for line in filters), filters
    assert "BIND dn=\"uid=alice" not in log


def test_invalid_usernames(slapd, tmp_path):
    conf = write_conf(tmp_path, slapd.uri)
    # a NUL inside the name is refused, not cut short to "alice"
    assert "invalid username" in refused(conf, b"alice\x00", "alice-pw", "EINVAL")["message"]
    refused(conf, b"alice\x00*", "alice-pw", "EINVAL")
    refused(conf, "alice\n", "alice-pw", "EINVAL")
    refused(conf, " alice", "alice-pw", "EINVAL")
    refused(conf, "a" * 257, "alice-pw", "EINVAL")
    refused(conf, b"\xff\xfe", "alice-pw", "EINVAL")


def test_group_modes(slapd, tmp_path):
    memberof = write_conf(tmp_path, slapd.uri, group_mode="memberof")
    # memberOf values are DNs: names come from their first RDN, nesting from the groups'
    # own memberOf
    assert sorted(ok(memberof, "alice", "alice-pw")["groups"]) == \
        ["engineering", "r&d (lab)", "staff"]
    assert sorted(ok(memberof, "carol", "carol-pw")["groups"]) == ["qa", "sales"]
    unique = write_conf(tmp_path, slapd.uri, group_member_attr="uniqueMember")
    assert ok(unique, "alice", "alice-pw")["groups"] == ["auditors"]
    posix = write_conf(tmp_path, slapd.uri, group_member_attr="memberUid",
                       group_filter="(objectClass=posixGroup)")
    assert ok(posix, "bob", "bob-pw")["groups"] == ["printing"]
    assert ok(posix, "alice", "alice-pw")["groups"] == []


def test_nesting_cycles_and_depth(slapd, tmp_path):
    for mode in ("search", "memberof"):
        conf = write_conf(tmp_path, slapd.uri, group_mode=mode)
        assert sorted(ok(conf, "erin", "erin-pw")["groups"]) == ["cycle-a", "cycle-b"]
        assert sorted(ok(conf, "frank", "frank-pw")["groups"]) == \
            ["level1", "level2", "level3", "level4", "level5"]
        shallow = write_conf(tmp_path, slapd.uri, group_mode=mode, max_nesting=2)
        assert sorted(ok(shallow, "frank", "frank-pw")["groups"]) == \
            ["level1", "level2", "level3"]
        none = write_conf(tmp_path, slapd.uri, group_mode=mode, max_nesting=0)
        assert ok(none, "frank", "frank-pw")["groups"] == ["level1"]


def test_service_account(slapd, tmp_path):
    conf = write_conf(tmp_path, slapd.uri, bind_dn=SERVICE, bind_password="broker-secret")
    start = len(slapd.log())
    assert ok(conf, "alice", "alice-pw")["groups"] == ["engineering", "r&d (lab)", "staff"]
    log = slapd.log_after(start, "marker-%d" % free_port())
    assert 'BIND dn="%s"' % SERVICE in log
    # a broken service account is the service's error, not the user's wrong password
    bad = write_conf(tmp_path, slapd.uri, bind_dn=SERVICE, bind_password="wrong")
    reply = refused(bad, "alice", "alice-pw", "EIO")
    assert "service account" in reply["message"]
    # a bind_dn without password would be an unauthenticated bind: config error
    empty = write_conf(tmp_path, slapd.uri, bind_dn=SERVICE)
    reply, rc, err = authcheck(empty, "alice", "alice-pw")
    assert rc == 2 and reply is None and "bind_password is empty" in err


def test_tls(slapd, tmp_path, certs):
    starttls = write_conf(tmp_path, slapd.uri, start_tls=True, ca_file=certs["ca"])
    assert ok(starttls, "alice", "alice-pw")["username"] == "alice"
    ldaps = write_conf(tmp_path, slapd.ldaps_uri, ca_file=certs["ca"])
    assert ok(ldaps, "bob", "bob-pw")["username"] == "bob"
    # a certificate from another CA is refused, over StartTLS and ldaps alike
    start = len(slapd.log())
    wrong = write_conf(tmp_path, slapd.uri, start_tls=True, ca_file=certs["other_ca"])
    assert "StartTLS failed" in refused(wrong, "alice", "alice-pw", "EPROTO")["message"]
    wrong_ldaps = write_conf(tmp_path, slapd.ldaps_uri, ca_file=certs["other_ca"])
    reply, rc, _ = authcheck(wrong_ldaps, "alice", "alice-pw")
    assert rc == 1 and reply["error"] in ("EHOSTDOWN", "EPROTO")
    log = slapd.log_after(start, "marker-%d" % free_port())
    assert "BIND dn=\"uid=alice" not in log


def test_starttls_refused_is_fatal(slapd_plain, tmp_path, certs):
    """A server without TLS: StartTLS fails and the login stops there, nothing in
    clear text (the server saw the StartTLS request and no bind)."""
    conf = write_conf(tmp_path, slapd_plain.uri, start_tls=True, ca_file=certs["ca"])
    start = len(slapd_plain.log())
    reply = refused(conf, "alice", "alice-pw", "EPROTO")
    assert "not continuing in clear text" in reply["message"]
    log = slapd_plain.log_after(start, "marker-%d" % free_port())
    conns = [line.split("conn=")[1].split()[0] for line in log.splitlines()
             if "EXT oid=1.3.6.1.4.1.1466.20037" in line]
    assert len(conns) == 1, log
    ops = [line for line in log.splitlines() if "conn=%s " % conns[0] in line]
    assert not [line for line in ops if " BIND " in line or " SRCH " in line], ops


def test_require_tls_config(tmp_path):
    conf = write_conf(tmp_path, "ldap://ldap.example.com/")
    reply, rc, err = authcheck(conf, "alice", "alice-pw")
    assert rc == 2 and reply is None and "clear text" in err


@pytest.mark.parametrize("scheme,extra,where", [
    ("ldap", {}, "search: Timed out"),
    ("ldap", {"start_tls": True}, "StartTLS failed"),
    ("ldaps", {}, "in time"),
])
def test_timeout_on_silent_server(tmp_path, silent, certs, scheme, extra, where):
    """A server that accepts and never answers: the login ends with ETIMEDOUT after
    about the configured timeouts, it does not hang (for ldaps:// the TLS handshake
    would wait forever without the watchdog)."""
    conf = write_conf(tmp_path, "%s://127.0.0.1:%d/" % (scheme, silent.port), timeout="1s",
                      network_timeout="1s", ca_file=certs["ca"], **extra)
    t0 = time.monotonic()
    reply = refused(conf, "alice", "alice-pw", "ETIMEDOUT")
    elapsed = time.monotonic() - t0
    assert where in reply["message"]
    assert silent.accepted == 1
    assert 0.9 < elapsed < 5, elapsed


def test_timeout_in_starttls_handshake(tmp_path, silent_tls, certs):
    """StartTLS accepted, then silence during the handshake: ETIMEDOUT, no hang."""
    conf = write_conf(tmp_path, "ldap://127.0.0.1:%d/" % silent_tls.port, start_tls=True,
                      timeout="1s", network_timeout="1s", ca_file=certs["ca"])
    t0 = time.monotonic()
    reply = refused(conf, "alice", "alice-pw", "ETIMEDOUT")
    assert "in time" in reply["message"]
    assert time.monotonic() - t0 < 5


def test_unreachable_server(tmp_path):
    conf = write_conf(tmp_path, "ldap://127.0.0.1:%d/" % free_port())
    t0 = time.monotonic()
    refused(conf, "alice", "alice-pw", "EHOSTDOWN")
    assert time.monotonic() - t0 < 5


def test_referrals_not_followed(slapd, tmp_path, silent):
    """ou=remote refers to another server (a listener here): searches neither chase
    the referral nor fail because of it, and a base DN that is a referral is an error."""
    ldif = tmp_path / "referral.ldif"
    ldif.write_text("dn: ou=remote,%s\nobjectClass: referral\nobjectClass: extensibleObject\n"
                    "ou: remote\nref: ldap://127.0.0.1:%d/ou=remote,%s\n"
                    % (BASE, silent.port, BASE))
    slapd.modify(str(ldif), "-M")
    try:
        conf = write_conf(tmp_path, slapd.uri)
        assert "no such user" in refused(conf, "mallory", "x")["message"]
        assert ok(conf, "alice", "alice-pw")["username"] == "alice"
        inside = tmp_path / "inside.conf"
        inside.write_text("[auth]\nbackend = ldap\n[ldap]\nuri = %s\nbase_dn = ou=remote,%s\n"
                          % (slapd.uri, BASE))
        assert "referral" in refused(str(inside), "mallory", "x", "EIO")["message"]
        time.sleep(0.1)
        assert silent.accepted == 0
    finally:
        subprocess.run(["ldapdelete", "-x", "-M", "-H", slapd.uri, "-D", ADMIN, "-w", "secret",
                        "ou=remote," + BASE], capture_output=True, timeout=30)


def test_local_users_file(tmp_path):
    """The local backend end to end: a hash made by the vdi-passwd helper, a users file,
    logins."""
    p = subprocess.run([AUTHCHECK, "--hash", "--cost", "10"], input=b"s3cret (pw)*\n",
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    pw_hash = p.stdout.decode().strip()
    assert pw_hash.startswith("$scrypt$ln=10,r=8,p=1$")
    users = tmp_path / "users.ini"
    users.write_text("[carol]\npassword = %s\ndisplay_name = Carol\ngroups = sales, staff\n"
                     % pw_hash)
    conf = tmp_path / "local.conf"
    conf.write_text("[auth]\nbackend = local\nusers_file = %s\n" % users)
    carol = ok(str(conf), "carol", "s3cret (pw)*")
    assert carol == {"username": "carol", "dn": None, "display_name": "Carol", "mail": None,
                     "groups": ["sales", "staff"]}
    refused(str(conf), "carol", "s3cret (pw)")
    refused(str(conf), "dave", "s3cret (pw)*")
