"""Builds the Python module `lipattn` with the project's CMake build and installs it (docs/python.md).

pip install --no-build-isolation .   (offline: only Debian's python3-setuptools and python3-pip)
LIPATTN_BUILD_DIR reuses a configured build folder (default: a fresh one in pip's temporary folder).
"""
import os
import pathlib
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = pathlib.Path(__file__).resolve().parent


class CMakeBuild(build_ext):
    """Runs CMake for the lipattn_python target and copies build/python/lipattn*.so (and the stub)."""

    def build_extension(self, ext):
        build = pathlib.Path(os.environ.get("LIPATTN_BUILD_DIR", pathlib.Path(self.build_temp).resolve() / "cmake"))
        subprocess.check_call(["cmake", "-S", str(ROOT), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                               "-DLIPATTN_PYTHON=ON", f"-DPYTHON_EXECUTABLE={sys.executable}"])
        subprocess.check_call(["cmake", "--build", str(build), "--target", "lipattn_python", "-j",
                               str(os.cpu_count() or 1)])
        built = sorted((build / "python").glob("lipattn*.so"))
        if not built:
            raise RuntimeError(f"CMake built no lipattn*.so in {build / 'python'}")
        dest = pathlib.Path(self.get_ext_fullpath(ext.name))
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built[0], dest)
        shutil.copy2(ROOT / "python" / "lipattn.pyi", dest.parent / "lipattn.pyi")


setup(
    name="lipattn",
    version="0.1.0",
    description="The exact local Lipschitz constant of self-attention layers (C++ library, pybind11 module)",
    python_requires=">=3.9",
    ext_modules=[Extension("lipattn", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
