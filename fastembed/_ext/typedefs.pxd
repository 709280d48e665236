# Shared fused types for the kernels.
#
# floating: the table's element type (float32 or float64).
# index_t:  the id type (int32 or int64). All index *arithmetic* is done in Py_ssize_t or
#           int64_t, never in index_t, so N * D may exceed 2**31.
from libc.stdint cimport int32_t, int64_t

ctypedef fused floating:
    float
    double

ctypedef fused index_t:
    int32_t
    int64_t
