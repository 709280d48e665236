"""Compiled kernel of word2vec with negative sampling: skip-gram and CBOW.

Layers as in ``indexing.pyx``: the arithmetic of one prediction lives in ``sgns.h`` (nogil
C helpers); ``w2v_step`` is the ``def`` kernel over typed memoryviews;
``fastembed.word2vec.Word2Vec`` validates, owns the tables and the workspace, and calls it
once per batch of sentences.

One call trains on a batch of sentences:

1. **Subsampling.** Word ``w`` at batch position ``p`` is kept when a 32-bit hash of
   ``(seed, p)`` is at most ``keep[w]`` (``keep[w] = P(keep w) * (2**32 - 1)``, gensim's rule).
   The kept words form each sentence's reduced sentence; windows never cross sentences.
2. **Each kept word, the centre**, owns a random stream seeded from ``(seed, p)``: it draws
   the reduced window ``b`` uniform in [0, window) and takes the kept words within
   ``window - b`` positions as its contexts; then, for skip-gram, each (centre, context) pair
   draws ``negative`` fresh noise words from the unigram**0.75 distribution (Walker's alias
   method), and for CBOW the centre draws them once. A draw equal to the centre is skipped,
   as gensim does. The learning rate of the centre is ``alpha0 + alpha_step * p``: it decays
   word by word.
3. **One SGD step** per pair (skip-gram) or per centre (CBOW), ``fe_sgns_pair_*`` and
   ``fe_cbow_*`` in ``sgns.h``: gensim's updates, in gensim's order.

Every draw depends on the seed and the position only, never on which thread or shard works
on the word. How the work is split:

* ``n_shards == 1``: the centres in corpus order, updates straight into the tables: plain
  online SGD, one thread (gensim with one worker, up to its random numbers).
* ``n_shards > 1`` (deterministic, the default): the kept words are cut into ``n_shards``
  contiguous pieces, far apart in the batch, as gensim's workers take different jobs. The
  shards advance in rounds of ``round_words`` centres each, ``max_period`` rounds to a long
  round. Each row of each table has a merge period (a power of two up to ``max_period``, from
  its expected use: see ``fastembed.models.word2vec.merge_periods``). Each table's hot rows
  (the caller's lists: those with a period below ``max_period``, or for some models below it
  in either table) are trained on every shard's own copy, and after each round the hot rows
  of a table whose period there ends move by the sum of the shards' changes, in shard order
  (``fe_merge_copies`` in ``sgns.h``, one pass over the row), every copy taking the result.
  The other rows are planned per long round: the rows only one shard touches in it are
  trained in place, those several shards touch on private copies, merged the same way at the
  end of the long round. This is what lock-free threads do, with the staleness bounded and
  the order of the sums fixed, so the result depends on the seed, ``n_shards``,
  ``round_words`` and ``max_period``, never on the number of threads.
* ``hogwild``: the kept words are cut into pieces that the threads take as they free up,
  writing straight into the shared tables as gensim and word2vec.c do: not reproducible with
  more than one thread.

``record=True`` trains nothing and writes the random draws (reduced windows, noise words) to
arrays instead, so that the tests can replay them in a NumPy reference.
"""
from cython.parallel cimport parallel, prange
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy

from .omp cimport (fe_barrier_t, fe_barrier_wait, fe_claim_first, fe_claim_next, fe_claims_join,
                   fe_claims_t, omp_get_num_threads, omp_get_thread_num)
from .rowops cimport PREFETCH_AHEAD, fe_prefetch_row
from .typedefs cimport floating

cdef extern from "sgns.h" nogil:
    void fe_sgns_init_tables()
    double fe_sgns_sigmoid(double x)
    double fe_sgns_softplus(double x)
    void fe_merge_copies_f(float *row, float **copies, int n, Py_ssize_t d)
    void fe_merge_copies_d(double *row, double **copies, int n, Py_ssize_t d)
    double fe_sgns_pair_f(float *inp, float **out_rows, int n_out, Py_ssize_t d,
                          float alpha, float *work, float *xs)
    double fe_sgns_pair_d(double *inp, double **out_rows, int n_out, Py_ssize_t d,
                          double alpha, double *work, double *xs)
    double fe_cbow_f(float **in_rows, int n_in, float **out_rows, int n_out, Py_ssize_t d,
                     float alpha, float *h, float *work, float *xs)
    double fe_cbow_d(double **in_rows, int n_in, double **out_rows, int n_out, Py_ssize_t d,
                     double alpha, double *h, double *work, double *xs)
    double fe_bag_sg_f(float **in_rows, int n_in, float shift, float **out_rows,
                       const int32_t *n_neg, int n_pairs, Py_ssize_t d, float alpha, float *h,
                       float *work, float *acc, float *xs)
    double fe_bag_sg_d(double **in_rows, int n_in, double shift, double **out_rows,
                       const int32_t *n_neg, int n_pairs, Py_ssize_t d, double alpha, double *h,
                       double *work, double *acc, double *xs)
    void fe_atomic_inc(int32_t *p)

fe_sgns_init_tables()

# what the hashes of a batch position feed (so that no two draws share a stream)
cdef uint64_t SALT_SUBSAMPLE = 0x243F6A8885A308D3ULL
cdef uint64_t SALT_CENTRE = 0x13198A2E03707344ULL
cdef uint64_t SALT_INIT = 0xA4093822299F31D0ULL


def sigmoid(double x):
    """The kernels' table sigmoid (for the tests' reference implementation)."""
    return fe_sgns_sigmoid(x)


def softplus(double x):
    """The kernels' table softplus, log(1 + e^x) (for the tests' reference implementation)."""
    return fe_sgns_softplus(x)


cdef inline uint64_t _mix(uint64_t z) noexcept nogil:
    """splitmix64's finaliser: a bijective 64-bit hash (Steele et al., 2014)."""
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline uint64_t _next(uint64_t* state) noexcept nogil:
    """splitmix64: a fast 64-bit generator with a one-word state."""
    state[0] += <uint64_t>0x9E3779B97F4A7C15ULL
    return _mix(state[0])


cdef inline int32_t _draw_negative(uint64_t* state, const uint64_t* accept,
                                   const int32_t* alias, uint64_t n) noexcept nogil:
    """One draw from the alias table: a uniform column, then its own id or its alias."""
    cdef uint64_t u = _next(state)
    cdef uint64_t col = ((u >> 32) * n) >> 32
    if (u & <uint64_t>0xFFFFFFFFULL) < accept[col]:
        return <int32_t>col
    return alias[col]


