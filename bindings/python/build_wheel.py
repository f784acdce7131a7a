#!/usr/bin/env python3
"""Builds a wheel of the libmemberlist package that carries the native library, with the
standard library only (no setuptools, no network): the package's .py files, the .so as
libmemberlist/_lib/libmemberlist.so.0 (found first by the loader), and the dist-info files
of the wheel format (PEP 427: METADATA, WHEEL, RECORD with sha256 digests).

    python3 build_wheel.py --lib PREFIX/lib/libmemberlist.so.0 --out DIR

The platform tag is the build machine's (linux_x86_64): the .so links against this system's
libraries (OpenSSL, zlib, fmt, spdlog...), so the wheel is for this distribution, not a
manylinux one."""
import argparse
import base64
import hashlib
import os
import sys
import sysconfig
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from libmemberlist import _native_g as n  # noqa: E402  (the constants only: no library load)

NAME = "libmemberlist"


def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build(lib, out):
    version = "%d.%d.%d" % (n.ML_VERSION_MAJOR, n.ML_VERSION_MINOR, n.ML_VERSION_PATCH)
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    tag = "py3-none-" + plat
    dist = "%s-%s.dist-info" % (NAME, version)
    files = []
    pkg = os.path.join(HERE, NAME)
    for f in sorted(os.listdir(pkg)):
        if f.endswith(".py"):
            with open(os.path.join(pkg, f), "rb") as fh:
                files.append(("%s/%s" % (NAME, f), fh.read()))
    with open(os.path.realpath(lib), "rb") as fh:
        files.append(("%s/_lib/libmemberlist.so.0" % NAME, fh.read()))
    with open(os.path.join(HERE, "README.md"), "rb") as fh:
        readme = fh.read().decode()
    files.append(("%s/METADATA" % dist, (
        "Metadata-Version: 2.1\nName: %s\nVersion: %s\n"
        "Summary: Cluster membership and failure detection (hashicorp/memberlist in C++), "
        "through ctypes\nRequires-Python: >=3.8\nDescription-Content-Type: text/markdown\n\n%s"
        % (NAME, version, readme)).encode()))
    files.append(("%s/WHEEL" % dist, (
        "Wheel-Version: 1.0\nGenerator: libmemberlist build_wheel.py\nRoot-Is-Purelib: false\n"
        "Tag: %s\n" % tag).encode()))
    record = "".join("%s,%s,%d\n" % (p, digest(d), len(d)) for p, d in files)
    record += "%s/RECORD,,\n" % dist
    files.append(("%s/RECORD" % dist, record.encode()))
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "%s-%s-%s.whl" % (NAME, version, tag))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for p, d in files:
            info = zipfile.ZipInfo(p, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if p.endswith(".so.0") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, d)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", required=True, help="libmemberlist.so.0 to bundle")
    ap.add_argument("--out", required=True, help="directory for the .whl")
    a = ap.parse_args()
    print(build(a.lib, a.out))


if __name__ == "__main__":
    main()
