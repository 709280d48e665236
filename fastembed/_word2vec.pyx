"""Compiled kernel of word2vec's skip-gram with negative sampling (SGNS).

Layers as in ``_kernels.pyx``: the window arithmetic lives in ``_sgns.h`` (nogil C helpers);
``sgns_step`` is the ``def`` kernel over typed memoryviews; ``fastembed.word2vec.SkipGram``
validates, owns the tables and the workspace, and calls it once per batch of sentences.

One call trains on a batch of sentences, split into ``n_shards`` contiguous shards of about
equal word counts; shard ``t`` runs on its own thread with its own random stream
(``splitmix64`` seeded from ``seed`` and ``t``). For each sentence the shard:

1. drops words by frequency subsampling, gensim's rule: word ``w`` is kept when a 32-bit
   random number is at most ``keep[w]`` (``keep[w] = P(keep w) * (2**32 - 1)``);
2. for each kept word, the centre, draws a reduced window ``b`` uniform in [0, window) and
   takes the kept words within ``window - b`` positions as contexts (never across sentences);
3. draws ``negative`` noise words from the unigram**0.75 distribution (Walker's alias
   method); a draw equal to the centre is skipped, as gensim does;
4. applies one SGD step on the window (``fe_sgns_window_*``, ``_sgns.h``).

Deterministic by default. With one shard, updates go straight into the tables: plain online
SGD. With several shards, each shard works on private copies of the rows it touches (copied
from the tables on first touch), so shards never see each other's writes during the call;
at the end each row moves by a weighted sum of the changes (copy - original) of the shards
that touched it, added in shard order (see ``_merge_scale``: the sum for rarely used rows, the
mean for heavily used ones). The result depends on the seed and the number of shards
only, never on the number of threads or how they were scheduled. ``hogwild=True`` writes straight into the shared tables from all
threads, as gensim and word2vec.c do: a little faster, not reproducible.

``record=True`` trains nothing and writes the random draws (kept words, reduced windows,
negatives) to arrays instead, so that tests can replay them in a NumPy reference.
"""
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy

from ._typedefs cimport floating

import numpy as np

cdef extern from "_sgns.h" nogil:
    void fe_sgns_init_tables()
    double fe_sgns_sigmoid(double x)
    double fe_sgns_softplus(double x)
    double fe_sgns_window_f(float **in_rows, int n_in, float **out_rows, int n_out,
                            Py_ssize_t d, float alpha, float *g, float *delta)
    double fe_sgns_window_d(double **in_rows, int n_in, double **out_rows, int n_out,
                            Py_ssize_t d, double alpha, double *g, double *delta)

fe_sgns_init_tables()


def sigmoid(double x):
    """The kernels' table sigmoid (for the tests' reference implementation)."""
    return fe_sgns_sigmoid(x)


def softplus(double x):
    """The kernels' table softplus, log(1 + e^x) (for the tests' reference implementation)."""
    return fe_sgns_softplus(x)


cdef inline uint64_t _next(uint64_t* state) noexcept nogil:
    """splitmix64: a fast 64-bit generator with a one-word state (Steele et al., 2014)."""
    cdef uint64_t z
    state[0] += <uint64_t>0x9E3779B97F4A7C15ULL
    z = state[0]
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline int32_t _draw_negative(uint64_t* state, const uint64_t* accept,
                                   const int32_t* alias, uint64_t n) noexcept nogil:
    """One draw from the alias table: a uniform column, then its own id or its alias."""
    cdef uint64_t u = _next(state)
    cdef uint64_t col = ((u >> 32) * n) >> 32
    if (u & <uint64_t>0xFFFFFFFFULL) < accept[col]:
        return <int32_t>col
    return alias[col]


