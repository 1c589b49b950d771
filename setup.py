"""Cython extensions for fastfeed; metadata lives in pyproject.toml."""
import os
import sys

from setuptools import Extension, setup

# Compiler directives are set here once for every module, as picows does.
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "nonecheck": False,
    "embedsignature": True,
}

extra_compile_args = [] if sys.platform == "win32" else ["-O3", "-Wno-maybe-uninitialized", "-DCYTHON_INLINE=inline __attribute__((always_inline))"]
if os.environ.get("FASTFEED_DEBUG"):
    extra_compile_args = ["-O0", "-g"]


# Order matters only for readability; each module is its own extension.
# Dotted names under fastfeed: top-level modules and those of subpackages (fastfeed.nats._outbox).
MODULES = sorted(
    os.path.relpath(os.path.join(d, f), "src/fastfeed")[:-4].replace(os.sep, ".")
    for d, _, files in os.walk("src/fastfeed") for f in files if f.endswith(".pyx")
)


def ext(name: str) -> Extension:
    return Extension(
        f"fastfeed.{name}",
        [f"src/fastfeed/{name.replace('.', '/')}.pyx"],
        extra_compile_args=extra_compile_args,
    )


# Only a build compiles: an sdist (and the egg_info that lists its files) carries the .pyx
# sources as they are, so making one needs neither Cython nor a compiler.
_BUILDS = {"build", "build_ext", "bdist_wheel", "editable_wheel", "develop", "install"}
if _BUILDS & set(sys.argv[1:]) or not {"sdist", "egg_info"} & set(sys.argv[1:]):
    from Cython.Build import cythonize

    ext_modules = cythonize([ext(name) for name in MODULES], compiler_directives=DIRECTIVES,
                            include_path=["src"])
else:
    ext_modules = [ext(name) for name in MODULES]

setup(ext_modules=ext_modules)
