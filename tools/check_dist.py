"""Check what `python -m build` made: an sdist that can build and test fastembed, a wheel
that carries every compiled module with its stub.

    python tools/check_dist.py DIST_DIR

Exit status 0 when both archives hold what they must, 1 otherwise (each gap is printed).
"""
from __future__ import annotations

import pathlib
import sys
import tarfile
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _extensions() -> list[str]:
    # setup.py's EXTENSIONS, read without running setup()
    text = (ROOT / "setup.py").read_text(encoding="utf-8")
    start = text.index("EXTENSIONS = [")
    block = text[start:text.index("]", start) + 1]
    return [name.strip().strip('"') for name in block.split("[", 1)[1].rstrip("]").split(",")
            if name.strip()]


def _version() -> str:
    namespace: dict = {}
    exec((ROOT / "fastembed" / "_version.py").read_text(encoding="utf-8"), namespace)
    return namespace["__version__"]


def check(dist: pathlib.Path) -> list[str]:
    problems = []
    version = _version()
    sdists = sorted(dist.glob("fastembed_layer-*.tar.gz"))
    wheels = sorted(dist.glob("fastembed_layer-*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        return [f"want one sdist and one wheel in {dist}, found {sdists + wheels}"]
    extensions = _extensions()

    with tarfile.open(sdists[0]) as tar:
        top = f"fastembed_layer-{version}/"
        names = {n[len(top):] for n in tar.getnames() if n.startswith(top)}
    want = {"pyproject.toml", "setup.py", "README.md", "LICENSE", "MANIFEST.in",
            "tests/conftest.py", "fastembed/py.typed", "fastembed/data/sotu.tsv.xz",
            "fastembed/data/README.md", "tools/fingerprint.py"}
    for ext in extensions:
        want |= {f"fastembed/_ext/{ext}.pyx", f"fastembed/_ext/{ext}.pyi"}
    want |= {f"fastembed/_ext/{p.name}" for p in (ROOT / "fastembed" / "_ext").glob("*.pxd")}
    want |= {f"fastembed/_ext/{p.name}" for p in (ROOT / "fastembed" / "_ext").glob("*.h")}
    want |= {f"tests/{p.name}" for p in (ROOT / "tests").glob("*.py")}
    problems += [f"sdist lacks {n}" for n in sorted(want - names)]
    problems += [f"sdist holds a build product {n}" for n in sorted(names)
                 if n.endswith((".so", ".pyd", ".o"))]

    with zipfile.ZipFile(wheels[0]) as whl:
        names = set(whl.namelist())
    for ext in extensions:
        if not any(n.startswith(f"fastembed/_ext/{ext}.") and n.endswith((".so", ".pyd"))
                   for n in names):
            problems.append(f"wheel lacks the compiled module fastembed._ext.{ext}")
        if f"fastembed/_ext/{ext}.pyi" not in names:
            problems.append(f"wheel lacks the stub fastembed/_ext/{ext}.pyi")
    # every module of the source tree's package, and nothing outside the package
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "fastembed").rglob("*.py")}
    for n in sorted(modules | {"fastembed/py.typed", "fastembed/data/sotu.tsv.xz",
                               f"fastembed_layer-{version}.dist-info/METADATA"}):
        if n not in names:
            problems.append(f"wheel lacks {n}")
    if not any(n.startswith(f"fastembed_layer-{version}.dist-info/") and "LICENSE" in n
               for n in names):
        problems.append("wheel lacks the LICENSE in its dist-info")
    stray = sorted(n for n in names
                   if not n.startswith(("fastembed/", f"fastembed_layer-{version}.dist-info/")))
    if stray:
        problems.append(f"the wheel holds files outside the library: {stray[:5]}")
    generated = sorted(n for n in names if n.endswith((".c", ".cpp", ".html")))
    if generated:
        problems.append(f"the wheel holds generated sources: {generated[:5]}")
    print(f"{sdists[0].name}: sdist checked; {wheels[0].name}: {len(names)} files, "
          f"{len(extensions)} compiled modules")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    problems = check(pathlib.Path(argv[1]))
    for p in problems:
        print("DIST:", p)
    print("dist check: " + ("FAILED" if problems else "passed"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