cdef struct Shard:
    # Private row copies of one shard (deterministic mode with several shards).
    int32_t* slot_in       # row -> slot in the buffer, or -1 (length V)
    int32_t* slot_out
    char* buf              # cap_in + cap_out rows of d elements
    int64_t* touched       # slot -> row id (input slots first, then output slots)
    int32_t* uses          # slot -> how many windows used the row in this shard
    int64_t n_in
    int64_t n_out
    int64_t cap_in
    Py_ssize_t row_bytes
    # scratch, allocated with the GIL before any work, so that running out of memory raises
    # MemoryError before a single row changes
    int64_t* kept          # positions of the kept words of a sentence
    void** in_rows         # 2 window row pointers
    void** out_rows        # negative + 1 row pointers
    int32_t* out_ids       # negative + 1 ids
    void* g                # (2 window) x (negative + 1) step sizes
    void* delta            # (2 window) x d changes of the input rows


cdef inline floating* _row(floating* table, Shard* sh, bint private, bint is_out,
                           int64_t r) noexcept nogil:
    """The row to work on: the table's own row r, or the shard's private copy of it."""
    cdef int32_t* slot
    cdef int64_t s
    if not private:
        return <floating*>(<char*>table + r * sh.row_bytes)
    slot = sh.slot_out if is_out else sh.slot_in
    s = slot[r]
    if s < 0:
        if is_out:
            s = sh.cap_in + sh.n_out
            sh.n_out += 1
        else:
            s = sh.n_in
            sh.n_in += 1
        slot[r] = <int32_t>s
        sh.touched[s] = r
        sh.uses[s] = 0
        memcpy(sh.buf + s * sh.row_bytes, <char*>table + r * sh.row_bytes, sh.row_bytes)
    sh.uses[s] += 1
    return <floating*>(sh.buf + s * sh.row_bytes)


cdef void _run_shard(floating[:, ::1] syn0, floating[:, ::1] syn1neg,
                     const int32_t[::1] words, const int64_t[::1] starts,
                     int64_t s_lo, int64_t s_hi, const uint32_t[::1] keep, bint subsample,
                     const uint64_t[::1] accept, const int32_t[::1] alias,
                     int window, int negative, floating alpha, uint64_t seed, int64_t shard,
                     Shard* sh, bint private, bint record,
                     int32_t[::1] rec_reduced, int32_t[:, ::1] rec_neg,
                     double* loss_out, int64_t* pairs_out, int64_t* kept_out) noexcept nogil:
    """Train on sentences [s_lo, s_hi) of the batch (one shard), or record its draws."""
    cdef uint64_t state = seed ^ (<uint64_t>(shard + 1) * <uint64_t>0xD1B54A32D192ED03ULL)
    cdef uint64_t n_vocab = <uint64_t>accept.shape[0]
    cdef Py_ssize_t d = syn0.shape[1]
    cdef int64_t sent, p, i, j, lo, hi, n_kept
    cdef int k, b, n_in, n_out
    cdef int32_t w, centre, neg
    cdef double loss = 0.0
    cdef int64_t pairs = 0, kept_total = 0
    cdef int64_t* kept = sh.kept
    cdef floating** in_rows = <floating**>sh.in_rows
    cdef floating** out_rows = <floating**>sh.out_rows
    cdef floating* g = <floating*>sh.g
    cdef floating* delta = <floating*>sh.delta
    cdef int32_t* out_ids = sh.out_ids
    _next(&state)
    for sent in range(s_lo, s_hi):
        # 1. frequency subsampling
        n_kept = 0
        for p in range(starts[sent], starts[sent + 1]):
            w = words[p]
            if subsample and keep[w] < <uint32_t>(_next(&state) >> 32):
                continue
            kept[n_kept] = p
            n_kept += 1
        kept_total += n_kept
        for i in range(n_kept):
            # 2. the dynamic window
            b = <int>(((_next(&state) >> 32) * <uint64_t>window) >> 32)
            lo = i - window + b
            if lo < 0:
                lo = 0
            hi = i + window + 1 - b
            if hi > n_kept:
                hi = n_kept
            centre = words[kept[i]]
            # 3. negatives, shared by the window's contexts
            out_ids[0] = centre
            n_out = 1
            for k in range(negative):
                neg = _draw_negative(&state, &accept[0], &alias[0], n_vocab)
                if record:
                    rec_neg[kept[i], k] = -1 if neg == centre else neg
                if neg == centre:
                    continue
                out_ids[n_out] = neg
                n_out += 1
            if record:
                rec_reduced[kept[i]] = b
                continue
            # 4. one SGD step on the window
            n_in = 0
            for j in range(lo, hi):
                if j != i:
                    in_rows[n_in] = _row(&syn0[0, 0], sh, private, False, words[kept[j]])
                    n_in += 1
            if n_in == 0:
                continue
            for k in range(n_out):
                out_rows[k] = _row(&syn1neg[0, 0], sh, private, True, out_ids[k])
            if floating is float:
                loss += fe_sgns_window_f(in_rows, n_in, out_rows, n_out, d, alpha, g, delta)
            else:
                loss += fe_sgns_window_d(in_rows, n_in, out_rows, n_out, d, alpha, g, delta)
            pairs += n_in
    loss_out[0] = loss
    pairs_out[0] = pairs
    kept_out[0] = kept_total


