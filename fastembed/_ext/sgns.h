/* The arithmetic of word2vec with negative sampling: one skip-gram pair, or one CBOW
 * prediction, at a time, exactly as gensim's word2vec_inner.pyx and word2vec.c order it.
 *
 * Skip-gram, for a centre word w and one context word u of its window:
 *
 *     h    = syn0[u]                       the context's input vector
 *     for o in syn1neg[w], syn1neg[n_1], ..., syn1neg[n_k]   (w is the positive target,
 *                                          the n_i are noise words drawn for this pair)
 *         x = h . o;   g = alpha (label - sigmoid(x))         label 1 for w, else 0
 *         work += g o;  o += g h           (each output row moves at once)
 *     syn0[u] += work                      (the input row moves at the end)
 *
 * which is one SGD step on the pair's loss softplus(-h.o_w) + sum_i softplus(h.o_ni), with the
 * output rows updated one after the other. CBOW replaces h by the mean of the window's
 * context rows and adds work to each of them.
 *
 * The sigmoid and softplus come from tables of FE_SGNS_TABLE_SIZE + 1 points on
 * [-FE_SGNS_MAX_X, FE_SGNS_MAX_X], linearly interpolated (beyond: exactly 0/1 and 0/x). The
 * helpers are plain C over raw pointers; the Cython kernel (sgns.pyx) owns the loops,
 * the random draws and the scratch buffers.
 */
#ifndef FASTEMBED_SGNS_H
#define FASTEMBED_SGNS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The pair and CBOW steps are compiled twice, for AVX2 and for the baseline instruction set, and the
 * loader picks the version the CPU supports (GCC's function multi-versioning, an ifunc; this
 * is run-time dispatch, not -march=native). Without FMA contraction and with the explicit
 * partial sums of fe_dot, both versions compute the same operations in the same order,
 * so they give the same bits. */
#if ((defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8) \
     || (defined(__clang__) && __clang_major__ >= 14)) \
    && defined(__x86_64__) && defined(__linux__) && !defined(FASTEMBED_NO_CLONES)
#define FE_SGNS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FE_SGNS_CLONES
#endif

/* The helpers of the cloned functions are always inlined: a helper that stays a function of its
 * own is compiled for the baseline instruction set only, and the AVX2 clone then calls SSE2
 * code for its dot products and updates. GCC inlined them anyway; Clang 14 kept fe_dot and
 * fe_sgns_outputs apart (measured: skip-gram 1.4x slower than GCC's build). */
#if defined(__GNUC__) || defined(__clang__)
#define FE_SGNS_INLINE static inline __attribute__((always_inline))
#else
#define FE_SGNS_INLINE static inline
#endif

/* *p += 1, atomically among the threads of a parallel region (a plain increment without
 * OpenMP, where there is one thread). */
static inline void fe_atomic_inc(int32_t *p) {
#ifdef _OPENMP
    #pragma omp atomic
#endif
    *p += 1;
}

#define FE_SGNS_TABLE_SIZE 1024
#define FE_SGNS_MAX_X 8.0
/* gensim's MAX_EXP: an output whose logit is at least this far from 0 is not updated */
#define FE_SGNS_SKIP_X 6.0

static double fe_sgns_sigmoid_table[FE_SGNS_TABLE_SIZE + 2];
static double fe_sgns_softplus_table[FE_SGNS_TABLE_SIZE + 2];
static float fe_sgns_sigmoid_table_f[FE_SGNS_TABLE_SIZE + 2];
static float fe_sgns_softplus_table_f[FE_SGNS_TABLE_SIZE + 2];

/* Fill the tables (called once, when the module is imported). Entry i holds the value at
 * x_i = -MAX_X + i * 2 MAX_X / SIZE, for i = 0..SIZE; entry SIZE+1 repeats entry SIZE, so
 * that interpolation at the very top reads inside the table. */
static void fe_sgns_init_tables(void) {
    int i;
    for (i = 0; i <= FE_SGNS_TABLE_SIZE + 1; i++) {
        int k = i <= FE_SGNS_TABLE_SIZE ? i : FE_SGNS_TABLE_SIZE;
        double x = -FE_SGNS_MAX_X + k * (2.0 * FE_SGNS_MAX_X / FE_SGNS_TABLE_SIZE);
        double s = 1.0 / (1.0 + exp(-x));
        double sp = x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
        fe_sgns_sigmoid_table[i] = s;
        fe_sgns_softplus_table[i] = sp;
        fe_sgns_sigmoid_table_f[i] = (float)s;
        fe_sgns_softplus_table_f[i] = (float)sp;
    }
}

