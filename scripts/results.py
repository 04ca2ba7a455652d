"""Write measured figures into ``docs/results.md`` section by section.

Each producer (``make bench``, ``make fpga``, one block's benchmark) owns a
section between ``<!-- begin NAME -->`` and ``<!-- end NAME -->`` markers and
replaces only that, so running one benchmark never erases another's figures.
Every section records the command and the machine that produced it.
"""
import datetime
import os
import platform
import re
import shlex
import sys
from pathlib import Path

HEADER = """# Measured results

Every figure below was produced by the command named in its section, on the
machine named there; nothing here is typed in by hand. Regenerate with
`make bench` (all benchmarks) or `make fpga` (ECP5 place and route).
"""


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def provenance(command=None):
    command = command or " ".join(shlex.quote(a) for a in ["python", "-m", *sys.argv])
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"_Produced by `{command}` on {stamp}; machine: {machine()}._\n"


def update_section(path, name, body):
    path = Path(path)
    text = path.read_text() if path.exists() else HEADER
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
