"""The wheel: built with the standard library around the library this suite loaded,
installed with pip into a fresh venv (offline), and an example run from it with no hint of
where the library is (no MEMBERLIST_LIB*, LD_LIBRARY_PATH or PYTHONPATH)."""
import os
import subprocess
import sys
import zipfile

import libmemberlist as ml

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.dirname(HERE)


def test_wheel_installs_into_a_fresh_venv_and_runs_the_example(tmp_path):
    out = subprocess.run([sys.executable, os.path.join(PKG, "build_wheel.py"),
                          "--lib", ml.library_path, "--out", str(tmp_path / "dist")],
                         check=True, capture_output=True, text=True).stdout.strip()
    names = zipfile.ZipFile(out).namelist()
    assert "libmemberlist/_lib/libmemberlist.so.0" in names
    assert "libmemberlist/_native_g.py" in names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items()
           if k not in ("MEMBERLIST_LIB", "MEMBERLIST_LIB_DIR", "LD_LIBRARY_PATH", "PYTHONPATH")}
    env["PIP_NO_INDEX"] = "1"
    subprocess.run([py, "-m", "pip", "install", "--no-index", "-q", out], check=True, env=env)
    run = subprocess.run([py, os.path.join(PKG, "examples", "cluster.py")], cwd=str(tmp_path),
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert str(venv) in run.stdout, "the library should come from the venv: " + run.stdout
    assert "Message(data=b'hello from b')" in run.stdout