/* The kernels' sigmoid and softplus, in double (the float kernels use the same formula in
 * float). Exposed so that the tests' NumPy reference can use the very same function. */
/* The table slot i of x (|x| < FE_SGNS_MAX_X) and the fraction f past it, in T arithmetic. */
#define FE_SGNS_SLOT(T, x, i, f) do {                                                        \
        T pos_ = ((x) + (T)FE_SGNS_MAX_X) * (T)(FE_SGNS_TABLE_SIZE / (2.0 * FE_SGNS_MAX_X));  \
        (i) = (int)pos_;                                                                      \
        (f) = pos_ - (T)(i);                                                                  \
    } while (0)
#define FE_SGNS_LERP(table, i, f) ((table)[i] + (f) * ((table)[(i) + 1] - (table)[i]))

/* name(x): the table's value at x, interpolated; `above` for x >= MAX_X or NaN (never index the
 * table with it), 0 for x <= -MAX_X. One definition for the double and float twins. */
#define FE_SGNS_TABLE_FN(name, T, table, above)                                               \
    static inline T name(T x) {                                                               \
        T f;                                                                                  \
        int i;                                                                                \
        if (!(x < (T)FE_SGNS_MAX_X)) return (above);                                          \
        if (!(x > (T)-FE_SGNS_MAX_X)) return (T)0;                                            \
        FE_SGNS_SLOT(T, x, i, f);                                                             \
        return FE_SGNS_LERP(table, i, f);                                                     \
    }
FE_SGNS_TABLE_FN(fe_sgns_sigmoid, double, fe_sgns_sigmoid_table, 1.0)
FE_SGNS_TABLE_FN(fe_sgns_softplus, double, fe_sgns_softplus_table, x)
FE_SGNS_TABLE_FN(fe_sgns_sigmoid_f, float, fe_sgns_sigmoid_table_f, 1.0f)
FE_SGNS_TABLE_FN(fe_sgns_softplus_f, float, fe_sgns_softplus_table_f, x)

/* Both at once, sharing the table position: sigmoid(x) and softplus(x). */
static inline void fe_sgns_sig_sp(double x, double *sig, double *sp) {
    double f;
    int i;
    if (!(x < FE_SGNS_MAX_X)) { *sig = 1.0; *sp = x; return; }   /* NaN too */
    if (!(x > -FE_SGNS_MAX_X)) { *sig = 0.0; *sp = 0.0; return; }
    FE_SGNS_SLOT(double, x, i, f);
    *sig = FE_SGNS_LERP(fe_sgns_sigmoid_table, i, f);
    *sp = FE_SGNS_LERP(fe_sgns_softplus_table, i, f);
}

static inline void fe_sgns_sig_sp_f(float x, float *sig, float *sp) {
    float pos, f;
    int i;
    if (!(x < (float)FE_SGNS_MAX_X)) { *sig = 1.0f; *sp = x; return; }   /* NaN too */
    if (!(x > (float)-FE_SGNS_MAX_X)) { *sig = 0.0f; *sp = 0.0f; return; }
    pos = (x + (float)FE_SGNS_MAX_X) * (float)(FE_SGNS_TABLE_SIZE / (2.0 * FE_SGNS_MAX_X));
    i = (int)pos;
    f = pos - (float)i;
    *sig = fe_sgns_sigmoid_table_f[i] + f * (fe_sgns_sigmoid_table_f[i + 1] - fe_sgns_sigmoid_table_f[i]);
    *sp = fe_sgns_softplus_table_f[i] + f * (fe_sgns_softplus_table_f[i + 1] - fe_sgns_softplus_table_f[i]);
}

