"""lowbit_recipes: the recipes built on lowbit, outside the library package.

- ``python -m lowbit_recipes.pretrain_llama``: pretrain a Llama on Debian's fortunes (float8 training,
  low-bit AdamW, checkpoints with exact resume); the same recipe as the C++ ``lowbit-train``.
- ``python -m lowbit_recipes.finetune_then_quantize``: fine-tune it (plain or QAT), quantize it to
  several formats and compare them in a table with plots.

Both take ``--config PATH|NAME`` and ``key.sub=value`` overrides; ``--help`` lists every key with
its type, default and allowed values. Configs are YAML under ``recipes/configs`` (shipped inside
this package as ``configs/``) composed Hydra-style (``defaults:``). The loader, the schemas and
the command line are the C++ ones (``lowbit_recipes._C``), so both faces read configs identically.

    cfg = lowbit_recipes.load_config("pretrain_tiny", ["train.steps=20"])   # validated dict
"""

from __future__ import annotations

import os
from typing import Sequence

__all__ = ["load_config", "dump_config", "load_recipe_config", "validate", "schema_keys", "config_dir", "bin_dir",
           "tool_path"]

_HERE = os.path.dirname(os.path.abspath(__file__))


def _native():
    """The extension, or a clear error when lowbit was built without the recipes."""
    try:
        from . import _C
    except ImportError as e:
        raise RuntimeError("lowbit_recipes has no extension lowbit_recipes._C: lowbit was built without the recipes "
                           "(yaml-cpp was not found); install libyaml-cpp-dev and rebuild, or configure with "
                           "-DLOWBIT_BUILD_RECIPES=ON") from e
    return _C


def available() -> bool:
    """Whether this install has the recipes' extension (built with yaml-cpp)."""
    try:
        _native()
        return True
    except RuntimeError:
        return False


def config_dir() -> str:
    """The folder of the shipped configs: the copy inside this package, else ``recipes/configs``
    of the source checkout this package sits in."""
    packaged = os.path.join(_HERE, "configs")
    return packaged if os.path.isdir(packaged) else os.path.normpath(os.path.join(_HERE, "..", "..", "configs"))


def resolve_config(config: str | os.PathLike) -> str:
    """A path that exists, else a bare config name (".yaml" optional) found in :func:`config_dir`."""
    config = os.fspath(config)
    if os.path.isfile(config) or os.path.dirname(config):
        return config
    name = config if config.endswith((".yaml", ".yml")) else config + ".yaml"
    candidate = os.path.join(config_dir(), name)
    return candidate if os.path.isfile(candidate) else config


def load_recipe_config(recipe: str, config: str | os.PathLike, overrides: Sequence[str] = ()) -> tuple[dict, str]:
    """Loads a config for ``recipe`` ("pretrain", "finetune_then_quantize", "llama_forward"): the
    file onto the recipe's declared defaults, overrides applied, every value validated by the C++
    schema. Returns (nested dicts, resolved YAML text); every mistake is one ValueError."""
    return _native().load_recipe_config(recipe, resolve_config(config), list(overrides))


def load_config(config: str | os.PathLike, overrides: Sequence[str] = (), recipe: str | None = "pretrain") -> dict:
    """The validated config dict of :func:`load_recipe_config`. ``recipe=None`` loads any YAML
    config without a schema (``defaults:`` composed, overrides type-checked, no value rules)."""
    if recipe is None:
        return _native().load_config(resolve_config(config), list(overrides))
    return load_recipe_config(recipe, config, overrides)[0]


def dump_config(config: str | os.PathLike, overrides: Sequence[str] = (), recipe: str | None = "pretrain") -> str:
    """The resolved config of :func:`load_config` as YAML text (printed and saved by the recipes)."""
    if recipe is None:
        return _native().dump_config(resolve_config(config), list(overrides))
    return load_recipe_config(recipe, config, overrides)[1]


def validate(recipe: str, config: dict) -> None:
    """Checks a config dict (e.g. one edited in Python) against the recipe's schema: ValueError if not."""
    _native().validate(recipe, config)


def schema_keys(recipe: str) -> list[dict]:
    """Every key ``recipe`` accepts: dicts with key, type, default (YAML text), allowed and help."""
    return _native().schema_keys(recipe)


def bin_dir() -> str:
    """The folder of the C++ recipes (``lowbit-train``, ``lowbit-llama-forward``)."""
    return os.path.join(_HERE, "bin")


def tool_path(name: str) -> str:
    """The path of one C++ recipe binary; FileNotFoundError when this build has none."""
    path = os.path.join(bin_dir(), name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: lowbit was built without the C++ recipes (LOWBIT_BUILD_RECIPES=OFF)")
    return path
