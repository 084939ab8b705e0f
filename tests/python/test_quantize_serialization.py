"""save_quantized / load_quantized: safetensors round trips per format, and truncated,
mismatched and hostile files that raise ValueError and leave the model untouched."""

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


def test_file_holds_plain_tensors_and_json_metadata(tmp_path):
    from safetensors import safe_open
    path = str(tmp_path / "q.safetensors")
    lowbit.save_quantized(lowbit.quantize_(Mlp(), "int4wo"), path)
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert meta["lowbit.format_version"] == "1"
    d = json.loads(meta["lowbit.quantized.fc1.weight"])
    assert d == {"format": "int4wo-128", "shape": [H, K], "dtype": "bfloat16", "parts": 2}
    assert {"fc1.weight.part0", "fc1.weight.part1", "fc1.bias", "fc2.bias"} <= keys and "fc1.weight" not in keys


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
     "unknown format"),
    ("missing part", '{"format": "int8wo", "shape": [512, 256], "dtype": "bfloat16", "parts": 3}', None,
     "missing its part2"),
    ("bad dtype", '{"format": "int8wo", "shape": [512, 256], "dtype": "int64", "parts": 2}', None,
     "malformed metadata"),
    ("wrong shape", '{"format": "int8wo", "shape": [512, 128], "dtype": "bfloat16", "parts": 2}', None,
     "do not form"),
    ("parts of another format", '{"format": "int4dq-32", "shape": [512, 256], "dtype": "bfloat16", "parts": 2}',
     None, "missing its part2|do not form"),
    ("wrong part dtype", '{"format": "int8wo", "shape": [512, 256], "dtype": "bfloat16", "parts": 2}',
     {"fc1.weight.part0": torch.zeros(H, K, dtype=torch.uint8), "fc1.weight.part1": torch.ones(H)}, "do not form"),
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


# ---- cross-face: the C++ reader / writer (lowbit::inference::read_quantized_file /
# write_quantized_file, reached through two file-path hooks in lowbit._C) on the same files ----


@pytest.mark.parametrize("name", NAMES)
def test_cpp_reads_python_files_and_python_reads_cpp_files(tmp_path, x, name):
    q = lowbit.quantize_(Mlp(), name)
    py_path, cpp_path = str(tmp_path / "py.safetensors"), str(tmp_path / "cpp.safetensors")
    lowbit.save_quantized(q, py_path)
    formats = lowbit._C._cpp_read_quantized_formats(py_path)
    assert formats["fc1.weight"] == q.fc1.weight.config_name and formats["fc1.bias"] == "plain"
    lowbit._C._cpp_rewrite_quantized(py_path, cpp_path)  # C++ reads Python's file, writes its own
    fresh = lowbit.load_quantized(Mlp(seed=9), cpp_path)
    with torch.no_grad():
        assert torch.equal(fresh(x), q(x))


def test_cpp_reader_rejects_hostile_files(tmp_path):
    path = str(tmp_path / "bad.safetensors")
    write(path, {**good_parts(), **plain_rest()},
          {"lowbit.quantized.fc1.weight": '{"format": "int8wo", "shape": [512, 128], "dtype": "bfloat16", "parts": 2}'})
    with pytest.raises(ValueError, match="in_features|does not"):
        lowbit._C._cpp_read_quantized_formats(path)
    open(path, "wb").write(struct.pack("<Q", 2 ** 62))
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        lowbit._C._cpp_read_quantized_formats(path)
