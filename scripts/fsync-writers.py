#!/usr/bin/env python3
"""What the disk gives two fsync-per-batch writers, without the network.

Two threads each write 1 MiB at a time into their own new file and make
it durable before the next write — what two producers into two partitions
under fsync `always` ask of the disk — and the combined rate is printed.
Compare it with `dd if=/dev/zero of=F bs=1M count=1024 oflag=dsync` (one
writer) to see how much of a gap to the `dd` rate is the disk's.

    scripts/fsync-writers.py fdatasync [--ahead] [--batches N] [--dir D]
    scripts/fsync-writers.py syncfs    [--ahead] ...

fdatasync: each writer syncs its own file. syncfs: one `syncfs` at a time
covers both files (a cross-file group commit). --ahead allocates blocks
8 MiB ahead of the writes with fallocate(FALLOC_FL_KEEP_SIZE), as the
broker's active segments do.
"""

import argparse
import ctypes
import os
import threading
import time

FALLOC_FL_KEEP_SIZE = 1
MIB = 1 << 20

parser = argparse.ArgumentParser()
parser.add_argument("mode", choices=["fdatasync", "syncfs"])
parser.add_argument("--ahead", action="store_true")
parser.add_argument("--batches", type=int, default=500)
parser.add_argument("--dir", default="/var/tmp/fsync-writers")
args = parser.parse_args()

libc = ctypes.CDLL("libc.so.6", use_errno=True)
os.makedirs(args.dir, exist_ok=True)
buf = b"\x07" * MIB
fds = []
for i in range(2):
    path = os.path.join(args.dir, f"writer-{i}")
    if os.path.exists(path):
        os.unlink(path)
    fds.append(os.open(path, os.O_RDWR | os.O_CREAT, 0o644))

# syncfs turn: whoever holds it syncs everything written so far.
turn = threading.Lock()
counter = threading.Lock()
written = [0]
synced = [0]


def check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def writer(fd):
    for k in range(args.batches):
        if args.ahead and k % 8 == 0:
            check(
                libc.fallocate(fd, FALLOC_FL_KEEP_SIZE, ctypes.c_long(k * MIB), ctypes.c_long(8 * MIB)),
                "fallocate",
            )
        os.pwrite(fd, buf, k * MIB)
        if args.mode == "fdatasync":
            os.fdatasync(fd)
            continue
        with counter:
            written[0] += 1
            mine = written[0]
        with turn:
            if synced[0] < mine:
                with counter:
                    target = written[0]
                check(libc.syncfs(fd), "syncfs")
                synced[0] = target


started = time.monotonic()
threads = [threading.Thread(target=writer, args=(fd,)) for fd in fds]
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - started
print(f"{args.mode}{' --ahead' if args.ahead else ''}: {2 * args.batches / elapsed * MIB / 1e6:.0f} MB/s")
for fd in fds:
    os.close(fd)
for i in range(2):
    os.unlink(os.path.join(args.dir, f"writer-{i}"))
