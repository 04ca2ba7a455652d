// Simulation-only HBM storage of the `make sim` top (sim/rtl/hbm.py, sim/rtl/sim_top.py).
//
// A plain Verilog array: Amaranth writes an initialiser line for every word of a
// lib.memory.Memory, which for megabytes of HBM takes minutes to export and compile.
// The image is loaded at time 0 with $readmemh from +HBM_INIT=<file> and, when `dump`
// is high at a clock edge, words +HBM_DUMP_LO..+HBM_DUMP_HI are written with
// $writememh to +HBM_DUMP=<file>: no Python per word or per cycle.
module sim_hbm_storage #(
    parameter WIDTH = 128,
    parameter DEPTH = 65536,
    parameter AW = 16
) (
    input clk,
    input ren,
    input [AW-1:0] raddr,
    output reg [WIDTH-1:0] rdata,
    input [WIDTH/8-1:0] wen,
    input [AW-1:0] waddr,
    input [WIDTH-1:0] wdata,
    input dump
);
  reg [WIDTH-1:0] mem [0:DEPTH-1];
  reg [8*1024-1:0] init_file;
  reg [8*1024-1:0] dump_file;
  reg [WIDTH-1:0] mask;
  integer i, b, lo, hi;

  initial begin
    for (i = 0; i < DEPTH; i = i + 1) mem[i] = {WIDTH{1'b0}};
    rdata = {WIDTH{1'b0}};
    if ($value$plusargs("HBM_INIT=%s", init_file)) $readmemh(init_file, mem);
  end

  always @(*) begin
    for (b = 0; b < WIDTH / 8; b = b + 1) mask[b*8 +: 8] = {8{wen[b]}};
  end

  always @(posedge clk) begin
    if (ren) rdata <= mem[raddr];
    if (|wen) mem[waddr] <= (mem[waddr] & ~mask) | (wdata & mask);
    if (dump && $value$plusargs("HBM_DUMP=%s", dump_file)) begin
      lo = 0;
      hi = DEPTH - 1;
      if ($value$plusargs("HBM_DUMP_LO=%d", lo)) ;
      if ($value$plusargs("HBM_DUMP_HI=%d", hi)) ;
      $writememh(dump_file, mem, lo, hi);
    end
  end
endmodule
