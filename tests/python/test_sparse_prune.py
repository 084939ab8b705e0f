"""lowbit.core.prune_2_4: the 2:4 mask rule against an independent Python model of it, its
properties (at most 2 per row and column of every 4x4 tile, kept values largest by the rule,
ties, NaN), how many the transposable rule keeps on random data, errors, opcheck and
torch.compile; the CUDA kernel against the CPU reference (skipped without a GPU)."""

import pytest
import torch

import lowbit
from lowbit.core import prune_2_4

ALGORITHMS = ["largest_abs", "largest", "largest_abs_rows"]
DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]


def rank_order(keys):
    """Positions of `keys` from the highest rank down: NaN first, then larger keys, then the
    lower position (written from the rule's description, not from the C++)."""
    return sorted(range(len(keys)), key=lambda i: (0 if keys[i] != keys[i] else 1,
                                                   -keys[i] if keys[i] == keys[i] else 0, i))


def model_prune(x: torch.Tensor, algorithm: str) -> torch.Tensor:
    """The mask the rule defines, by walking each tile / group in rank order."""
    xs = x.double().tolist()
    rows, cols = len(xs), len(xs[0])
    mask = [[False] * cols for _ in range(rows)]
    key = (lambda v: abs(v)) if algorithm != "largest" else (lambda v: v)
    if algorithm == "largest_abs_rows":
        for r in range(rows):
            for c0 in range(0, cols, 4):
                for i in rank_order([key(xs[r][c0 + i]) for i in range(4)])[:2]:
                    mask[r][c0 + i] = True
        return torch.tensor(mask)
    for r0 in range(0, rows, 4):
        for c0 in range(0, cols, 4):
            keys = [key(xs[r0 + i // 4][c0 + i % 4]) for i in range(16)]
            row_n, col_n = [0] * 4, [0] * 4
            for i in rank_order(keys):
                r, c = divmod(i, 4)
                if row_n[r] < 2 and col_n[c] < 2:
                    mask[r0 + r][c0 + c] = True
                    row_n[r] += 1
                    col_n[c] += 1
    return torch.tensor(mask)


def tiles(t: torch.Tensor) -> torch.Tensor:
    """(rows, cols) -> (rows/4 * cols/4, 4, 4) aligned tiles."""
    r, c = t.shape
    return t.reshape(r // 4, 4, c // 4, 4).permute(0, 2, 1, 3).reshape(-1, 4, 4)


def with_ties(shape, g, dtype=torch.float32):
    """Random values on a coarse grid (many exact ties, both signs, zeros of both signs)."""
    x = torch.randint(-3, 4, shape, generator=g).to(dtype)
    x[torch.rand(shape, generator=g) < 0.1] = -0.0
    return x


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_the_rule(algorithm, dtype, rng):
    for x in (torch.randn(16, 32, generator=rng).to(dtype), with_ties((12, 24), rng, dtype)):
        values, mask = prune_2_4(x, algorithm)
        assert mask.dtype == torch.bool and values.dtype == dtype and values.shape == x.shape
        assert torch.equal(mask, model_prune(x, algorithm))
        assert torch.equal(values, torch.where(mask, x, torch.zeros_like(x)))
        # pruned entries are +0 (not -0): the sign bit is clear
        assert not torch.signbit(values[~mask]).any()


@pytest.mark.parametrize("algorithm", ["largest_abs", "largest"])
def test_tiles_keep_at_most_two_per_row_and_column(algorithm, rng):
    x = torch.randn(64, 128, generator=rng)
    _, mask = prune_2_4(x, algorithm)
    t = tiles(mask).int()
    assert t.sum(1).max() <= 2 and t.sum(2).max() <= 2
    # the transpose is 2:4 along its rows too: every aligned group of 4 holds at most 2
    assert mask.t().reshape(-1, 4).sum(1).max() <= 2
    assert mask.reshape(-1, 4).sum(1).max() <= 2


def test_rows_keep_exactly_two_of_each_group_and_the_largest(rng):
    x = torch.randn(6, 64, generator=rng)
    _, mask = prune_2_4(x, "largest_abs_rows")
    assert torch.equal(mask.reshape(-1, 4).sum(1), torch.full((6 * 16,), 2))
    a = x.abs().reshape(-1, 4)
    m = mask.reshape(-1, 4)
    kept_min = torch.where(m, a, torch.inf).amin(1)
    dropped_max = torch.where(m, -torch.inf, a).amax(1)
    assert (kept_min >= dropped_max).all()


@pytest.mark.parametrize("algorithm", ["largest_abs", "largest"])
def test_every_dropped_element_is_outranked_in_a_full_row_or_column(algorithm, rng):
    """The greedy rule's defining property, checked without replaying it: an element is dropped
    only when its row or its column already holds 2 kept elements that rank above it."""
    x = torch.randn(32, 32, generator=rng)
    _, mask = prune_2_4(x, algorithm)
    key = x.abs() if algorithm == "largest_abs" else x
    kt, mt = tiles(key), tiles(mask)
    for k, m in zip(kt, mt):
        for r in range(4):
            for c in range(4):
                if m[r, c]:
                    continue
                row_above = [k[r, j] > k[r, c] for j in range(4) if m[r, j]]
                col_above = [k[i, c] > k[r, c] for i in range(4) if m[i, c]]
                assert (len(row_above) == 2 and all(row_above)) or (len(col_above) == 2 and all(col_above))


def test_ties_go_to_the_earlier_position():
    x = torch.ones(4, 4)
    _, mask = prune_2_4(x)
    expected = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(mask, expected)
    # -3 and 3 have equal magnitude: the first wins; +0 and -0 are equal keys too
    row = torch.tensor([[0.0, -3.0, 3.0, -0.0]])
    assert prune_2_4(row, "largest_abs_rows")[1].tolist() == [[False, True, True, False]]
    zeros = torch.tensor([[-0.0, 0.0, -0.0, 0.0]])
    assert prune_2_4(zeros, "largest_abs_rows")[1].tolist() == [[True, True, False, False]]
    # signed: -3 ranks below 0
    assert prune_2_4(torch.tensor([[-3.0, 0.0, 1.0, -1.0]]).repeat(4, 1), "largest")[1][0].tolist() == \
        [False, True, True, False]


def test_nan_ranks_first_and_infinities_by_their_key():
    x = torch.tensor([[1.0, float("nan"), 5.0, -float("inf")]])
    values, mask = prune_2_4(x, "largest_abs_rows")
    assert mask.tolist() == [[False, True, False, True]]
    assert torch.isnan(values[0, 1]) and values[0, 3] == -float("inf")
    tile = torch.tensor([[1.0, float("nan"), 5.0, -float("inf")]]).repeat(4, 1)
    _, signed = prune_2_4(tile, "largest")
    assert signed[0].tolist() == [False, True, True, False]  # -inf is the smallest signed value


def test_how_many_the_transposable_rule_keeps_on_random_data(rng):
    """The greedy tile rule is maximal, not maximum: it sometimes corners itself and keeps 7 of 16
    instead of 8 (never fewer: a short row and a short column would meet in a free cell). Measured
    on 16384 tiles of Gaussian data (the number in the rule's header and README): 7.84 of 8 per
    tile, 49.0% density, 84% of tiles keep 8."""
    x = torch.randn(512, 512, generator=rng)
    for algorithm in ("largest_abs", "largest"):
        _, mask = prune_2_4(x, algorithm)
        per_tile = tiles(mask).sum((1, 2)).double()
        mean = per_tile.mean().item()
        print(f"{algorithm}: kept {mean:.3f} of 8 per tile ({100 * mean / 16:.2f}% density), "
              f"{(per_tile == 8).double().mean().item() * 100:.1f}% of tiles keep 8, min {per_tile.min().item():.0f}")
        assert 7.78 < mean < 7.9
        assert per_tile.min() >= 7


def test_errors_name_the_argument():
    with pytest.raises(RuntimeError, match="unknown algorithm 'magnitude'.*'largest_abs', 'largest', 'largest_abs_rows'"):
        prune_2_4(torch.zeros(4, 4), "magnitude")
    with pytest.raises(RuntimeError, match=r"columns \(6\) must be a multiple of 4"):
        prune_2_4(torch.zeros(4, 6))
    with pytest.raises(RuntimeError, match=r"rows \(6\) must be a multiple of 4 for algorithm 'largest_abs'"):
        prune_2_4(torch.zeros(6, 8))
    assert prune_2_4(torch.zeros(6, 8), "largest_abs_rows")[1].sum() == 24
    with pytest.raises(RuntimeError, match="must be 2-D"):
        prune_2_4(torch.zeros(2, 4, 4))
    with pytest.raises(RuntimeError, match="input dtype Int is not supported"):
        prune_2_4(torch.zeros(4, 4, dtype=torch.int32))
    for device in ("cpu", "meta"):  # the Meta kernel rejects what the CPU kernel rejects
        with pytest.raises(RuntimeError, match="must be a multiple of 4"):
            prune_2_4(torch.zeros(8, 10, device=device))


def test_non_contiguous_and_empty_inputs(rng):
    x = torch.randn(16, 8, generator=rng)
    values, mask = prune_2_4(x.t())
    v2, m2 = prune_2_4(x.t().contiguous())
    assert torch.equal(values, v2) and torch.equal(mask, m2)
    v, m = prune_2_4(torch.zeros(0, 8))
    assert v.shape == (0, 8) and m.shape == (0, 8)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_opcheck(algorithm, rng):
    x = torch.randn(8, 16, generator=rng)
    torch.library.opcheck(torch.ops.lowbit.prune_2_4.default, (x, algorithm),
                          test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_static",
                                      "test_aot_dispatch_dynamic"))


def test_compiled_prune_matches_eager(rng):
    def f(x):
        v, m = prune_2_4(x)
        v2, _ = prune_2_4(x, "largest_abs_rows")
        return v * 2 + v2, m

    x = torch.randn(32, 64, generator=rng)
    torch._dynamo.reset()
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager", dynamic=True)
    got, want = compiled(x), f(x)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


@pytest.mark.cuda
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_prune_equals_the_cpu_reference(algorithm, dtype, rng):
    for x in (torch.randn(256, 512, generator=rng).to(dtype), with_ties((128, 64), rng, dtype)):
        x[0, 1] = float("nan")
        values, mask = prune_2_4(x, algorithm)
        cv, cm = prune_2_4(x.cuda(), algorithm)
        assert torch.equal(cm.cpu(), mask)
        bits = {2: torch.int16, 4: torch.int32, 8: torch.int64}[x.element_size()]
        assert torch.equal(cv.cpu().view(bits), values.view(bits))  # bit for bit, NaN payload included


@pytest.mark.cuda
def test_cuda_prune_of_a_large_weight_is_transposable():
    w = torch.randn(4096, 14336, device="cuda", dtype=torch.bfloat16)
    _, mask = prune_2_4(w)
    assert mask.reshape(-1, 4).sum(1).max() <= 2 and mask.t().reshape(-1, 4).sum(1).max() <= 2
    assert 0.485 < mask.float().mean().item() <= 0.5


# ---- the portable compressed format: compress_2_4 / decompress_2_4 -----------------------------

from lowbit.core import compress_2_4, decompress_2_4  # noqa: E402

BITS = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def bit_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and torch.equal(a.view(BITS[a.element_size()]), b.view(BITS[b.element_size()]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_compress_round_trip_is_exact(dtype, algorithm, rng):
    x = torch.randn(16, 64, generator=rng).to(dtype)
    x[0, :8] = torch.tensor([0.0, -0.0, 0.0, 0.0, 1.0, -0.0, 0.0, float("nan")]).to(dtype)
    pruned, mask = prune_2_4(x, algorithm)
    values, meta = compress_2_4(pruned)
    assert values.shape == (16, 32) and values.dtype == dtype and meta.shape == (16, 8) and meta.dtype == torch.uint8
    assert bit_equal(decompress_2_4(values, meta), pruned)
    if algorithm != "largest_abs_rows":  # the tile rules' transpose is 2:4 too
        tv, tm = compress_2_4(pruned.t())
        assert bit_equal(decompress_2_4(tv, tm), pruned.t().contiguous())


def test_compress_layout_is_the_documented_one():
    x = torch.tensor([[0.0, 5.0, 0.0, 7.0, 1.0, 0.0, 0.0, 0.0]])
    values, meta = compress_2_4(x)
    # group 0 keeps positions 1, 3 -> code 1 | 3 << 2 = 13; group 1 keeps 0 (+ the lowest zero, 1) -> 0 | 1 << 2 = 4
    assert values.tolist() == [[5.0, 7.0, 1.0, 0.0]]
    assert meta.tolist() == [[13 | 4 << 4]]
    q = torch.tensor([[0, 3, -2, 0, 0, 0, 0, 9]], dtype=torch.int8)
    v, m = compress_2_4(q)
    assert v.tolist() == [[3, -2, 0, 9]] and torch.equal(decompress_2_4(v, m), q)


def test_compressed_form_is_the_size_it_should_be(rng):
    """bf16: 2 of 4 values plus 4 bits per group = 9/16 of the dense bytes."""
    pruned = prune_2_4(torch.randn(256, 512, generator=rng).bfloat16())[0]
    values, meta = compress_2_4(pruned)
    dense_bytes = pruned.numel() * 2
    assert values.numel() * 2 + meta.numel() == dense_bytes * 9 // 16


def test_compress_errors():
    with pytest.raises(RuntimeError, match="not 2:4 along its rows .* holds 3 nonzeros"):
        compress_2_4(torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]]))
    with pytest.raises(RuntimeError, match=r"columns \(4\) must be a multiple of 8"):
        compress_2_4(torch.zeros(4, 4))
    with pytest.raises(RuntimeError, match="meta must be torch.uint8"):
        decompress_2_4(torch.zeros(2, 4), torch.zeros(2, 1))
    for device in ("cpu", "meta"):
        with pytest.raises(RuntimeError, match="do not fit"):
            decompress_2_4(torch.zeros(2, 4, device=device), torch.zeros(2, 2, device=device, dtype=torch.uint8))


def test_compress_opcheck(rng):
    pruned = prune_2_4(torch.randn(8, 32, generator=rng))[0]
    values, meta = compress_2_4(pruned)
    utils = ("test_schema", "test_faketensor", "test_aot_dispatch_static", "test_aot_dispatch_dynamic")
    torch.library.opcheck(torch.ops.lowbit.compress_2_4.default, (pruned,), test_utils=utils)
    torch.library.opcheck(torch.ops.lowbit.decompress_2_4.default, (values, meta), test_utils=utils)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES + [torch.int8])
def test_cuda_compress_equals_the_cpu_reference(dtype, rng):
    x = torch.randn(128, 256, generator=rng)
    pruned = prune_2_4(x)[0].to(dtype)
    values, meta = compress_2_4(pruned)
    cv, cm = compress_2_4(pruned.cuda())
    assert bit_equal(cv.cpu(), values) and torch.equal(cm.cpu(), meta)
    assert bit_equal(decompress_2_4(cv, cm).cpu(), pruned)
