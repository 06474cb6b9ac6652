"""The official Magenta RealTime 2 sampling profiles (plain data, importable without PyTorch).

`engine` is what the C++ runtime's MLXEngine starts with (core/src/mlx_engine.cpp, also used by
examples/hello_mrt2); `apps` is what the shipped Standalone, AUv3 and Jam apps set
(examples/common MagentaSettings.h and defaultParams.ts). The mrt2 backend plays `engine` where a
map sets nothing; a map picks either with `generation: {preset: NAME}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

ENGINE: Mapping[str, float] = MappingProxyType(
    {"temperature": 1.0, "top_k": 100, "cfg_style": 3.0, "cfg_notes": 5.0, "cfg_drums": 1.0})
APPS: Mapping[str, float] = MappingProxyType(
    {"temperature": 1.1, "top_k": 50, "cfg_style": 1.6, "cfg_notes": 2.4, "cfg_drums": 4.0})
PRESETS: Mapping[str, Mapping[str, float]] = MappingProxyType({"engine": ENGINE, "apps": APPS})