cdef inline void _add_scaled_row(floating* y, const floating* x, floating scale,
                                 Py_ssize_t d) noexcept nogil:
    cdef Py_ssize_t c
    if scale == 1:
        for c in range(d):
            y[c] = y[c] + x[c]
    else:
        for c in range(d):
            y[c] = y[c] + scale * x[c]


# alpha * uses at which a row counts as saturated (see _merge_scale). Chosen on measurements:
# at 100 small Zipf vocabularies without subsampling diverge with 8+ shards; at 5 the
# State of the Union vectors lose 0.03 of WordSim-353 Spearman; 10 to 20 keep both the
# stability (every case tried, up to 64 shards and lr 0.1) and the quality of plain sums.
cdef double MERGE_SATURATION = 16.0

cdef inline double _merge_scale(int32_t k, int32_t uses, double alpha) noexcept nogil:
    """Weight of each shard's change of a row that k shards touched, `uses` times in all.

    k shards each ran SGD on the row from the same start. While the row's total movement is
    small (alpha * uses small) the changes are nearly independent of each other and add up,
    as sequential SGD would (weight 1). A row used many times is a frequent word near its
    local optimum in every shard: each change already carries the full step, and adding k
    of them would overshoot k times, which diverges (small vocabularies, no subsampling).
    Such a row moves by the mean of the changes (weight 1/k). In between the weight goes
    smoothly from 1 to 1/k as alpha * uses goes from 0 to MERGE_SATURATION.
    """
    cdef double s = alpha * uses / MERGE_SATURATION
    if k <= 1:
        return 1.0
    if s > 1.0:
        s = 1.0
    return 1.0 / (1.0 + (k - 1) * s)


