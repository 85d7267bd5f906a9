"""Started as root with `[broker] user`, vdi-broker becomes that user before it makes a
file: its process has the user's uid and gid, no capability but CAP_NET_BIND_SERVICE and
no_new_privs, its state directory and database belong to the user, and it serves logins.
Without `user`, root is kept and a warning says how to drop it."""
import os
import pwd
import shutil
import tempfile

import pytest

from broker_fixture import BROKER, Broker

pytestmark = [
    pytest.mark.skipif(not os.path.exists(BROKER), reason="vdi-broker not built"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop it"),
]
CAP_NET_BIND_SERVICE = 1 << 10


def status_of(pid):
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return fields


def test_broker_runs_as_its_user():
    nobody = pwd.getpwnam("nobody")
    work = tempfile.mkdtemp(prefix="vdi-priv-", dir="/tmp")  # not under root's 0700 tmp
    try:
        os.chown(work, nobody.pw_uid, nobody.pw_gid)
        b = Broker(work, "[broker]\nuser = nobody\n")
        b.start()
        try:
            st = status_of(b.proc.pid)
            assert st["Uid"] == [str(nobody.pw_uid)] * 4, st["Uid"]
            assert st["Gid"] == [str(nobody.pw_gid)] * 4, st["Gid"]
            assert int(st["CapEff"][0], 16) == CAP_NET_BIND_SERVICE, st["CapEff"]
            assert int(st["CapPrm"][0], 16) == CAP_NET_BIND_SERVICE, st["CapPrm"]
            assert st["NoNewPrivs"] == ["1"]
            assert os.stat(os.path.join(b.state, "broker.db")).st_uid == nobody.pw_uid
            assert "running as user nobody" in b.log()
            assert b.client().request("GET", "/api/v1/session").status == 401  # serving
        finally:
            assert b.stop() == 0, b.log()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_root_without_a_user_is_warned(tmp_path):
    b = Broker(str(tmp_path))
    b.start()
    try:
        assert "running as root: set `user`" in b.log()
    finally:
        assert b.stop() == 0, b.log()
