"""The demo's numbers as the README quotes them, so `make demo` can say whether a run reproduced
them.

README.md shows the demo's closing lines in a fenced block that follows the marker line
``<!-- demo-result -->``; the headline metrics are read from it. A run of the default demo on a
2-core x86 machine with deterministic kernels prints the same numbers; another CPU (or thread
count) can change the last digits, which the demo then reports instead of staying silent.
"""

import os
import re
from typing import Dict, List, Optional

MARKER = "<!-- demo-result -->"
README = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "README.md")
# As format_headline_metrics prints them: "AP50 0.912", "FP80 6 /min", "Pr80 n/a (recall ...)".
_METRIC = re.compile(r"(AP50|Pr80|FP80|R@16)\s+(n/a|nan|[0-9.]+)")
# How far a rerun may differ before the demo says so: AP-like keys in absolute terms, FP80
# (false-positive sequences per minute) relative to its size.
TOLERANCE = {"AP50": 0.005, "Pr80": 0.005, "R@16": 0.005}
FP80_RELATIVE_TOLERANCE = 0.1


def read_quoted_metrics(path: str = README) -> Optional[Dict[str, float]]:
    """The headline metrics in the block after MARKER, or None when the file or marker is absent
    (e.g. an installed package without the source tree)."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        text = f.read()
    position = text.find(MARKER)
    if position < 0:
        return None
    block = text[position:].split("```")
    if len(block) < 2:
        return None
    quoted = {key: float("nan" if value == "n/a" else value) for key, value in _METRIC.findall(block[1])}
    return quoted or None


def differences(metrics: Dict[str, float], quoted: Dict[str, float]) -> List[str]:
    """Human-readable lines for every quoted metric this run does not reproduce."""
    lines = []
    for key, expected in quoted.items():
        value = float(metrics.get(key, float("nan")))
        if expected != expected or value != value:
            same = (expected != expected) == (value != value)
        elif key == "FP80":
            same = abs(value - expected) <= FP80_RELATIVE_TOLERANCE * max(expected, 1.0)
        else:
            same = abs(value - expected) <= TOLERANCE[key]
        if not same:
            lines.append(f"{key} {value:.3f} here, {expected:g} quoted")
    return lines


def compare_with_readme(metrics: Dict[str, float], path: str = README) -> Optional[str]:
    """One sentence for the demo's summary, or None when the README quotes nothing."""
    quoted = read_quoted_metrics(path)
    if quoted is None:
        return None
    diff = differences(metrics, quoted)
    if not diff:
        return f"These are the numbers {os.path.basename(path)} quotes for this demo."
    return (
        f"Not the numbers {os.path.basename(path)} quotes for this demo ({'; '.join(diff)}): "
        "another CPU or thread count can change them; a changed config or phantom changes them more."
    )