/* FE_SGNS_DEFINE(T, SUF, SIG_SP) defines, for element type T:
 *   fe_dot_SUF(x, y, n):   sum x[i] y[i], sixteen partial sums (two AVX registers, four SSE
 *                          ones: enough independent additions to hide their latency),
 *                          combined in a fixed order
 *   fe_sgns_outputs_SUF(h, out_rows, n_out, d, alpha, work): the output side of one
 *                          prediction from the hidden vector h (a context's input row for
 *                          skip-gram, the mean of the context rows for CBOW). Row 0 of
 *                          out_rows is the positive target (label 1), the others are noise
 *                          words (label 0). For each output row o in turn, as gensim and
 *                          word2vec.c do:
 *                              x = h . o;  g = alpha (label - sigmoid(x))
 *                              work += g o;  o += g h
 *                          so a later row sees the earlier rows' updates (the same noise word
 *                          drawn twice moves twice). work must be zeroed by the caller; xs is
 *                          scratch of n_out elements. The logits are computed first, all of
 *                          them (h does not change, and a row drawn twice gets its logit
 *                          again): the same results as one output after the other.
 *                          Returns the loss of the prediction before the update,
 *                          softplus(-x) for the positive and softplus(x) for the negatives,
 *                          as a double, with softplus(-x) computed as softplus(x) - x.
 *   fe_sgns_pair_SUF(in, ...): one skip-gram pair: work = 0, the outputs from h = in, then
 *                          in += work.
 *   fe_cbow_SUF(in_rows, n_in, ...): one CBOW prediction (gensim's cbow_mean=1):
 *                          h = (in_0 + ... + in_{n-1}) * (1/n), the outputs from h, then
 *                          every context row gets in_j += work (the full gradient with respect
 *                          to h, not 1/n of it: word2vec.c's and gensim's rule). A row that
 *                          stands twice in the window moves twice.
 *   fe_bag_sg_SUF(in_rows, n_in, shift, out_rows, n_neg, n_pairs, ...): the skip-gram
 *                          predictions of one centre word with subwords (fastText's order:
 *                          the centre's bag of rows predicts each context word in turn).
 *                          fastText takes, for each context, h = the mean of the bag's rows,
 *                          the outputs from h, then adds work to every row of the bag. All
 *                          rows of the bag move by the same work, so the next h is the last
 *                          one plus shift * work (shift = sum over the bag's distinct rows of
 *                          their multiplicity squared, over n_in: 1 without repeated rows), and
 *                          the bag's rows can take the sum of the works once, at the end: the
 *                          same result, with the bag read and written once per centre instead
 *                          of once per context. out_rows holds, for each context s in turn,
 *                          its output row and its n_neg[s] noise rows.
 * Every loop is elementwise or a fe_dot, and no FMA is contracted (-ffp-contract=off), so the
 * AVX2 and baseline clones compute the same operations in the same order: the same bits. */
#define FE_SGNS_DEFINE(T, SUF, SIG_SP)                                                \
FE_SGNS_INLINE T fe_dot_##SUF(const T *restrict x, const T *restrict y, ptrdiff_t n) {         \
    T acc[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};                              \
    T s;                                                                                      \
    ptrdiff_t i = 0;                                                                          \
    int k;                                                                                    \
    for (; i + 16 <= n; i += 16)                                                              \
        for (k = 0; k < 16; k++) acc[k] += x[i + k] * y[i + k];                               \
    for (k = 0; k < 8; k++) acc[k] += acc[k + 8];                                             \
    s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));    \
    for (; i < n; i++) s += x[i] * y[i];                                                      \
    return s;                                                                                 \
}                                                                                             \
                                                                                              \
