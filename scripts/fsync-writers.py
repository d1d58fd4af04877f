#!/usr/bin/env python3
"""What the disk gives two fsync-per-batch writers, without the network.

Two threads each write 1 MiB at a time into their own new file and make
it durable before the next write — what two producers into two partitions
under fsync `always` ask of the disk — and the combined rate is printed.
Compare it with `dd if=/dev/zero of=F bs=1M count=1024 oflag=dsync` (one
writer) to see how much of a gap to the `dd` rate is the disk's.

    scripts/fsync-writers.py fdatasync [--ahead | --zeroed | --prewritten] [--direct] [--batches N] [--dir D]
    scripts/fsync-writers.py syncfs    [--ahead] ...

fdatasync: each writer syncs its own file. syncfs: one `syncfs` at a time
covers both files (a cross-file group commit). --ahead allocates blocks
8 MiB ahead of the writes with fallocate(FALLOC_FL_KEEP_SIZE), as the
broker's active segments do. --zeroed writes zeros (and syncs them) 16 MiB
at a time ahead of each writer on a thread of its own, so that every
batch overwrites blocks that are written and inside the file's size (no
metadata for its fdatasync to write); --prewritten does that for the whole
file before the clock starts: the rate a log on written blocks could reach
if making them cost nothing. --direct writes with O_DIRECT (from a
page-aligned buffer, 1 MiB-aligned offsets), past the page cache.
"""

import argparse
import ctypes
import mmap
import os
import threading
import time

FALLOC_FL_KEEP_SIZE = 1
MIB = 1 << 20

parser = argparse.ArgumentParser()
parser.add_argument("mode", choices=["fdatasync", "syncfs"])
prepare = parser.add_mutually_exclusive_group()
prepare.add_argument("--ahead", action="store_true")
prepare.add_argument("--zeroed", action="store_true")
prepare.add_argument("--prewritten", action="store_true")
parser.add_argument("--direct", action="store_true")
parser.add_argument("--batches", type=int, default=500)
parser.add_argument("--dir", default="/var/tmp/fsync-writers")
args = parser.parse_args()

libc = ctypes.CDLL("libc.so.6", use_errno=True)
os.makedirs(args.dir, exist_ok=True)
ZERO_CHUNK = 16 * MIB
zeros = mmap.mmap(-1, ZERO_CHUNK)  # anonymous: zero-filled, page-aligned
buf = mmap.mmap(-1, MIB)  # page-aligned, as O_DIRECT needs
buf.write(b"\x07" * MIB)
fds = []
for i in range(2):
    path = os.path.join(args.dir, f"writer-{i}")
    if os.path.exists(path):
        os.unlink(path)
    fds.append(os.open(path, os.O_RDWR | os.O_CREAT | (os.O_DIRECT if args.direct else 0), 0o644))
    if args.prewritten:
        for at in range(0, args.batches * MIB, ZERO_CHUNK):
            os.pwritev(fds[-1], [zeros], at)
        os.fdatasync(fds[-1])

# syncfs turn: whoever holds it syncs everything written so far.
turn = threading.Lock()
counter = threading.Lock()
written = [0]
synced = [0]


def check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


class Zeroer:
    """Keeps the file written with zeros two chunks ahead of its writer."""

    def __init__(self, fd):
        self.fd = fd
        self.zeroed = 0
        self.position = 0
        # Bytes the writer wrote before the zeros reached them.
        self.not_zeroed = 0
        self.done = False
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        while True:
            with self.changed:
                while not self.done and self.zeroed >= self.position + 2 * ZERO_CHUNK:
                    self.changed.wait()
                if self.done:
                    return
                # Never behind the writer's position. A chunk the writer
                # reaches while it is being zeroed gets data and zeros in
                # either order: only which blocks are written matters here,
                # not what they hold (counted in `not_zeroed`).
                at = max(self.zeroed, self.position)
            os.pwritev(self.fd, [zeros], at)
            os.fdatasync(self.fd)
            with self.changed:
                self.zeroed = at + ZERO_CHUNK
                self.changed.notify_all()

    def wrote_up_to(self, position):
        """The writer is about to write up to `position`."""
        with self.changed:
            self.not_zeroed += max(0, position - max(self.zeroed, self.position))
            self.position = position
            self.changed.notify_all()

    def stop(self):
        with self.changed:
            self.done = True
            self.changed.notify_all()
        self.thread.join()


zeroers = []  # started by their writers, on the clock


def writer(fd):
    zeroer = Zeroer(fd) if args.zeroed else None
    if zeroer:
        zeroers.append(zeroer)
    for k in range(args.batches):
        if zeroer:
            zeroer.wrote_up_to((k + 1) * MIB)
        if args.ahead and k % 8 == 0:
            check(
                libc.fallocate(fd, FALLOC_FL_KEEP_SIZE, ctypes.c_long(k * MIB), ctypes.c_long(8 * MIB)),
                "fallocate",
            )
        os.pwritev(fd, [buf], k * MIB)
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
    if zeroer:
        zeroer.stop()


started = time.monotonic()
threads = [threading.Thread(target=writer, args=(fd,)) for fd in fds]
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - started
prepared = "".join(f" --{flag}" for flag in ("ahead", "zeroed", "prewritten", "direct") if getattr(args, flag))
behind = f" ({sum(z.not_zeroed for z in zeroers) / MIB:.0f} MiB written before zeroed)" if args.zeroed else ""
print(f"{args.mode}{prepared}: {2 * args.batches / elapsed * MIB / 1e6:.0f} MB/s{behind}")
for fd in fds:
    os.close(fd)
for i in range(2):
    os.unlink(os.path.join(args.dir, f"writer-{i}"))
