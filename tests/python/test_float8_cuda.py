"""float8 on a CUDA GPU with fp8 tensor cores (skipped elsewhere): the cuBLASLt GEMM against the
float32 emulation over every output dtype, bias, operand dtype pair, scale granularity mix, empty
problem and operand layout (sliced, offset, column-major); which path ran (the outer-vector fast
path on Hopper, never a silent fallback); the training linear against emulate; and CUDA-graph
capture of a whole training step (which proves no host synchronization).

Bounds: cuBLASLt and the emulation multiply the same fp8 values; the emulation sums in float32,
Hopper's fp8 tensor cores keep about 14 mantissa bits within a block of K before cuBLASLt adds
the block into float32 (without fast accumulation), and the output is rounded once. So relative
Frobenius error under 1e-2 for bf16 outputs, 4e-3 for fp16, 1e-3 for float32, and 1e-2 with fast
accumulation (no promotion to float32 at all). A wrong scale, layout or bias is off by far more."""

import copy
import warnings

import pytest
import torch

import lowbit
from lowbit.core import cast_to_float8, kernel_path_counts, scaled_mm, scaled_mm_last_path
from lowbit.float8 import Float8LinearConfig, convert_to_float8_training

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.skipif(not lowbit.build_info()["cuda"], reason="lowbit was built without its CUDA kernels"),
]

CUDA = "cuda"
E4M3, E5M2 = torch.float8_e4m3fn, torch.float8_e5m2


def capability():
    return torch.cuda.get_device_capability() if torch.cuda.is_available() else (0, 0)


fp8_gpu = pytest.mark.skipif(capability() < (8, 9), reason="needs a CUDA GPU with fp8 tensor cores (sm_89+)")
# Hopper is where cuBLASLt (>= 12.9) has outer-vector fp8 scaling; there the fast path is asserted.
HOPPER = capability()[0] == 9
BOUND = {torch.bfloat16: 1e-2, torch.float16: 4e-3, torch.float32: 1e-3}
SCALE_MIXES = ["tensor x tensor", "row x row", "tensor x row", "row x tensor"]
DTYPE_PAIRS = [(E4M3, E4M3), (E4M3, E5M2), (E5M2, E4M3)]


def sqnr(ref, x):
    return (20 * torch.log10(ref.float().norm() / (ref.float() - x.float()).norm())).item()