def uniform_rows(floating[:, ::1] table, const int64_t[::1] rows, uint64_t seed, double scale,
                 int n_threads):
    """Fill row ``i`` of ``table`` with the initial values of row ``rows[i]`` of a whole
    matrix of ``table.shape[1]`` columns: numbers uniform in ``[-scale, scale)``, in parallel.

    Element ``k`` of the whole matrix, flattened, takes the top 53 bits of ``_mix(_mix(seed ^
    SALT_INIT) ^ k)`` as its uniform number: the same values for any thread count, and for
    any subset of the rows, in any order. (The initial n-gram rows of a subword model: two
    million rows of 100 are 0.1 s, against 3 s for NumPy's generator and a cast.)
    """
    cdef Py_ssize_t n = table.shape[0], d = table.shape[1], i, c
    cdef uint64_t key = _mix(seed ^ SALT_INIT)
    cdef uint64_t base
    cdef double u
    if rows.shape[0] != n:
        raise ValueError(f"rows must have one entry per row of table ({n}), got "
                         f"{rows.shape[0]}")
    for i in range(n):
        if rows[i] < 0:
            raise ValueError(f"rows[{i}] = {rows[i]} is negative")
    with nogil:
        for i in prange(n, schedule='static', num_threads=n_threads):
            base = <uint64_t>rows[i] * <uint64_t>d
            for c in range(d):
                u = <double>(_mix(key ^ (base + <uint64_t>c)) >> 11) * (1.0 / 9007199254740992.0)
                table[i, c] = <floating>((2.0 * u - 1.0) * scale)


cdef struct Config:
    # Filled once with the GIL held, read by every thread.
    int window
    int negative
    bint cbow
    bint private           # deterministic shards: rows two shards share go private each round
    bint record
    Py_ssize_t d
    Py_ssize_t row_bytes
    Py_ssize_t V           # words: rows of syn1neg
    Py_ssize_t V_in        # rows of syn0: the words', then (subwords) the n-gram rows in use
    bint subwords          # each word's input is its bag of syn0 rows, bag_rows[bag_ptr[w]:]
    const int64_t* bag_ptr     # (V + 1)
    const int32_t* bag_rows
    const double* bag_shift    # (V,) sum of the squared multiplicities of a bag's rows / its size
    int64_t stride_neg     # noise words a centre may draw: 2 window negative (CBOW: negative)
    double alpha0          # learning rate at batch position 0 ...
    double alpha_step      # ... and its change per position
    uint64_t centre_key    # _mix(seed ^ SALT_CENTRE)
    uint64_t n_vocab
    const uint64_t* accept
    const int32_t* alias
    const int32_t* kw      # kept words, in batch order (K)
    const int64_t* kpos    # their batch positions (K)
    const int64_t* klo     # first kept index of each kept word's sentence (K)
    const int64_t* khi     # one past its last (K)
    int32_t* count         # (V_in + V) shards that touch each row of syn0, then of syn1neg, in
                           # this long round (private mode)
    const int32_t* hot_in    # private mode: the hot rows of syn0, and of syn1neg, each by
    Py_ssize_t n_hot_in      # merge period, shortest first
    const int32_t* hot_out
    Py_ssize_t n_hot_out


cdef struct Shard:
    # the plans of the round: for each of its (at most round_words) centres
    int64_t* p_index       # the centre's kept index
    int32_t* p_nctx        # its number of contexts
    int32_t* p_ctx         # its contexts (round_words x 2 window)
    int32_t* p_nneg        # noise words per context (round_words x 2 window; CBOW: x 1)
    int32_t* p_neg         # the noise words (round_words x stride_neg)
    int64_t n_plans
    # private mode: the rows the shard touches this round, and private copies of the shared
    # row -> where the shard trains it (length V_in for syn0, V for syn1neg): -1 untouched in this long round; a
    # slot >= 0 of buf (planning: every row it touches; training: the rows other shards touch
    # too); -2 in place (the rows only it touches); -3 - k for hot row k (all call long)
    int32_t* slot_in
    int32_t* slot_out
    int32_t* bag_mark      # private mode with subwords: per word, the long round (mark) in
    int32_t mark           # which the shard noted its bag's rows already (calloc'd, V words)
    char* buf              # cap_in + cap_out rows of d elements
    int64_t* touched       # slot -> row id (input slots first, then output slots)
    int64_t n_in
    int64_t n_out
    int64_t cap_in
    char* hot_buf          # private mode: this shard's copies of the hot rows, syn0's then
                           # syn1neg's (n_hot_in + n_hot_out rows)
    # scratch, allocated with the GIL before any work, so that running out of memory raises
    # MemoryError before a single row changes
    void** in_rows         # the row pointers of two plans (see _resolve)
    void** out_rows
    void* work             # d elements
    void* h                # d elements
    void* acc              # d elements
    void* xs               # negative + 1 elements
    # totals over the call
    double loss
    int64_t pairs


cdef inline void _touch(const Config* cfg, Shard* sh, bint is_out, int32_t r) noexcept nogil:
    """Private mode, planning: note that the shard touches row r in this long round."""
    cdef int32_t* slot = sh.slot_out if is_out else sh.slot_in
    cdef int64_t s
    if slot[r] != -1:
        return  # noted already, or a hot row
    if is_out:
        s = sh.cap_in + sh.n_out
        sh.n_out += 1
    else:
        s = sh.n_in
        sh.n_in += 1
    slot[r] = <int32_t>s
    sh.touched[s] = r
    fe_atomic_inc(&cfg.count[r + (cfg.V_in if is_out else 0)])


cdef inline void _touch_input(const Config* cfg, Shard* sh, int32_t w) noexcept nogil:
    """Private mode, planning: note the input rows of word w (its bag, with subwords). A bag
    is walked once per long round: once noted, its rows stay noted until the long round's
    merge, so a frequent word's next uses skip the walk (the same slots, in the same order)."""
    cdef int64_t e
    if not cfg.subwords:
        _touch(cfg, sh, False, w)
        return
    if sh.bag_mark[w] == sh.mark:
        return
    sh.bag_mark[w] = sh.mark
    for e in range(cfg.bag_ptr[w], cfg.bag_ptr[w + 1]):
        _touch(cfg, sh, False, cfg.bag_rows[e])


cdef inline floating* _row(floating* table, const Config* cfg, Shard* sh, bint is_out,
                           int64_t r) noexcept nogil:
    """The row to train: the table's own row r, or the shard's private copy of a hot row or of
    a row that several shards share in this long round."""
    cdef int32_t s
    if cfg.private:
        s = (sh.slot_out if is_out else sh.slot_in)[r]
        if s >= 0:
            return <floating*>(sh.buf + s * cfg.row_bytes)
        if s <= -3:
            return <floating*>(sh.hot_buf + (-3 - s + (cfg.n_hot_in if is_out else 0))
                               * cfg.row_bytes)
    return <floating*>(<char*>table + r * cfg.row_bytes)