cdef void _merge_table(Shard* shards, Py_ssize_t n_shards, int64_t lo, int64_t hi,
                       floating* table, bint is_out, int32_t* count, int32_t* uses,
                       double alpha, Py_ssize_t d, void* scratch) noexcept nogil:
    """Apply the shards' private copies of the rows [lo, hi) of one table.

    Row r (its value o before the call, unchanged so far) becomes
    o + w (c_0 - o) + w (c_1 - o) + ... over the copies c_t of the shards that touched it,
    in shard order, with w = _merge_scale(k, uses). ``count`` and ``uses`` (zero between
    calls) collect k and uses per row; they, and the shards' slots, are zero / -1 again
    when this returns.
    """
    cdef Py_ssize_t t, u, i, c, first, end
    cdef int64_t r
    cdef int32_t s
    cdef Shard* sh
    cdef int32_t* slot
    cdef floating w
    cdef floating* row
    cdef const floating* copy
    cdef floating* orig = <floating*>scratch
    for t in range(n_shards):
        sh = &shards[t]
        first = sh.cap_in if is_out else 0
        end = first + (sh.n_out if is_out else sh.n_in)
        for i in range(first, end):
            r = sh.touched[i]
            if lo <= r < hi:
                count[r] += 1
                uses[r] += sh.uses[i]
    for t in range(n_shards):
        sh = &shards[t]
        first = sh.cap_in if is_out else 0
        end = first + (sh.n_out if is_out else sh.n_in)
        for i in range(first, end):
            r = sh.touched[i]
            if not (lo <= r < hi) or count[r] == 0:
                continue  # another block's row, or a row done at an earlier shard
            w = <floating>_merge_scale(count[r], uses[r], alpha)
            row = table + r * d
            if count[r] == 1:
                # one shard only (w = 1): the same sums, without keeping the original aside
                slot = shards[t].slot_out if is_out else shards[t].slot_in
                copy = <const floating*>(shards[t].buf + slot[r] * shards[t].row_bytes)
                slot[r] = -1
                for c in range(d):
                    row[c] = row[c] + w * (copy[c] - row[c])
                count[r] = 0
                uses[r] = 0
                continue
            memcpy(orig, row, d * sizeof(floating))
            for u in range(t, n_shards):
                slot = shards[u].slot_out if is_out else shards[u].slot_in
                s = slot[r]
                if s >= 0:
                    slot[r] = -1
                    copy = <const floating*>(shards[u].buf + s * shards[u].row_bytes)
                    for c in range(d):
                        row[c] = row[c] + w * (copy[c] - orig[c])
            count[r] = 0
            uses[r] = 0


cdef void _merge_block(Shard* shards, Py_ssize_t n_shards, int64_t lo, int64_t hi,
                       floating* syn0, floating* syn1neg, int32_t* count, int32_t* uses,
                       Py_ssize_t V, Py_ssize_t d, double alpha, void* scratch) noexcept nogil:
    """Apply the shards' private rows [lo, hi) of both tables (``count``, ``uses``: 2 V;
    ``scratch``: d elements)."""
    _merge_table(shards, n_shards, lo, hi, syn0, False, count, uses, alpha, d, scratch)
    _merge_table(shards, n_shards, lo, hi, syn1neg, True, count + V, uses + V, alpha, d,
                 scratch)


