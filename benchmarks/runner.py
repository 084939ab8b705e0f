"""Benchmark runner: median timing, same-run baselines with ratios, tables and JSON results.

Every case times a baseline and lowbit in the same process, on the same inputs, and prints the
ratio. On CUDA it times with CUDA events (after warm-up, rotating among several input sets so
repeated runs do not just measure the L2 cache); on CPU with perf_counter.

When the environment names a folder in LOWBIT_BENCH_DIR (benchmarks/gpu_check.sh does), every
Report also writes its JSON there after each row ("complete": false until save), so a benchmark
stopped at its time cap still hands over the rows it measured.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import statistics
import subprocess
import time
from typing import Callable, List, Optional, Sequence

import torch


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_ms(fn: Callable[[int], object], device: str, *, warmup: int = 5, iters: int = 30) -> float:
    """Median milliseconds of ``fn(i)`` over ``iters`` calls; ``i`` lets the caller rotate inputs."""
    for i in range(warmup):
        fn(i)
    _sync(device)
    times = []
    if device.startswith("cuda"):
        for i in range(iters):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn(i)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
    else:
        for i in range(iters):
            t0 = time.perf_counter()
            fn(i)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def copy_bandwidth_gbps(device: str, nbytes: int = 1 << 28) -> float:
    """Device copy bandwidth, counting bytes read plus bytes written (the ceiling for casts)."""
    src = torch.empty(nbytes, dtype=torch.uint8, device=device).random_(0, 255)
    dst = torch.empty_like(src)
    ms = time_ms(lambda i: dst.copy_(src), device, warmup=3, iters=10)
    return 2 * nbytes / (ms * 1e-3) / 1e9


def environment(device: str) -> dict:
    """Device, versions and commit, recorded with every result file."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except OSError:
        commit = ""
    import lowbit

    name = torch.cuda.get_device_name() if device.startswith("cuda") else f"cpu ({os.cpu_count()} cores)"
    return {"device": name, "torch": torch.__version__, "lowbit": lowbit.__version__,
            "lowbit_build": lowbit.build_info(), "commit": commit or "unknown"}


@dataclasses.dataclass
class Row:
    case: str
    baseline: str
    baseline_ms: float
    candidate: str
    candidate_ms: float
    gbps: Optional[float] = None  # candidate's achieved bandwidth (minimal bytes / time)
    frac_copy_bw: Optional[float] = None

    @property
    def speedup(self) -> float:
        return self.baseline_ms / self.candidate_ms


class Report:
    """Collects rows, prints each as it lands, and writes markdown + JSON at the end."""

    def __init__(self, title: str, device: str, copy_gbps: Optional[float] = None):
        self.title, self.device, self.copy_gbps = title, device, copy_gbps
        self.rows: List[Row] = []
        self.env = environment(device)
        self._live_path = _live_json_path(title)
        print(f"# {title} | {self.env['device']} | torch {self.env['torch']} | commit {self.env['commit']}")
        if copy_gbps:
            print(f"# copy bandwidth (read + write): {copy_gbps:.0f} GB/s")

    def add(self, case: str, baseline: str, baseline_ms: float, candidate: str, candidate_ms: float,
            nbytes: Optional[int] = None) -> Row:
        gbps = nbytes / (candidate_ms * 1e-3) / 1e9 if nbytes else None
        frac = gbps / self.copy_gbps if gbps and self.copy_gbps else None
        row = Row(case, baseline, baseline_ms, candidate, candidate_ms, gbps, frac)
        self.rows.append(row)
        print(self._line(row), flush=True)
        self._write_live(complete=False)
        return row

    @staticmethod
    def _line(r: Row) -> str:
        bw = f" | {r.gbps:8.1f} GB/s" if r.gbps is not None else ""
        frac = f" | {100 * r.frac_copy_bw:5.1f}% of copy" if r.frac_copy_bw is not None else ""
        return (f"{r.case:<40} | {r.baseline} {r.baseline_ms:9.4f} ms | {r.candidate} {r.candidate_ms:9.4f} ms"
                f" | {r.speedup:5.2f}x{bw}{frac}")

    def markdown(self) -> str:
        lines = [f"## {self.title}", "", f"device: {self.env['device']}; torch {self.env['torch']}; "
                 f"commit {self.env['commit']}" + (f"; copy bandwidth {self.copy_gbps:.0f} GB/s" if self.copy_gbps else ""),
                 "", "| case | baseline | baseline ms | lowbit | lowbit ms | speedup | GB/s | % of copy |",
                 "|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            gb = f"{r.gbps:.1f}" if r.gbps is not None else ""
            fr = f"{100 * r.frac_copy_bw:.1f}" if r.frac_copy_bw is not None else ""
            lines.append(f"| {r.case} | {r.baseline} | {r.baseline_ms:.4f} | {r.candidate} | {r.candidate_ms:.4f} "
                         f"| {r.speedup:.2f}x | {gb} | {fr} |")
        return "\n".join(lines) + "\n"

    def payload(self, complete: bool = True) -> dict:
        """The report as JSON-ready data (what save writes)."""
        return {"title": self.title, "env": self.env, "copy_gbps": self.copy_gbps, "complete": complete,
                "rows": [dataclasses.asdict(r) | {"speedup": r.speedup} for r in self.rows]}

    def _write_live(self, complete: bool) -> None:
        if self._live_path:
            _write_json_atomic(self._live_path, self.payload(complete))

    def save(self, json_path: Optional[str]) -> None:
        self._write_live(complete=True)
        if not json_path:
            return
        os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
        with open(json_path, "w") as f:
            json.dump(self.payload(), f, indent=2)
        with open(os.path.splitext(json_path)[0] + ".md", "w") as f:
            f.write(self.markdown())


def _live_json_path(title: str) -> Optional[str]:
    folder = os.environ.get("LOWBIT_BENCH_DIR")
    if not folder:
        return None
    os.makedirs(folder, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9]+", "_", title).strip("_")[:60] or "report"
    return os.path.join(folder, f"{os.getpid()}_{slug}.json")


def _write_json_atomic(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)  # a benchmark killed mid-write leaves the previous complete file


def parse_shapes(text: str) -> Sequence[tuple]:
    """'4096x4096,16384x4096' -> [(4096, 4096), (16384, 4096)]."""
    return [tuple(int(d) for d in s.split("x")) for s in text.split(",") if s]