cdef void _plan(const Config* cfg, Shard* sh, int64_t i, int32_t* rec_reduced,
                int32_t* rec_neg) noexcept nogil:
    """Draw centre i's reduced window and noise words into the shard's next plan.

    With subwords, skip-gram takes fastText's order: the centre's bag predicts each context,
    whose noise words skip the context (the target), not the centre."""
    cdef int window = cfg.window, negative = cfg.negative
    cdef bint bag_sg = cfg.subwords and not cfg.cbow
    cdef int32_t target
    cdef int64_t q = sh.n_plans
    cdef int64_t p = cfg.kpos[i], j, lo, hi
    cdef uint64_t state = cfg.centre_key ^ <uint64_t>p
    cdef int b, k, s, m, n_ctx = 0
    cdef int32_t centre = cfg.kw[i], neg
    cdef int32_t* ctx = sh.p_ctx + q * 2 * window
    cdef int32_t* negs = sh.p_neg + q * cfg.stride_neg
    cdef int32_t* nneg = sh.p_nneg + q * 2 * window
    b = <int>(((_next(&state) >> 32) * <uint64_t>window) >> 32)
    lo = i - window + b
    if lo < cfg.klo[i]:
        lo = cfg.klo[i]
    hi = i + window + 1 - b
    if hi > cfg.khi[i]:
        hi = cfg.khi[i]
    if cfg.record:
        rec_reduced[p] = b
    for j in range(lo, hi):
        if j != i:
            ctx[n_ctx] = cfg.kw[j]
            n_ctx += 1
            if cfg.private and not bag_sg:
                _touch_input(cfg, sh, cfg.kw[j])
    sh.p_index[q] = i
    sh.p_nctx[q] = n_ctx
    sh.n_plans = q + 1
    if n_ctx == 0:
        return
    if cfg.private:
        if bag_sg:
            _touch_input(cfg, sh, centre)
        else:
            _touch(cfg, sh, True, centre)
    for s in range(1 if cfg.cbow else n_ctx):
        target = ctx[s] if bag_sg else centre
        if cfg.private and bag_sg:
            _touch(cfg, sh, True, target)
        m = 0
        for k in range(negative):
            neg = _draw_negative(&state, cfg.accept, cfg.alias, cfg.n_vocab)
            if cfg.record:
                rec_neg[(p * 2 * window + s) * negative + k] = -1 if neg == target else neg
            if neg != target:
                negs[s * negative + m] = neg
                m += 1
                if cfg.private:
                    _touch(cfg, sh, True, neg)
        nneg[s] = m


cdef void _resolve(floating* syn0, floating* syn1neg, const Config* cfg, Shard* sh,
                   int64_t q, void** ptrs) noexcept nogil:
    """The rows plan q trains, as pointers, prefetched: its n_ctx input rows, then for each
    prediction (each context in skip-gram, one in CBOW) the centre's output row and its noise
    words' rows, one after the other. With subwords: CBOW's input rows are the contexts'
    bags, one after the other; skip-gram's are the centre's bag, and each prediction's
    output row is its context's."""
    cdef int window = cfg.window, negative = cfg.negative, s, m
    cdef int n_ctx = sh.p_nctx[q]
    cdef bint bag_sg = cfg.subwords and not cfg.cbow
    cdef const int32_t* ctx = sh.p_ctx + q * 2 * window
    cdef const int32_t* negs = sh.p_neg + q * cfg.stride_neg
    cdef const int32_t* nneg = sh.p_nneg + q * 2 * window
    cdef floating* centre
    cdef floating* row
    cdef Py_ssize_t k = 0
    if n_ctx == 0:
        return   # no prediction (its noise words were never drawn)
    # (the prefetches are written out here and in _input_rows, not in a helper of their own:
    # GCC deletes a non-inlined function whose only effect is a prefetch, see rowops.h)
    if bag_sg:
        k = _input_rows(syn0, cfg, sh, cfg.kw[sh.p_index[q]], ptrs, k)
    else:
        for s in range(n_ctx):
            k = _input_rows(syn0, cfg, sh, ctx[s], ptrs, k)
    if not bag_sg:
        centre = _row(syn1neg, cfg, sh, True, cfg.kw[sh.p_index[q]])
        fe_prefetch_row(centre, cfg.row_bytes)
    for s in range(1 if cfg.cbow else n_ctx):
        if bag_sg:   # fastText's order: the context is the target
            centre = _row(syn1neg, cfg, sh, True, ctx[s])
            fe_prefetch_row(centre, cfg.row_bytes)
        ptrs[k] = centre
        k += 1
        for m in range(nneg[s]):
            row = _row(syn1neg, cfg, sh, True, negs[s * negative + m])
            fe_prefetch_row(row, cfg.row_bytes)
            ptrs[k] = row
            k += 1


cdef inline Py_ssize_t _input_rows(floating* syn0, const Config* cfg, Shard* sh, int32_t w,
                                   void** ptrs, Py_ssize_t k) noexcept nogil:
    """Append word w's input rows (its bag, with subwords), prefetched, to ptrs from k on;
    return the new end."""
    cdef floating* row
    cdef int64_t e
    if not cfg.subwords:
        row = _row(syn0, cfg, sh, False, w)
        fe_prefetch_row(row, cfg.row_bytes)
        ptrs[k] = row
        return k + 1
    for e in range(cfg.bag_ptr[w], cfg.bag_ptr[w + 1]):
        row = _row(syn0, cfg, sh, False, cfg.bag_rows[e])
        fe_prefetch_row(row, cfg.row_bytes)
        ptrs[k] = row
        k += 1
    return k