def rel_error(got, ref):
    ref = ref.double()
    return ((got.double() - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def operands(m, n, k, mix="row x row", dtypes=(E4M3, E4M3), seed=0):
    """fp8 a (M, K), b (K, N) and their scales on the GPU: tensorwise () or row-wise (M, 1) / (1, N)."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(m, k, generator=gen).to(CUDA)
    b = torch.randn(k, n, generator=gen).to(CUDA)
    ga, gb = mix.split(" x ")
    qa, sa = cast_to_float8(a, dtypes[0], "row" if ga == "row" else "tensor")
    qb, sb = cast_to_float8(b, dtypes[1], "column" if gb == "row" else "tensor")
    return qa, qb, sa, sb


def expected_path(mix):
    return "cublaslt_tensorwise" if mix == "tensor x tensor" else "cublaslt_outer_vector"


class PathWatch:
    """Counts the scaled_mm paths taken inside a `with` block and records warnings (all of them:
    TORCH_WARN_ONCE fires once per process, so the counters are what a test relies on)."""

    def __enter__(self):
        self.before = kernel_path_counts()
        self._warn = warnings.catch_warnings(record=True)
        self.warnings = self._warn.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._warn.__exit__(*exc)
        after = kernel_path_counts()
        self.delta = {k: after[k] - self.before[k] for k in after if after[k] != self.before[k]}
        return False

    def assert_fast(self, allow=("cublaslt_tensorwise", "cublaslt_outer_vector", "empty")):
        ran = {k.split("/", 1)[1] for k in self.delta if k.startswith("scaled_mm/")}
        assert ran <= set(allow), f"scaled_mm paths taken: {self.delta}"
        assert not [w for w in self.warnings if "outer-vector" in str(w.message)], [str(w.message) for w in self.warnings]


# ---- scaled_mm against the emulation --------------------------------------------------------


@fp8_gpu
@pytest.mark.parametrize("mnk", [(256, 512, 1024), (100, 72, 40)], ids=str)
@pytest.mark.parametrize("dtypes", DTYPE_PAIRS, ids=lambda d: f"{str(d[0])[-6:]}x{str(d[1])[-6:]}")
@pytest.mark.parametrize("mix", SCALE_MIXES)
@pytest.mark.parametrize("bias", [None, "out_dtype", "float32"])
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16, torch.float32], ids=str)
def test_scaled_mm_matches_emulation(mnk, dtypes, mix, bias, out_dtype):
    m, n, k = mnk
    qa, qb, sa, sb = operands(m, n, k, mix, dtypes, seed=m + n + k)
    b = None
    if bias is not None:
        b = torch.randn(n, device=CUDA)
        b = b.to(out_dtype) if bias == "out_dtype" else b
    with PathWatch() as watch:
        got = scaled_mm(qa, qb, sa, sb, b, out_dtype)
    ref = scaled_mm(qa, qb, sa, sb, b, torch.float32, emulate=True)
    assert got.shape == (m, n) and got.dtype == out_dtype and got.is_contiguous()
    assert rel_error(got, ref) < BOUND[out_dtype]
    watch.assert_fast()
    if HOPPER:
        assert watch.delta == {f"scaled_mm/{expected_path(mix)}": 1}, watch.delta
        assert scaled_mm_last_path() == expected_path(mix)


@fp8_gpu
@pytest.mark.parametrize("mix", SCALE_MIXES)
def test_scaled_mm_fast_accumulation(mix):
    qa, qb, sa, sb = operands(512, 256, 2048, mix)
    got = scaled_mm(qa, qb, sa, sb, None, torch.float32, use_fast_accum=True)
    ref = scaled_mm(qa, qb, sa, sb, None, torch.float32, emulate=True)
    assert rel_error(got, ref) < 1e-2
    if HOPPER:
        assert scaled_mm_last_path() == expected_path(mix)


@fp8_gpu
@pytest.mark.parametrize("mix", SCALE_MIXES)
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float32], ids=str)
def test_scaled_mm_large(mix, out_dtype):
    qa, qb, sa, sb = operands(4096, 4096, 4096, mix)
    bias = torch.randn(4096, device=CUDA, dtype=torch.bfloat16)
    got = scaled_mm(qa, qb, sa, sb, bias, out_dtype)
    ref = scaled_mm(qa, qb, sa, sb, bias, torch.float32, emulate=True)
    assert rel_error(got, ref) < BOUND[out_dtype]


@fp8_gpu
@pytest.mark.parametrize("mix", ["tensor x tensor", "row x row"])
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float32], ids=str)
def test_scaled_mm_empty_problems(mix, out_dtype):
    bias = torch.randn(24, device=CUDA)
    for m, n, k in [(0, 24, 32), (8, 0, 32), (0, 0, 16), (8, 24, 0), (1, 24, 0)]:
        qa, qb, sa, sb = operands(m, n, k, mix)
        for b in (None, bias[:n]):
            with PathWatch() as watch:
                got = scaled_mm(qa, qb, sa, sb, b, out_dtype)
            ref = scaled_mm(qa, qb, sa, sb, b, out_dtype, emulate=True)
            assert got.shape == (m, n) and got.dtype == out_dtype and got.device.type == torch.device(CUDA).type
            assert torch.equal(got, ref), (m, n, k)
            assert watch.delta == {"scaled_mm/empty": 1}, watch.delta
    got = scaled_mm(*operands(8, 24, 0, mix), bias, out_dtype)
    assert torch.equal(got, bias.to(out_dtype).expand(8, 24))  # K = 0: the bias on every row


def offset_copy(t):
    """t's values in a contiguous view one element past the start of a fresh allocation: not
    16-byte aligned (for fp8 not even 2-byte aligned)."""
    buf = torch.empty(t.numel() + 1, dtype=t.dtype, device=t.device)
    buf[1:].view(torch.uint8).copy_(t.contiguous().reshape(-1).view(torch.uint8))  # bytes: fp8 too
    return buf[1:].view(t.shape)


@fp8_gpu
@pytest.mark.parametrize("mix", SCALE_MIXES)
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float32], ids=str)
def test_scaled_mm_sliced_and_offset_operands(mix, out_dtype):
    """Views the op must copy or accept: a row slice (offset K bytes), an offset contiguous view
    (1-byte aligned), b column-major (the layout cuBLASLt wants: no copy) and row-major, a column
    slice of b, scale vectors and a bias that start 4 bytes into their allocation."""
    m, n, k = 65, 48, 96
    qa, qb, sa, sb = operands(m, n, k, mix)
    bias = torch.randn(n + 1, device=CUDA, dtype=out_dtype)[1:]  # 2 or 4 bytes past aligned
    ref = scaled_mm(qa[1:], qb, sa[1:] if sa.numel() > 1 else sa, sb, bias, torch.float32, emulate=True)
    sa1 = sa[1:] if sa.numel() > 1 else sa
    cases = {
        "row slice": (qa[1:], qb, sa1, sb),
        "offset a": (offset_copy(qa[1:]), qb, sa1, sb),
        "offset b": (qa[1:], offset_copy(qb), sa1, sb),
        "column-major b": (qa[1:], qb.t().contiguous().t(), sa1, sb),
        "offset scales": (qa[1:], qb, offset_copy(sa1), offset_copy(sb)),
    }
    with PathWatch() as watch:
        for name, (a_, b_, sa_, sb_) in cases.items():
            got = scaled_mm(a_, b_, sa_, sb_, bias, out_dtype)
            assert rel_error(got, ref) < BOUND[out_dtype], name
        # A column slice of b (non-contiguous) against its own emulation.
        b_cols = qb[:, 1:]
        sb_cols = sb[:, 1:] if sb.numel() > 1 else sb
        got = scaled_mm(qa, b_cols, sa, sb_cols, None, out_dtype)
        assert rel_error(got, scaled_mm(qa, b_cols, sa, sb_cols, None, torch.float32, emulate=True)) < BOUND[out_dtype]
    watch.assert_fast()


@fp8_gpu
def test_scaled_mm_aligned_and_offset_calls_alternate():
    """The plan key holds each pointer's alignment: a 16-byte aligned view after a 256-byte aligned
    call of the same shape must get a plan (algorithm) of its own, and both stay right."""
    m, n, k = 128, 256, 512
    qa, qb, sa, sb = operands(m + 1, n, k, "row x row")
    ref_full = scaled_mm(qa[:m], qb, sa[:m], sb, None, torch.float32, emulate=True)
    ref_off = scaled_mm(qa[1:], qb, sa[1:], sb, None, torch.float32, emulate=True)
    for _ in range(3):
        assert rel_error(scaled_mm(qa[:m], qb, sa[:m], sb, None, torch.float32), ref_full) < BOUND[torch.float32]
        assert rel_error(scaled_mm(qa[1:], qb, sa[1:], sb, None, torch.float32), ref_off) < BOUND[torch.float32]  # 512-byte offset: 256-aligned
        qa16 = torch.empty(m * k + 16, dtype=qa.dtype, device=CUDA)
        qa16[16:].view(torch.uint8).copy_(qa[1:].reshape(-1).view(torch.uint8))
        view16 = qa16[16:].view(m, k)  # 16-byte aligned, not 32
        assert rel_error(scaled_mm(view16, qb, sa[1:], sb, None, torch.float32), ref_off) < BOUND[torch.float32]


@fp8_gpu
def test_scaled_mm_many_shapes_stay_bounded():
    """More distinct shapes than the per-thread plan cache holds (256): evicted plans are destroyed
    and rebuilt on demand, and every result stays right."""
    qa, qb, sa, sb = operands(300, 32, 64, "row x row")
    for m in range(1, 301):
        got = scaled_mm(qa[:m], qb, sa[:m], sb, None, torch.float32)
        if m % 50 == 1:
            ref = scaled_mm(qa[:m], qb, sa[:m], sb, None, torch.float32, emulate=True)
            assert rel_error(got, ref) < BOUND[torch.float32], m
    got = scaled_mm(qa[:1], qb, sa[:1], sb, None, torch.float32)  # its plan was evicted
    assert rel_error(got, scaled_mm(qa[:1], qb, sa[:1], sb, None, torch.float32, emulate=True)) < BOUND[torch.float32]


@fp8_gpu
def test_scaled_mm_argument_errors():
    qa, qb, sa, sb = operands(16, 32, 64)
    with pytest.raises(RuntimeError, match="bias on cpu"):
        scaled_mm(qa, qb, sa, sb, torch.zeros(32))  # a host pointer must never reach the GEMM
    with pytest.raises(RuntimeError, match="scale_a on cpu"):
        scaled_mm(qa, qb, sa.cpu(), sb)
    with pytest.raises(RuntimeError, match="bias must be float32, bfloat16 or float16"):
        scaled_mm(qa, qb, sa, sb, torch.zeros(32, device=CUDA, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="e5m2 x e5m2"):
        scaled_mm(qa.to(E5M2), qb.to(E5M2), sa, sb)


@fp8_gpu
@pytest.mark.skipif(not HOPPER, reason="the outer-vector path is asserted on Hopper (sm_90)")
def test_rowwise_training_takes_the_outer_vector_path():
    """A rowwise float8 training step (forward and backward GEMMs, bias, odd N) runs cuBLASLt's
    outer-vector path for every row-wise GEMM and never the unit-scale fallback or its warning."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 200), torch.nn.GELU(), torch.nn.Linear(200, 256)).to(
        CUDA, torch.bfloat16)
    convert_to_float8_training(model, config=Float8LinearConfig.from_recipe_name("rowwise"))
    x = torch.randn(64, 256, device=CUDA, dtype=torch.bfloat16)
    with PathWatch() as watch:
        model(x).float().square().mean().backward()
        torch.cuda.synchronize()
    watch.assert_fast(allow=("cublaslt_outer_vector",))
    assert watch.delta.get("scaled_mm/cublaslt_outer_vector", 0) == 6, watch.delta  # 2 layers x 3 GEMMs


# ---- the training linear ------------------------------------------------------------------


@fp8_gpu
@pytest.mark.parametrize("recipe", ["tensorwise", "rowwise", "rowwise_with_gw_hp"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=str)
def test_float8_linear_cuda_matches_emulate(recipe, dtype):
    torch.manual_seed(0)
    base = torch.nn.Linear(1024, 520, device=CUDA, dtype=dtype)  # with bias; N = 520 is not a multiple of 16
    real = convert_to_float8_training(copy.deepcopy(base), config=Float8LinearConfig.from_recipe_name(recipe))
    emu = convert_to_float8_training(copy.deepcopy(base),
                                     config=Float8LinearConfig.from_recipe_name(recipe, emulate=True))
    x = torch.randn(2048, 1024, device=CUDA, dtype=dtype)
    outs = []
    with PathWatch() as watch:
        for m in (real, emu):
            xi = x.clone().requires_grad_()
            y = m(xi)
            y.float().square().mean().backward()
            outs.append((y.detach(), xi.grad, m.weight.grad, m.bias.grad))
    for got, ref in zip(outs[0], outs[1]):
        assert sqnr(ref, got) > 30  # same fp8 operands; only accumulation order (and fast accum) differ
    watch.assert_fast(allow=("cublaslt_tensorwise", "cublaslt_outer_vector", "emulated"))


@fp8_gpu
def test_training_step_captures_in_a_cuda_graph():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.GELU(), torch.nn.Linear(512, 256)).cuda()
    convert_to_float8_training(model, config=Float8LinearConfig.from_recipe_name("rowwise"))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(128, 256, device=CUDA)

    def step():
        opt.zero_grad(set_to_none=False)
        loss = model(x).float().square().mean()
        loss.backward()
        opt.step()
        return loss

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_loss = step()
    losses = []
    for _ in range(5):
        graph.replay()
        losses.append(static_loss.item())
    assert losses[-1] < losses[0]