def sgns_step(floating[:, ::1] syn0,               # IN/OUT input vectors (V, d)
              floating[:, ::1] syn1neg,            # IN/OUT output vectors (V, d)
              const int32_t[::1] words,            # IN the batch's word ids, sentence after sentence
              const int64_t[::1] starts,           # IN sentence s is words[starts[s]:starts[s+1]]
              const int64_t[::1] shard_bounds,     # IN shard t has sentences [b[t], b[t+1])
              const uint32_t[::1] keep,            # IN subsampling thresholds (V,)
              bint subsample,
              const uint64_t[::1] accept,          # IN alias table (V,)
              const int32_t[::1] alias,            # IN alias table (V,)
              int window, int negative, double alpha, uint64_t seed,
              int32_t[:, ::1] slots,               # WORK (n_shards, 2 V), all -1 between calls
              int32_t[:, ::1] count,               # WORK (2, 2 V), all 0 between calls
              char[:, ::1] buf,                    # WORK (n_shards, (cap_in + cap_out) d itemsize)
              int64_t[:, ::1] touched,             # WORK (n_shards, cap_in + cap_out)
              int64_t cap_in,
              bint hogwild,
              double[::1] loss,                    # OUT per shard
              int64_t[::1] pairs,                  # OUT per shard
              int64_t[::1] kept,                   # OUT per shard
              int n_threads,
              bint record=False,
              int32_t[::1] rec_reduced=None,       # OUT (len(words),) when record
              int32_t[:, ::1] rec_neg=None):       # OUT (len(words), negative) when record
    """Train on one batch of sentences; see the module docstring.

    The caller validates everything (ids in range, shapes, capacities); this kernel trusts it.
    """
    cdef Py_ssize_t n_shards = shard_bounds.shape[0] - 1
    cdef Py_ssize_t V = syn0.shape[0]
    cdef Py_ssize_t d = syn0.shape[1]
    cdef bint private = n_shards > 1 and not hogwild and not record
    cdef Py_ssize_t t
    cdef Shard* shards = NULL
    cdef floating falpha = <floating>alpha
    cdef Py_ssize_t blk, n_blocks = max(1, n_threads)
    cdef char* merge_scratch = NULL
    if n_shards < 1:
        raise ValueError("need at least one shard")
    cdef int64_t max_len = 0
    for t in range(starts.shape[0] - 1):
        if starts[t + 1] - starts[t] > max_len:
            max_len = starts[t + 1] - starts[t]
    shards = <Shard*>calloc(n_shards, sizeof(Shard))
    if shards == NULL:
        raise MemoryError()
    merge_scratch = <char*>malloc(n_blocks * (d + 8) * sizeof(floating))
    if merge_scratch == NULL:
        free(shards)
        raise MemoryError()
    try:
        for t in range(n_shards):
            shards[t].kept = <int64_t*>malloc((max_len + 1) * sizeof(int64_t))
            shards[t].in_rows = <void**>malloc((2 * window + 1) * sizeof(void*))
            shards[t].out_rows = <void**>malloc((negative + 1) * sizeof(void*))
            shards[t].out_ids = <int32_t*>malloc((negative + 1) * sizeof(int32_t))
            shards[t].g = malloc((2 * window + 1) * (negative + 1) * sizeof(floating))
            shards[t].delta = malloc((2 * window + 1) * (d + 1) * sizeof(floating))
            shards[t].uses = <int32_t*>malloc((touched.shape[1] + 1) * sizeof(int32_t))
            if (shards[t].kept == NULL or shards[t].in_rows == NULL
                    or shards[t].out_rows == NULL or shards[t].out_ids == NULL
                    or shards[t].g == NULL or shards[t].delta == NULL
                    or shards[t].uses == NULL):
                raise MemoryError("sgns_step: out of memory for a shard's scratch")
            shards[t].n_in = 0
            shards[t].n_out = 0
            shards[t].cap_in = cap_in
            shards[t].row_bytes = d * sizeof(floating)
            if private:
                shards[t].slot_in = &slots[t, 0]
                shards[t].slot_out = &slots[t, V]
                shards[t].buf = &buf[t, 0]
                shards[t].touched = &touched[t, 0]
        with nogil:
            # Shards are handed to threads as they free up; what a shard computes does not
            # depend on which thread runs it, or when.
            for t in prange(n_shards, schedule='dynamic', chunksize=1, num_threads=n_threads):
                _run_shard(syn0, syn1neg, words, starts, shard_bounds[t], shard_bounds[t + 1],
                           keep, subsample, accept, alias, window, negative, falpha, seed, t,
                           &shards[t], private, record, rec_reduced, rec_neg,
                           &loss[t], &pairs[t], &kept[t])
            if private:
                # Add the shards' changes. Each thread owns a block of rows and adds, for each
                # of its rows, the changes of shard 0, then shard 1, ...: the same sums in the
                # same order for any number of threads.
                for blk in prange(n_blocks, schedule='static', num_threads=n_threads):
                    _merge_block(shards, n_shards, (blk * V) // n_blocks,
                                 ((blk + 1) * V) // n_blocks, &syn0[0, 0], &syn1neg[0, 0],
                                 &count[0, 0], &count[1, 0], V, d, alpha,
                                 merge_scratch + blk * (d + 8) * sizeof(floating))
    finally:
        for t in range(n_shards):
            free(shards[t].kept)
            free(shards[t].in_rows)
            free(shards[t].out_rows)
            free(shards[t].out_ids)
            free(shards[t].g)
            free(shards[t].delta)
            free(shards[t].uses)
        free(shards)
        free(merge_scratch)
