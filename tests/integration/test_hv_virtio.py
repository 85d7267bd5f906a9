"""vdi-hv's PCI bus and virtio-blk seen from outside: the virtio_blk test guest finds the
disk on PCI, writes a pattern, flushes, reads it back and reads the serial; the image file
must then hold the pattern. Read-only disks refuse writes. The hostile guests feed the
device looping chains, buffers outside RAM and huge lengths: vdi-hv must neither crash nor
hang, must log the broken device, and must leave the image untouched. Keep
pattern_byte() in step with tests/guest/virtio_blk.c."""
import fcntl
import os

BOOT_TIMEOUT = 90
SECTOR = 512
MARKER = b"vdi virtio-blk test image"
PATTERN_SECTOR, PATTERN_SECTORS = 1, 4
BROKEN = "driver error, device needs reset"


def pattern_byte(sector, i):
    return (sector * 31 + i * 7) & 0xFF


def make_image(path, sectors):
    """A raw image of sectors zero sectors with the marker the guest looks for at 0."""
    data = bytearray(sectors * SECTOR)
    data[:len(MARKER)] = MARKER
    path.write_bytes(bytes(data))
    return bytes(data)


def test_virtio_blk_write_flush_read(hv, tmp_path):
    img = tmp_path / "vdi-disk-0001.img"
    before = make_image(img, 2048)
    vm = hv("virtio_blk", "--disk", str(img))
    vm.expect(r"PASS virtio-blk", timeout=BOOT_TIMEOUT)
    assert vm.wait(BOOT_TIMEOUT) == 0
    out = vm.serial()
    assert "virtio-blk: found 00:" in out
    assert "capacity 2048 sectors" in out
    assert "read back matches" in out
    # GET_ID: the file name (20 bytes at most).
    assert "serial 'vdi-disk-0001.img'" in out

    after = img.read_bytes()
    assert len(after) == len(before)
    for s in range(PATTERN_SECTOR, PATTERN_SECTOR + PATTERN_SECTORS):
        want = bytes(pattern_byte(s, i) for i in range(SECTOR))
        assert after[s * SECTOR:(s + 1) * SECTOR] == want, "sector %d" % s
    # Nothing else changed.
    end = (PATTERN_SECTOR + PATTERN_SECTORS) * SECTOR
    assert after[:PATTERN_SECTOR * SECTOR] == before[:PATTERN_SECTOR * SECTOR]
    assert after[end:] == before[end:]
    assert "virtio-blk 00:" in vm.stderr() and "2048 sectors" in vm.stderr()
    assert BROKEN not in vm.stderr()


def test_virtio_blk_read_only(hv, tmp_path):
    img = tmp_path / "ro.img"
    before = make_image(img, 64)
    vm = hv("virtio_blk", "--disk", str(img) + ",ro")
    vm.expect(r"PASS virtio-blk", timeout=BOOT_TIMEOUT)
    assert vm.wait(BOOT_TIMEOUT) == 0
    assert "read-only, write refused" in vm.serial()
    assert img.read_bytes() == before


def test_virtio_blk_long_serial_is_cut_at_20_bytes(hv, tmp_path):
    img = tmp_path / "a-rather-long-image-name-for-a-disk.raw"
    make_image(img, 64)
    vm = hv("virtio_blk", "--disk", str(img))
    vm.expect(r"PASS virtio-blk", timeout=BOOT_TIMEOUT)
    assert vm.wait(BOOT_TIMEOUT) == 0
    assert "serial 'a-rather-long-image-'" in vm.serial()


def test_two_disks_take_two_slots(hv, tmp_path):
    first, second = tmp_path / "first.img", tmp_path / "second.img"
    make_image(first, 64)
    second_before = make_image(second, 64)
    vm = hv("virtio_blk", "--disk", str(first), "--disk", str(second))
    vm.expect(r"PASS virtio-blk", timeout=BOOT_TIMEOUT)
    assert vm.wait(BOOT_TIMEOUT) == 0
    err = vm.stderr()
    assert "first.img" in err and "second.img" in err
    # The guest used the first disk it found; the second is untouched.
    assert "serial 'first.img'" in vm.serial()
    assert second.read_bytes() == second_before


def test_missing_image_is_an_error(hv, tmp_path):
    vm = hv("virtio_blk", "--disk", str(tmp_path / "missing.img"))
    assert vm.wait(BOOT_TIMEOUT) != 0
    assert "missing.img" in vm.stderr()


def test_image_in_use_by_another_vm_is_refused(hv, tmp_path):
    img = tmp_path / "shared.img"
    make_image(img, 64)
    fd = os.open(str(img), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        vm = hv("virtio_blk", "--disk", str(img))
        assert vm.wait(BOOT_TIMEOUT) != 0
        assert "cannot lock" in vm.stderr()
    finally:
        os.close(fd)


def run_hostile(hv, tmp_path, guest, expected):
    """Boots a hostile guest on a 64 KiB disk: it must pass, vdi-hv must exit 0 on its
    reset, log the broken device once per case, and leave the image as it was."""
    img = tmp_path / "hostile.img"
    before = make_image(img, 128)
    vm = hv(guest, "--disk", str(img))
    vm.expect(r"PASS " + guest.replace("_", "-"), timeout=BOOT_TIMEOUT)
    assert vm.wait(BOOT_TIMEOUT) == 0
    err = vm.stderr()
    broken = [line for line in err.splitlines() if BROKEN in line]
    assert len(broken) == len(expected), err
    for line, why in zip(broken, expected):
        assert "virtio-blk 00:" in line and why in line, (line, why)
    assert "FAIL" not in vm.serial()
    assert img.read_bytes() == before
    return vm


def test_hostile_descriptor_loops(hv, tmp_path):
    vm = run_hostile(hv, tmp_path, "virtio_hostile_loop", [
        "loops", "loops", "loops", "loops", "indirect descriptor inside an indirect table"])
    assert vm.serial().count("config interrupt seen") == 5


def test_hostile_addresses_outside_ram(hv, tmp_path):
    run_hostile(hv, tmp_path, "virtio_hostile_range", [
        "outside guest RAM", "outside guest RAM", "outside guest RAM", "wraps around",
        "wraps around", "indirect table", "ring outside guest RAM",
        "ring outside guest RAM", "ring outside guest RAM"])


def test_hostile_huge_lengths_and_sectors(hv, tmp_path):
    vm = run_hostile(hv, tmp_path, "virtio_hostile_huge", [
        "outside guest RAM", "indirect table length", "avail index jumped",
        "out of range", "not a power of two", "not a power of two", "not a power of two"])
    out = vm.serial()
    assert out.count("request failed with IOERR") == 6
    # Writes past the end did not grow the image.
    assert (tmp_path / "hostile.img").stat().st_size == 128 * SECTOR
