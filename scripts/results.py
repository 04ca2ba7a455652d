"""Write measured figures into ``docs/results.md`` section by section.

Each producer (``make bench``, ``make fpga``, one block's benchmark) owns a
section between ``<!-- begin NAME -->`` and ``<!-- end NAME -->`` markers and
replaces only that, so running one benchmark never erases another's figures.
Every section records the command and the machine that produced it.
"""
import datetime
import re
import shlex
import sys
from pathlib import Path

from sim.measured import machine

HEADER = """# Measured results

Every figure below was produced by the command named in its section, on the
machine named there; nothing here is typed in by hand. Regenerate with
`make bench` (all benchmarks) or `make fpga` (ECP5 place and route).
"""


def provenance(command=None, *, within=None):
    """The italic "Produced by" line of a section; ``within``: the larger command it ran in."""
    command = command or " ".join(shlex.quote(a) for a in ["python", "-m", *sys.argv])
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    part = f" (as part of `{within}`)" if within else ""
    return f"_Produced by `{command}`{part} on {stamp}; machine: {machine()}._\n"


def fpga_table(prefix, path=Path("docs/fpga.json")):
    """Markdown rows of ``make fpga``'s figures for the tops named ``prefix*``.

    Benchmarks quote ``docs/fpga.json`` instead of running place and route
    again; an empty string says none are recorded yet.
    """
    import json
    data = json.loads(Path(path).read_text()) if Path(path).exists() else {}
    rows = {k: v for k, v in sorted(data.items()) if k.startswith(prefix)}
    if not rows:
        return ""
    out = ["| top | LUT4 | FF | DSP | BRAM | LUTRAM | Fmax (MHz) |", "|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        fmax = r["Fmax"] if r["Fmax"] is not None else "comb. only"
        out.append(f"| {name} | {r['LUT4']} | {r['FF']} | {r['DSP']} | {r['BRAM']} | "
                   f"{r['LUTRAM']} | {fmax} |")
    return "\n".join(out) + "\n"


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
