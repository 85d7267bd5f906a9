#!/usr/bin/env python3
"""bench/hv: vdi-hv side by side with QEMU (-enable-kvm, microvm and pc, direct kernel
boot) on the same PVH test guest, in one run.

Measures, per engine, over N runs: wall time from process start to the guest's first
serial byte, the VMM's CPU time until then, and the VMM's resident memory beyond guest
RAM (process RSS minus the resident part of the guest-RAM mapping, read from smaps
while the guest idles). Prints a table with medians and ratios and writes it to
bench/results/hv-<date>.md with the command that produced it.

usage: bench/hv/run.py [--runs N] [--memory MIB] [--build DIR] [--no-record]
"""
import argparse
import datetime
import os
import platform
import select
import shlex
import statistics
import subprocess
import sys
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


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


def run_once(cmd, guest_kib, timeout):
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    try:
        r, _, _ = select.select([p.stdout], [], [], timeout)
        if not r:
            return None
        os.read(p.stdout.fileno(), 1)
        first_byte = (time.monotonic() - t0) * 1000.0
        cpu = cpu_ms(p.pid)
        time.sleep(1.0)  # let the guest reach its idle loop
        mem = overhead_kib(p.pid, guest_kib)
        return first_byte, cpu, mem
    finally:
        p.kill()
        p.wait()


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--memory", type=int, default=128)
    ap.add_argument("--build", default=os.path.join(TOP, "build"))
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

    guest = os.path.join(args.build, "guests", "serial.elf")
    hv = os.path.join(args.build, "bin", "vdi-hv")
    mem = str(args.memory)
    qemu_common = ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host", "-m", mem,
                   "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
                   "-kernel", guest]
    engines = [
        ("vdi-hv", [hv, "--kernel", guest, "--memory", mem, "--fb", "none"]),
        ("vdi-hv +fb", [hv, "--kernel", guest, "--memory", mem]),
        ("qemu microvm", qemu_common[:1] + ["-M", "microvm"] + qemu_common[1:]),
        ("qemu pc", qemu_common[:1] + ["-M", "pc", "-vga", "none"] + qemu_common[1:]),
    ]
    results = {}
    for name, cmd in engines:
        samples = []
        for i in range(args.runs):
            s = run_once(cmd, args.memory * 1024, args.timeout)
            if s is None:
                print("%s: no serial output within %ss" % (name, args.timeout), file=sys.stderr)
                break
            samples.append(s)
        results[name] = samples
        print("%-13s %d runs" % (name, len(samples)), file=sys.stderr)

    base = results["vdi-hv"]
    lines = []
    lines.append("| engine | start to first serial byte, ms (median) | VMM CPU until then, ms | VMM memory beyond guest RAM, KiB | first byte vs vdi-hv | memory vs vdi-hv |")
    lines.append("|---|---|---|---|---|---|")
    for name, _ in engines:
        s = results[name]
        if not s:
            lines.append("| %s | timeout (> %d s) | | | | |" % (name, args.timeout))
            continue
        fb, cpu, mem_kib = (median([x[i] for x in s]) for i in range(3))
        bfb = median([x[0] for x in base])
        bmem = median([x[2] for x in base])
        lines.append("| %s | %.1f | %.1f | %d | %.2fx | %.2fx |"
                     % (name, fb, cpu, mem_kib, fb / bfb, mem_kib / max(bmem, 1)))
    table = "\n".join(lines)
    print(table)

    if not args.no_record:
        os.makedirs(os.path.join(TOP, "bench", "results"), exist_ok=True)
        day = datetime.date.today().isoformat()
        path = os.path.join(TOP, "bench", "results", "hv-%s.md" % day)
        with open(path, "w") as f:
            f.write("# bench/hv, %s\n\n" % day)
            f.write("Command: `%s`\n\n" % " ".join(shlex.quote(a) for a in ["bench/hv/run.py"] + sys.argv[1:]))
            f.write("Machine: %s, %d CPUs, kernel %s. Guest: build/guests/serial.elf (PVH), "
                    "%d MiB RAM, %d runs per engine, medians.\n\n"
                    % (platform.machine(), os.cpu_count(), platform.release(), args.memory, args.runs))
            f.write(table + "\n")
        print("recorded in %s" % os.path.relpath(path, TOP), file=sys.stderr)


if __name__ == "__main__":
    main()
