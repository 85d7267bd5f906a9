"""Pool templates checked with the hosts that would run them: a real vdi-broker and a
real vdi-hostd (engine qemu; no VM is started) on loopback. A pool whose kernel is
missing, is not a kernel, whose disk is missing or whose file lies outside the host's
template directories is refused with 400 naming the file and the host (vdictl prints
it); a valid one is accepted; a pool no host can check yet is accepted with a warning.
A template that breaks after the pool was accepted puts its desktop in error with the
host's reason, once, instead of being retried every second."""
import os
import shutil
import time
from types import SimpleNamespace

import pytest

from broker_fixture import BROKER, Broker, free_port, hosts_section, wait
from hostd_fixture import HOSTD, Hostd, heartbeat_section

pytestmark = [
    pytest.mark.skipif(not os.path.exists(BROKER), reason="vdi-broker not built"),
    pytest.mark.skipif(not os.path.exists(HOSTD), reason="vdi-hostd not built"),
]


def bzimage(size=65536):
    """The header of a bzImage (boot protocol 2.15, loads high, 64-bit entry): all the
    template check reads of a kernel."""
    k = bytearray(size)
    k[0x1F1] = 4
    k[0x202:0x206] = b"HdrS"
    k[0x206:0x208] = (0x20F).to_bytes(2, "little")
    k[0x211] = 0x01
    k[0x236:0x238] = (0x01).to_bytes(2, "little")
    return bytes(k)


@pytest.fixture(scope="module")
def env(tmp_path_factory, certs):
    work = tmp_path_factory.mktemp("broker-templates")
    tpl = work / "tpl"
    tpl.mkdir()
    (tpl / "vmlinuz").write_bytes(bzimage())
    (tpl / "junk.bin").write_bytes(os.urandom(65536))
    (tpl / "base.img").write_bytes(bytes(1 << 20))
    (work / "secret").mkdir()
    (work / "secret" / "vmlinuz").write_bytes(bzimage())
    hb_port = free_port()
    (work / "broker").mkdir()
    (work / "hostd-work").mkdir()
    broker = Broker(str(work / "broker"), f"""
[broker]
admin_users = admin
maintenance_interval = 1s
""" + hosts_section(certs, hb_port, host_timeout="5s"))
    broker.add_user("admin", "admin-pw")
    hostd = Hostd(work / "hostd-work", certs, str(tpl),
                  heartbeat_section(hb_port) +
                  "[desktops]\ndefault_engine = qemu\n")
    try:
        broker.start()
        admin = broker.client()
        admin.login("admin", "admin-pw", bearer=True)
        # before any host: a pool is accepted, with a warning saying it was not checked
        for pid, kernel in (("early", "vmlinux-missing"), ("early-ok", "vmlinuz")):
            r = admin.request("POST", "/api/v1/admin/pools", pool(pid, kernel))
            assert r.status == 201, r
            assert "template not checked: no host is up" in r.json["template_warning"], r.json
        hostd.start()
        admin.ok("POST", "/api/v1/admin/hosts",
                 {"id": "test-host", "url": "https://127.0.0.1:%d" % hostd.api_port,
                  "relay": "127.0.0.1:%d" % hostd.relay_port}, expect=(201,))
        wait("the host up", lambda: [h for h in admin.ok("GET", "/api/v1/admin/hosts")["hosts"]
                                     if h["id"] == "test-host" and h["up"]])
        broker.vdictl("login", "admin", stdin="admin-pw\n")
        yield SimpleNamespace(broker=broker, hostd=hostd, admin=admin, tpl=tpl, work=work)
    finally:
        hostd_status = hostd.stop()
        hostd.kill_vms()
        status = broker.stop()
    assert status == 0, "vdi-broker did not exit cleanly:\n" + broker.log()
    assert hostd_status in (0, None), hostd.log()


def pool(pid, kernel="vmlinuz", disk="base.img", **extra):
    body = {"id": pid, "kind": "floating", "source": "automated", "min": 0, "max": 1,
            "spare": 0, "memory_mib": 128,
            "template": {"engine": "qemu", "kernel": kernel, "disk": disk}}
    body.update(extra)
    return body