cdef void _execute(floating* syn0, const Config* cfg, Shard* sh, int64_t q,
                   void** ptrs) noexcept nogil:
    """Plan q's training step(s), on the rows _resolve gave: one per (centre, context) pair,
    or one CBOW step (syn0 only selects the element type)."""
    cdef int window = cfg.window, s, n, n_in
    cdef Py_ssize_t d = cfg.d
    cdef int n_ctx = sh.p_nctx[q]
    cdef int32_t w
    cdef const int32_t* ctx = sh.p_ctx + q * 2 * window
    cdef const int32_t* nneg = sh.p_nneg + q * 2 * window
    cdef floating** rows = <floating**>ptrs
    cdef floating* work = <floating*>sh.work
    cdef floating* h = <floating*>sh.h
    cdef floating alpha = <floating>(cfg.alpha0 + cfg.alpha_step
                                     * <double>cfg.kpos[sh.p_index[q]])
    cdef Py_ssize_t k = n_ctx
    if n_ctx == 0:
        return
    n_in = n_ctx
    if cfg.subwords:
        if cfg.cbow:
            n_in = 0
            for s in range(n_ctx):
                n_in += <int>(cfg.bag_ptr[ctx[s] + 1] - cfg.bag_ptr[ctx[s]])
        else:
            w = cfg.kw[sh.p_index[q]]
            n_in = <int>(cfg.bag_ptr[w + 1] - cfg.bag_ptr[w])
            if floating is float:
                sh.loss += fe_bag_sg_f(rows, n_in, <float>cfg.bag_shift[w], rows + n_in, nneg,
                                       n_ctx, d, alpha, h, work, <float*>sh.acc,
                                       <float*>sh.xs)
            else:
                sh.loss += fe_bag_sg_d(rows, n_in, cfg.bag_shift[w], rows + n_in, nneg,
                                       n_ctx, d, alpha, h, work, <double*>sh.acc,
                                       <double*>sh.xs)
            sh.pairs += n_ctx
            return
    if cfg.cbow:
        n = nneg[0]
        if floating is float:
            sh.loss += fe_cbow_f(rows, n_in, rows + n_in, n + 1, d, alpha, h, work,
                                 <float*>sh.xs)
        else:
            sh.loss += fe_cbow_d(rows, n_in, rows + n_in, n + 1, d, alpha, h, work,
                                 <double*>sh.xs)
        sh.pairs += 1
        return
    for s in range(n_ctx):
        n = nneg[s]
        if floating is float:
            sh.loss += fe_sgns_pair_f(rows[s], rows + k, n + 1, d, alpha, work,
                                      <float*>sh.xs)
        else:
            sh.loss += fe_sgns_pair_d(rows[s], rows + k, n + 1, d, alpha, work,
                                      <double*>sh.xs)
        k += n + 1
    sh.pairs += n_ctx


cdef void _plan_round(const Config* cfg, Shard* sh, int64_t c_lo, int64_t c_hi,
                      int32_t* rec_reduced, int32_t* rec_neg) noexcept nogil:
    """Plan the centres [c_lo, c_hi) (private mode: and note the rows they touch)."""
    cdef int64_t i
    sh.n_plans = 0
    sh.n_in = 0
    sh.n_out = 0
    sh.mark += 1   # a new long round: every bag is to be noted again
    for i in range(c_lo, c_hi):
        _plan(cfg, sh, i, rec_reduced, rec_neg)


cdef void _copy_shared(floating* syn0, floating* syn1neg, const Config* cfg,
                       Shard* sh) noexcept nogil:
    """Private mode, at the start of a long round, once every shard has planned it: copy the
    rows that other shards touch too into the shard's slots, and mark the rows only it
    touches as trained in place."""
    cdef int64_t i, r, end
    # the rows to copy lie anywhere in the tables: each one's count is fetched 2 PREFETCH_AHEAD
    # positions ahead, and the row, when it is to be copied, PREFETCH_AHEAD ahead
    # (the prefetches are written out, not in a helper: see _resolve)
    end = sh.n_in
    for i in range(end):
        if i + 2 * PREFETCH_AHEAD < end:
            fe_prefetch_row(&cfg.count[sh.touched[i + 2 * PREFETCH_AHEAD]], 4)
        if i + PREFETCH_AHEAD < end:
            r = sh.touched[i + PREFETCH_AHEAD]
            if cfg.count[r] > 1:
                fe_prefetch_row(<char*>syn0 + r * cfg.row_bytes, cfg.row_bytes)
        r = sh.touched[i]
        if cfg.count[r] > 1:
            memcpy(sh.buf + i * cfg.row_bytes, <char*>syn0 + r * cfg.row_bytes, cfg.row_bytes)
        else:
            sh.slot_in[r] = -2
    end = sh.cap_in + sh.n_out
    for i in range(sh.cap_in, end):
        if i + 2 * PREFETCH_AHEAD < end:
            fe_prefetch_row(&cfg.count[cfg.V_in + sh.touched[i + 2 * PREFETCH_AHEAD]], 4)
        if i + PREFETCH_AHEAD < end:
            r = sh.touched[i + PREFETCH_AHEAD]
            if cfg.count[cfg.V_in + r] > 1:
                fe_prefetch_row(<char*>syn1neg + r * cfg.row_bytes, cfg.row_bytes)
        r = sh.touched[i]
        if cfg.count[cfg.V_in + r] > 1:
            memcpy(sh.buf + i * cfg.row_bytes, <char*>syn1neg + r * cfg.row_bytes,
                   cfg.row_bytes)
        else:
            sh.slot_out[r] = -2


cdef void _copy_hot(floating* syn0, floating* syn1neg, const Config* cfg,
                    Shard* sh) noexcept nogil:
    """Private mode, at the start of a call: the shard's copies of the hot rows of both
    tables."""
    cdef Py_ssize_t k
    cdef int64_t r
    for k in range(cfg.n_hot_in):
        r = cfg.hot_in[k]
        memcpy(sh.hot_buf + k * cfg.row_bytes, <char*>syn0 + r * cfg.row_bytes, cfg.row_bytes)
        sh.slot_in[r] = <int32_t>(-3 - k)
    for k in range(cfg.n_hot_out):
        r = cfg.hot_out[k]
        memcpy(sh.hot_buf + (cfg.n_hot_in + k) * cfg.row_bytes,
               <char*>syn1neg + r * cfg.row_bytes, cfg.row_bytes)
        sh.slot_out[r] = <int32_t>(-3 - k)


cdef void _release_hot(const Config* cfg, Shard* sh) noexcept nogil:
    """Private mode, at the end of a call: the hot rows' slots are -1 again."""
    cdef Py_ssize_t k
    for k in range(cfg.n_hot_in):
        sh.slot_in[cfg.hot_in[k]] = -1
    for k in range(cfg.n_hot_out):
        sh.slot_out[cfg.hot_out[k]] = -1


