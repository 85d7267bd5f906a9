"""The vdi-hv control socket: one JSON object per line, replies {"ok": ...} or
{"error": ...}; pause/resume/quit act on the VM; bad requests are refused and the VM
keeps running."""
import os
import stat
import time


def test_status_pause_resume_quit(hv):
    vm = hv("serial")
    vm.expect(r"serial: ready")
    st = vm.control({"cmd": "status"})
    assert st["ok"] is True and st["state"] == "running" and st["vcpus"] == 1
    assert st["uptime"] > 0 and st["exits"]["io"] > 0
    assert stat.S_IMODE(os.stat(vm.control_path).st_mode) == 0o600

    assert vm.control({"cmd": "pause"}) == {"ok": True}
    assert vm.control({"cmd": "status"})["state"] == "paused"
    # a paused guest does not see its input until resumed
    vm.control({"cmd": "serial", "text": "while paused\n"})
    time.sleep(1)
    assert "echo: while paused" not in vm.serial()
    assert vm.control({"cmd": "resume"}) == {"ok": True}
    vm.expect(r"echo: while paused")
    assert vm.control({"cmd": "status"})["state"] == "running"

    assert vm.control({"cmd": "quit"}) == {"ok": True}
    assert vm.wait(30) == 0
    assert not os.path.exists(vm.control_path)


def test_bad_requests_get_errors_and_the_vm_survives(hv):
    vm = hv("serial")
    vm.expect(r"serial: ready")
    bad = [
        (b"not json\n", "malformed JSON"),
        (b"[1,2,3]\n", "expected a JSON object"),
        (b'{"cmd":"frobnicate"}\n', "unknown command"),
        (b'{"nocmd":1}\n', "missing field 'cmd'"),
        (b'{"cmd":"status","extra":1}\n', "unknown field 'extra'"),
        (b'{"cmd":"sendkey"}\n', "missing field 'key'"),
        (b'{"cmd":"sendkey","key":"nosuchkey"}\n', "unknown key"),
        (b'{"cmd":"sendkey","key":7}\n', "must be a string"),
        (b'{"cmd":"type","text":"\\u00e9"}\n', "cannot type"),
        (b'{"cmd":"screendump","path":"relative.png"}\n', "absolute"),
        (b'{"cmd":1}\n', "missing field 'cmd'"),
    ]
    for line, message in bad:
        reply = vm.control_raw(line)
        assert "error" in reply and message in reply["error"], (line, reply)
    # an over-long line is refused once and the connection keeps working
    reply = vm.control_raw(b"x" * 70000 + b"\n")
    assert "too long" in reply["error"]
    assert vm.control({"cmd": "status"})["ok"] is True
    # a client that disconnects mid-line does no harm
    s = vm.connect()
    s.sendall(b'{"cmd":"sta')
    s.close()
    vm.send_serial(b"done\n")
    vm.expect(r"PASS serial")
    assert vm.wait(30) == 0


def test_many_clients(hv):
    vm = hv("serial")
    vm.expect(r"serial: ready")
    socks = [vm.connect() for _ in range(20)]
    # beyond the limit a client is told so; the others still work
    answered = 0
    for s in socks:
        s.settimeout(5)
        try:
            s.sendall(b'{"cmd":"status"}\n')
            data = s.recv(4096)
            if b'"ok":true' in data:
                answered += 1
            else:
                assert b"too many control clients" in data
        except OSError:
            pass
    assert answered >= 15
    for s in socks:
        s.close()
    # once the closes are seen, a new client is served again
    deadline = time.monotonic() + 10
    while True:
        reply = vm.control({"cmd": "status"})
        if reply.get("ok") or time.monotonic() > deadline:
            break
        vm._sock.close()
        vm._sock = None
        time.sleep(0.1)
    assert reply["ok"] is True
