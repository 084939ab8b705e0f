"""float8 training on a CUDA GPU with fp8 tensor cores (skipped elsewhere): the cuBLASLt GEMM
against the float32 emulation, the training linear against emulate, and CUDA-graph capture of a
whole training step (which proves no host synchronization)."""

import copy

import pytest
import torch

import lowbit
from lowbit.float8 import Float8LinearConfig, convert_to_float8_training

fp8_gpu = pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.get_device_capability() < (8, 9),
    reason="needs a CUDA GPU with fp8 tensor cores (sm_89+)")


def sqnr(ref, x):
    return (20 * torch.log10(ref.float().norm() / (ref.float() - x.float()).norm())).item()


@fp8_gpu
@pytest.mark.parametrize("granularity", ["tensor", "row"])
@pytest.mark.parametrize("mnk", [(256, 512, 1024), (100, 72, 40), (4096, 4096, 4096)])
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float32])
def test_scaled_mm_matches_emulation(granularity, mnk, out_dtype):
    """cuBLASLt accumulates in float32 like the emulation; differences are summation order only:
    relative error far below bf16 rounding (bound 1e-2 relative Frobenius for bf16 output, 1e-4 fp32)."""
    m, n, k = mnk
    a = torch.randn(m, k, device="cuda")
    b = torch.randn(k, n, device="cuda")
    qa, sa = lowbit.core.cast_to_float8(a, torch.float8_e4m3fn, granularity)
    qb, sb = lowbit.core.cast_to_float8(b, torch.float8_e4m3fn, "column" if granularity == "row" else "tensor")
    bias = torch.randn(n, device="cuda")
    got = lowbit.core.scaled_mm(qa, qb, sa, sb, bias, out_dtype)
    ref = lowbit.core.scaled_mm(qa, qb, sa, sb, bias, torch.float32, emulate=True)
    rel = ((got.float() - ref).norm() / ref.norm()).item()
    assert rel < (1e-2 if out_dtype == torch.bfloat16 else 1e-4), rel


@fp8_gpu
@pytest.mark.parametrize("recipe", ["tensorwise", "rowwise", "rowwise_with_gw_hp"])
def test_float8_linear_cuda_matches_emulate(recipe):
    torch.manual_seed(0)
    base = torch.nn.Linear(1024, 512, device="cuda", dtype=torch.bfloat16)
    real = convert_to_float8_training(copy.deepcopy(base), config=Float8LinearConfig.from_recipe_name(recipe))
    emu = convert_to_float8_training(copy.deepcopy(base),
                                     config=Float8LinearConfig.from_recipe_name(recipe, emulate=True))
    x = torch.randn(2048, 1024, device="cuda", dtype=torch.bfloat16)
    outs = []
    for m in (real, emu):
        xi = x.clone().requires_grad_()
        y = m(xi)
        y.float().square().mean().backward()
        outs.append((y.detach(), xi.grad, m.weight.grad))
    for got, ref in zip(outs[0], outs[1]):
        assert sqnr(ref, got) > 30  # same fp8 operands; only accumulation order (and fast accum) differ


@fp8_gpu
def test_training_step_captures_in_a_cuda_graph():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.GELU(), torch.nn.Linear(512, 256)).cuda()
    convert_to_float8_training(model, config=Float8LinearConfig.from_recipe_name("rowwise"))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(128, 256, device="cuda")

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
