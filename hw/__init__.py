"""openmaia hardware: Amaranth 0.5 modules, one block per folder."""
