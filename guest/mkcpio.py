#!/usr/bin/env python3
"""Writes a gzip-compressed newc cpio archive, the format of a Linux initramfs, from a
staging directory. Every entry is owned by root and carries one fixed time, in sorted
order, so the same tree always gives the same bytes; device nodes (which an unprivileged
build cannot mknod) are added with --node. Not a general cpio tool: no hard links.

usage: mkcpio.py [--mtime SECONDS] [--node PATH:c|b:MAJOR:MINOR:MODE]... STAGEDIR OUT.gz
"""
import argparse
import gzip
import os
import stat
import sys


def header(ino, mode, nlink, mtime, size, rmajor, rminor, namesize):
    fields = (ino, mode, 0, 0, nlink, mtime, size, 0, 0, rmajor, rminor, namesize, 0)
    return b"070701" + b"".join(b"%08X" % f for f in fields)


def pad4(n):
    return b"\0" * (-n % 4)


class Writer:
    def __init__(self, out, mtime):
        self.out = out
        self.mtime = mtime
        self.ino = 0
        self.pos = 0

    def write(self, data):
        self.out.write(data)
        self.pos += len(data)

    def entry(self, name, mode, data=b"", nlink=1, rdev=(0, 0)):
        self.ino += 1
        bname = name.encode() + b"\0"
        self.write(header(self.ino, mode, nlink, self.mtime, len(data), rdev[0], rdev[1], len(bname)))
        self.write(bname)
        self.write(pad4(self.pos))
        self.write(data)
        self.write(pad4(self.pos))


def parse_node(spec):
    try:
        path, kind, major, minor, perm = spec.split(":")
        fmt = {"c": stat.S_IFCHR, "b": stat.S_IFBLK}[kind]
        return path.strip("/"), fmt | int(perm, 8), (int(major), int(minor))
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f"bad --node {spec!r}, want PATH:c|b:MAJOR:MINOR:MODE")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mtime", type=int, default=int(os.environ.get("SOURCE_DATE_EPOCH", "0")))
    ap.add_argument("--node", type=parse_node, action="append", default=[])
    ap.add_argument("stagedir")
    ap.add_argument("out")
    args = ap.parse_args()

    entries = []  # (name, mode, data, nlink, rdev)
    for root, dirs, files in os.walk(args.stagedir):
        dirs.sort()
        rel = os.path.relpath(root, args.stagedir)
        if rel != ".":
            entries.append((rel, stat.S_IFDIR | (os.lstat(root).st_mode & 0o7777), b"", 2, (0, 0)))
        for d in [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            dirs.remove(d)
            files.append(d)
        for f in sorted(files):
            path = os.path.join(root, f)
            name = os.path.normpath(os.path.join(rel, f))
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                entries.append((name, st.st_mode, os.readlink(path).encode(), 1, (0, 0)))
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as fh:
                    entries.append((name, st.st_mode, fh.read(), 1, (0, 0)))
            else:
                sys.exit(f"mkcpio: {path}: not a file, directory or symlink")
    for name, mode, rdev in args.node:
        entries.append((name, mode, b"", 1, rdev))

    tmp = args.out + ".tmp"
    with open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
            w = Writer(gz, args.mtime)
            for name, mode, data, nlink, rdev in entries:
                w.entry(name, mode, data, nlink, rdev)
            w.entry("TRAILER!!!", 0)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
