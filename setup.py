"""Build script for fastembed's compiled kernels.

The Cython sources are translated at build time (generated C is never committed). OpenMP is
probed by compiling and linking a tiny program; when the probe fails, or when the environment
sets ``FASTEMBED_NO_OPENMP=1``, the same sources are built serially and a loud warning says so.

GCC and Clang compile the kernels with -O3 -ffp-contract=off -fno-wrapv, after the
interpreter's own flags (see BuildExt.build_extensions).

Environment switches
--------------------
FASTEMBED_NO_OPENMP=1   build without OpenMP (serial kernels).
FASTEMBED_DEBUG=1       turn Cython's bounds, wraparound and initialisation checks back on and
                        compile with -O0 -g, for debugging the kernels.
FASTEMBED_SANITIZE=1    build every extension with AddressSanitizer and UndefinedBehaviorSanitizer
                        (GCC or Clang): -fsanitize=address,undefined -fno-sanitize-recover=all
                        -fno-omit-frame-pointer -O1 -g (-O0 with FASTEMBED_DEBUG), at compile
                        and link time, OpenMP kept on. Every UB report aborts, so a run cannot
                        pass with errors. The Python interpreter is not sanitized, so the ASan
                        runtime must be preloaded: tools/sanitize.sh builds such a build in a
                        scratch venv and runs the tests under it with the right LD_PRELOAD and
                        ASAN_OPTIONS.
"""
import os
import shutil
import sys
import tempfile
import textwrap

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# The compiled kernels, all in the private package fastembed._ext (see ARCHITECTURE.md).
EXTENSIONS = ["threads", "indexing", "pooling", "updates", "sgns", "tokens", "textio", "subwords"]


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _openmp_flags(compiler):
    """(compile_args, link_args) for OpenMP with this compiler, without probing."""
    if compiler.compiler_type == "msvc":
        return ["/openmp"], []
    return ["-fopenmp"], ["-fopenmp"]


def _probe_openmp(compiler):
    """Compile and link a tiny OpenMP program; return True when it works."""
    compile_args, link_args = _openmp_flags(compiler)
    source = textwrap.dedent(
        """\
        #include <omp.h>
        int main(void) {
            int n = 0;
            #pragma omp parallel reduction(+:n)
            n += 1;
            return (n >= 1 && omp_get_max_threads() >= 1) ? 0 : 1;
        }
        """
    )
    tmp = tempfile.mkdtemp(prefix="fastembed-openmp-probe-")
    try:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as f:
            f.write(source)
        objects = compiler.compile([path], output_dir=tmp, extra_postargs=compile_args)
        compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=link_args)
        return True
    except Exception:  # CompileError, LinkError, missing headers: all mean "no OpenMP"
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _warn(message):
    bar = "*" * 78
    sys.stderr.write(f"\n{bar}\n{message}\n{bar}\n\n")


class BuildExt(build_ext):
    def build_extensions(self):
        if _env_flag("FASTEMBED_NO_OPENMP"):
            use_openmp = False
            _warn("fastembed: FASTEMBED_NO_OPENMP is set; building SERIAL kernels (no OpenMP).\n"
                  "Every n_threads argument will run on one thread.")
        else:
            use_openmp = _probe_openmp(self.compiler)
            if not use_openmp:
                _warn("fastembed: WARNING: this compiler cannot build OpenMP programs.\n"
                      "Building SERIAL kernels: results are identical, but only one thread\n"
                      "is used. Install an OpenMP runtime (libgomp, or libomp with clang)\n"
                      "and reinstall to get parallel kernels.")
        compile_args, link_args = _openmp_flags(self.compiler) if use_openmp else ([], [])
        if self.compiler.compiler_type != "msvc":
            # CPython compiles itself with -fwrapv and passes it on to extensions. Our kernels
            # never rely on signed overflow wrapping, and the flag blocks loop optimisations
            # in the row loops (measured: about 20% on scatter-add). Meson-built Cython
            # projects (SciPy, scikit-learn) do not use it either.
            compile_args = compile_args + ["-fno-wrapv"]
            # No fused multiply-add contraction: `a + s * b` must round the product, as NumPy
            # does, on every platform (FMA is baseline on aarch64), so that results are the
            # same bits everywhere.
            compile_args = compile_args + ["-ffp-contract=off"]
            # -O3 whatever the interpreter was built with: extensions inherit its CFLAGS, and
            # some Pythons pass -O2 (Debian's and Ubuntu's system Python 3), where
            # GCC 12 vectorises almost nothing (its "very cheap" cost model) and older GCCs
            # nothing at all. Measured with Debian's python3.11 on the same machine: the
            # word2vec pair step compiled to scalar code (no 256-bit instruction in sgns) and
            # skip-gram trained 2-2.3x slower; scatter_add and the Adam step lost their vector
            # loops too. The results are the same bits (IEEE arithmetic: no reassociation, no
            # FMA contraction), and tools/check_kernels.py fails a build whose row loops are
            # not vectorised. FASTEMBED_DEBUG's -O0 and FASTEMBED_SANITIZE's -O1 come later
            # and win.
            compile_args = compile_args + ["-O3"]
        debug = _env_flag("FASTEMBED_DEBUG")
        sanitize = _env_flag("FASTEMBED_SANITIZE")
        if sanitize and self.compiler.compiler_type == "msvc":
            raise SystemExit("fastembed: FASTEMBED_SANITIZE=1 needs GCC or Clang")
        for ext in self.extensions:
            ext.extra_compile_args = list(ext.extra_compile_args) + compile_args
            ext.extra_link_args = list(ext.extra_link_args) + link_args
            if debug and self.compiler.compiler_type != "msvc":
                ext.extra_compile_args += ["-O0", "-g"]
            if sanitize:
                # Appended last, so that -O1 overrides the interpreter's -O2/-O3 (FASTEMBED_DEBUG's
                # -O0 wins when both are set). -fno-sanitize-recover=all turns every UBSan
                # report into an abort, like ASan's.
                flags = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
                ext.extra_compile_args += flags + ["-fno-omit-frame-pointer", "-g"]
                ext.extra_compile_args += [] if debug else ["-O1"]
                ext.extra_link_args += flags
        super().build_extensions()


def _extensions():
    import numpy  # a build requirement (pyproject.toml); imported only when building
    from Cython.Build import cythonize

    debug = _env_flag("FASTEMBED_DEBUG")
    directives = {
        "language_level": 3,
        "boundscheck": debug,
        "wraparound": debug,
        "initializedcheck": debug,
        "cdivision": not debug,
        "embedsignature": True,
    }
    extensions = [
        Extension(
            f"fastembed._ext.{name}",
            [os.path.join("fastembed", "_ext", f"{name}.pyx")],
            include_dirs=[os.path.join("fastembed", "_ext"), numpy.get_include()],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        )
        for name in EXTENSIONS
    ]
    return cythonize(extensions, compiler_directives=directives)


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
