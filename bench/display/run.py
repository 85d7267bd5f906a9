#!/usr/bin/env python3
"""bench/display: vdi-hv's VNC server side by side with QEMU's, in one run, on the same
test guest: the demo desktop (build/guests/desktop.elf: a terminal that echoes keys, a
clock, a pointer; on vdi-hv's linear framebuffer or QEMU's std VGA in a VBE mode).

Both serve VNC on a unix socket with a password; our libvncclient test client
(build/tests/tools/vnc_client) connects to each and measures:
  - keystroke-to-framebuffer-update latency: key press and release sent, time until
    an update arrives that changes the screen outside the panel's clock (median and p99
    over N keys);
  - bytes received per update while typing (everything on the wire, headers included);
  - the VMM's CPU time over IDLE seconds with one viewer connected and nothing changing,
    and the bytes sent meanwhile.
QEMU runs the pc machine with -vga std and KVM like vdi-hv (SeaBIOS first; --qemu-accel
tcg where KVM is too slow for it), and the table says which was used.

usage: bench/display/run.py [--keys N] [--idle SEC] [--qemu-accel tcg|kvm] [--build DIR]
                            [--no-record]
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PASSWORD = "bench-pw"  # 8 bytes: QEMU and vdi-hv both use exactly these


def cpu_seconds(pid):
    """CPU time of pid so far, from schedstat (nanoseconds): (every thread, the threads
    that are not vCPUs). vCPU threads: QEMU's "CPU n/KVM"; vdi-hv's are its threads
    named like the process but the main one (its VNC thread is "vnc")."""
    total = vmm = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                ns = int(f.read().split()[0])
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
        except OSError:
            continue
        total += ns
        vcpu = (name.startswith("CPU ") and name.endswith("/KVM")) or (
            name == "vdi-hv" and int(tid) != pid)
        if not vcpu:
            vmm += ns
    return total / 1e9, vmm / 1e9


def wait_path(path, proc, timeout):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("%s never appeared" % path)
        time.sleep(0.05)


def wait_serial(path, text, proc, timeout):
    """Waits for text in the serial log; returns when it was first seen (approximately:
    polled every 50 ms, and only from the call on)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path, errors="replace") as f:
                if text in f.read():
                    return time.monotonic()
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("guest never printed %r (exit %r)" % (text, proc.poll()))
        time.sleep(0.05)


def json_line(sock, obj):
    sock.sendall(json.dumps(obj).encode() + b"\n")
    buf = b""
    while True:
        buf += sock.recv(65536)
        for line in buf.split(b"\n")[:-1]:
            reply = json.loads(line)
            if "event" not in reply:
                return reply


CLOCK = "824,0,200,24"  # the panel's clock, top right: it changes every second


