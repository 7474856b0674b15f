"""The compiled fast path (neve/core/_fastpath.c) as an optional extension: when it
cannot be built, pip goes on and neve runs on its Python path (it says so once)."""
from setuptools import Extension, setup

setup(ext_modules=[Extension("neve.core._fastpath", ["neve/core/_fastpath.c"],
                             extra_compile_args=["-O2", "-Wall", "-Werror"], optional=True)])