def refused(env, body, field, name, why):
    """Creates the pool, expects 400 naming the file, the host and its template
    directories; returns the message."""
    r = env.admin.request("POST", "/api/v1/admin/pools", body)
    assert (r.status, r.json["code"]) == (400, "bad_request"), r
    msg = r.json["error"]
    assert f"template: {field} '{name}' {why}" in msg, msg
    assert "on host test-host" in msg and f"(template_dirs {env.tpl})" in msg, msg
    assert env.admin.request("GET", "/api/v1/admin/pools/" + body["id"]).status == 404
    return msg


def test_missing_kernel_is_refused_naming_file_and_host(env):
    refused(env, pool("p-missing", "vmlinux-missing"), "kernel", "vmlinux-missing",
            "not found in the template directories")
    # vdictl says so, and does not say "pool created"
    p = env.broker.vdictl("pools", "create", "p-missing", "--kind", "floating", "--source",
                          "automated", "--engine", "qemu", "--kernel", "vmlinux-missing",
                          "--disk", "base.img", check=False)
    err = p.stderr.decode()
    assert p.returncode == 1, (p.stdout, err)
    assert "pool created" not in p.stdout.decode()
    assert "vdictl: pool 'p-missing' not created (HTTP 400):" in err, err
    assert ("  template: kernel 'vmlinux-missing' not found in the template directories on "
            f"host test-host (template_dirs {env.tpl})") in err, err
    # the refusal is audited
    audit = env.admin.ok("GET", "/api/v1/admin/audit?limit=50")
    rows = [a for a in audit["entries"] if a["action"] == "pool_create" and
            a["result"] == "failure" and a["target"] == "p-missing"]
    assert rows and "vmlinux-missing" in rows[0]["detail"], audit


def test_random_bytes_are_not_a_kernel(env):
    refused(env, pool("p-junk", "junk.bin"), "kernel", "junk.bin",
            "is not a kernel qemu can load")


def test_missing_disk_is_refused(env):
    msg = refused(env, pool("p-nodisk", disk="nodisk.img"), "disk", "nodisk.img",
                  "not found in the template directories")
    assert "kernel" not in msg, msg  # the kernel is fine


def test_files_outside_the_template_directories_are_refused(env):
    refused(env, pool("p-escape", "../secret/vmlinuz"), "kernel", "../secret/vmlinuz",
            "is outside the template directories")
    refused(env, pool("p-abs", disk="/etc/passwd"), "disk", "/etc/passwd",
            "is outside the template directories")


def test_valid_template_is_accepted_and_updates_are_checked(env):
    r = env.admin.request("POST", "/api/v1/admin/pools", pool("p-good"))
    assert r.status == 201, (r, env.broker.log()[-2000:])
    assert r.json["template_warning"] is None
    p = env.broker.vdictl("pools", "create", "p-good2", "--kind", "floating", "--source",
                          "automated", "--engine", "qemu", "--kernel", "vmlinuz", "--disk",
                          "base.img", "--max", "0")
    assert p.stdout.decode().strip() == "pool created" and not p.stderr, p
    # an update to a broken template is refused the same way, and the pool keeps its own
    p = env.broker.vdictl("pools", "update", "p-good", "--kernel", "junk.bin", check=False)
    err = p.stderr.decode()
    assert p.returncode == 1 and "pool 'p-good' not updated (HTTP 400)" in err, err
    assert "  template: kernel 'junk.bin' is not a kernel qemu can load" in err, err
    assert "on host test-host" in err, err
    got = env.admin.ok("GET", "/api/v1/admin/pools/p-good")
    assert got["template"] == {"engine": "qemu", "kernel": "vmlinuz", "disk": "base.img"}
    # more memory than the host allows
    r = env.admin.request("PUT", "/api/v1/admin/pools/p-good", {"memory_mib": 65536})
    assert r.status == 400 and "host test-host" in r.json["error"], r
    assert "memory_mib" in r.json["error"], r
    p = env.broker.vdictl("pools", "update", "p-good", "--disk", "base.img", "--vcpus", "2")
    assert p.stdout.decode().strip() == "pool updated", p


