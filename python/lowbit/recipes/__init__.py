"""Recipes: the Llama pretraining and fine-tune-then-quantize jobs, and their configs.

Configs are YAML files under ``recipes/configs`` composed Hydra-style (``defaults:``) and
overridden from the command line with ``key.sub=value``; the loader is the C++ one (through
``lowbit._C``), so the C++ binary ``lowbit-train`` and the Python recipes read configs identically.

    cfg = lowbit.recipes.load_config("recipes/configs/pretrain_tiny.yaml", ["train.steps=20"])
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

from .. import _C

__all__ = ["load_config", "dump_config", "config_dir", "parse_command_line"]


def _require_recipes() -> None:
    if not getattr(_C, "recipes_available", False):
        raise RuntimeError(
            "lowbit was built without the recipes (yaml-cpp was not found at build time); "
            "install libyaml-cpp-dev and rebuild, or configure with -DLOWBIT_BUILD_RECIPES=ON"
        )


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> dict:
    """Loads a recipe config: ``defaults:`` composed, ``key.sub=value`` overrides type-checked.
    Returns nested dicts; a mistake is a ValueError naming the key (and file:line for files)."""
    _require_recipes()
    return _C.recipes_load_config(os.fspath(path), list(overrides))


def dump_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> str:
    """The resolved config of :func:`load_config` as YAML text (printed and saved by recipes)."""
    _require_recipes()
    return _C.recipes_dump_config(os.fspath(path), list(overrides))


def config_dir() -> str:
    """The folder of the shipped configs: ``recipes/configs`` of a source checkout, or the copy
    installed inside the package."""
    here = os.path.dirname(os.path.abspath(__file__))
    packaged = os.path.join(here, "configs")
    if os.path.isdir(packaged):
        return packaged
    source = os.path.normpath(os.path.join(here, "..", "..", "..", "recipes", "configs"))
    return source


def parse_command_line(argv: Sequence[str] | None = None, default_config: str = "") -> tuple[str, list[str]]:
    """``--config PATH`` plus ``key.sub=value`` arguments -> (config path, overrides), the same
    command line as ``lowbit-train``. A config name without a folder is looked up in
    :func:`config_dir`."""
    args = list(sys.argv[1:] if argv is None else argv)
    usage = "usage: [--config PATH] [key.sub=value ...]"
    path, overrides = default_config, []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--config":
            if i + 1 >= len(args):
                raise SystemExit(f"--config needs a path; {usage}")
            path = args[i + 1]
            i += 1
        elif arg.startswith("--config="):
            path = arg[len("--config="):]
        elif arg.startswith("-") or "=" not in arg:
            raise SystemExit(f"unexpected argument {arg!r}; {usage}")
        else:
            overrides.append(arg)
        i += 1
    if not path:
        raise SystemExit(f"no config given; {usage}")
    if not os.path.exists(path) and not os.path.dirname(path):
        candidate = os.path.join(config_dir(), path if path.endswith(".yaml") else path + ".yaml")
        if os.path.exists(candidate):
            path = candidate
    return path, overrides
