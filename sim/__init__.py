"""Golden models (bit-exact NumPy/Python), the performance model and the `make sim` driver."""
