"""vdi-hv's i8042 keyboard and mouse seen from outside: the keyboard test guest brings
the controller up as Linux does and decodes the set-1 scan codes it gets on IRQ 1; text
and key combinations go in over the control socket ("type", "sendkey") and what the
guest decoded comes back on its serial console. The mouse guest checks the PS/2 mouse
bring-up (reset, IntelliMouse id) and its IRQ 12 path."""
import re

BOOT_TIMEOUT = 120
KEY_TIMEOUT = 120


def scancodes(vm, start=0):
    """The scan code bytes the guest reported from serial offset start, in order."""
    return [int(b, 16) for b in re.findall(r"keyboard: scancode ([0-9a-f]{2})", vm.serial()[start:])]


def ok(reply):
    assert reply.get("ok") is True, reply
    return reply


def test_type_text_and_combinations(hv):
    vm = hv("keyboard")
    vm.expect(r"keyboard: ready", timeout=BOOT_TIMEOUT)

    mark = len(vm.serial())
    assert ok(vm.control({"cmd": "type", "text": "hello World\n"}))["queued"] == 12
    vm.expect(r"keyboard: line hello World\r?\n", timeout=KEY_TIMEOUT, start=mark)
    vm.expect(r"keyboard: scancode 9c", timeout=KEY_TIMEOUT, start=mark)  # Enter's break
    codes = scancodes(vm, mark)
    # h: make 0x23, break 0xa3; W: left Shift around it (0x2a ... 0xaa); Enter 0x1c/0x9c
    assert codes[:2] == [0x23, 0xA3]
    w = codes.index(0x11)
    assert codes[w - 1] == 0x2A and codes[w + 1:w + 3] == [0x91, 0xAA]
    assert codes[-2:] == [0x1C, 0x9C]
    assert len(codes) == 2 * 12 + 2  # one make and one break per key, plus Shift

    mark = len(vm.serial())
    ok(vm.control({"cmd": "sendkey", "key": "shift-a"}))
    ok(vm.control({"cmd": "sendkey", "key": "ret"}))
    vm.expect(r"keyboard: line A\r?\n", timeout=KEY_TIMEOUT, start=mark)
    vm.expect(r"keyboard: scancode 9c", timeout=KEY_TIMEOUT, start=mark)
    assert scancodes(vm, mark) == [0x2A, 0x1E, 0x9E, 0xAA, 0x1C, 0x9C]

    # E0-prefixed keys, pressed in order and released in reverse.
    mark = len(vm.serial())
    ok(vm.control({"cmd": "sendkey", "key": "ctrl-alt-delete"}))
    vm.expect(r"keyboard: key e0 53", timeout=KEY_TIMEOUT, start=mark)
    vm.expect(r"keyboard: scancode 9d", timeout=KEY_TIMEOUT, start=mark)
    assert scancodes(vm, mark) == [0x1D, 0x38, 0xE0, 0x53, 0xE0, 0xD3, 0xB8, 0x9D]

    # Print and Pause send their long sequences (Pause has no break code).
    mark = len(vm.serial())
    ok(vm.control({"cmd": "sendkey", "key": "print"}))
    ok(vm.control({"cmd": "sendkey", "key": "pause"}))
    vm.expect(r"keyboard: key pause", timeout=KEY_TIMEOUT, start=mark)
    vm.expect(r"keyboard: scancode c5", timeout=KEY_TIMEOUT, start=mark)
    assert scancodes(vm, mark) == [0xE0, 0x2A, 0xE0, 0x37, 0xE0, 0xB7, 0xE0, 0xAA,
                                   0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5]

    ok(vm.control({"cmd": "type", "text": "done\n"}))
    vm.expect(r"PASS keyboard", timeout=KEY_TIMEOUT)
    assert vm.wait(60) == 0


def test_caps_lock_led_command_while_typing(hv):
    """Caps Lock makes the guest send Set LEDs (0xED) with keys still arriving: the
    acknowledgements come back through the same queue and no key is lost."""
    vm = hv("keyboard")
    vm.expect(r"keyboard: ready", timeout=BOOT_TIMEOUT)
    ok(vm.control({"cmd": "sendkey", "key": "caps_lock"}))
    ok(vm.control({"cmd": "type", "text": "abc\n"}))
    vm.expect(r"keyboard: leds 4", timeout=KEY_TIMEOUT)
    vm.expect(r"keyboard: line ABC\r?\n", timeout=KEY_TIMEOUT)
    ok(vm.control({"cmd": "sendkey", "key": "caps_lock"}))
    ok(vm.control({"cmd": "type", "text": "x"}))
    ok(vm.control({"cmd": "sendkey", "key": "backspace"}))
    ok(vm.control({"cmd": "type", "text": "done\n"}))
    vm.expect(r"keyboard: leds 0", timeout=KEY_TIMEOUT)
    vm.expect(r"keyboard: line done\r?\n", timeout=KEY_TIMEOUT)
    vm.expect(r"PASS keyboard", timeout=KEY_TIMEOUT)
    assert vm.wait(60) == 0


def test_bad_keys_are_refused_and_typing_goes_on(hv):
    vm = hv("keyboard")
    vm.expect(r"keyboard: ready", timeout=BOOT_TIMEOUT)
    for key in ("nosuchkey", "ctrl-", "ctrl--a", ""):
        reply = vm.control({"cmd": "sendkey", "key": key})
        assert "error" in reply, (key, reply)
    reply = vm.control({"cmd": "type", "text": "caf\u00e9\n"})
    assert "error" in reply
    ok(vm.control({"cmd": "type", "text": "done\n"}))
    vm.expect(r"PASS keyboard", timeout=KEY_TIMEOUT)
    assert "keyboard: line caf" not in vm.serial()
    assert vm.wait(60) == 0


def test_mouse_bring_up(hv):
    """Reset, IntelliMouse knock (id 3), and a packet looped back through the
    controller (0xD3) reaching the guest on IRQ 12 and decoding as sent."""
    vm = hv("mouse")
    vm.expect(r"mouse: ready id=3", timeout=BOOT_TIMEOUT)
    vm.expect(r"mouse: dx=5 dy=3 dz=-1 buttons=1", timeout=KEY_TIMEOUT)
    ok(vm.control({"cmd": "serial", "text": "done\n"}))
    vm.expect(r"PASS mouse", timeout=KEY_TIMEOUT)
    assert vm.wait(60) == 0


def test_mouse_input_from_host(hv):
    vm = hv("mouse")
    vm.expect(r"mouse: ready id=3", timeout=BOOT_TIMEOUT)
    # the guest's own loopback packet comes first; host packets must not interleave
    vm.expect(r"mouse: dx=5 dy=3 dz=-1 buttons=1", timeout=KEY_TIMEOUT)
    ok(vm.control({"cmd": "mouse", "dx": 7, "dy": -2, "dz": 1, "buttons": 4}))
    vm.expect(r"mouse: dx=7 dy=-2 dz=1 buttons=4", timeout=KEY_TIMEOUT)
    # a long move arrives whole, split into packets of at most 255
    ok(vm.control({"cmd": "mouse", "dx": 600, "dy": 0, "dz": 0, "buttons": 0}))
    vm.expect(r"mouse: dx=90 dy=0 dz=0 buttons=0", timeout=KEY_TIMEOUT)
    assert len(re.findall(r"mouse: dx=255 dy=0 dz=0 buttons=0", vm.serial())) == 2
    ok(vm.control({"cmd": "serial", "text": "done\n"}))
    vm.expect(r"PASS mouse", timeout=KEY_TIMEOUT)
    assert vm.wait(60) == 0
