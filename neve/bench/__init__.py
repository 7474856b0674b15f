"""`neve bench`: the paper's microbenchmark table, its cost model, and host-speed figures."""
