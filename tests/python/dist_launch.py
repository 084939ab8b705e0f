"""Runs a function on N local processes joined by a Gloo process group, for the distributed tests.

    results = run_on_ranks(module_fn, world_size=2, timeout=120, **kwargs)

``module_fn`` is "module:function" (importable from tests/python); each rank calls it as
``fn(rank, world_size, **kwargs)`` and its return value (picklable) comes back in rank order.
Every collective runs under the process group's timeout and the whole run under ``timeout``:
a hang is a test failure with the ranks' state, never a stuck CI job.
"""

import datetime
import io
import multiprocessing as mp
import os
import queue as queue_lib
import socket
import time
import traceback
from typing import Any, List


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child(module_fn: str, rank: int, world_size: int, port: int, collective_timeout: float, backend: str, queue,
           kwargs) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_RANK=str(rank), OMP_NUM_THREADS="1")
    try:
        import importlib

        import torch
        import torch.distributed as dist

        torch.set_num_threads(1)
        dist.init_process_group(backend, rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(seconds=collective_timeout))
        try:
            module, fn = module_fn.split(":")
            result = getattr(importlib.import_module(module), fn)(rank, world_size, **kwargs)
        finally:
            dist.destroy_process_group()
        # As bytes: a tensor put on the queue as itself would travel through shared memory that
        # this process takes with it when it exits.
        buffer = io.BytesIO()
        torch.save(result, buffer)
        queue.put((rank, True, buffer.getvalue()))
    except BaseException:  # noqa: BLE001 - the parent reports it
        queue.put((rank, False, traceback.format_exc()))


def run_on_ranks(module_fn: str, world_size: int = 2, timeout: float = 180.0, collective_timeout: float = 60.0,
                 backend: str = "gloo", **kwargs) -> List[Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_child, args=(module_fn, r, world_size, port, collective_timeout, backend, queue,
                                                      kwargs))
             for r in range(world_size)]
    for p in procs:
        p.start()
    results: List[Any] = [None] * world_size
    errors = []
    reported = set()
    deadline = time.monotonic() + timeout
    try:
        while len(reported) < world_size:
            try:
                rank, ok, value = queue.get(timeout=0.5)
            except queue_lib.Empty:
                dead = [r for r, p in enumerate(procs) if r not in reported and p.exitcode is not None]
                if dead:  # died without reporting (crash, or killed): give its result a moment to arrive
                    time.sleep(1.0)
                    if queue.empty():
                        raise RuntimeError(f"{module_fn}: rank(s) {dead} exited with code "
                                           f"{[procs[r].exitcode for r in dead]} without a result") from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{module_fn}: no result from rank(s) "
                                       f"{sorted(set(range(world_size)) - reported)} within {timeout} s") from None
                continue
            reported.add(rank)
            if ok:
                import torch

                results[rank] = torch.load(io.BytesIO(value), weights_only=False)
            else:
                errors.append(f"rank {rank}:\n{value}")
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join()
    if errors:
        raise RuntimeError(f"{module_fn} failed:\n" + "\n".join(errors))
    return results