def client(tool, addr, *actions, timeout=120, ignore=None):
    opts = ["--ignore", ignore] if ignore else []
    p = subprocess.run([tool, "--timeout", "60"] + opts + [addr] + [str(a) for a in actions],
                       env=dict(os.environ, VNC_PASSWORD=PASSWORD), capture_output=True,
                       text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("vnc_client failed: %s" % p.stderr[-2000:])
    return dict(re.findall(r"(\w+)=(\S+)", p.stdout))


class Engine:
    def __init__(self, name, args, sock, serial, setup):
        self.name, self.args, self.sock, self.serial = name, args, sock, serial
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self.setup = setup
        self.started = time.monotonic()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_vdi_hv(build, tmp):
    sock, ctl, serial = (os.path.join(tmp, n) for n in ("hv-vnc.sock", "hv-ctl.sock", "hv.serial"))
    args = [os.path.join(build, "bin", "vdi-hv"), "--kernel",
            os.path.join(build, "guests", "desktop.elf"), "--serial", "file:" + serial,
            "--control", "unix:" + ctl, "--vnc", "unix:" + sock]
    e = Engine("vdi-hv", args, "unix:" + sock, serial, None)
    wait_path(ctl, e.proc, 30)
    s = socket.socket(socket.AF_UNIX)
    s.connect(ctl)
    reply = json_line(s, {"cmd": "set-ticket", "password": PASSWORD,
                          "expires": int(time.time()) + 3600})
    assert reply.get("ok"), reply
    s.close()
    return e


def start_qemu(build, tmp, accel):
    sock, qmp, serial = (os.path.join(tmp, n) for n in ("q-vnc.sock", "q-qmp.sock", "q.serial"))
    args = ["qemu-system-x86_64", "-M", "pc", "-accel", accel, "-m", "256", "-vga", "std",
            "-kernel", os.path.join(build, "guests", "desktop.elf"), "-serial", "file:" + serial,
            "-vnc", "unix:%s,password=on" % sock, "-qmp", "unix:%s,server=on,wait=off" % qmp,
            "-no-reboot", "-display", "none",
            "-name", "bench,debug-threads=on"]  # vCPU threads named "CPU n/KVM"
    e = Engine("qemu " + accel, args, "unix:" + sock, serial, None)
    wait_path(qmp, e.proc, 30)
    s = socket.socket(socket.AF_UNIX)
    s.connect(qmp)
    s.recv(65536)  # greeting
    assert "return" in json_line(s, {"execute": "qmp_capabilities"})
    reply = json_line(s, {"execute": "set_password",
                          "arguments": {"protocol": "vnc", "password": PASSWORD}})
    assert "return" in reply, reply
    s.close()
    return e


def measure_typing(tool, e, keys, boot_timeout):
    boot = wait_serial(e.serial, "desktop: ready", e.proc, boot_timeout) - e.started
    out = client(tool, e.sock, "--latency", keys, ignore=CLOCK)
    updates = max(int(out["latency_updates"]), 1)
    return {"boot_s": boot, "median_ms": float(out["latency_median_ms"]),
            "p99_ms": float(out["latency_p99_ms"]),
            "bytes_per_update": int(out["latency_bytes"]) / updates,
            "updates_per_key": updates / keys}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=50)
    ap.add_argument("--idle", type=float, default=60)
    ap.add_argument("--qemu-accel", choices=["tcg", "kvm"], default="kvm")
    ap.add_argument("--boot-timeout", type=float, default=300)
    ap.add_argument("--build", default=os.path.join(TOP, "build"))
    ap.add_argument("--no-record", action="store_true")
    opts = ap.parse_args()
    tool = os.path.join(opts.build, "tests", "tools", "vnc_client")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        engines = []
        try:
            engines = [start_vdi_hv(opts.build, tmp), start_qemu(opts.build, tmp, opts.qemu_accel)]
            for e in engines:
                try:
                    results[e.name] = measure_typing(tool, e, opts.keys, opts.boot_timeout)
                except RuntimeError as err:
                    results[e.name] = {"error": str(err)}
            # Idle: one viewer each, at the same time; the VMMs' CPU over the stretch.
            live = [e for e in engines if "error" not in results[e.name]]
            viewers = [subprocess.Popen([tool, "--timeout", "60", e.sock, "--idle", "2",
                                         "--idle", str(opts.idle)],
                                        env=dict(os.environ, VNC_PASSWORD=PASSWORD),
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True) for e in live]
            time.sleep(3)  # connected, first screen received, settled
            cpu0 = [cpu_seconds(e.proc.pid) for e in live]
            t0 = time.monotonic()
            outs = [v.communicate(timeout=opts.idle + 120)[0] for v in viewers]
            elapsed = time.monotonic() - t0
            for e, c0, out in zip(live, cpu0, outs):
                idle = re.findall(r"idle_bytes=(\d+)\nidle_updates=(\d+)", out)
                r = results[e.name]
                c1 = cpu_seconds(e.proc.pid)
                r["idle_cpu_s"], r["idle_vmm_s"] = c1[0] - c0[0], c1[1] - c0[1]
                r["idle_s"] = elapsed
                r["idle_bytes"], r["idle_updates"] = (int(v) for v in idle[-1])
        finally:
            for e in engines:
                e.stop()
    lines = table(results, opts)
    print("\n".join(lines))
    if not opts.no_record:
        path = os.path.join(TOP, "bench", "results", "display-%s.md" % datetime.date.today())
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        print("written to", os.path.relpath(path, TOP))


def table(results, opts):
    cmd = "bench/display/run.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines = ["# Display benchmark, %s" % datetime.date.today(), "",
             "Command: `%s`  " % cmd.strip(),
             "Machine: %s, %d CPUs; guest build/guests/desktop.elf; viewer"
             " build/tests/tools/vnc_client over a unix socket, VNC password auth." % (
                 platform.platform(), os.cpu_count()),
             "QEMU: `-M pc -vga std -accel %s` (SeaBIOS, then the guest's VBE mode)." % opts.qemu_accel,
             "",
             "| engine | boot to ready | key->update median | p99 | bytes/update |"
             " updates/key | idle CPU (%.0f s), all threads | of which VMM threads (not vCPUs) |"
             " idle bytes |" % opts.idle,
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        if "error" in r:
            lines.append("| %s | not measured: %s | | | | | | | |" % (name, r["error"][:120]))
            continue
        idle_s = r.get("idle_s", 1)
        lines.append("| %s | %.1f s | %.1f ms | %.1f ms | %.0f | %.2f | %.3f s (%.2f%%) |"
                     " %.3f s (%.3f%%) | %s |" % (
                         name, r["boot_s"], r["median_ms"], r["p99_ms"], r["bytes_per_update"],
                         r["updates_per_key"], r.get("idle_cpu_s", float("nan")),
                         100 * r.get("idle_cpu_s", float("nan")) / idle_s,
                         r.get("idle_vmm_s", float("nan")),
                         100 * r.get("idle_vmm_s", float("nan")) / idle_s,
                         r.get("idle_bytes", "?")))
    lines += ["",
              "Latency runs from the client sending the key to the client holding the changed"
              " screen; it includes the guest's own reaction (on this machine's slow KVM) and"
              " the servers' refresh timers (vdi-hv: 5 ms after input; QEMU: its display's"
              " 30 ms update timer). Bytes are everything the"
              " server sent while typing divided by the updates that carried it. \"Idle\" is"
              " the desktop with nothing typed: its panel clock still changes every second"
              " (and the guest's timer runs), so some bytes and vCPU time remain; the VMM"
              " column is the process without its vCPU threads."]
    return lines


if __name__ == "__main__":
    main()
