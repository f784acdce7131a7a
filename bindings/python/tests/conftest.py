import os
import sys
import time

# The package from this source tree unless one is installed (the wheel test installs it).
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import libmemberlist as ml  # noqa: E402

DEADLINE = 30.0  # generous: the protocol on a loaded 2-core machine


def fast_config(name, **knobs):
    """Loopback, a port the kernel picks, fast timers (as the other bindings' tests)."""
    return ml.Config("local", name=name, bind_addr="127.0.0.1", bind_port=0,
                     probe_interval_ms=200, probe_timeout_ms=100, gossip_interval_ms=50,
                     push_pull_interval_ms=2000, log_level=ml.LogLevel.WARN, **knobs)


def wait_for(what, pred, pump=None, timeout=DEADLINE):
    """Waits until pred() holds, calling pump() (which should wait on an event) meanwhile."""
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("timed out waiting for " + what)
        if pump is not None:
            pump()
        else:
            time.sleep(0.02)
