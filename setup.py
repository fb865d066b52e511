"""Build the memsafe._memsafe C extension.

The extension is required: there is no pure-Python fallback, and a build
that cannot compile it fails loudly.  The page layer is chosen per OS
family: platform_win.c on Windows, platform_posix.c everywhere else.
"""

import glob
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

COMMON_SOURCES = [
    # The extension: a thin binding over the core.
    "src/_memsafe.c",
    "src/types.c",
    "src/window.c",
    "src/ingest.c",
    "src/secret.c",
    "src/text.c",
    "src/config.c",
    "src/errors.c",
    "src/harden.c",
    "src/aead_hooks.c",
    "src/plaintext.c",
    "src/frames.c",
    "src/pydantic_hook.c",
    "src/args.c",
    "src/writer.c",
    # The core: C with no Python in it (src/core/store.h is its interface).
    "src/core/store.c",
    "src/core/region.c",
    "src/core/seal.c",
    "src/core/pool.c",
    "src/core/key.c",
    "src/core/rng.c",
    "src/core/chacha20poly1305.c",
    "src/core/mapping.c",
    "src/core/registry.c",
    "src/core/ct.c",
    "src/core/scrub.c",
]

GCC_LIKE_FLAGS = [
    "-std=c11",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-fvisibility=hidden",
]


def platform_sources() -> list[str]:
    if sys.platform == "win32":
        return ["src/core/platform_win.c"]
    return ["src/core/platform_posix.c"]


def platform_libraries() -> list[str]:
    if sys.platform == "win32":
        return ["bcrypt"]
    return []


class StrictBuildExt(build_ext):
    """Warnings are errors under gcc and clang; MSVC gets /W3."""

    def build_extensions(self) -> None:
        compiler = self.compiler.compiler_type
        for ext in self.extensions:
            if compiler == "msvc":
                ext.extra_compile_args = ["/W3"]
            else:
                extra = os.environ.get("MEMSAFE_EXTRA_CFLAGS", "").split()
                ext.extra_compile_args = GCC_LIKE_FLAGS + extra
                ext.extra_link_args = os.environ.get(
                    "MEMSAFE_EXTRA_LDFLAGS", ""
                ).split()
        super().build_extensions()


setup(
    ext_modules=[
        Extension(
            "memsafe._memsafe",
            sources=COMMON_SOURCES + platform_sources(),
            depends=glob.glob("src/*.h") + glob.glob("src/core/*.h"),
            libraries=platform_libraries(),
            optional=False,
        )
    ],
    cmdclass={"build_ext": StrictBuildExt},
)
