"""What the quantization table measures, one function each: model bytes, the weight bytes a decoded
token reads, weight SQNR against the float weights, and a run's own peak memory.

Memory, honestly: a row's memory is its model's bytes (quantized weights at their packed size)
plus the peak memory its decode run allocates on top of what was live when the run started.
On CUDA that is ``torch.cuda.max_memory_allocated`` minus the allocation at the start. On a CPU
torch has no allocator statistics, so it is the process's peak resident set (VmHWM, reset through
/proc/self/clear_refs at the start of the run) minus its resident set at the start, with glibc
told to return freed blocks of 64 KiB and more to the system (mallopt M_MMAP_THRESHOLD) and
trimmed before the run, so that memory freed by earlier rows does not hide this row's peak.
"""

from __future__ import annotations

import ctypes
import gc
import math

import torch

from .training import process_memory

_M_MMAP_THRESHOLD = -3
_libc = None


def _glibc():
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6")
            _libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)
        except (OSError, AttributeError):
            _libc = False
    return _libc


def _packed_bytes(t: torch.Tensor) -> int:
    nbytes = getattr(t, "nbytes_quantized", None)
    return nbytes() if callable(nbytes) else t.numel() * t.element_size()


def model_bytes(model: torch.nn.Module) -> int:
    """Bytes of the parameters and persistent buffers, quantized weights at their packed size."""
    persistent = [b for n, b in model.named_buffers() if "rope_" not in n]
    return sum(_packed_bytes(t) for t in list(model.parameters()) + persistent)


def decode_bytes_per_token(model: torch.nn.Module) -> int:
    """Weight bytes one decoded token reads: every linear's weight and bias (packed), the norms, and
    one embedding row (the KV cache it also reads is left out: it is the same for every format)."""
    total = 0
    for mod in model.modules():
        if isinstance(mod, torch.nn.Embedding):
            total += mod.weight.shape[1] * mod.weight.element_size()
            continue
        for p in mod.parameters(recurse=False):
            total += _packed_bytes(p)
    return total


def float_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every linear weight, the reference of :func:`weight_sqnr_db`."""
    return {n: m.weight.detach().clone() for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}


@torch.no_grad()
def weight_sqnr_db(reference: dict[str, torch.Tensor], model: torch.nn.Module) -> float:
    """10 log10(sum |W|^2 / sum |W - deq(Wq)|^2) over every linear of ``model`` against
    ``reference`` (layers left in float count with zero error); inf when nothing changed."""
    signal = noise = 0.0
    for name, mod in model.named_modules():
        if name not in reference:
            continue
        w = mod.weight
        deq = w.dequantize() if hasattr(w, "nbytes_quantized") else w
        ref = reference[name].float()
        signal += float(ref.pow(2).sum())
        noise += float((deq.float() - ref).pow(2).sum())
    return math.inf if noise == 0 else 10 * math.log10(signal / noise)


class PeakMemory:
    """``with PeakMemory(device) as m: run()`` -> ``m.bytes``: the peak allocated on top of what
    was live at entry (see the module docstring for how on CPUs)."""

    def __init__(self, device: torch.device):
        self.device, self.bytes = torch.device(device), 0

    def __enter__(self):
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
            return self
        libc = _glibc()
        if libc:
            libc.malloc_trim(0)
        try:  # "5" resets this process's peak resident set size (VmHWM) to its current size
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
        self.start = process_memory()[0]
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            peak = process_memory()[1]
        self.bytes = max(0, peak - self.start)
        return False


def markdown_table(rows: list[dict]) -> str:
    """The table: one line per row of :func:`lowbit_recipes.finetune_then_quantize.measure`."""
    head = ("| technique | perplexity | vs float | weight SQNR (dB) | decode tokens/s | weight GB/s | "
            "model size (MiB) | run peak (MiB) | memory (MiB) |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        sqnr = "—" if math.isinf(r["weight_sqnr_db"]) else f"{r['weight_sqnr_db']:.1f}"
        change = "—" if r.get("baseline") else f"{r['perplexity_change_pct']:+.2f}%"
        lines.append(f"| {r['technique']} | {r['perplexity']:.3f} | {change} | {sqnr} | {r['tokens_per_s']:.1f} | "
                     f"{r['weight_gb_per_s']:.3g} | {r['model_size_mib']:.2f} | {r['run_peak_mib']:.2f} | "
                     f"{r['memory_mib']:.2f} |")
    return "\n".join(lines) + "\n"
