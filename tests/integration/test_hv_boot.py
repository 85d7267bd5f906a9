"""vdi-hv boots the freestanding test guests: serial console both ways, PVH and plain
64-bit entry, command line, PIT interrupts and CMOS, a second vCPU started by the guest,
exit codes for reset and crash, and command-line errors."""
import subprocess

from conftest import guest_path, hv_argv


def test_serial_echo_pvh_entry(hv):
    vm = hv("serial", "--cmdline", "console=ttyS0 quiet")
    vm.expect(r"cmdline 'console=ttyS0 quiet', entry pvh")
    vm.expect(r"serial: ready")
    vm.send_serial(b"hello vdi\n")
    vm.expect(r"echo: hello vdi")
    vm.send_serial(b"done\n")
    vm.expect(r"PASS serial")
    assert vm.wait(60) == 0


def test_plain_64bit_entry(hv):
    vm = hv(guest_path("serial-nopvh"), "--cmdline", "x=1")
    vm.expect(r"cmdline 'x=1', entry 64-bit")
    vm.expect(r"serial: ready")
    vm.send_serial(b"done\n")
    vm.expect(r"PASS serial")
    assert vm.wait(60) == 0


def test_serial_input_from_control_socket(hv):
    vm = hv("serial")
    vm.expect(r"serial: ready")
    assert vm.control({"cmd": "serial", "text": "via control\n"}) == {"ok": True}
    vm.expect(r"echo: via control")
    vm.control({"cmd": "serial", "text": "done\n"})
    assert vm.wait(60) == 0


def test_timer_interrupts_and_cmos(hv):
    vm = hv("timer")
    vm.expect(r"PASS timer", timeout=120)
    assert vm.wait(60) == 0


def test_second_vcpu_started_by_guest(hv):
    vm = hv("smp", "--cpus", "2", "--cmdline", "cpus=2")
    vm.expect(r"MP table lists 2 CPUs")
    vm.expect(r"AP with APIC id 1 is running", timeout=120)
    vm.expect(r"PASS smp")
    assert vm.wait(60) == 0


def test_four_vcpus(hv):
    vm = hv("smp", "--cpus", "4", "--cmdline", "cpus=4")
    vm.expect(r"PASS smp", timeout=180)
    assert "APIC id 3 is running" in vm.serial()
    assert vm.wait(60) == 0


def test_guest_crash_exits_nonzero_with_register_dump(hv):
    vm = hv("triplefault")
    vm.expect(r"about to fault")
    assert vm.wait(60) == 1
    err = vm.stderr()
    assert "registers" in err and "rip" in err
    assert "triple fault" in err or "internal error" in err


def test_serial_to_file(tmp_path):
    log = tmp_path / "console.log"
    p = subprocess.run(hv_argv("--kernel", guest_path("timer"), "--serial", "file:" + str(log)),
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "PASS timer" in log.read_text()
    assert p.stdout == b""


def run_hv(*args):
    return subprocess.run(hv_argv(*args), capture_output=True, text=True, timeout=30)


def test_help_documents_every_option():
    p = run_hv("--help")
    assert p.returncode == 0
    for opt in ("--kernel", "--initrd", "--cmdline", "--memory", "--cpus", "--disk",
                "--serial", "--control", "--fb"):
        assert opt in p.stdout


def test_bad_options_exit_2_with_one_line():
    cases = [
        ((), "--kernel is required"),
        (("--kernel", "x", "--memory", "abc"), "--memory: 'abc' is not a number"),
        (("--kernel", "x", "--memory", "15"), "--memory"),
        (("--kernel", "x", "--memory", "33"), "not a multiple of 2"),
        (("--kernel", "x", "--cpus", "0"), "--cpus"),
        (("--kernel", "x", "--cpus", "65"), "--cpus"),
        (("--kernel", "x", "--serial", "tcp:1"), "--serial"),
        (("--kernel", "x", "--control", "/tmp/x"), "--control"),
        (("--kernel", "x", "--fb", "10x10"), "--fb"),
        (("--kernel", "x", "--disk", "a,rw"), "--disk"),
        (("--kernel", "x", "--bogus"), "unknown option"),
        (("--kernel",), "--kernel"),
        (("--kernel", "x", "extra"), "unexpected argument"),
    ]
    for args, message in cases:
        p = run_hv(*args)
        assert p.returncode == 2, (args, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, p.stderr)


def test_bad_kernels_are_refused(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 4096)
    p = run_hv("--kernel", str(junk))
    assert p.returncode == 1 and "not a bzImage or ELF64 kernel" in p.stderr
    p = run_hv("--kernel", str(tmp_path / "missing"))
    assert p.returncode == 1 and "No such file" in p.stderr
    # an ELF whose segment claims more memory than the VM has
    elf = bytearray(open(guest_path("serial"), "rb").read())
    import struct
    phoff = struct.unpack_from("<Q", elf, 0x20)[0]
    struct.pack_into("<Q", elf, phoff + 0x28, 1 << 40)  # p_memsz of the first segment
    big = tmp_path / "big.elf"
    big.write_bytes(bytes(elf))
    p = run_hv("--kernel", str(big))
    assert p.returncode == 1 and "outside usable RAM" in p.stderr
    # a truncated bzImage header
    bz = bytearray(4096)
    bz[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", bz, 0x206, 0x0205)
    old = tmp_path / "old.bzImage"
    old.write_bytes(bytes(bz))
    p = run_hv("--kernel", str(old))
    assert p.returncode == 1 and "older than 2.06" in p.stderr