cdef void _train_round(floating* syn0, floating* syn1neg, const Config* cfg, Shard* sh,
                       int64_t q_lo, int64_t q_hi) noexcept nogil:
    """Train the planned centres q_lo .. q_hi - 1 in order, prefetching the rows of the next.

    Private mode: hot rows, and rows that other shards touch in this long round too, are
    trained on the shard's private copies; the rows only it touches it trains in place.
    Two plans ahead, the shard's slots of the rows (the same rows as _resolve's, in the same
    order) are prefetched, so that _resolve finds them in the cache: with subwords, the slots
    of 10**5 and more n-gram rows per shard miss it. (Written out here, not in a helper: GCC
    deletes a function whose only effect is a prefetch, see rowops.h.)
    """
    cdef int64_t q, e
    cdef void** cur = sh.in_rows
    cdef void** nxt = sh.out_rows
    cdef void** tmp
    cdef int window = cfg.window, negative = cfg.negative, s, m, n_ctx
    cdef bint bag_sg = cfg.subwords and not cfg.cbow
    cdef const int32_t* ctx
    cdef const int32_t* negs
    cdef const int32_t* nneg
    cdef int32_t w
    if q_hi > sh.n_plans:
        q_hi = sh.n_plans
    if q_lo < q_hi:
        _resolve(syn0, syn1neg, cfg, sh, q_lo, nxt)
    for q in range(q_lo, q_hi):
        tmp = cur
        cur = nxt
        nxt = tmp
        n_ctx = sh.p_nctx[q + 2] if cfg.private and q + 2 < q_hi else 0
        if n_ctx > 0:
            ctx = sh.p_ctx + (q + 2) * 2 * window
            negs = sh.p_neg + (q + 2) * cfg.stride_neg
            nneg = sh.p_nneg + (q + 2) * 2 * window
            w = cfg.kw[sh.p_index[q + 2]]
            if bag_sg:   # the centre's bag predicts each context
                for e in range(cfg.bag_ptr[w], cfg.bag_ptr[w + 1]):
                    fe_prefetch_row(sh.slot_in + cfg.bag_rows[e], 4)
                for s in range(n_ctx):
                    fe_prefetch_row(sh.slot_out + ctx[s], 4)
            else:        # the contexts (their bags, with subwords) predict the centre
                for s in range(n_ctx):
                    if not cfg.subwords:
                        fe_prefetch_row(sh.slot_in + ctx[s], 4)
                        continue
                    for e in range(cfg.bag_ptr[ctx[s]], cfg.bag_ptr[ctx[s] + 1]):
                        fe_prefetch_row(sh.slot_in + cfg.bag_rows[e], 4)
                fe_prefetch_row(sh.slot_out + w, 4)
            for s in range(1 if cfg.cbow else n_ctx):   # the noise words
                for m in range(nneg[s]):
                    fe_prefetch_row(sh.slot_out + negs[s * negative + m], 4)
        if q + 1 < q_hi:   # the rows of the next plan, prefetched while this one trains
            _resolve(syn0, syn1neg, cfg, sh, q + 1, nxt)
        _execute(syn0, cfg, sh, q, cur)


cdef inline void _merge_copies(floating* row, floating** copies, int n,
                               Py_ssize_t d) noexcept nogil:
    """fe_merge_copies (sgns.h) of the element type."""
    if floating is float:
        fe_merge_copies_f(row, copies, n, d)
    else:
        fe_merge_copies_d(row, copies, n, d)


cdef void _merge_hot(Shard* shards, Py_ssize_t n_shards, const Config* cfg, floating* table,
                     bint is_out, Py_ssize_t k_lo, Py_ssize_t k_hi,
                     floating** copies) noexcept nogil:
    """Merge the hot rows k_lo .. k_hi - 1 of one table: hot row r, o in the table, becomes
    o + (c_0 - o) + (c_1 - o) + ... over every shard's copy c_t, in shard order, and every
    copy takes the new value. ``copies`` is scratch for n_shards pointers."""
    cdef Py_ssize_t k, t
    cdef Py_ssize_t base = cfg.n_hot_in if is_out else 0
    cdef const int32_t* hot = cfg.hot_out if is_out else cfg.hot_in
    cdef floating* row
    for k in range(k_lo, k_hi):
        for t in range(n_shards):
            copies[t] = <floating*>(shards[t].hot_buf + (base + k) * cfg.row_bytes)
        row = <floating*>(<char*>table + <int64_t>hot[k] * cfg.row_bytes)
        _merge_copies(row, copies, <int>n_shards, cfg.d)
        for t in range(n_shards):
            memcpy(copies[t], row, cfg.row_bytes)


cdef void _merge_table(Shard* shards, Py_ssize_t n_shards, int64_t blk, int64_t n_blocks,
                       floating* table, bint is_out, int32_t* count, Py_ssize_t d,
                       Py_ssize_t row_bytes, floating** copies) noexcept nogil:
    """Merge the rows r = blk (mod n_blocks) of one table that several shards shared, and reset
    the round. (Rows are dealt to the blocks in turn, not in ranges: the low ids are the frequent
    words, which most rounds share.)

    A shared row r, o before the round, becomes o + (c_0 - o) + (c_1 - o) + ... over the
    private copies c_t of the shards that touched it, in shard order. Rows that one shard
    touched were trained in place and are left as they are. ``count`` and the shards' slots
    are zero / -1 again for every touched row when this returns. ``copies`` is scratch for
    n_shards pointers.
    """
    cdef Py_ssize_t t, u, i, first, end
    cdef int64_t r, ahead
    cdef int32_t s
    cdef int n
    cdef Shard* sh
    cdef int32_t* slot
    for t in range(n_shards):
        sh = &shards[t]
        first = sh.cap_in if is_out else 0
        end = first + (sh.n_out if is_out else sh.n_in)
        slot = sh.slot_out if is_out else sh.slot_in
        for i in range(first, end):
            # the copies lie anywhere in the shards' buffers, the rows anywhere in the table:
            # the row's count and the shards' slots of it are fetched 2 PREFETCH_AHEAD
            # positions ahead, the row and its copies PREFETCH_AHEAD ahead (hints only: a
            # row that an earlier position merges reads as not shared)
            if i + 2 * PREFETCH_AHEAD < end:
                ahead = sh.touched[i + 2 * PREFETCH_AHEAD]
                if ahead % n_blocks == blk:
                    fe_prefetch_row(&count[ahead], 4)
                    for u in range(t + 1, n_shards):
                        fe_prefetch_row((shards[u].slot_out if is_out
                                         else shards[u].slot_in) + ahead, 4)
            if i + PREFETCH_AHEAD < end:
                ahead = sh.touched[i + PREFETCH_AHEAD]
                if ahead % n_blocks == blk and count[ahead] > 1:
                    fe_prefetch_row(<char*>table + ahead * row_bytes, row_bytes)
                    for u in range(t, n_shards):
                        s = (shards[u].slot_out if is_out else shards[u].slot_in)[ahead]
                        if s >= 0:
                            fe_prefetch_row(shards[u].buf + s * row_bytes, row_bytes)
            r = sh.touched[i]
            if r % n_blocks != blk:
                continue  # another block's row
            if count[r] > 1:
                # the first shard that touched it: combine every shard's change, in shard order
                n = 0
                for u in range(t, n_shards):
                    s = (shards[u].slot_out if is_out else shards[u].slot_in)[r]
                    if s >= 0:
                        copies[n] = <floating*>(shards[u].buf + s * row_bytes)
                        n += 1
                _merge_copies(<floating*>(<char*>table + r * row_bytes), copies, n, d)
            count[r] = 0
            slot[r] = -1


