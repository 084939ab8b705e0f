"""lowbit.autoquant: recording, the choice rule (fastest measured candidate within min_sqnr), the
applied model, plan JSON round trips (a loaded plan skips timing), and errors that change nothing."""

import copy
import json

import pytest
import torch

import lowbit
from lowbit.inference import AutoquantPlan, QuantizedTensor, apply_autoquant_plan

K, H = 256, 384


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = torch.nn.Linear(K, H)
        self.fc2 = torch.nn.Linear(H, K)
        self.unused = torch.nn.Linear(K, K)
        self.to(torch.bfloat16)

    def forward(self, x):
        return self.fc2(torch.nn.functional.gelu(self.fc1(x)))


def inputs(rows=16):
    torch.manual_seed(1)
    return torch.randn(rows, K, dtype=torch.bfloat16)


QUICK = dict(warmup=1, iters=3)


def check_rule(plan):
    """The plan's choice is the fastest measured candidate meeting min_sqnr."""
    for layer in plan.layers:
        ok = [c for c in layer.candidates
              if not c.skipped and (plan.min_sqnr is None or c.sqnr_db >= plan.min_sqnr)]
        assert all(c.ms > 0 for c in ok)
        best = min(ok, key=lambda c: c.ms).config if ok else "none"
        assert layer.chosen == best, str(plan)


def test_records_times_and_applies_the_fastest():
    model = Net()
    plan = lowbit.autoquant(model, (inputs(32),), candidates=["int8wo", "int4wo-128", "uint4wo"], **QUICK)
    assert sorted(plan.chosen) == ["fc1", "fc2"]  # `unused` never ran: not measured, not changed
    fc1 = next(layer for layer in plan.layers if layer.name == "fc1")
    assert (fc1.out_features, fc1.in_features, fc1.dtype) == (H, K, "bfloat16")
    assert fc1.tokens == [(32, 1)]
    assert [c.config for c in fc1.candidates] == ["none", "int8wo", "int4wo-128", "uint4wo-64"]
    check_rule(plan)
    for name, chosen in plan.chosen.items():
        w = getattr(model, name).weight
        assert (chosen == "none") == (not isinstance(w, QuantizedTensor))
        if chosen != "none":
            assert w.config_name == chosen
    assert not isinstance(model.unused.weight, QuantizedTensor)


def test_applied_model_equals_quantize_per_layer():
    model, x = Net(), inputs()
    plan = lowbit.autoquant(model, x, candidates=["int8wo", "fp6_e3m2", "int8dq"], include_unquantized=False, **QUICK)
    twin = Net()
    for name, chosen in plan.chosen.items():
        lowbit.quantize_(twin, chosen, filter_fn=lambda m, fqn, name=name: fqn == name)
    with torch.no_grad():
        assert torch.equal(model(x), twin(x))


def test_min_sqnr_excludes_lossy_formats():
    model = Net()
    plan = lowbit.autoquant(model, (inputs(),), candidates=["int4wo-128", "int8wo"], min_sqnr=30.0,
                            include_unquantized=False, **QUICK)
    for layer in plan.layers:
        sq = {c.config: c.sqnr_db for c in layer.candidates}
        assert sq["int4wo-128"] < 30 < sq["int8wo"]  # int4 g128 sits near 24 dB, int8 near 44
        assert layer.chosen == "int8wo"
    check_rule(plan)


def test_repeated_shapes_count_and_skips_are_explained():
    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(96, 64)

        def forward(self, xs):
            return [self.lin(x) for x in xs]

    model = Odd()
    xs = [torch.randn(4, 96), torch.randn(4, 96), torch.randn(2, 3, 96)]
    plan = lowbit.autoquant(model, (xs,), candidates=["int4wo-128", "int8wo"], **QUICK)
    (layer,) = plan.layers
    assert layer.tokens == [(4, 2), (6, 1)]
    skipped = {c.config: c.skipped for c in layer.candidates}
    assert "group_size" in skipped["int4wo-128"] and skipped["int8wo"] == ""
    assert layer.chosen in ("none", "int8wo")


def test_plan_round_trips_and_a_loaded_plan_skips_timing(tmp_path):
    model, x = Net(), inputs()
    plan = lowbit.autoquant(model, (x,), candidates=["int8wo", "uint4wo"], include_unquantized=False, **QUICK)
    path = tmp_path / "plan.json"
    plan.save(str(path))
    loaded = AutoquantPlan.load(str(path))
    assert loaded.to_json() == plan.to_json()
    assert json.loads(path.read_text())["format"] == "lowbit.autoquant_plan"

    def never_called(*args, **kwargs):
        raise AssertionError("a loaded plan must not run the model")

    twin = Net()
    twin.forward = never_called
    again = lowbit.autoquant(twin, None, plan=path)
    assert again.chosen == plan.chosen
    del twin.forward
    with torch.no_grad():
        assert torch.equal(model(x), twin(x))


def snapshot(model):
    return {k: (type(v), v.clone()) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("edit,match", [
    (lambda d: d.update(version=2), "version 2 is not supported"),
    (lambda d: d.update(format="other"), "not an autoquant plan"),
    (lambda d: d["layers"][0].update(chosen="int9wo"), "not a quantize_ shorthand"),
    (lambda d: d["layers"][0].update(extra=1), "unknown key 'extra'"),
    (lambda d: d["layers"][0].update(name="missing"), "has no nn.Linear"),
    (lambda d: d["layers"][0].update(in_features=128), "in the plan"),
])
def test_bad_plans_are_value_errors_that_change_nothing(tmp_path, edit, match):
    plan = lowbit.autoquant(Net(), (inputs(),), candidates=["int8wo"], include_unquantized=False, **QUICK)
    d = json.loads(plan.to_json())
    edit(d)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    model = Net()
    before = snapshot(model)
    with pytest.raises(ValueError, match=match):
        lowbit.autoquant(model, None, plan=str(path))
    after = snapshot(model)
    assert before.keys() == after.keys()
    assert all(before[k][0] is after[k][0] and torch.equal(before[k][1], after[k][1]) for k in before)


def test_bad_arguments():
    model = Net()
    with pytest.raises(ValueError, match="unknown config shorthand 'int9wo'"):
        lowbit.autoquant(model, (inputs(),), candidates=["int9wo"])
    with pytest.raises(ValueError, match="candidates is empty"):
        lowbit.autoquant(model, (inputs(),), candidates=[])
    with pytest.raises(TypeError, match="AutoquantPlan or a path"):
        lowbit.autoquant(model, None, plan=3)
    with pytest.raises(ValueError, match="cannot read"):
        apply_autoquant_plan(model, "/nonexistent/plan.json")
    assert not any(isinstance(p, QuantizedTensor) for p in model.parameters())


def test_default_candidates_and_truncated_json():
    assert list(lowbit._C.default_autoquant_candidates()) == ["int8wo", "int8dq", "int4wo-128", "float8wo_e4m3",
                                                               "float8dq_e4m3_row"]
    plan = lowbit.autoquant(copy.deepcopy(Net()), (inputs(),), **QUICK)
    assert [c.config for c in plan.layers[0].candidates] == ["none", *lowbit._C.default_autoquant_candidates()]
    check_rule(plan)
    with pytest.raises(ValueError, match="malformed JSON"):
        AutoquantPlan.from_json(plan.to_json()[:100])
