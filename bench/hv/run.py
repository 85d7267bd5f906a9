#!/usr/bin/env python3
"""bench/hv: vdi-hv side by side with QEMU (-enable-kvm; microvm and pc) in one run, with
the engines interleaved (A, B, C, then again) and medians over N runs per engine:

  serial  the PVH test guest (build/guests/serial.elf): wall time from process start to
          the guest's first serial byte, the VMM's CPU time until then, and the VMM's
          resident memory beyond guest RAM (process RSS minus the resident part of the
          guest-RAM mapping, read from smaps while the guest idles);
  linux   the project's Linux desktop image (build/guest/vmlinuz + initrd.img, a private
          copy of home.img as its disk, 256 MiB): process start to the line
          VDI-GUEST-READY on the serial console, CPU until then, memory beyond guest RAM
          a second after it; a row whose guest reaches the marker without its disk
          mounted on /home is reported as not comparable, not timed;
  vnc     key to framebuffer-update latency over VNC, vdi-hv's VNC against QEMU's
          (-accel kvm): bench/display/run.py's own functions (desktop.elf, vnc_client).

Where this machine has no hardware-speed KVM (`kvmbox probe` says "box", or VDI_KVM=box)
the script starts a private KVM host in a box (build/bin/kvmbox start, 2048 MiB, in a
temporary directory), runs itself in it with --inside, and stops the box at the end
whatever happens. Should the box stop answering or die, the run goes on in a new one from
the sample under way (at most --boxes). The tables are written to
bench/results/hv-<date>.md with the command, the machine and the box; in a box the
ratios are the figures, not the absolute times.

usage: bench/hv/run.py [--runs N] [--memory MIB] [--keys N] [--only serial,linux,vnc]
                       [--build DIR] [--box-memory MIB] [--boxes N] [--no-record]
"""
import argparse
import datetime
import fcntl
import importlib.util
import json
import os
import platform
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SECTIONS = ("serial", "linux", "vnc")
READY = b"VDI-GUEST-READY"
LINUX_MIB = 256
LINUX_CMDLINE = "console=ttyS0 panic=-1"


# --- measuring (here, or in the box with --inside) ---

def cpu_ms(pid):
    """CPU time of every thread of pid so far, from schedstat (nanoseconds)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total / 1e6


def overhead_kib(pid, guest_kib):
    """RSS of the process minus the RSS of its guest-RAM mapping(s)."""
    total = guest = 0
    size = rss = 0
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            if line.startswith("Size:"):
                size = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
                total += rss
                if size >= guest_kib:
                    guest += rss
    return total - guest


def run_serial(cmd, guest_kib, timeout):
    """Process start to the first serial byte, the VMM's CPU time until then and its memory
    beyond guest RAM a second later; or an error."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    try:
        r, _, _ = select.select([p.stdout], [], [], timeout)
        if not r:
            return {"error": "no serial output within %g s" % timeout}
        if not os.read(p.stdout.fileno(), 1):
            return {"error": "exited (%s) before any serial output" % p.wait()}
        first_byte = (time.monotonic() - t0) * 1000.0
        cpu = cpu_ms(p.pid)
        time.sleep(1.0)  # let the guest reach its idle loop
        return {"ms": first_byte, "cpu_ms": cpu, "mem_kib": overhead_kib(p.pid, guest_kib)}
    finally:
        p.kill()
        p.wait()