cdef inline Py_ssize_t _aligned(Py_ssize_t nbytes) noexcept nogil:
    """nbytes rounded up to whole cache lines."""
    return (nbytes + 63) & ~(<Py_ssize_t>63)


cdef inline Py_ssize_t _plans_bytes(Py_ssize_t RL, int window,
                                    Py_ssize_t stride_neg) noexcept nogil:
    """Bytes of one shard's plans of RL centres (p_index, p_nctx, p_ctx, p_nneg, p_neg)."""
    return (_aligned(RL * 8) + _aligned(RL * 4) + 2 * _aligned(RL * 2 * window * 4)
            + _aligned((RL * stride_neg + 1) * 4))


def w2v_scratch_bytes(Py_ssize_t n_words, Py_ssize_t n_shards, Py_ssize_t round_words,
                      Py_ssize_t max_period, int window, int negative, bint cbow):
    """Bytes of the ``scratch`` that ``w2v_step`` needs for a batch of ``n_words`` words: the
    kept words' positions and sentence bounds, and each shard's plans of a long round
    (``round_words * max_period`` centres; pass ``max_period=1`` when the private mode is
    off). The caller keeps it between calls: memory that a call mallocs and frees goes back
    to the system, and the next call's first writes fault every page in again (seen: 340,000
    page faults, a tenth of the time, in one training run)."""
    cdef Py_ssize_t stride_neg = negative if cbow else 2 * window * negative
    return (_aligned((n_words + 1) * 4) + 3 * _aligned((n_words + 1) * 8)
            + n_shards * _plans_bytes(round_words * max_period, window, stride_neg))


