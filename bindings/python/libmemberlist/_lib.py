"""Loads libmemberlist.so.0 once and checks that it is not older than the header the ctypes
layer was generated from."""
import ctypes
import os

from . import _native_g as n

SONAME = "libmemberlist.so.0"


def _candidates():
    # An explicit path, then the copy a wheel carries, then a library directory, then the
    # system's search path (ld.so.cache, LD_LIBRARY_PATH, RUNPATH).
    if os.environ.get("MEMBERLIST_LIB"):
        yield os.environ["MEMBERLIST_LIB"]
    bundled = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_lib", SONAME)
    if os.path.exists(bundled):
        yield bundled
    if os.environ.get("MEMBERLIST_LIB_DIR"):
        yield os.path.join(os.environ["MEMBERLIST_LIB_DIR"], SONAME)
    yield SONAME


def _load():
    errors = []
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            errors.append("%s: %s" % (path, e))
            continue
        n.bind(lib)
        if lib.ml_abi_version() != n.ML_ABI_VERSION:
            raise ImportError("%s has ABI %d, this package needs %d"
                              % (path, lib.ml_abi_version(), n.ML_ABI_VERSION))
        major, minor, patch = ctypes.c_uint32(), ctypes.c_uint32(), ctypes.c_uint32()
        lib.ml_version(ctypes.byref(major), ctypes.byref(minor), ctypes.byref(patch))
        have = (major.value, minor.value, patch.value)
        need = (n.ML_VERSION_MAJOR, n.ML_VERSION_MINOR, n.ML_VERSION_PATCH)
        if have < need:
            raise ImportError("%s is version %d.%d.%d, older than the header this package was "
                              "generated from (%d.%d.%d)" % ((path,) + have + need))
        return lib, path
    raise ImportError("libmemberlist not found (set MEMBERLIST_LIB to its path):\n  "
                      + "\n  ".join(errors))


lib, path = _load()