def test_pool_no_host_can_check_is_accepted_with_a_warning(env):
    r = env.admin.request("POST", "/api/v1/admin/pools",
                          pool("p-later", "vmlinux-missing", hosts="host-not-yet"))
    assert r.status == 201, r
    warning = r.json["template_warning"]
    assert "template not checked: no host is up with engine qemu among the pool's hosts" in \
        warning, warning
    assert env.admin.ok("GET", "/api/v1/admin/pools/p-later")["template_warning"] == warning
    assert "pool=p-later: template not checked" in env.broker.log()
    p = env.broker.vdictl("pools", "create", "p-later2", "--kind", "floating", "--source",
                          "automated", "--engine", "qemu", "--kernel", "vmlinuz", "--disk",
                          "base.img", "--hosts", "host-not-yet")
    assert p.stdout.decode().strip() == "pool created"
    assert "vdictl: warning: pool 'p-later2': template not checked" in p.stderr.decode()
    # the pools made before any host was registered were checked once one was up: the
    # warning of the good one went, the other's says what the host refuses
    wait("early-ok checked", lambda: env.admin.ok(
        "GET", "/api/v1/admin/pools/early-ok")["template_warning"] is None)

    def early_refused():
        p = env.admin.ok("GET", "/api/v1/admin/pools/early")
        return p if "not found" in p["template_warning"] else None
    early = wait("early checked", early_refused)
    assert early["template_warning"].startswith(
        "template: kernel 'vmlinux-missing' not found in the template directories on host "
        "test-host"), early
    assert "pool=early-ok: template checked by the hosts now up: accepted" in env.broker.log()


def test_template_broken_after_creation_fails_the_desktop_once(env):
    shutil.copyfile(env.tpl / "vmlinuz", env.tpl / "vmlinuz-gone")
    env.admin.ok("POST", "/api/v1/admin/pools", pool("p-gone", "vmlinuz-gone"), expect=(201,))
    os.unlink(env.tpl / "vmlinuz-gone")
    # the pool now wants a desktop (spare is not part of the template: not checked again)
    env.admin.ok("PUT", "/api/v1/admin/pools/p-gone", {"spare": 1})

    def failed():
        ds = env.admin.ok("GET", "/api/v1/admin/pools/p-gone")["desktops"]
        return [d for d in ds if d["state"] == "error"]

    desk = wait("the desktop in error", failed)[0]
    assert ("host test-host refused the template: template file 'vmlinuz-gone' not found in "
            "the template directories") in desk["failure"], desk
    did = desk["id"]
    time.sleep(3)  # three more maintenance passes
    ds = env.admin.ok("GET", "/api/v1/admin/pools/p-gone")["desktops"]
    assert [(d["id"], d["state"]) for d in ds] == [(did, "error")], ds
    log = env.broker.log()
    assert log.count(f"desktop={did} pool=p-gone host=test-host: in error:") == 1, log
    # counted against its pool as any failure is (back-off; degraded after three in a row)
    assert log.count(f"desktop={did} pool=p-gone failed (1 in a row): host test-host "
                     "refused the template") == 1, log
    assert env.admin.ok("GET", "/api/v1/admin/pools/p-gone")["failures"] == 1
    # one create asked, refused once
    assert log.count("host=test-host: POST /api/v1/desktops: HTTP 400: template file "
                     "'vmlinuz-gone'") == 1, log
    hostd_log = env.hostd.log()
    assert hostd_log.count(did) <= 1, hostd_log
    audit = env.admin.ok("GET", "/api/v1/admin/audit?limit=50")
    rows = [a for a in audit["entries"] if a["action"] == "desktop_error" and
            a["target"] == did]
    assert len(rows) == 1 and "vmlinuz-gone" in rows[0]["detail"], rows
    # a template every host accepts again: the desktop in error is removed (spare 0: no
    # new one, which would start QEMU on a header that is only a kernel's)
    p = env.broker.vdictl("pools", "update", "p-gone", "--kernel", "vmlinuz", "--spare", "0")
    assert p.stdout.decode().strip() == "pool updated", p
    wait("the desktop in error gone",
         lambda: env.admin.ok("GET", "/api/v1/admin/pools/p-gone")["desktops"] == [])
