"""Run a module as ``__main__`` and write this process's peak RSS (``VmHWM``, KiB) to the file
named by ``$LABELWISE_HWM_FILE`` at exit.

``python benchmarks/_hwm.py labelwise.cli project import ...``. A parent's ``wait4`` cannot
give a child's own peak: Linux carries ``ru_maxrss`` over fork + exec, so a child of a big
benchmark process reports the parent's size. ``VmHWM`` belongs to the child's own address
space.
"""

from __future__ import annotations

import atexit
import os
import runpy
import sys


def _write_hwm() -> None:
    path = os.environ.get("LABELWISE_HWM_FILE")
    if not path:
        return
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    with open(path, "w") as f:
        f.write(str(kb))


if __name__ == "__main__":
    atexit.register(_write_hwm)
    module = sys.argv[1]
    sys.argv = sys.argv[1:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