FE_SGNS_INLINE double fe_sgns_outputs_##SUF(const T *restrict h, T *const *out_rows,           \
                                           int n_out, ptrdiff_t d, T alpha,                   \
                                           T *restrict work, T *restrict xs) {                \
    double loss = 0.0;                                                                        \
    int b, a;                                                                                 \
    ptrdiff_t c;                                                                              \
    /* every logit first, so that the independent dot products overlap in the CPU */          \
    for (b = 0; b < n_out; b++) xs[b] = fe_dot_##SUF(h, out_rows[b], d);                      \
    for (b = 0; b < n_out; b++) {                                                             \
        T *restrict o = out_rows[b];                                                          \
        T x = xs[b];                                                                          \
        T sig, sp, g;                                                                         \
        /* a row drawn twice moved at its first use: its logit is taken again, so that the    \
         * result is that of updating the rows one after the other */                         \
        for (a = 0; a < b; a++) {                                                             \
            if (out_rows[a] == o) {                                                           \
                x = fe_dot_##SUF(h, o, d);                                                    \
                break;                                                                        \
            }                                                                                 \
        }                                                                                     \
        SIG_SP(x, &sig, &sp);                                                                 \
        loss += b == 0 ? (double)(sp - x) : (double)sp;                                       \
        if (!(x > (T)-FE_SGNS_SKIP_X && x < (T)FE_SGNS_SKIP_X))                               \
            continue;   /* gensim's rule: a saturated logit moves nothing */                  \
        g = alpha * ((b == 0 ? (T)1 : (T)0) - sig);                                           \
        for (c = 0; c < d; c++) {                                                             \
            T oc = o[c];                                                                      \
            work[c] = work[c] + g * oc;                                                       \
            o[c] = oc + g * h[c];                                                             \
        }                                                                                     \
    }                                                                                         \
    return loss;                                                                              \
}                                                                                             \
                                                                                              \
FE_SGNS_CLONES static double fe_sgns_pair_##SUF(T *restrict in, T *const *out_rows, int n_out, \
                                                ptrdiff_t d, T alpha, T *restrict work,       \
                                                T *restrict xs) {                             \
    double loss;                                                                              \
    ptrdiff_t c;                                                                              \
    memset(work, 0, (size_t)d * sizeof(T));                                                   \
    loss = fe_sgns_outputs_##SUF(in, out_rows, n_out, d, alpha, work, xs);                        \
    for (c = 0; c < d; c++) in[c] = in[c] + work[c];                                          \
    return loss;                                                                              \
}                                                                                             \
                                                                                              \
FE_SGNS_INLINE void fe_rows_mean_##SUF(T *const *in_rows, int n_in, ptrdiff_t d,               \
                                       T *restrict h) {                                       \
    ptrdiff_t c;                                                                              \
    int a;                                                                                    \
    const T inv = (T)1 / (T)n_in;                                                             \
    memcpy(h, in_rows[0], (size_t)d * sizeof(T));                                             \
    for (a = 1; a < n_in; a++) {                                                              \
        const T *restrict x = in_rows[a];                                                     \
        for (c = 0; c < d; c++) h[c] = h[c] + x[c];                                           \
    }                                                                                         \
    for (c = 0; c < d; c++) h[c] = h[c] * inv;                                                \
}                                                                                             \
                                                                                              \
FE_SGNS_INLINE void fe_rows_add_##SUF(T *const *rows, int n, ptrdiff_t d,                      \
                                     const T *restrict v) {                                   \
    ptrdiff_t c;                                                                              \
    int a;                                                                                    \
    for (a = 0; a < n; a++) {                                                                 \
        T *restrict y = rows[a];                                                              \
        for (c = 0; c < d; c++) y[c] = y[c] + v[c];                                           \
    }                                                                                         \
}                                                                                             \
                                                                                              \
FE_SGNS_CLONES static double fe_cbow_##SUF(T *const *in_rows, int n_in, T *const *out_rows,    \
                                           int n_out, ptrdiff_t d, T alpha,                   \
                                           T *restrict h, T *restrict work,                   \
                                           T *restrict xs) {                                  \
    double loss;                                                                              \
    fe_rows_mean_##SUF(in_rows, n_in, d, h);                                                  \
    memset(work, 0, (size_t)d * sizeof(T));                                                   \
    loss = fe_sgns_outputs_##SUF(h, out_rows, n_out, d, alpha, work, xs);                         \
    fe_rows_add_##SUF(in_rows, n_in, d, work);                                                \
    return loss;                                                                              \
}                                                                                             \
                                                                                              \
