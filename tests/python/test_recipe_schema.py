"""What the recipes accept, run as a user runs them (subprocesses): --help lists every key with
its type and default; bad values are one message naming the key and the allowed values, exit
status 2, no traceback and no output directory; a run without arguments first says what it will
do. The rules are the C++ schema's: the Python recipes and the C++ binaries answer identically."""

import os
import signal
import subprocess
import sys

import pytest

recipes = pytest.importorskip("lowbit_recipes")
pytestmark = pytest.mark.skipif(not recipes.available(), reason="lowbit built without the recipes (no yaml-cpp)")

PRETRAIN = [sys.executable, "-m", "lowbit_recipes.pretrain_llama"]
FINETUNE = [sys.executable, "-m", "lowbit_recipes.finetune_then_quantize"]
TRAIN_TOOL = os.path.join(recipes.bin_dir(), "lowbit-train")
FORWARD_TOOL = os.path.join(recipes.bin_dir(), "lowbit-llama-forward")
has_tools = pytest.mark.skipif(not os.path.exists(TRAIN_TOOL), reason="the C++ recipes are not built")

# issue 14 item 8: each is an error before any work, naming the key (and what is allowed).
BAD = [("optim.name=sgd", "allowed: adamw, adamw8bit, adamw4bit, adamwfp8"),
       ("optim.lr=-1", "allowed: > 0"),
       ("float8.recipe=bogus", "allowed: tensorwise, rowwise, rowwise_with_gw_hp"),
       ("model.dim=90", "model.dim (90) must be a multiple of model.n_heads (4)"),
       ("model.dim=100", "model.dim / model.n_heads (head_dim 25) must be even"),
       ("train.device=gpu", "allowed: cpu, cuda, cuda:N"),
       ("train.steps=0", "allowed: > 0"),
       ("data.seq_len=0", "allowed: > 0"),
       ("optim.betas=[0.9]", "optim.betas needs exactly 2 values"),
       ("train.stepz=3", "unknown config key 'train.stepz'")]


# Children import the same lowbit_recipes (and lowbit) from any working directory.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [os.path.dirname(os.path.dirname(os.path.abspath(recipes.__file__)))]
    + [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}


def run(cmd, *args, cwd=None):
    return subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=cwd, timeout=300, env=ENV)


def body(err: str) -> str:
    """The message without the program name ("prog: message")."""
    return err.split(": ", 1)[1]


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_every_key(flag):
    for name, cmd in [("pretrain", PRETRAIN), ("finetune_then_quantize", FINETUNE)]:
        r = run(cmd, flag)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("usage: python -m lowbit_recipes.") and "Traceback" not in r.stderr
        keys = recipes.schema_keys(name)
        assert len(keys) > 30 if name != "pretrain" else len(keys) > 25
        for k in keys:
            assert f"    {k['key']} ({k['type']}) = " in r.stdout, k["key"]
            if k["allowed"]:
                assert f"allowed: {k['allowed']}" in r.stdout, k["key"]


@has_tools
def test_cpp_help_matches_python_help():
    cpp, py = run([TRAIN_TOOL], "--help"), run(PRETRAIN, "--help")
    assert cpp.returncode == py.returncode == 0
    # The same key table (after the usage line, which names the program).
    assert cpp.stdout.split("\n", 1)[1] == py.stdout.split("\n", 1)[1].replace(
        recipes.config_dir(), cpp.stdout.split("values of ")[1].split("/pretrain_tiny.yaml")[0])
    r = run([FORWARD_TOOL], "-h")
    assert r.returncode == 0 and "WEIGHTS.safetensors TOKENS.safetensors OUT.safetensors" in r.stdout


@pytest.mark.parametrize("bad,phrase", BAD, ids=[b for b, _ in BAD])
def test_bad_values_fail_before_any_work(tmp_path, bad, phrase):
    out = tmp_path / "never"
    r = run(PRETRAIN, f"train.output_dir={out}", bad)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith("python -m lowbit_recipes.pretrain_llama: ")
    assert bad.split("=")[0] in r.stderr and phrase in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert not out.exists()
    if os.path.exists(TRAIN_TOOL):  # the C++ face: the same message, the same status, nothing created
        c = run([TRAIN_TOOL], f"train.output_dir={out}", bad)
        assert c.returncode == 2 and body(c.stderr) == body(r.stderr), (c.stderr, r.stderr)
        assert not out.exists()