def w2v_step(floating[:, ::1] syn0,               # IN/OUT input vectors (V, d)
             floating[:, ::1] syn1neg,            # IN/OUT output vectors (V, d)
             const int32_t[::1] words,            # IN the batch's word ids, sentence after sentence
             const int64_t[::1] starts,           # IN sentence s is words[starts[s]:starts[s+1]]
             const uint32_t[::1] keep,            # IN subsampling thresholds (V,)
             bint subsample,
             const uint64_t[::1] accept,          # IN alias table (V,)
             const int32_t[::1] alias,            # IN alias table (V,)
             int window, int negative, bint cbow,
             double alpha0, double alpha1,        # learning rate at the first and after the last word
             uint64_t seed,
             Py_ssize_t n_shards,
             Py_ssize_t round_words,
             bint hogwild,
             int32_t[:, ::1] slots,               # WORK (n_shards, 2 V), all -1 between calls
             int32_t[::1] count,                  # WORK (2 V,), all 0 between calls
             char[:, ::1] buf,                    # WORK (n_shards, (cap_in + cap_out) d itemsize)
             int64_t[:, ::1] touched,             # WORK (n_shards, cap_in + cap_out)
             int64_t cap_in,
             const int32_t[::1] hot_in,           # IN the hot rows of syn0, shortest period
             const int32_t[::1] hot_out,          #   first, and of syn1neg (each table's own)
             const int64_t[:, ::1] tier_end,      # IN (2, n_tiers) [0, k], [1, k]: hot rows
                                                  #   whose syn0, syn1neg period is <= 2**k
             char[:, ::1] hot_buf,                # WORK (n_shards, (len(hot_in) +
                                                  #   len(hot_out)) d itemsize)
             Py_ssize_t max_period,               # rounds per long round (a power of 2)
             double[::1] loss,                    # OUT per shard
             int64_t[::1] pairs,                  # OUT per shard
             int n_threads,
             bint record=False,
             int32_t[::1] rec_reduced=None,       # OUT (len(words),) when record, -1 = dropped
             int32_t[:, :, ::1] rec_neg=None,     # OUT (len(words), 2 window, negative)
             const int64_t[::1] bag_ptr=None,     # IN (V + 1,) subwords: word w's input rows
             const int32_t[::1] bag_rows=None,    # IN   are bag_rows[bag_ptr[w]:bag_ptr[w + 1]]
             const double[::1] bag_shift=None,    # IN (V,) see fe_bag_sg in sgns.h
             char[::1] scratch=None):             # WORK w2v_scratch_bytes(...) bytes or more
    """Train on one batch of sentences; return the number of kept words. See the module
    docstring.

    ``n_shards`` is the number of pieces (deterministic shards, or hogwild's pieces); the
    private mode is used when ``n_shards > 1`` and not ``hogwild``: ``slots``, ``buf`` and
    ``touched`` then have ``n_shards`` rows, with room for ``cap_in`` input rows and the rest
    output rows per long round of ``max_period * round_words`` centres, and ``hot_buf`` room
    for the hot rows of both tables. The caller validates everything (ids in range, shapes,
    capacities, tiers); this kernel trusts it.

    Subwords (``bag_ptr`` given): syn0 has ``V_in >= V`` rows (the words', then the n-gram
    rows in use), syn1neg ``V``; each word's input is the bag of syn0 rows ``bag_rows[bag_ptr[w]:
    bag_ptr[w + 1]]`` (non-empty). ``slots`` then has ``V_in + V`` columns and ``count``
    ``V_in + V`` entries; ``hot_in`` are syn0 row ids.

    ``scratch`` holds at least ``w2v_scratch_bytes(len(words), n_shards, round_words,
    max_period, window, negative, cbow)`` bytes (ValueError otherwise).
    """
    cdef Py_ssize_t n = words.shape[0]
    cdef Py_ssize_t n_sent = starts.shape[0] - 1
    cdef Py_ssize_t V = syn1neg.shape[0]
    cdef Py_ssize_t V_in = syn0.shape[0]
    cdef bint subwords = bag_ptr is not None
    cdef Py_ssize_t max_bag = 1, n_ptrs
    cdef Py_ssize_t d = syn0.shape[1]
    cdef Config cfg
    cdef Shard* shards = NULL
    cdef int32_t* kw = NULL
    cdef int64_t* kpos = NULL
    cdef int64_t* klo = NULL
    cdef int64_t* khi = NULL
    cdef char* merge_scratch = NULL
    cdef char* at
    cdef Py_ssize_t t, s, p, K = 0, k0, blk, k
    cdef Py_ssize_t n_blocks = max(1, n_threads)
    cdef int64_t c_lo, c_hi, p_lo, p_hi
    cdef uint64_t sub_key = _mix(seed ^ SALT_SUBSAMPLE)
    cdef int32_t w
    cdef bint private = n_shards > 1 and not hogwild and not record
    cdef int32_t* rr = NULL
    cdef int32_t* rn = NULL
    cdef Py_ssize_t R = round_words
    cdef Py_ssize_t RL = round_words * max_period      # centres per shard and long round
    cdef Py_ssize_t n_long, lrnd, sub, n_sub, k_hi, k_out, n_tiers = tier_end.shape[1]
    cdef Py_ssize_t n_hot_in = hot_in.shape[0], n_hot_out = hot_out.shape[0]
    cdef fe_barrier_t barrier          # the rounds' barrier (omp_shim.h)
    cdef int sense = 0
    cdef fe_claims_t* claims = NULL    # each thread's claims (omp_shim.h) ...
    cdef fe_claims_t* cl
    cdef int* taken = NULL             # ... of the shards and blocks
    barrier.count = 0
    barrier.sense = 0
    cdef Py_ssize_t stride_neg = negative if cbow else 2 * window * negative
    if n_shards < 1 or round_words < 1:
        raise ValueError("need at least one shard and one word per round")
    if subwords:
        if bag_rows is None or bag_shift is None:
            raise ValueError("subwords need bag_ptr, bag_rows and bag_shift")
        for w in range(V):
            if bag_ptr[w + 1] - bag_ptr[w] > max_bag:
                max_bag = bag_ptr[w + 1] - bag_ptr[w]
    # the rows of one plan: inputs (CBOW: every context's bag), then the outputs
    n_ptrs = 2 * window * max_bag + stride_neg + 2 * window + 2
    if record:
        rr = &rec_reduced[0] if n else NULL
        rn = &rec_neg[0, 0, 0] if n and negative else NULL
    if scratch is None or scratch.shape[0] < w2v_scratch_bytes(n, n_shards, R, max_period,
                                                               window, negative, cbow):
        raise ValueError("w2v_step: scratch is smaller than w2v_scratch_bytes(...)")
    # the big arrays, carved out of the caller's scratch (see w2v_scratch_bytes)
    at = &scratch[0]
    kw = <int32_t*>at
    at += _aligned((n + 1) * 4)
    kpos = <int64_t*>at
    at += _aligned((n + 1) * 8)
    klo = <int64_t*>at
    at += _aligned((n + 1) * 8)
    khi = <int64_t*>at
    at += _aligned((n + 1) * 8)
    shards = <Shard*>calloc(n_shards, sizeof(Shard))
    merge_scratch = <char*>malloc(n_blocks * n_shards * sizeof(void*))
    claims = <fe_claims_t*>calloc(n_blocks, sizeof(fe_claims_t))
    taken = <int*>calloc(max(n_shards, n_blocks), sizeof(int))
    try:
        if shards == NULL or merge_scratch == NULL or claims == NULL or taken == NULL:
            raise MemoryError("w2v_step: out of memory")
        for t in range(n_shards):
            # the rows of the plan in training and of the next one (see _resolve)
            shards[t].in_rows = <void**>malloc(n_ptrs * sizeof(void*))
            shards[t].out_rows = <void**>malloc(n_ptrs * sizeof(void*))
            shards[t].work = malloc((d + 1) * sizeof(floating))
            shards[t].h = malloc((d + 1) * sizeof(floating))
            shards[t].acc = malloc((d + 1) * sizeof(floating))
            shards[t].xs = malloc((negative + 1) * sizeof(floating))
            if private and subwords:
                shards[t].bag_mark = <int32_t*>calloc(V + 1, sizeof(int32_t))
            if (shards[t].in_rows == NULL or shards[t].out_rows == NULL
                    or shards[t].work == NULL or shards[t].h == NULL or shards[t].xs == NULL
                    or shards[t].acc == NULL
                    or (private and subwords and shards[t].bag_mark == NULL)):
                raise MemoryError("w2v_step: out of memory for a shard's scratch")
            # its plans (_plans_bytes)
            shards[t].p_index = <int64_t*>at
            at += _aligned(RL * 8)
            shards[t].p_nctx = <int32_t*>at
            at += _aligned(RL * 4)
            shards[t].p_ctx = <int32_t*>at
            at += _aligned(RL * 2 * window * 4)
            shards[t].p_nneg = <int32_t*>at
            at += _aligned(RL * 2 * window * 4)
            shards[t].p_neg = <int32_t*>at
            at += _aligned((RL * stride_neg + 1) * 4)
            if at - &scratch[0] > scratch.shape[0]:   # w2v_scratch_bytes and this must agree
                raise AssertionError("w2v_step: the scratch layout outgrew its size")
            shards[t].cap_in = cap_in
            if private:
                shards[t].slot_in = &slots[t, 0]
                shards[t].slot_out = &slots[t, V_in]
                shards[t].buf = &buf[t, 0]
                shards[t].touched = &touched[t, 0]
                shards[t].hot_buf = &hot_buf[t, 0] if n_hot_in + n_hot_out else NULL
        with nogil:
            # 1. subsampling: the kept words, their positions and their sentences' bounds
            for s in range(n_sent):
                k0 = K
                for p in range(starts[s], starts[s + 1]):
                    w = words[p]
                    if subsample and keep[w] < <uint32_t>(_mix(sub_key ^ <uint64_t>p) >> 32):
                        if record:
                            rr[p] = -1
                        continue
                    kw[K] = w
                    kpos[K] = p
                    K += 1
                for p in range(k0, K):
                    klo[p] = k0
                    khi[p] = K
        cfg.window = window
        cfg.negative = negative
        cfg.cbow = cbow
        cfg.private = private
        cfg.record = record
        cfg.d = d
        cfg.row_bytes = d * sizeof(floating)
        cfg.V = V
        cfg.V_in = V_in
        cfg.subwords = subwords
        cfg.bag_ptr = &bag_ptr[0] if subwords else NULL
        cfg.bag_rows = &bag_rows[0] if subwords and bag_rows.shape[0] else NULL
        cfg.bag_shift = &bag_shift[0] if subwords else NULL
        cfg.stride_neg = stride_neg
        cfg.alpha0 = alpha0
        cfg.alpha_step = (alpha1 - alpha0) / n if n else 0.0
        cfg.centre_key = _mix(seed ^ SALT_CENTRE)
        cfg.n_vocab = <uint64_t>accept.shape[0]
        cfg.accept = &accept[0]
        cfg.alias = &alias[0]
        cfg.kw = kw
        cfg.kpos = kpos
        cfg.klo = klo
        cfg.khi = khi
        cfg.count = &count[0] if private else NULL
        cfg.hot_in = &hot_in[0] if private and n_hot_in else NULL
        cfg.n_hot_in = n_hot_in if private else 0
        cfg.hot_out = &hot_out[0] if private and n_hot_out else NULL
        cfg.n_hot_out = n_hot_out if private else 0
        # every piece has at most K // n_shards + 1 centres
        n_long = (K // n_shards + 1 + RL - 1) // RL
        with nogil:
            if not private:
                # one shard, hogwild or record: pieces that threads take as they free up, each
                # planning and training round after round on its own
                for t in prange(n_shards, schedule='dynamic', chunksize=1,
                                num_threads=n_threads if (hogwild or record) else 1):
                    p_lo = (t * K) // n_shards
                    p_hi = ((t + 1) * K) // n_shards
                    c_lo = p_lo
                    while c_lo < p_hi:
                        c_hi = c_lo + R
                        if c_hi > p_hi:
                            c_hi = p_hi
                        _plan_round(&cfg, &shards[t], c_lo, c_hi, rr, rn)
                        if not record:
                            _train_round(&syn0[0, 0], &syn1neg[0, 0], &cfg, &shards[t], 0,
                                         c_hi - c_lo)
                        c_lo = c_hi
            else:
                with parallel(num_threads=n_threads):
                    sense = 0
                    cl = &claims[omp_get_thread_num()]
                    fe_claims_join(cl, taken, omp_get_thread_num(), omp_get_num_threads())
                    # 0. every shard's copies of the hot rows
                    t = fe_claim_first(cl, n_shards)
                    while t < n_shards:
                        _copy_hot(&syn0[0, 0], &syn1neg[0, 0], &cfg, &shards[t])
                        t = fe_claim_next(cl, n_shards)
                    fe_barrier_wait(&barrier, &sense, omp_get_num_threads())
                    for lrnd in range(n_long):
                        # a. each shard draws its next long round of centres and notes the
                        #    rows they touch (but the hot ones), counting for each row the
                        #    shards that touch it; the rows that several touch are copied
                        t = fe_claim_first(cl, n_shards)
                        while t < n_shards:
                            p_lo = (t * K) // n_shards
                            p_hi = ((t + 1) * K) // n_shards
                            c_lo = p_lo + lrnd * RL
                            c_hi = c_lo + RL
                            if c_hi > p_hi:
                                c_hi = p_hi
                            if c_lo > c_hi:
                                c_lo = c_hi
                            _plan_round(&cfg, &shards[t], c_lo, c_hi, rr, rn)
                            t = fe_claim_next(cl, n_shards)
                        fe_barrier_wait(&barrier, &sense, omp_get_num_threads())
                        t = fe_claim_first(cl, n_shards)
                        while t < n_shards:
                            _copy_shared(&syn0[0, 0], &syn1neg[0, 0], &cfg, &shards[t])
                            t = fe_claim_next(cl, n_shards)
                        fe_barrier_wait(&barrier, &sense, omp_get_num_threads())
                        # b. the rounds of the long round: each shard trains its next
                        #    round_words centres; then the hot rows whose merge period ends
                        #    move by the sum of the shards' changes (rows dealt to the threads
                        #    in ranges: each row's sum in shard order, whatever the thread)
                        n_sub = max_period
                        if lrnd == n_long - 1:
                            n_sub = (K // n_shards + 1 - lrnd * RL + R - 1) // R
                        for sub in range(n_sub):
                            t = fe_claim_first(cl, n_shards)
                            while t < n_shards:
                                _train_round(&syn0[0, 0], &syn1neg[0, 0], &cfg, &shards[t],
                                             sub * R, (sub + 1) * R)
                                t = fe_claim_next(cl, n_shards)
                            fe_barrier_wait(&barrier, &sense, omp_get_num_threads())
                            if sub == n_sub - 1:
                                k_hi = n_hot_in  # the long round ends: every hot row
                                k_out = n_hot_out
                            else:
                                k = 0            # periods 1, 2, 4, ... 2**k end here
                                while k + 1 < n_tiers and (sub + 1) % (2 << k) == 0:
                                    k = k + 1
                                k_hi = tier_end[0, k] if n_tiers else 0
                                k_out = tier_end[1, k] if n_tiers else 0
                            if k_hi > 0 or k_out > 0:
                                blk = fe_claim_first(cl, n_blocks)
                                while blk < n_blocks:
                                    _merge_hot(shards, n_shards, &cfg, &syn0[0, 0], False,
                                               (blk * k_hi) // n_blocks,
                                               ((blk + 1) * k_hi) // n_blocks,
                                               <floating**>merge_scratch + blk * n_shards)
                                    _merge_hot(shards, n_shards, &cfg, &syn1neg[0, 0], True,
                                               (blk * k_out) // n_blocks,
                                               ((blk + 1) * k_out) // n_blocks,
                                               <floating**>merge_scratch + blk * n_shards)
                                    blk = fe_claim_next(cl, n_blocks)
                                fe_barrier_wait(&barrier, &sense, omp_get_num_threads())
                        # c. every row that several shards shared in the long round moves by
                        #    the sum of their changes. Each thread owns a block of rows and
                        #    adds, for each of its rows, the change of shard 0, then shard 1,
                        #    ...: the same sums in the same order for any number of threads.
                        blk = fe_claim_first(cl, n_blocks)
                        while blk < n_blocks:
                            _merge_table(shards, n_shards, blk, n_blocks, &syn0[0, 0], False,
                                         &count[0], d, cfg.row_bytes,
                                         <floating**>merge_scratch + blk * n_shards)
                            _merge_table(shards, n_shards, blk, n_blocks, &syn1neg[0, 0], True,
                                         &count[V_in], d, cfg.row_bytes,
                                         <floating**>merge_scratch + blk * n_shards)
                            blk = fe_claim_next(cl, n_blocks)
                        fe_barrier_wait(&barrier, &sense, omp_get_num_threads())
                    t = fe_claim_first(cl, n_shards)
                    while t < n_shards:
                        _release_hot(&cfg, &shards[t])
                        t = fe_claim_next(cl, n_shards)
        for t in range(n_shards):
            loss[t] = shards[t].loss
            pairs[t] = shards[t].pairs
        return K
    finally:
        if shards != NULL:
            for t in range(n_shards):
                free(shards[t].in_rows)
                free(shards[t].out_rows)
                free(shards[t].work)
                free(shards[t].h)
                free(shards[t].acc)
                free(shards[t].xs)
                free(shards[t].bag_mark)
        free(shards)
        free(merge_scratch)
        free(claims)
        free(taken)
