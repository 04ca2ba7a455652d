"""``docs/measured.json``: cycle counts measured on the RTL, for the performance model's check.

Written by ``make sim`` (:mod:`sim.run`) and ``make bench`` (``scripts/bench_*.py``)
through :func:`record_measurements`; read by ``tb/test_perf.py``.
"""
import datetime
import json
import os
import platform
from pathlib import Path


def machine():
    """One line naming this machine (OS, cores, CPU, Python) for provenance records."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


MEASURED = Path("docs/measured.json")


def record_measurements(group, entries, command, path=MEASURED):
    """Store RTL-measured figures of one benchmark in ``docs/measured.json``.

    ``entries`` is a list of dicts, each with a ``kind`` naming what was run
    and its parameters and ``cycles``. ``tb/test_perf.py`` checks the
    performance model's prototype preset against every entry, so the model
    is held to what the RTL did, not to numbers typed in.
    """
    path = Path(path)
    data = json.loads(path.read_text()) if path.exists() else {}
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    data[group] = {"command": command, "date": stamp, "machine": machine(), "entries": entries}
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
