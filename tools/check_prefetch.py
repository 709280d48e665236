"""Check that the built kernels really contain software prefetch instructions.

    python tools/check_prefetch.py

The row kernels hide memory latency by prefetching rows a few ids ahead, and a compiler can
silently drop a prefetch: GCC 12 deleted every call of a prefetch helper that was `static
inline` but not `always_inline` (its mod/ref analysis took the helper for side-effect free),
and the kernels ran 1.6x slower with no test noticing, since results do not change. This
disassembles the compiled modules of the fastembed that Python imports (in place or
installed) and counts prefetch instructions in each module that must have them.

Exit status 0 when every module has them, 1 when one has none, 2 when the check cannot run
here (no objdump, or a CPU family whose prefetch mnemonics this does not know).
"""
from __future__ import annotations

import importlib
import platform
import re
import shutil
import subprocess
import sys

# modules whose hot loops prefetch rows: gather/scatter/coalesce, bags, fused optimizers
MODULES = ("fastembed._ext.indexing", "fastembed._ext.pooling", "fastembed._ext.updates")
# prefetch mnemonics per CPU family, as objdump prints them
MNEMONICS = {
    "x86_64": r"\bprefetch(?:t0|t1|t2|nta|w|wt1)?\b",
    "amd64": r"\bprefetch(?:t0|t1|t2|nta|w|wt1)?\b",
    "aarch64": r"\bprfm\b",
    "arm64": r"\bprfm\b",
}


def count_prefetches(path: str, pattern: str) -> int:
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], check=True,
                          capture_output=True, text=True).stdout
    return len(re.findall(pattern, text))


def main() -> int:
    machine = platform.machine().lower()
    pattern = MNEMONICS.get(machine)
    if pattern is None:
        print(f"check_prefetch: cannot check on {machine!r} (prefetch mnemonics unknown)")
        return 2
    if shutil.which("objdump") is None:
        print("check_prefetch: objdump (binutils) is not installed; cannot check")
        return 2
    import fastembed
    if not fastembed.openmp_enabled():
        print("check_prefetch: note: a serial (no OpenMP) build; prefetches are still required")
    failed = False
    for name in MODULES:
        path = importlib.import_module(name).__file__
        assert path is not None
        n = count_prefetches(path, pattern)
        print(f"check_prefetch: {name}: {n} prefetch instructions ({path})")
        if n == 0:
            print(f"check_prefetch: ERROR: {name} has no prefetch instruction: the compiler "
                  f"dropped them (see fastembed/_ext/rowops.h)")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
