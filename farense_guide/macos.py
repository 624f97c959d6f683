"""Readers for macOS system commands, as pure functions of their text output.

Kept apart from running the commands so the parsing is tested on Linux with
real outputs of `sysctl`, `pmset` and `vm_stat`.
"""

from __future__ import annotations

import re
import subprocess

SYSCTL_KEYS = ("machdep.cpu.brand_string", "hw.model", "hw.memsize")


def run(command: list[str]) -> str | None:
    """stdout of a command, or None when it is missing or fails."""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def parse_sysctl(text: str) -> dict[str, str]:
    """`sysctl key1 key2` prints 'key: value' lines."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values[key.strip()] = value.strip()
    return values


def parse_vm_stat(text: str) -> dict[str, int]:
    """`vm_stat` in bytes: {'free': ..., 'inactive': ..., ...} using the page size it reports."""
    page = re.search(r"page size of (\d+) bytes", text)
    page_size = int(page.group(1)) if page else 4096
    counts = {}
    for match in re.finditer(r"^Pages ([\w ]+?):\s+(\d+)\.", text, re.MULTILINE):
        counts[match.group(1).replace(" ", "_")] = int(match.group(2)) * page_size
    return counts


def available_from_vm_stat(counts: dict[str, int]) -> int:
    """Memory the system can hand out without swapping: free, inactive and speculative pages."""
    return sum(counts.get(key, 0) for key in ("free", "inactive", "speculative"))


def parse_pmset_batt(text: str) -> str | None:
    """'AC Power', 'Battery Power' or 'UPS Power' from `pmset -g batt`."""
    match = re.search(r"Now drawing from '([^']+)'", text)
    return match.group(1) if match else None


def parse_low_power_mode(text: str) -> bool | None:
    """The `lowpowermode` line of `pmset -g`; None on systems without it."""
    match = re.search(r"^\s*lowpowermode\s+(\d)", text, re.MULTILINE)
    return match.group(1) == "1" if match else None


def read_macos() -> dict:
    """Everything preflight wants from macOS, None where a command is missing."""
    sysctl = run(["sysctl", *SYSCTL_KEYS])
    vm_stat = run(["vm_stat"])
    batt = run(["pmset", "-g", "batt"])
    settings = run(["pmset", "-g"])
    values = parse_sysctl(sysctl) if sysctl else {}
    return {
        "chip": values.get("machdep.cpu.brand_string"),
        "model": values.get("hw.model"),
        "memory_total": int(values["hw.memsize"]) if values.get("hw.memsize", "").isdigit() else None,
        "memory_available": available_from_vm_stat(parse_vm_stat(vm_stat)) if vm_stat else None,
        "power_source": parse_pmset_batt(batt) if batt else None,
        "low_power_mode": parse_low_power_mode(settings) if settings else None,
    }
