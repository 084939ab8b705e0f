"""The start every Python recipe shares, done by the C++ code the C++ recipes use: parse the
command line, print --help, load and validate the config (mistakes: one message on stderr,
exit status 2, nothing created), print what the run is about to do."""

from __future__ import annotations

import sys
from typing import Sequence

from . import _native, config_dir


def start(recipe: str, prog: str, argv: Sequence[str] | None = None, quiet: bool = False) -> dict | int:
    """Returns {'config', 'config_text', 'config_path', 'plan', 'positionals'} for a run, or the
    exit status when there is nothing to run (0 after --help, 2 after a mistake)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        run = _native().prepare(recipe, args, prog, [config_dir()])
    except ValueError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    if "help" in run:
        print(run["help"], end="")
        return 0
    if run["plan"] and not quiet:
        print(run["plan"], flush=True)
    return run