def run_linux(cmd, guest_kib, timeout, stall):
    """Process start to VDI-GUEST-READY on the serial console (stdout), the VMM's CPU time
    until then and its memory beyond guest RAM a second later; "disk" says whether the
    guest's banner shows /home on /dev/vda (its disk) rather than "not persistent". A
    guest silent for stall seconds before the marker counts as hung."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out = bytearray()
    try:
        fd = p.stdout.fileno()
        while READY not in out:
            left = t0 + timeout - time.monotonic()
            r, _, _ = select.select([fd], [], [], max(min(left, stall), 0))
            if not r:
                why = ("no %s within %g s" % (READY.decode(), timeout) if left <= stall else
                       "hung: no serial output for %g s, %.0f s after the start" % (
                           stall, time.monotonic() - t0))
                return {"error": why, "serial_tail": tail(out)}
            chunk = os.read(fd, 65536)
            if not chunk:
                err = p.stderr.read().decode(errors="replace").strip().splitlines()
                return {"error": "exited (%s) before %s%s" % (
                    p.wait(), READY.decode(), ": " + err[-1][:200] if err else ""),
                    "serial_tail": tail(out)}
            out += chunk
        ready = (time.monotonic() - t0) * 1000.0
        cpu = cpu_ms(p.pid)
        # The banner, printed just before the marker, says what /home is.
        home = [l for l in out.decode(errors="replace").splitlines()
                if l.strip().startswith("home:")]
        time.sleep(1.0)  # the shell starts; then the memory
        mem = overhead_kib(p.pid, guest_kib)
        return {"ms": ready, "cpu_ms": cpu, "mem_kib": mem,
                "disk": bool(home) and "/dev/vda" in home[-1],
                "home": home[-1].strip() if home else "no banner line 'home:'"}
    finally:
        p.kill()
        p.wait()


def tail(out, lines=12):
    return "\n".join(out.decode(errors="replace").splitlines()[-lines:])


class Disk:
    """Private copies of home.img: the image read once, each copy written sparse (only its
    non-zero 64 KiB blocks; the rest are holes that read as zeros), so a copy costs little
    even where memory copies are slow (a box)."""

    def __init__(self, image, tmp):
        self.tmp, self.n = tmp, 0
        with open(image, "rb") as f:
            data = f.read()
        self.size, zero, bs = len(data), bytes(65536), 65536
        self.blocks = [(i, data[i:i + bs]) for i in range(0, len(data), bs)
                       if data[i:i + bs] != zero[:len(data[i:i + bs])]]

    def copy(self):
        self.n += 1
        path = os.path.join(self.tmp, "home-%d.img" % self.n)
        with open(path, "wb") as f:
            for off, block in self.blocks:
                f.seek(off)
                f.write(block)
            f.truncate(self.size)
        return path


def display_module():
    """bench/display/run.py, imported: its VNC measurement is the one implementation."""
    path = os.path.join(TOP, "bench", "display", "run.py")
    spec = importlib.util.spec_from_file_location("bench_display_run", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_vnc(display, start, build, tmp, keys, boot_timeout):
    tool = os.path.join(build, "tests", "tools", "vnc_client")
    os.makedirs(tmp)
    e = None
    try:
        e = start(build, tmp)
        r = display.measure_typing(tool, e, keys, boot_timeout)
        return {"cmd": " ".join(map(shlex.quote, e.args)).replace(tmp, "TMP"),
                "ms": r["median_ms"], "p99_ms": r["p99_ms"], "boot_s": r["boot_s"],
                "bytes_per_update": r["bytes_per_update"],
                "updates_per_key": r["updates_per_key"]}
    except (RuntimeError, AssertionError, OSError, KeyError, ValueError,
            subprocess.TimeoutExpired) as err:
        return {"error": str(err)[:300] or type(err).__name__}
    finally:
        if e:
            e.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def engines(args, tmp):
    """{section: [(engine, its command for the record, a function taking one sample)]}, in
    the order they are run and shown."""
    build = args.build
    hv = os.path.join(build, "bin", "vdi-hv")
    out = {}
    if "serial" in args.only:
        guest = os.path.join(build, "guests", "serial.elf")
        mem = str(args.memory)
        q = ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host", "-m", mem, "-nodefaults",
             "-no-user-config", "-nographic", "-serial", "stdio", "-kernel", guest]
        cmds = [
            ("vdi-hv", [hv, "--kernel", guest, "--memory", mem, "--fb", "none"]),
            ("vdi-hv +fb", [hv, "--kernel", guest, "--memory", mem]),
            ("qemu microvm", q[:1] + ["-M", "microvm"] + q[1:]),
            ("qemu pc", q[:1] + ["-M", "pc", "-vga", "none"] + q[1:]),
        ]
        out["serial"] = [(n, c, lambda c=c: run_serial(c, args.memory * 1024, args.timeout))
                         for n, c in cmds]
    if "linux" in args.only:
        g = os.path.join(build, "guest")
        kernel, initrd = os.path.join(g, "vmlinuz"), os.path.join(g, "initrd.img")
        disk = Disk(os.path.join(g, "home.img"), tmp)
        mem = str(LINUX_MIB)
        q = ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host", "-m", mem,
             "-kernel", kernel, "-initrd", initrd, "-append", LINUX_CMDLINE,
             "-serial", "stdio", "-display", "none", "-nodefaults", "-no-user-config"]
        cmds = [
            ("vdi-hv", lambda d: [hv, "--kernel", kernel, "--initrd", initrd, "--disk", d,
                                  "--memory", mem, "--cmdline", LINUX_CMDLINE, "--fb", "none",
                                  "--serial", "stdio"]),
            # virtio-mmio, as microvm is meant to be used (QEMU 7.2 describes the devices
            # to the guest in ACPI tables)
            ("qemu microvm", lambda d: q[:1] + ["-M", "microvm"] + q[1:] + [
                "-drive", "id=home,file=%s,if=none,format=raw" % d,
                "-device", "virtio-blk-device,drive=home"]),
            # microvm with its PCIe host bridge: virtio-pci, which the image's initrd has
            ("qemu microvm,pcie=on", lambda d: q[:1] + ["-M", "microvm,pcie=on"] + q[1:] + [
                "-drive", "id=home,file=%s,if=none,format=raw" % d,
                "-device", "virtio-blk-pci,drive=home"]),
            ("qemu pc", lambda d: q[:1] + ["-M", "pc", "-vga", "none"] + q[1:] + [
                "-drive", "file=%s,if=virtio,format=raw" % d]),
        ]

        def linux(make):
            path = disk.copy()
            try:
                return run_linux(make(path), LINUX_MIB * 1024, args.boot_timeout, args.stall)
            finally:
                os.unlink(path)
        out["linux"] = [(n, make("DISK"), lambda make=make: linux(make))
                        for n, make in cmds]
    if "vnc" in args.only:
        display = display_module()
        runs = iter(range(1, 1 << 30))
        starts = [("vdi-hv", "start_vdi_hv", display.start_vdi_hv),
                  ("qemu pc", "start_qemu", lambda b, t: display.start_qemu(b, t, "kvm"))]
        out["vnc"] = [(n, "bench/display/run.py's %s" % label,
                       lambda s=s: run_vnc(display, s, build,
                                           os.path.join(tmp, "vnc-%d" % next(runs)),
                                           args.keys, args.boot_timeout))
                      for n, label, s in starts]
    return out


def measure(args, progress=lambda res, at, current, deadline: None, resume=None):
    """Takes the samples, interleaved: every engine of every section once, then again.
    A failed sample is kept with its reason (and the end of the guest's serial output);
    an engine that fails three times, or boots the Linux image without its disk, is
    dropped from the later runs. progress(results, position, what, seconds it may take) is
    called before each sample, and with None at the end; resume (what progress saw last)
    continues from that position, that sample included."""
    base = "/dev/shm" if args.inside and os.path.isdir("/dev/shm") else None
    tmp = tempfile.mkdtemp(prefix="bench-hv.", dir=base)
    # The longest a sample may take: its own timeouts, plus the VNC client's.
    deadline = {"serial": args.timeout + 10, "linux": args.boot_timeout + 10,
                "vnc": args.boot_timeout + 140}
    try:
        plan = engines(args, tmp)
        res = {s: {n: {"cmd": c if isinstance(c, str) else " ".join(map(shlex.quote, c)),
                       "samples": [], "failures": [], "excluded": None} for n, c, _ in rows}
               for s, rows in plan.items()}
        start = (0, 0)
        if resume:
            for section, rows in resume["results"].items():
                for name, r in rows.items():
                    if name in res.get(section, {}):
                        res[section][name] = r
            start = tuple(resume["position"])
        flat = [(section, name, sample) for section, rows in plan.items()
                for name, _, sample in rows]
        # Rounds until every engine has its runs, with up to 2 more for failed samples.
        for i in range(args.runs + 2):
            for k, (section, name, sample) in enumerate(flat):
                r = res[section][name]
                if (i, k) < start or r["excluded"] or len(r["samples"]) >= args.runs:
                    continue
                progress(res, (i, k), "round %d, %s, %s" % (i + 1, section, name),
                         deadline[section])
                t = time.monotonic()
                s = sample()
                print("round %d %-6s %-21s %s (%.0f s)" % (
                    i + 1, section, name, s.get("error") or "%.1f ms" % s["ms"],
                    time.monotonic() - t), file=sys.stderr, flush=True)
                if "error" in s:
                    s["round"] = i + 1
                    r["failures"].append(s)
                    if s.get("serial_tail"):
                        print("  serial output before that:\n    " + "\n    ".join(
                            s["serial_tail"].splitlines()), file=sys.stderr, flush=True)
                    if len(r["failures"]) >= 3:
                        r["excluded"] = "dropped after %d failures" % len(r["failures"])
                elif section == "linux" and not s["disk"]:
                    r["excluded"] = ("reached %s in %.1f s without its disk (banner: "
                                     "\"%s\")" % (READY.decode(), s["ms"] / 1000, s["home"]))
                else:
                    if "cmd" in s:  # what bench/display ran, recorded from the run
                        r["cmd"] = s.pop("cmd")
                    r["samples"].append(s)
        progress(res, None, None, None)
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def where_measured():
    info = {"kernel": platform.release(), "cpus": os.cpu_count(), "cpu": "?", "mem_mib": 0}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f
                               if line.startswith("model name"))
        with open("/proc/meminfo") as f:
            info["mem_mib"] = int(next(line for line in f
                                       if line.startswith("MemTotal")).split()[1]) // 1024
    except (OSError, StopIteration):
        pass
    try:
        info["qemu"] = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                                      text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        info["qemu"] = "?"
    return info


def inside(args):
    """--inside OUT: measure here (in the box), writing what there is to OUT as JSON before
    every sample, so that the runner outside sees progress and can go on in another box
    should this one stop answering; with --resume, go on from what OUT holds."""
    where = where_measured()
    hold = hold_kvm_vm()
    resume = None
    if args.resume:
        with open(args.inside) as f:
            resume = json.load(f)

    def progress(res, at, current, deadline):
        tmp = args.inside + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"where": where, "results": res, "position": at, "current": current,
                       "deadline_s": deadline, "done": current is None}, f)
        os.rename(tmp, args.inside)
    measure(args, progress, resume)
    if hold is not None:
        os.close(hold)
    return 0


def hold_kvm_vm():
    """Opens an empty KVM VM (no vCPU, no memory) for the length of the run in the box.
    Each VM's creation and end flip the kernel's preempt_notifier_key (kvm_create_vm's
    preempt_notifier_inc) from 0 to 1 and back, and so patch __schedule's code while both
    of the box's vCPUs run it. Under QEMU 7.2's multi-threaded TCG that has been seen to
    leave both of them trapping, for good, on a stale int3 at __schedule+0x2ab whose memory
    already holds the final NOP: the box stops answering. Held at 1 or more, the key is not
    patched again; an idle empty VM costs no CPU."""
    try:
        kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
        try:
            return fcntl.ioctl(kvm, 0xAE01, 0)  # KVM_CREATE_VM: the VM's fd
        finally:
            os.close(kvm)
    except OSError as err:
        print("bench/hv: cannot hold a KVM VM open (%s)" % err, file=sys.stderr)
        return None


def inside_own_session(args):
    """kvmbox run bridges to the host every socket the program's session listens on, and
    puts the host's socket in place of one bound to a path the host shares. The benchmark's
    sockets (VNC, QMP, vdi-hv's control) are for clients in the box, so the work runs in a
    session of its own, below this process (kvmbox's agent made it a session leader)."""
    pid = os.fork()
    if pid == 0:
        rc = 1
        try:
            os.setsid()
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
            rc = inside(args)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lambda sig, _: os.kill(pid, signal.SIGTERM))
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status)
        except InterruptedError:
            continue


# --- where to run: here, or in a box ---

def probe(args):
    """'direct' or 'box' and why: kvmbox probe (which honours VDI_KVM)."""
    kvmbox = os.path.join(args.build, "bin", "kvmbox")
    if not os.access(kvmbox, os.X_OK):
        return ("direct", "no %s; measuring here" % kvmbox) if os.path.exists("/dev/kvm") else (
            "box", "no /dev/kvm and no %s (make kvmbox)" % kvmbox)
    out = subprocess.run([kvmbox, "probe"], capture_output=True, text=True)
    line = (out.stdout or out.stderr).strip()
    if out.returncode != 0 or ":" not in line:
        sys.exit("bench/hv: kvmbox probe failed: %s" % line)
    how, why = line.split(":", 1)
    return how.strip(), why.strip()


def inner_python():
    # The box runs the host's files; the interpreter itself, not a wrapper such as a pyenv
    # shim (a shell script that costs tens of seconds under emulation).
    return "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def start_box(kvmbox, memory, work, n, tries=2):
    """kvmbox start in WORK/boxN, tried again in WORK/boxN-2 when the box does not come up
    (its kernel has been seen to panic while booting under emulation). Returns (the box's
    directory, kvmbox's line, [reason a start failed])."""
    failed = []
    for t in range(1, tries + 1):
        boxdir = os.path.join(work, "box%d%s" % (n, "-%d" % t if t > 1 else ""))
        start = subprocess.run([kvmbox, "start", "--memory", str(memory), boxdir],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sys.stderr.write(start.stdout + start.stderr)
        if start.returncode == 0:
            return boxdir, start.stdout.strip(), failed
        subprocess.run([kvmbox, "stop", boxdir], stdout=subprocess.DEVNULL)
        lines = start.stderr.strip().splitlines()
        failed.append(lines[-1] if lines else "exit %d" % start.returncode)
    sys.exit("bench/hv: no box would start (%s); logs in %s" % ("; ".join(failed), work))


def watch(runner, out, grace):
    """Waits for the run in the box to end. Returns None when it ended by itself, or why it
    was ended: no progress for longer than the current sample may take plus grace. A
    safety net: a box has been seen to stop answering, its QEMU spinning (hold_kvm_vm)."""
    last, allowed = time.monotonic(), 300  # until the first progress: the script's start
    while True:
        try:
            runner.wait(5)
            return None
        except subprocess.TimeoutExpired:
            pass
        try:
            mtime = os.stat(out).st_mtime
            seen = time.monotonic() - (time.time() - mtime)
            if seen > last:
                with open(out) as f:
                    allowed = json.load(f).get("deadline_s") or 300
                last = seen
        except (OSError, ValueError):
            pass
        if time.monotonic() - last > allowed + grace:
            runner.terminate()
            try:
                runner.wait(10)
            except subprocess.TimeoutExpired:
                runner.kill()
                runner.wait()
            return "no progress for %.0f s" % (allowed + grace)


def in_box(args, passthrough):
    """Starts a private box, runs this script in it with --inside, stops the box. When the
    box stops answering or dies, the run goes on in a new box from the sample it was
    taking (at most --boxes boxes)."""
    kvmbox = os.path.join(args.build, "bin", "kvmbox")
    work = tempfile.mkdtemp(prefix="bench-hv.", dir="/tmp")  # no blanks in the path
    out = os.path.join(work, "results.json")
    box = {"memory_mib": args.box_memory, "start": "", "failed_starts": [], "lost": [],
           "boxes": 0}

    def stop(*_):
        raise KeyboardInterrupt
    old = signal.signal(signal.SIGTERM, stop)
    runner = boxdir = data = None
    try:
        for n in range(1, args.boxes + 1):
            boxdir, line, failed = start_box(kvmbox, args.box_memory, work, n)
            box["failed_starts"] += failed
            box["start"], box["boxes"] = box["start"] or line, n
            cmd = [kvmbox, "run", "--box", boxdir, "--", inner_python(),
                   os.path.join(TOP, "bench", "hv", "run.py"), "--inside", out]
            runner = subprocess.Popen(cmd + (["--resume"] if data else []) + passthrough)
            lost = watch(runner, out, args.box_grace)
            subprocess.run([kvmbox, "stop", boxdir], stdout=subprocess.DEVNULL)
            boxdir = None
            try:
                with open(out) as f:
                    data = json.load(f)
            except (OSError, ValueError):
                data = None
            if data and data["done"]:
                break
            why = "box %d: %s, during %s" % (
                n, lost or "the run in it ended with exit %d" % runner.returncode,
                data["current"] if data else "the script's start")
            box["lost"].append(why)
            print("bench/hv: %s" % why, file=sys.stderr)
        if not data:
            box["incomplete"] = "; ".join(box["lost"])
            sys.exit("bench/hv: nothing measured (%s); logs in %s" % (box["incomplete"], work))
        if not data["done"]:
            box["incomplete"] = "; ".join(box["lost"])
        return data, box
    finally:
        # Not to be interrupted while the box stops.
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if runner and runner.poll() is None:
            runner.kill()
            runner.wait()
        if boxdir:
            subprocess.run([kvmbox, "stop", boxdir], stdout=subprocess.DEVNULL)
        if box.get("incomplete") or box["failed_starts"]:
            print("bench/hv: the boxes' logs stay in %s" % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
        signal.signal(signal.SIGTERM, old)
        signal.signal(signal.SIGINT, old_int)


# --- the report ---

def median(xs):
    return statistics.median(xs) if xs else float("nan")


def ratio(x, base):
    return "%.2fx" % (x / base) if base and base == base and x == x else "-"


# Per section: title, then the columns: (header, sample key, format, scale); "ratio" columns
# are a column's median against vdi-hv's.
COLUMNS = {
    "serial": ("Process start to first serial byte (build/guests/serial.elf, {memory} MiB)", [
        ("start to first serial byte, ms (median)", "ms", "%.1f", 1),
        ("VMM CPU until then, ms", "cpu_ms", "%.1f", 1),
        ("VMM memory beyond guest RAM, KiB", "mem_kib", "%d", 1),
        ("first byte vs vdi-hv", "ms", "ratio", 1),
        ("memory vs vdi-hv", "mem_kib", "ratio", 1)]),
    "linux": ("Linux desktop image: process start to VDI-GUEST-READY on the serial console"
              " ({linux} MiB, disk: a private copy of home.img)", [
        ("start to VDI-GUEST-READY, s (median)", "ms", "%.2f", 1000),
        ("VMM CPU until then, s", "cpu_ms", "%.2f", 1000),
        ("VMM memory beyond guest RAM a second after READY, KiB", "mem_kib", "%d", 1),
        ("READY vs vdi-hv", "ms", "ratio", 1),
        ("memory vs vdi-hv", "mem_kib", "ratio", 1)]),
    "vnc": ("Key to framebuffer update over VNC (bench/display/run.py's measurement,"
            " build/guests/desktop.elf, {keys} keys a run)", [
        ("key->update, ms (median of the runs' medians)", "ms", "%.1f", 1),
        ("p99, ms (median over runs)", "p99_ms", "%.1f", 1),
        ("start to \"desktop: ready\", s", "boot_s", "%.1f", 1),
        ("bytes/update", "bytes_per_update", "%.0f", 1),
        ("updates/key", "updates_per_key", "%.2f", 1),
        ("key->update vs vdi-hv", "ms", "ratio", 1)]),
}


def tables(res, args):
    lines = []
    for section, rows in res.items():
        title, cols = COLUMNS[section]
        lines += ["### " + title.format(memory=args.memory, linux=LINUX_MIB, keys=args.keys), "",
                  "| engine | %s | runs |" % " | ".join(c[0] for c in cols),
                  "|---|%s---|" % ("---|" * len(cols))]
        base = rows.get("vdi-hv", {}).get("samples", [])
        for name, r in rows.items():
            s = r["samples"]
            runs = "%d%s" % (len(s), " (+%d failed)" % len(r["failures"]) if r["failures"] else "")
            if not s:
                why = r["excluded"] if r["excluded"] and not r["failures"] else (
                    "%s (%d failures)" % (r["failures"][-1]["error"], len(r["failures"]))
                    if r["failures"] else "no runs")
                lines.append("| %s | %s: %s |%s %s |" % (
                    name, "not comparable" if "without its disk" in why else "not measured",
                    why, " |" * (len(cols) - 1), runs))
                continue
            cells = []
            for _, key, fmt, scale in cols:
                m = median([x[key] for x in s])
                if fmt == "ratio":
                    cells.append(ratio(m, median([x[key] for x in base])))
                else:
                    cells.append(fmt % (m / scale))
            lines.append("| %s | %s | %s |" % (name, " | ".join(cells), runs))
        lines.append("")
    return lines


def last_line(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1].replace("`", "'")[:160] if lines else ""


def samples_lines(res):
    """Every sample and every failure, for the spread behind the medians."""
    out = []
    for section, rows in res.items():
        for name, r in rows.items():
            vals = ", ".join(("%.0f" if section != "vnc" else "%.1f") % x["ms"]
                             for x in r["samples"])
            fails = "".join("; failed in round %d: %s%s" % (
                f["round"], f["error"], " (last serial output: `%s`)" % last_line(
                    f["serial_tail"]) if f.get("serial_tail") else "")
                for f in r["failures"])
            extra = "; %s" % r["excluded"] if r["excluded"] else ""
            out.append("- %s, %s: %s%s%s" % (section, name, vals or "none", fails, extra))
    return out


def report(data, box, args, how, why, load, took):
    res, where = data["results"], data["where"]
    cmd = " ".join(shlex.quote(a) for a in ["bench/hv/run.py"] + sys.argv[1:])
    day = datetime.date.today().isoformat()
    head = ["# bench/hv, %s" % day, ""]
    if box and box.get("incomplete"):
        head += ["**Incomplete run:** %s. The tables hold what was measured before." %
                 box["incomplete"], ""]
    host = "%s, %d CPUs (%s), kernel %s, %d MiB" % (
        platform.machine(), os.cpu_count(), host_cpu(), platform.release(), host_mem_mib())
    if box:
        head += ["**Measured in a KVM host in a box, not on hardware.** This machine has no"
                 " hardware KVM (`kvmbox probe`: %s: %s), so every engine ran inside a box:"
                 " a QEMU-TCG virtual machine whose emulated CPU (%s) runs the box's kernel"
                 " and its nested KVM. Everything there, the VMMs and their guests included,"
                 " runs under software emulation: the absolute times below are not hardware"
                 " times and must not be compared with figures from a host with KVM. The"
                 " engines ran in the same box, one at a time and interleaved, so the"
                 " **ratios against vdi-hv are the figures**." % (how, why, where["cpu"]), "",
                 "Command: `%s`. It started a private box with `build/bin/kvmbox start"
                 " --memory %d DIR`, ran `build/bin/kvmbox run --box DIR -- %s"
                 " bench/hv/run.py --inside RESULTS.json %s` in it (RESULTS.json: where the"
                 " run in the box writes its samples) and stopped it with `kvmbox stop DIR`."
                 % (cmd, box["memory_mib"], inner_python(),
                    " ".join(shlex.quote(a) for a in box["passthrough"])),
                 "",
                 "Machine: %s; load average %s at the start, %s at the end." % (
                     host, load[0], load[1]),
                 "",
                 "Box: %s, %d vCPUs, %d MiB RAM (%d MiB seen by its kernel), kernel %s"
                 " (build/kvmbox/vmlinuz), /dev/kvm from kvm_amd on the emulated SVM; %s;"
                 " `%s`.%s" % (
                     "QEMU TCG `-M pc -accel tcg -cpu max`", where["cpus"], box["memory_mib"],
                     where["mem_mib"], where["kernel"], where["qemu"], box["start"],
                     "".join(" A box did not start: `%s` (tried again)." % why
                             for why in box["failed_starts"])), ""]
        if box["lost"]:
            head += ["The run needed %d boxes: %s. Each time it went on in a new box from"
                     " the sample that was under way, which was taken again; the samples"
                     " before it stand." % (box["boxes"], "; ".join(box["lost"])), ""]
    else:
        head += ["Command: `%s`" % cmd, "",
                 "Machine: %s, KVM here (`kvmbox probe`: %s: %s); %s; load average %s at"
                 " the start, %s at the end." % (host, how, why, where["qemu"], load[0],
                                                 load[1]), ""]
    head += ["%d run(s) per engine, interleaved (every engine once, then again), medians;"
             " ratios are against vdi-hv's median in the same table. QEMU runs with"
             " `-enable-kvm -cpu host` (the VNC rows: `-accel kvm`, as in bench/display)."
             " The whole run took %.1f min." % (args.runs, took / 60), ""]
    lines = head + tables(res, args)
    lines += ["Commands (DISK: a fresh sparse copy of build/guest/home.img per boot):", ""]
    for section, rows in res.items():
        for name, r in rows.items():
            lines.append("- %s, %s: `%s`" % (section, name, r["cmd"].replace(
                TOP + "/", "")))
    lines += ["", "Samples (ms; serial and linux: start to first byte / READY; vnc: each"
              " run's median key->update):", ""] + samples_lines(res)
    for note in notes_for(res, box):
        lines += ["", note]
    return lines


def notes_for(res, box):
    notes = []
    lx = res.get("linux", {})
    mm = lx.get("qemu microvm")
    if mm and not mm["samples"] and mm["excluded"] and "without its disk" in mm["excluded"]:
        notes.append(
            "qemu microvm with virtio-mmio cannot give the Linux image its disk: Debian's"
            " kernel has `CONFIG_VIRTIO_MMIO=m` (and no `CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES`),"
            " and the image's initramfs loads virtio_pci but not virtio_mmio"
            " (guest/modules.list), so the virtio-blk-device is never probed, /init finds no"
            " /dev/vda after its 1 s wait and the guest boots without /home. That row is a"
            " different workload and is not timed; `microvm,pcie=on` with virtio-blk-pci is"
            " microvm with the image's own transport and is measured instead.")
    if box:
        notes.append(
            "In the box the VMM's own start (exec and dynamic loading from the host's files"
            " over virtiofs, its setup) runs emulated, and every guest exit (each byte the"
            " guest writes to its serial port is one: the Linux rows print the whole kernel"
            " log on ttyS0) goes through nested SVM emulated by TCG. Both weigh far more than"
            " on hardware, so the absolute times are far above hardware ones and only the"
            " ratios carry over, and even they only roughly: what costs most in the box is"
            " not what costs most on hardware.")
        notes.append(
            "The run in the box keeps one empty KVM VM open (no vCPU, no memory) from start"
            " to end: without it, every VM's start and end re-patches the box kernel's"
            " __schedule (preempt_notifier_key), and QEMU 7.2's multi-threaded TCG has been"
            " seen to leave both box vCPUs trapping for good on a stale int3 there (at"
            " __schedule+0x2ab, whose memory already held the final NOP), after anywhere from"
            " 2 to 55 VMs. The empty VM does nothing while the engines run, whichever"
            " engine it is.")
    return notes


def host_cpu():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return "?"


def host_mem_mib():
    try:
        with open("/proc/meminfo") as f:
            return int(next(l for l in f if l.startswith("MemTotal")).split()[1]) // 1024
    except (OSError, StopIteration):
        return 0


def outside(args):
    t0 = time.monotonic()
    load = ["%.1f" % os.getloadavg()[0]]
    how, why = probe(args)
    print("kvmbox probe: %s: %s" % (how, why), file=sys.stderr)
    box = None
    if how == "box":
        passthrough = [a for a in sys.argv[1:] if a != "--no-record"]
        data, box = in_box(args, passthrough)
        box["passthrough"] = passthrough
    else:
        data = {"where": where_measured(), "results": measure(args)}
    load.append("%.1f" % os.getloadavg()[0])
    lines = report(data, box, args, how, why, load, time.monotonic() - t0)
    print("\n".join(lines))
    if not args.no_record:
        path = os.path.join(TOP, "bench", "results", "hv-%s.md" % datetime.date.today())
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        print("recorded in %s" % os.path.relpath(path, TOP), file=sys.stderr)
    if box and box.get("incomplete"):
        sys.exit("bench/hv: incomplete: %s" % box["incomplete"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--memory", type=int, default=128, help="serial.elf's guest RAM, MiB")
    ap.add_argument("--keys", type=int, default=30, help="keys per VNC run")
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help="comma-separated sections: serial, linux, vnc")
    ap.add_argument("--build", default=os.path.join(TOP, "build"))
    ap.add_argument("--timeout", type=float, default=60, help="serial: seconds to first byte")
    ap.add_argument("--boot-timeout", type=float, default=300,
                    help="linux and vnc: seconds to the guest's ready line")
    ap.add_argument("--stall", type=float, default=45,
                    help="linux: seconds without serial output that count as a hang")
    ap.add_argument("--box-memory", type=int, default=2048)
    ap.add_argument("--boxes", type=int, default=3,
                    help="boxes to go through when one stops answering or dies")
    ap.add_argument("--box-grace", type=float, default=120,
                    help="seconds past a sample's own time limit before a box that shows"
                    " no progress is given up")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--inside", metavar="OUT.json", help=argparse.SUPPRESS)
    ap.add_argument("--resume", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.only = [s for s in args.only.split(",") if s]
    bad = [s for s in args.only if s not in SECTIONS]
    if bad or args.runs < 1:
        ap.error("--only: unknown section %s" % bad[0] if bad else "--runs must be >= 1")
    if args.inside:
        sys.exit(inside_own_session(args))
    try:
        outside(args)
    except KeyboardInterrupt:
        sys.exit("bench/hv: interrupted")


if __name__ == "__main__":
    main()
