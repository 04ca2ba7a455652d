"""Formal property checks: Amaranth wrappers -> RTLIL -> SymbiYosys (yowasp)."""
