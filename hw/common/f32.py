"""IEEE 754 binary32 / bfloat16 bit patterns the hardware and its models share.

The canonical NaN is the one every unit of the design produces for a NaN
result (TTU tails, TVP units), so the golden models must use the same bits.
"""
__all__ = ["NAN", "BF16_NAN", "PINF", "NINF", "ONE", "MINUS_ONE", "NEG_ZERO"]

NAN = 0x7FC00000        #: canonical quiet NaN
BF16_NAN = 0x7FC0       #: canonical quiet NaN of BF16
PINF = 0x7F800000
NINF = 0xFF800000
ONE = 0x3F800000
MINUS_ONE = 0xBF800000
NEG_ZERO = 0x80000000   #: the additive identity of round-to-nearest (x + -0 = x)
