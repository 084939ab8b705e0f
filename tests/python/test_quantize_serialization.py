"""save_quantized / load_quantized: safetensors round trips per format, and truncated,
mismatched and hostile files that raise ValueError and leave the model untouched. The reader and
writer are the C++ ones (csrc/quant/file.h) for both faces; version 1 files (positional parts) are
still read. Also: torch.save / torch.load(weights_only=True) and load_state_dict of quantized
models, tied weights, directory paths, dtype changes after quantize_."""

import json
import struct

import pytest
import torch
from safetensors.torch import save_file

import lowbit
from lowbit.inference import QuantizedTensor

K, H = 256, 512
NAMES = ["int4wo", "int8wo", "int8dq", "int4dq", "float8wo_e5m2", "float8dq_e4m3_row", "float8dq_e4m3_tensor",
         "fp6_e3m2", "uint3wo"]


class Mlp(torch.nn.Module):
    def __init__(self, k=K, h=H, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.fc1 = torch.nn.Linear(k, h)
        self.fc2 = torch.nn.Linear(h, k)
        self.to(torch.bfloat16)

    def forward(self, x):
        return self.fc2(torch.nn.functional.gelu(self.fc1(x)))


def snapshot(model):
    return {n: (type(p), p.detach().clone() if not isinstance(p, QuantizedTensor) else p.config_name)
            for n, p in model.state_dict().items()}


def assert_untouched(model, snap):
    now = model.state_dict()
    assert set(now) == set(snap)
    for n, (typ, v) in snap.items():
        assert type(now[n]) is typ or (typ is torch.Tensor and not isinstance(now[n], QuantizedTensor))
        if isinstance(v, str):
            assert now[n].config_name == v
        else:
            assert torch.equal(now[n], v)


@pytest.fixture
def x():
    return torch.randn(4, K, generator=torch.Generator().manual_seed(2)).to(torch.bfloat16)


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_is_exact(tmp_path, x, name):
    q = lowbit.quantize_(Mlp(), name)
    path = str(tmp_path / "q.safetensors")
    lowbit.save_quantized(q, path)
    fresh = lowbit.load_quantized(Mlp(seed=7), path)
    assert isinstance(fresh.fc1.weight, QuantizedTensor) and fresh.fc1.weight.config_name == q.fc1.weight.config_name
    with torch.no_grad():
        assert torch.equal(fresh(x), q(x))


def test_file_holds_plain_tensors_and_named_parts(tmp_path):
    from safetensors import safe_open
    path = str(tmp_path / "q.safetensors")
    lowbit.save_quantized(lowbit.quantize_(Mlp(), "int4wo"), path)
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert meta["lowbit.format_version"] == "2"
    d = json.loads(meta["lowbit.quantized.fc1.weight"])
    assert d == {"format": "int4wo-128", "shape": [H, K], "dtype": "bfloat16", "parts": ["qdata", "scale_and_zero"]}
    assert {"fc1.weight.qdata", "fc1.weight.scale_and_zero", "fc1.bias", "fc2.bias"} <= keys
    assert "fc1.weight" not in keys


@pytest.mark.parametrize("name", ["int8wo", "uint3wo", "int4dq"])
def test_version1_files_still_load(tmp_path, x, name):
    q = lowbit.quantize_(Mlp(), name)
    tensors, meta = {}, {"lowbit.format_version": "1"}
    for n, t in q.state_dict().items():
        if isinstance(t, QuantizedTensor):
            for i, p in enumerate(t.parts):
                tensors[f"{n}.part{i}"] = p.contiguous()
            meta[f"lowbit.quantized.{n}"] = json.dumps({"format": t.config_name, "shape": list(t.shape),
                                                        "dtype": "bfloat16", "parts": len(t.parts)})
        else:
            tensors[n] = t.contiguous()
    path = str(tmp_path / "v1.safetensors")
    save_file(tensors, path, metadata=meta)
    fresh = lowbit.load_quantized(Mlp(seed=5), path)
    with torch.no_grad():
        assert torch.equal(fresh(x), q(x))


def saved(tmp_path, name="int8wo"):
    path = str(tmp_path / "q.safetensors")
    lowbit.save_quantized(lowbit.quantize_(Mlp(), name), path)
    return path


def test_truncated_file(tmp_path):
    path = saved(tmp_path)
    data = open(path, "rb").read()
    for cut in (4, 40, len(data) // 2, len(data) - 1):
        open(path, "wb").write(data[:cut])
        model = Mlp(seed=3)
        snap = snapshot(model)
        with pytest.raises(ValueError, match="not a readable safetensors file"):
            lowbit.load_quantized(model, path)
        assert_untouched(model, snap)


def test_hostile_header(tmp_path):
    path = str(tmp_path / "h.safetensors")
    for blob in (struct.pack("<Q", 2 ** 62) + b"{}", struct.pack("<Q", 8) + b"not json",
                 struct.pack("<Q", 2) + b"[]", b""):
        open(path, "wb").write(blob)
        model = Mlp()
        snap = snapshot(model)
        with pytest.raises(ValueError):
            lowbit.load_quantized(model, path)
        assert_untouched(model, snap)


def test_mismatched_model(tmp_path):
    path = saved(tmp_path)
    model = Mlp(k=128, h=512)
    snap = snapshot(model)
    with pytest.raises(ValueError, match="shape|do not form"):
        lowbit.load_quantized(model, path)
    assert_untouched(model, snap)
    other = torch.nn.Sequential(torch.nn.Linear(K, H))
    snap = snapshot(other)
    with pytest.raises(ValueError, match="does not match the model"):
        lowbit.load_quantized(other, path)
    assert_untouched(other, snap)


def write(path, tensors, meta):
    save_file(tensors, path, metadata={"lowbit.format_version": "1", **meta})


def good_parts():
    parts = torch.ops.lowbit.quantize_weight(torch.randn(H, K), "int8wo")
    return {"fc1.weight.part0": parts[0], "fc1.weight.part1": parts[1]}


def plain_rest():
    m = Mlp()
    return {"fc1.bias": m.fc1.bias.detach(), "fc2.bias": m.fc2.bias.detach(), "fc2.weight": m.fc2.weight.detach()}


@pytest.mark.parametrize("case,meta,parts,match", [
    ("bad json", '{"format": "int8wo", "shape": [512, 256]', None, "malformed metadata"),
    ("unknown format", '{"format": "int9wo", "shape": [512, 256], "dtype": "bfloat16", "parts": 2}', None,
     "unknown config shorthand 'int9wo'"),
    ("missing part", '{"format": "int8wo", "shape": [512, 256], "dtype": "bfloat16", "parts": 3}', None,
     "missing its part 'part2'"),
    ("bad dtype", '{"format": "int8wo", "shape": [512, 256], "dtype": "int64", "parts": 2}', None,
     "unknown dtype 'int64'"),
    ("wrong shape", '{"format": "int8wo", "shape": [512, 128], "dtype": "bfloat16", "parts": 2}', None,
     "in_features"),
    ("parts of another format", '{"format": "int4dq-32", "shape": [512, 256], "dtype": "bfloat16", "parts": 2}',
     None, "expected 3 parts .*, got 2"),
    ("wrong part dtype", '{"format": "int8wo", "shape": [512, 256], "dtype": "bfloat16", "parts": 2}',
     {"fc1.weight.part0": torch.zeros(H, K, dtype=torch.uint8), "fc1.weight.part1": torch.ones(H)}, "weight must be"),
])
def test_hostile_metadata_and_parts(tmp_path, case, meta, parts, match):
    path = str(tmp_path / "bad.safetensors")
    write(path, {**(parts or good_parts()), **plain_rest()}, {"lowbit.quantized.fc1.weight": meta})
    model = Mlp()
    snap = snapshot(model)
    with pytest.raises(ValueError, match=match):
        lowbit.load_quantized(model, path)
    assert_untouched(model, snap)


def test_not_a_lowbit_file(tmp_path):
    path = str(tmp_path / "plain.safetensors")
    save_file({k: v.contiguous() for k, v in Mlp().state_dict().items()}, path)
    model = Mlp(seed=1)
    snap = snapshot(model)
    with pytest.raises(ValueError, match="format_version"):
        lowbit.load_quantized(model, path)
    assert_untouched(model, snap)


def test_named_parts_must_match_the_format(tmp_path):
    path = str(tmp_path / "bad.safetensors")
    parts = torch.ops.lowbit.quantize_weight(torch.randn(H, K), "int8wo")
    save_file({"fc1.weight.qdata": parts[0], "fc1.weight.zeros": parts[1], **plain_rest()}, path,
              metadata={"lowbit.format_version": "2", "lowbit.quantized.fc1.weight": json.dumps(
                  {"format": "int8wo", "shape": [H, K], "dtype": "bfloat16", "parts": ["qdata", "zeros"]})})
    model = Mlp()
    snap = snapshot(model)
    with pytest.raises(ValueError, match=r"parts are named \[qdata, zeros\], the format int8wo has \[qdata, scale\]"):
        lowbit.load_quantized(model, path)
    assert_untouched(model, snap)


def test_directory_path_is_an_error_and_leaves_nothing(tmp_path):
    q = lowbit.quantize_(Mlp(), "int8wo")
    with pytest.raises(RuntimeError, match="is a directory"):
        lowbit.save_quantized(q, str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_unwritable_path_leaves_no_temporary(tmp_path):
    q = lowbit.quantize_(Mlp(), "int8wo")
    with pytest.raises(RuntimeError):
        lowbit.save_quantized(q, str(tmp_path / "missing_dir" / "q.safetensors"))
    assert list(tmp_path.iterdir()) == []


class Tied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(64, K)
        self.body = torch.nn.Linear(K, K)
        self.head = torch.nn.Linear(K, 64, bias=False)
        self.head.weight = self.embed.weight  # tied

    def forward(self, ids):
        return self.head(self.body(self.embed(ids)))


def test_weights_tied_to_an_unconverted_module_save_and_load(tmp_path):
    q = lowbit.quantize_(Tied(), "int8wo", modules_to_not_convert=["head"])
    path = str(tmp_path / "tied.safetensors")
    lowbit.save_quantized(q, path)
    fresh = lowbit.load_quantized(Tied(), path)
    ids = torch.arange(8)
    with torch.no_grad():
        assert torch.equal(fresh(ids), q(ids))
    assert fresh.head.weight is fresh.embed.weight  # still tied: values were copied into the shared tensor


def test_torch_save_and_weights_only_load_of_a_quantized_state_dict(tmp_path, x):
    q = lowbit.quantize_(Mlp(), "int4wo")
    path = str(tmp_path / "sd.pt")
    torch.save(q.state_dict(), path)
    sd = torch.load(path, weights_only=True)
    assert isinstance(sd["fc1.weight"], QuantizedTensor) and sd["fc1.weight"].config_name == "int4wo-128"
    fresh = lowbit.quantize_(Mlp(seed=4), "int4wo")
    fresh.load_state_dict(sd)  # no assign=True needed: quantized parts are copied in place
    with torch.no_grad():
        assert torch.equal(fresh(x), q(x))


def test_load_state_dict_of_a_float_model_into_a_quantized_one_is_a_clear_error():
    q = lowbit.quantize_(Mlp(), "int8wo")
    with pytest.raises(RuntimeError, match="quantize_"):
        q.load_state_dict(Mlp(seed=3).state_dict())
    other = lowbit.quantize_(Mlp(), "int4dq")
    with pytest.raises(RuntimeError, match="format or shape differ"):
        q.load_state_dict(other.state_dict())


@pytest.mark.parametrize("name", ["int8wo", "int4wo", "int4dq", "fp6_e3m2", "float8dq_e4m3_row"])
def test_dtype_changes_after_quantize(x, name):
    q = lowbit.quantize_(Mlp(), name)
    with torch.no_grad():
        ref = q(x).float()
        for dtype in (torch.float16, torch.float32, torch.bfloat16):
            q.to(dtype)
            assert q.fc1.weight.dtype == dtype and q.fc1.bias.dtype == dtype
            y = q(x.to(dtype))
            assert y.dtype == dtype
            assert (y.float() - ref).abs().max() <= 0.05 * ref.abs().max()
    with pytest.raises(NotImplementedError, match="cannot change dtype"):
        q.fc1.weight.to(torch.float64)
