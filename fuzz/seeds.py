#!/usr/bin/env python3
"""Write the hand-made seeds of fuzz/corpus/ (deterministic; re-run to refresh).

portname: readable specs in each grammar (the first byte selects the parser:
0 classify, 1 PortSpec, 2 nm_open, 3 both).
ring, vale, sequence, ctrl: byte streams for netmap_fuzz::Reader. Their
decoding is positional, so besides a few short hand-written streams each
gets some long pseudo-random ones: libFuzzer starts its length limit at the
longest seed, so long seeds let a short smoke run reach deep sequences.
"""

import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def portname():
    specs = {
        1: [
            "netmap:eth0",
            "netmap:eth0-2/Tx@conf:rings=4,slots=512",
            "netmap:eth0^1",
            "netmap:eth0*/xR@3",
            "vale0:a",
            "vale0:a{1/T@conf:tx-rings=2,rx-slots=64",
            "vale_x:port}pipe7@share=vale_x:other",
            "netmap:lo@extmem:file=/tmp/x,if-num=4,buf-size=4096",
            "netmap:lo@extmem=/dev/shm/m",
            "netmap:eth1@offset:initial=64,bits=8",
            "netmap:eth0@conf:host-rings=1,host-tx-rings=2@4",
        ],
        2: [
            "netmap:eth0",
            "netmap:eth0-1/x@2",
            "netmap:eth0{3",
            "netmap:eth0}3/T",
            "vale0:p^",
            "vale1:q*@7/rR",
            "netmap:eth0- 12",
        ],
        3: ["vale0:a{1", "netmap:eth0-2/Tx", "netmap:x}y@1"],
    }
    for sel, items in specs.items():
        for i, s in enumerate(items):
            write("portname", f"seed-{sel}-{i}", bytes([sel]) + s.encode())
    # classify: sel 0, mode (u8 % 4 != 0 -> small), flags kind, create, name.
    names = [b"vale0:a", b"vale0:a{1", b"x}y", b"{x", b"x{", b"vale:", b"valeXYZ", b"eth0", b"null0"]
    for i, n in enumerate(names):
        for mode in (1, 7, 5):
            write("portname", f"seed-0-{i}-{mode}", bytes([0, 1, mode, 2, 1]) + n)


def streams(target, rng, short):
    for i, s in enumerate(short):
        write(target, f"seed-short-{i}", s)
    for i, n in enumerate((256, 1024, 2048, 4096)):
        write(target, f"seed-random-{i}", bytes(rng.getrandbits(8) for _ in range(n)))


def main():
    rng = random.Random(0x6E6D)
    portname()
    # ring: slots/rings, then (port, dir, ring, op, ...) steps.
    streams(
        "ring",
        rng,
        [
            bytes([0, 0]) + bytes([0, 1, 0, 5, 3, 1, 0]) + bytes([1, 0, 0, 6]) * 2,
            bytes([1, 1]) + bytes([2, 1, 0, 5, 4, 2, 0, 3, 1]) + bytes([3, 0, 0, 3]),
            bytes([2, 0]) + bytes([0, 1, 0, 0, 7, 0, 200, 0, 250, 4, 255]) + bytes([0, 1, 0, 2]),
            bytes([3, 0]) + bytes([0, 1, 0, 1, 3, 2, 7, 1, 0, 0, 0, 0, 0, 33, 0, 1, 0, 0, 0, 0]) + bytes([0, 1, 0, 9]),
        ],
    )
    streams(
        "vale",
        rng,
        [
            bytes([0, 2, 0, 0, 0, 0, 0, 0]) + bytes([0, 0, 0, 0, 2, 0, 1, 0, 5, 4]) + bytes([0, 5]),
            bytes([0, 4]) + bytes([1, 0, 2, 1, 3]) * 4 + bytes([1, 7, 1, 10]) + bytes([0, 0, 0, 0, 0, 2]) + bytes([0, 5]),
        ],
    )
    reg = bytes([0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    streams(
        "sequence",
        rng,
        [
            bytes([0, 0]) + reg + bytes([1, 0]) + reg + bytes([0, 15, 1, 15]),
            bytes([0, 0, 3]) + reg + bytes([1, 9, 1, 5]) + bytes([1, 0, 4]) + reg + bytes([0, 11, 1, 0]),
            bytes([2, 5, 0, 9]) + bytes([2, 4, 1, 0]) + bytes([3, 6, 1, 1, 0]) + bytes([3, 8, 0, 0, 0]),
        ],
    )
    streams(
        "ctrl",
        rng,
        [
            struct.pack("<BBBB", 0, 3, 1, 0) + bytes(56) + bytes([5, 1, 0, 1, 1]),
            bytes([2, 0, 30]) + bytes(30) + bytes([1, 0, 24]) + bytes(24) + bytes([1, 1, 2, 5, 0]),
        ],
    )


if __name__ == "__main__":
    main()
