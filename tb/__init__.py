"""cocotb testbenches: pytest functions build Amaranth Verilog and run cocotb."""