FE_SGNS_CLONES static double fe_bag_sg_##SUF(T *const *in_rows, int n_in, T shift,             \
                                             T *const *out_rows, const int32_t *n_neg,        \
                                             int n_pairs, ptrdiff_t d, T alpha,               \
                                             T *restrict h, T *restrict work,                 \
                                             T *restrict acc, T *restrict xs) {               \
    double loss = 0.0;                                                                        \
    ptrdiff_t c;                                                                              \
    int s;                                                                                    \
    fe_rows_mean_##SUF(in_rows, n_in, d, h);                                                  \
    memset(acc, 0, (size_t)d * sizeof(T));                                                    \
    for (s = 0; s < n_pairs; s++) {                                                           \
        memset(work, 0, (size_t)d * sizeof(T));                                               \
        loss += fe_sgns_outputs_##SUF(h, out_rows, n_neg[s] + 1, d, alpha, work, xs);          \
        out_rows += n_neg[s] + 1;                                                             \
        for (c = 0; c < d; c++) {                                                             \
            h[c] = h[c] + shift * work[c];                                                    \
            acc[c] = acc[c] + work[c];                                                        \
        }                                                                                     \
    }                                                                                         \
    fe_rows_add_##SUF(in_rows, n_in, d, acc);                                                 \
    return loss;                                                                              \
}

/* FE_SGNS_MERGE_DEFINE(T, SUF) defines fe_merge_copies_SUF(row, copies, n, d): the merge of n
 * private copies of a row, as the sharded trainer does it: row, o before, becomes
 *     o + (c_0 - o) + (c_1 - o) + ... + (c_{n-1} - o)
 * added in that order, element by element. One pass over the row: each block of o and of
 * the sum stays in registers while the copies are read, where adding one copy after the
 * other reads and writes the row n times and needs o saved apart (on Zen 4, four copies of
 * 200 floats in the cache: 50 ns a row against 150). The blocks are GCC's vector types of
 * 32 bytes (two registers of the baseline clone, one of AVX2): elementwise operations, the
 * same bits in both clones and in the scalar loop that other compilers get. */
#if defined(__GNUC__) || defined(__clang__)
#define FE_SGNS_MERGE_BLOCKS(T, SUF)                                                          \
    typedef T fe_vec_##SUF __attribute__((vector_size(32), aligned(sizeof(T)), may_alias));   \
    const ptrdiff_t L = (ptrdiff_t)(32 / sizeof(T));                                          \
    for (; c + 2 * L <= d; c += 2 * L) {                                                      \
        const fe_vec_##SUF o0 = *(const fe_vec_##SUF *)(row + c);                             \
        const fe_vec_##SUF o1 = *(const fe_vec_##SUF *)(row + c + L);                         \
        fe_vec_##SUF v0 = o0, v1 = o1;                                                        \
        for (t = 0; t < n; t++) {                                                             \
            v0 = v0 + (*(const fe_vec_##SUF *)(copies[t] + c) - o0);                          \
            v1 = v1 + (*(const fe_vec_##SUF *)(copies[t] + c + L) - o1);                      \
        }                                                                                     \
        *(fe_vec_##SUF *)(row + c) = v0;                                                      \
        *(fe_vec_##SUF *)(row + c + L) = v1;                                                  \
    }                                                                                         \
    if (c + L <= d) {                                                                         \
        const fe_vec_##SUF o0 = *(const fe_vec_##SUF *)(row + c);                             \
        fe_vec_##SUF v0 = o0;                                                                 \
        for (t = 0; t < n; t++) v0 = v0 + (*(const fe_vec_##SUF *)(copies[t] + c) - o0);      \
        *(fe_vec_##SUF *)(row + c) = v0;                                                      \
        c += L;                                                                               \
    }
#else
#define FE_SGNS_MERGE_BLOCKS(T, SUF)
#endif
#define FE_SGNS_MERGE_DEFINE(T, SUF)                                                          \
FE_SGNS_CLONES static void fe_merge_copies_##SUF(T *restrict row, T *const *copies, int n,     \
                                                 ptrdiff_t d) {                               \
    ptrdiff_t c = 0;                                                                          \
    int t;                                                                                    \
    FE_SGNS_MERGE_BLOCKS(T, SUF)                                                              \
    for (; c < d; c++) {                                                                      \
        const T o = row[c];                                                                   \
        T v = o;                                                                              \
        for (t = 0; t < n; t++) v = v + (copies[t][c] - o);                                   \
        row[c] = v;                                                                           \
    }                                                                                         \
}

FE_SGNS_DEFINE(float, f, fe_sgns_sig_sp_f)
FE_SGNS_DEFINE(double, d, fe_sgns_sig_sp)
FE_SGNS_MERGE_DEFINE(float, f)
FE_SGNS_MERGE_DEFINE(double, d)

#endif
