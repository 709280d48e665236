"""Check that the built kernels were compiled as designed: prefetches kept, row loops vectorised.

    python tools/check_kernels.py

Two ways a build can be correct and yet slow, which no test of the results sees:

* **Prefetches dropped.** The row kernels hide memory latency by prefetching rows a few ids
  ahead, and a compiler can silently drop a prefetch: GCC 12 deleted every call of a prefetch
  helper that was `static inline` but not `always_inline` (its mod/ref analysis took the
  helper for side-effect free), and the kernels ran 1.6x slower.
* **Row loops left scalar.** Extensions inherit the interpreter's compiler flags, and some
  Pythons pass -O2 (Debian's and Ubuntu's system Python 3), where GCC 12 vectorises
  almost nothing and older GCCs nothing at all: the word2vec pair step, scatter_add's row
  additions and the optimizer steps compiled to scalar code, and skip-gram trained 2-2.3x
  slower. setup.py now asks for -O3; this checks that the loops did get vector instructions.

It disassembles the compiled modules of the fastembed that Python imports (in place or
installed) and counts, in each module that must have them, prefetch instructions and packed
(vector) floating-point arithmetic.

Exit status 0 when every module passes, 1 when one fails, 2 when the check cannot run here
(no objdump, or a CPU family whose mnemonics this does not know).
"""
from __future__ import annotations

import importlib
import platform
import re
import shutil
import subprocess
import sys

# modules whose hot loops prefetch rows: gather/scatter/coalesce, bags, fused optimizers
PREFETCH_MODULES = ("fastembed._ext.indexing", "fastembed._ext.pooling",
                    "fastembed._ext.updates")
# modules whose row loops must be vectorised, with the fewest packed arithmetic instructions
# a vectorised build has. Measured with GCC 12 on x86-64: -O3 gives indexing 37, pooling
# 1206, updates 63, sgns 622; the interpreter's -O2 gave 0, 228 (its explicit vector types),
# 6 and 14.
VECTOR_MODULES = {"fastembed._ext.indexing": 16, "fastembed._ext.pooling": 16,
                  "fastembed._ext.updates": 16, "fastembed._ext.sgns": 64}
# mnemonics per CPU family, as objdump prints them: (prefetch, packed float arithmetic)
_X86 = (r"\bprefetch(?:t0|t1|t2|nta|w|wt1)?\b", r"\bv?(?:add|sub|mul|div)p[sd]\b")
_ARM64 = (r"\bprfm\b", r"\bf(?:add|sub|mul|div)\s+v\d+\.(?:2s|4s|2d)")
MNEMONICS = {"x86_64": _X86, "amd64": _X86, "aarch64": _ARM64, "arm64": _ARM64}


def disassemble(path: str) -> str:
    return subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], check=True,
                          capture_output=True, text=True).stdout


def main() -> int:
    machine = platform.machine().lower()
    patterns = MNEMONICS.get(machine)
    if patterns is None:
        print(f"check_kernels: cannot check on {machine!r} (mnemonics unknown)")
        return 2
    if shutil.which("objdump") is None:
        print("check_kernels: objdump (binutils) is not installed; cannot check")
        return 2
    prefetch, packed = patterns
    import fastembed
    if not fastembed.openmp_enabled():
        print("check_kernels: note: a serial (no OpenMP) build; the same is required")
    failed = False
    for name in sorted(set(PREFETCH_MODULES) | set(VECTOR_MODULES)):
        path = importlib.import_module(name).__file__
        assert path is not None
        text = disassemble(path)
        n_prefetch = len(re.findall(prefetch, text))
        n_packed = len(re.findall(packed, text))
        print(f"check_kernels: {name}: {n_prefetch} prefetch, {n_packed} packed arithmetic "
              f"instructions ({path})")
        if name in PREFETCH_MODULES and n_prefetch == 0:
            print(f"check_kernels: ERROR: {name} has no prefetch instruction: the compiler "
                  f"dropped them (see fastembed/_ext/rowops.h)")
            failed = True
        if n_packed < VECTOR_MODULES.get(name, 0):
            print(f"check_kernels: ERROR: {name} has {n_packed} packed arithmetic instructions, "
                  f"fewer than the {VECTOR_MODULES[name]} of a vectorised build: its row loops "
                  f"were compiled to scalar code (an -O2 build? see setup.py)")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
