"""A real Linux (the Debian kernel and busybox initramfs of `make guest`, the desktop
image users get) on vdi-hv: boots to its ready line, runs a command on both vCPUs,
keeps its home disk, and reboots cleanly. Where this machine has no hardware KVM, vdi-hv
runs in the KVM host in a box (conftest), unchanged."""
import os

from conftest import TOP


def test_linux_boots_on_vdi_hv(hv, tmp_path):
    kernel = os.path.join(TOP, "build", "guest", "vmlinuz")
    initrd = os.path.join(TOP, "build", "guest", "initrd.img")
    home = os.path.join(TOP, "build", "guest", "home.img")
    assert os.path.exists(kernel) and os.path.exists(initrd), "build/guest is missing: run `make guest`"
    disk = tmp_path / "home.img"
    disk.write_bytes(open(home, "rb").read())
    vm = hv(kernel, "--initrd", initrd, "--memory", "512", "--cpus", "2",
            "--cmdline", "console=ttyS0 console=tty0 panic=-1",
            "--disk", str(disk))
    vm.expect(r"VDI-GUEST-READY", timeout=300)
    vm.send_serial(b"\necho vdi-$((6*7)) && grep -c processor /proc/cpuinfo\n")
    vm.expect(r"vdi-42\s+2", timeout=60)
    vm.send_serial(b"echo persisted > /home/linux-on-vdi-hv && sync && echo synced-$((1+1))\n")
    vm.expect(r"synced-2", timeout=60)
    vm.send_serial(b"reboot -f\n")
    assert vm.wait(120) == 0
    # The file the guest wrote is on the disk image the host handed it.
    assert b"linux-on-vdi-hv" in disk.read_bytes()
