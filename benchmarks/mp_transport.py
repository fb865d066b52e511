#!/usr/bin/env python3
"""multiprocessing transport: sending a 32-byte secret against sending 32
plain bytes, in the same run.

    python3 benchmarks/mp_transport.py [--method spawn|forkserver|fork]
                                       [--count N] [--repeat R]

For each route a worker process is started once; the parent then sends it
N items one at a time and waits for an acknowledgement of each (so every
figure is a full delivery: pickling, the transport, unpickling in the
worker, and a 1-byte answer):

- Connection.send of a SecretBytes (the pipe-descriptor transport:
  a fresh pipe per secret, its read end fetched by the worker from the
  sender's resource sharer over a Unix socket) against Connection.send
  of a 32-byte bytes object;
- Queue.put of each, read by the worker with Queue.get.

The figure is microseconds per item, the best of R repetitions of N items
(wall-clock time: two processes take part; the best run is the one least
disturbed by other work on a shared machine).  The ratio secret / bytes is
what to read: it is measured in one run on one machine.  Needs memsafe
importable (pip install -e .).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import multiprocessing.connection
import os
import time
from typing import Any

import memsafe


def connection_worker(conn: multiprocessing.connection.Connection) -> None:
    """Receive items until None, acknowledging each with one byte."""
    while True:
        item = conn.recv()
        if item is None:
            return
        if isinstance(item, memsafe.SecretBytes):
            item.close()
        conn.send_bytes(b"k")


def queue_worker(q: Any, ack: multiprocessing.connection.Connection) -> None:
    """Get items from q until None, acknowledging each with one byte."""
    while True:
        item = q.get()
        if item is None:
            return
        if isinstance(item, memsafe.SecretBytes):
            item.close()
        ack.send_bytes(b"k")


def best_per_item(send: Any, wait: Any, item: Any, count: int, repeat: int) -> float:
    """Microseconds per delivered item, best of repeat runs of count."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(count):
            send(item)
            wait()
        best = min(best, time.perf_counter() - start)
    return best / count * 1e6


def measure(method: str, count: int, repeat: int) -> dict[str, dict[str, float]]:
    ctx = mp.get_context(method)
    secret = memsafe.SecretBytes.random(32)
    plain = os.urandom(32)
    out: dict[str, dict[str, float]] = {}

    a, b = ctx.Pipe()
    p = ctx.Process(target=connection_worker, args=(b,))
    p.start()
    send, wait = a.send, a.recv_bytes
    best_per_item(send, wait, plain, 20, 1)  # warm up (and the resource
    best_per_item(send, wait, secret, 20, 1)  # sharer's listener)
    out["Connection.send"] = {
        "bytes": best_per_item(send, wait, plain, count, repeat),
        "secret": best_per_item(send, wait, secret, count, repeat),
    }
    a.send(None)
    p.join()

    q = ctx.Queue()
    ack_r, ack_w = ctx.Pipe(duplex=False)
    p = ctx.Process(target=queue_worker, args=(q, ack_w))
    p.start()
    send, wait = q.put, ack_r.recv_bytes
    best_per_item(send, wait, plain, 20, 1)
    best_per_item(send, wait, secret, 20, 1)
    out["Queue.put"] = {
        "bytes": best_per_item(send, wait, plain, count, repeat),
        "secret": best_per_item(send, wait, secret, count, repeat),
    }
    q.put(None)
    p.join()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="spawn", choices=mp.get_all_start_methods())
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    res = measure(args.method, args.count, args.repeat)
    print(
        f"multiprocessing transport, start method {args.method}, "
        f"best of {args.repeat} x {args.count} items, microseconds per item"
    )
    print(f"{'route':<18}{'32 plain bytes':>16}{'32-byte secret':>16}{'ratio':>8}")
    for route, row in res.items():
        ratio = row["secret"] / row["bytes"]
        print(f"{route:<18}{row['bytes']:>16.1f}{row['secret']:>16.1f}{ratio:>8.1f}")


if __name__ == "__main__":
    main()
