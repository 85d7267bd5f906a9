"""vdi-hv's virtio tablet seen from outside: the virtio_input test guest brings the
device up like a driver (config, MSI-X, event and status queues) and prints every event
it gets; the control socket's "pointer" verb moves the absolute pointer as a VNC viewer
would (framebuffer pixels, RFB button mask). Without a ready tablet the same verb falls
back to the PS/2 mouse, checked with the mouse guest."""
import re

import pytest

BOOT_TIMEOUT = 60
EVENT_TIMEOUT = 60
ABS_MAX = 32767


def scale(v, size):
    """The axis value for pixel v on a screen of size pixels (hv/dev/virtio_input.h)."""
    v = max(0, min(v, size - 1))
    return (v * ABS_MAX + (size - 1) // 2) // (size - 1)


def pointer(vm, **fields):
    """Sends the pointer verb; skips the test while vdi-hv does not have it."""
    reply = vm.control(dict({"cmd": "pointer"}, **fields))
    if "unknown command" in str(reply.get("error", "")):
        pytest.skip("vdi-hv has no 'pointer' control verb yet (hv/control.c): %s" % reply["error"])
    assert reply.get("ok") is True, reply
    return reply


def boot_tablet_guest(hv, *extra):
    vm = hv("virtio_input", *extra)
    m = vm.expect(r"virtio-input: ready|FAIL virtio-input: [^\r\n]*\r?\n", timeout=BOOT_TIMEOUT)
    if "no virtio-input device" in m.group(0):
        pytest.skip("this vdi-hv creates no virtio tablet (hv/main.c)")
    assert m.group(0).startswith("virtio-input: ready"), vm.serial()
    return vm


def events(vm, start=0):
    return [tuple(int(v) for v in e) for e in
            re.findall(r"input: type=(\d+) code=(\d+) value=(-?\d+)", vm.serial()[start:])]


def test_tablet_config_and_events(hv):
    vm = boot_tablet_guest(hv)
    out = vm.serial()
    assert "virtio-input: name 'vdi tablet'" in out
    assert "virtio-input: abs x 0..32767" in out and "virtio-input: abs y 0..32767" in out

    mark = len(vm.serial())
    assert pointer(vm, x=512, y=384, buttons=0).get("device") == "tablet"
    vm.expect(r"input: type=0 code=0 value=0", timeout=EVENT_TIMEOUT, start=mark)
    assert events(vm, mark) == [(3, 0, scale(512, 1024)), (3, 1, scale(384, 768)), (0, 0, 0)]

    # Off the screen is clamped to the edge; a wheel step down is REL_WHEEL -1.
    mark = len(vm.serial())
    pointer(vm, x=5000, y=99999, wheel=-1)
    vm.expect(r"input: type=0 code=0 value=0", timeout=EVENT_TIMEOUT, start=mark)
    assert events(vm, mark) == [(3, 0, ABS_MAX), (3, 1, ABS_MAX), (2, 8, -1), (0, 0, 0)]

    # Right button (RFB 4) then left (RFB 1): BTN_RIGHT 0x111, BTN_LEFT 0x110; the guest
    # passes on the left press.
    mark = len(vm.serial())
    pointer(vm, x=0, y=0, buttons=4)
    vm.expect(r"input: type=1 code=273 value=1", timeout=EVENT_TIMEOUT, start=mark)
    pointer(vm, x=0, y=0, buttons=1)
    vm.expect(r"PASS virtio-input", timeout=EVENT_TIMEOUT)
    assert events(vm, mark) == [(3, 0, 0), (3, 1, 0), (1, 273, 1), (0, 0, 0), (1, 272, 1)]
    assert vm.wait(BOOT_TIMEOUT) == 0


def test_tablet_other_geometry(hv):
    vm = boot_tablet_guest(hv, "--fb", "800x600")
    mark = len(vm.serial())
    pointer(vm, x=799, y=300)
    vm.expect(r"input: type=0 code=0 value=0", timeout=EVENT_TIMEOUT, start=mark)
    assert events(vm, mark) == [(3, 0, ABS_MAX), (3, 1, scale(300, 600)), (0, 0, 0)]
    pointer(vm, x=799, y=300, buttons=1)
    vm.expect(r"PASS virtio-input", timeout=EVENT_TIMEOUT)
    assert vm.wait(BOOT_TIMEOUT) == 0


def test_pointer_falls_back_to_ps2(hv):
    """The mouse guest never drives the tablet: the verb moves the PS/2 mouse by the
    difference to the previous position, buttons translated from RFB to PS/2 order."""
    vm = hv("mouse")
    vm.expect(r"mouse: ready id=3", timeout=BOOT_TIMEOUT)
    vm.expect(r"mouse: dx=5 dy=3 dz=-1 buttons=1", timeout=EVENT_TIMEOUT)  # its loopback
    reply = pointer(vm, x=100, y=100)
    assert reply.get("device") == "ps2", reply
    mark = len(vm.serial())
    pointer(vm, x=110, y=95, buttons=4)  # RFB right = PS/2 bit 2
    vm.expect(r"mouse: dx=10 dy=-5 dz=0 buttons=2", timeout=EVENT_TIMEOUT, start=mark)
    mark = len(vm.serial())
    pointer(vm, x=110, y=95, buttons=2, wheel=1)  # RFB middle = PS/2 bit 4
    vm.expect(r"mouse: dx=0 dy=0 dz=1 buttons=4", timeout=EVENT_TIMEOUT, start=mark)
    vm.control({"cmd": "serial", "text": "done\n"})
    vm.expect(r"PASS mouse", timeout=EVENT_TIMEOUT)
    assert vm.wait(BOOT_TIMEOUT) == 0


def test_pointer_bad_requests(hv):
    vm = boot_tablet_guest(hv)
    pointer(vm, x=1, y=1)
    for bad in ({"x": 1}, {"x": "a", "y": 1}, {"x": 1, "y": 1, "buttons": 99},
                {"x": 1, "y": 1, "extra": 1}):
        reply = vm.control(dict({"cmd": "pointer"}, **bad))
        assert isinstance(reply.get("error"), str) and reply["error"], (bad, reply)
    assert vm.control({"cmd": "status"}).get("ok") is True
    pointer(vm, x=2, y=2, buttons=1)
    vm.expect(r"PASS virtio-input", timeout=EVENT_TIMEOUT)
    assert vm.wait(BOOT_TIMEOUT) == 0