def test_finetune_rejects_a_bad_quantize_entry(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes(b"")
    out = tmp_path / "never"
    r = run(FINETUNE, f"finetune.checkpoint={ckpt}", f"train.output_dir={out}", "quantize.configs=[none, int9wo]")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "config key 'quantize.configs' (command line): element 1: 'int9wo' is not a quantize_ shorthand" in r.stderr
    assert "valid: none, autoquant, int4wo" in r.stderr
    r = run(FINETUNE, f"train.output_dir={out}", "finetune.checkpoint=/nonexistent", "finetune.mode=lora")
    assert r.returncode == 2 and "2 config problems" in r.stderr and "allowed: none, plain, qat" in r.stderr
    assert not out.exists()


def test_unknown_options_print_the_usage():
    r = run(PRETRAIN, "--steps", "3")
    assert r.returncode == 2 and "unknown option '--steps'" in r.stderr
    assert "usage: python -m lowbit_recipes.pretrain_llama [--config PATH|NAME]" in r.stderr


def first_line_then_stop(cmd, cwd):
    """Starts `cmd` without arguments, returns its first line of output, stops it."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True, env=ENV)
    try:
        return proc.stdout.readline()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.parametrize("face", ["python", "cpp"])
def test_no_arguments_says_what_it_will_do(tmp_path, face):
    if face == "cpp" and not os.path.exists(TRAIN_TOOL):
        pytest.skip("the C++ recipes are not built")
    if not os.path.isdir("/usr/share/games/fortunes"):
        pytest.skip("fortunes not installed")
    line = first_line_then_stop(PRETRAIN if face == "python" else [TRAIN_TOOL], tmp_path)
    assert line.startswith("pretrain: pretrain a Llama of "), line
    assert "300 steps of 8 x 128 tokens on cpu, adamw8bit" in line and "go to outputs/pretrain_tiny" in line


def test_validate_checks_an_edited_dict():
    cfg = recipes.load_config("pretrain_tiny", ["train.steps=3"])
    recipes.validate("pretrain", cfg)
    cfg["optim"]["name"] = "sgd"
    with pytest.raises(ValueError, match="'optim.name': 'sgd' is not one of them"):
        recipes.validate("pretrain", cfg)


def test_qat_schemes_are_the_schema_choices():
    from lowbit_recipes.finetune_then_quantize import QAT_SCHEMES

    allowed = next(k["allowed"] for k in recipes.schema_keys("finetune_then_quantize")
                   if k["key"] == "finetune.qat_scheme")
    assert allowed.split(", ") == list(QAT_SCHEMES)


def test_main_job_configs_agree(tmp_path):
    """scripts/main.sh's pair (pretrain_mini, then finetune_quantize_mini on its checkpoint) passes
    both schemas, on one model: the mini Llama of 7.08M parameters (the size the README states)."""
    from lowbit_recipes.llama import Llama, LlamaConfig

    pre = recipes.load_config("pretrain_mini")
    with open(recipes.resolve_config("finetune_quantize_mini")) as f:  # the checkpoint it reads by default
        assert f"checkpoint: {pre['train']['output_dir']}/checkpoint\n" in f.read()
    (tmp_path / "model.safetensors").touch()  # the schema checks the checkpoint file exists
    ft = recipes.load_config("finetune_quantize_mini", [f"finetune.checkpoint={tmp_path}"],
                             recipe="finetune_then_quantize")
    assert ft["model"] == pre["model"]
    params = sum(p.numel() for p in Llama(LlamaConfig.from_dict(pre["model"])).parameters())
    assert round(params / 1e6, 2) == 7.08
    assert pre["train"]["steps"] == 650 and ft["train"]["steps"] == 40
