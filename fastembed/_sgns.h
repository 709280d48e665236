/* The arithmetic of skip-gram with negative sampling (word2vec SGNS), one window at a time.
 *
 * A window is the set of context words around one centre word. Following Ji et al. (2016,
 * "Parallelizing Word2Vec in Shared and Distributed Memory"), the contexts of a window share
 * one draw of negative samples, so that the window's work becomes two small matrix products:
 *
 *     in  = syn0[contexts]            (n_in  x d)   the context words' input vectors
 *     out = syn1neg[centre, negs...]  (n_out x d)   row 0 is the positive target
 *     x   = in . out^T                (n_in x n_out) logits
 *     g   = alpha * (label - sigmoid(x))            label 1 in column 0, else 0
 *     in  += g . out      (computed from the old `out`)
 *     out += g^T . in     (computed from the old `in`)
 *
 * which is one SGD step, with learning rate alpha, on the window's loss
 *     sum_a [ softplus(-x[a,0]) + sum_{b>0} softplus(x[a,b]) ].
 *
 * The sigmoid and softplus come from tables over [-FE_SGNS_MAX_X, FE_SGNS_MAX_X] with linear
 * interpolation (word2vec.c and gensim use a table without interpolation, and skip the update
 * outside [-6, 6]); outside the range the sigmoid is clamped to 0 or 1 (a jump of
 * sigmoid(-8) = 3.4e-4 at the edges) and NaN gives 1, so that a diverged model can never index
 * outside the tables. Inside the range the interpolation error is below 1e-5, which SGD does not notice, and the tables make a logit cost a few
 * instructions instead of an exp() and a log().
 *
 * Dot products use sixteen independent partial sums in a fixed order, so that the compiler can
 * vectorise them without -ffast-math and the result does not depend on anything but the data.
 * Row pointers are restrict: an input row and an output row never alias (they live in
 * different tables or different scratch buffers).
 */
#ifndef FASTEMBED_SGNS_H
#define FASTEMBED_SGNS_H

#include <math.h>
#include <stddef.h>
#include <string.h>

/* The window step is compiled twice, for AVX2 and for the baseline instruction set, and the
 * loader picks the version the CPU supports (GCC's function multi-versioning, an ifunc; this
 * is run-time dispatch, not -march=native). Without FMA contraction and with the explicit
 * partial sums of fe_dot, both versions compute the same operations in the same order,
 * so they give the same bits. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && __GNUC__ >= 8 && !defined(FASTEMBED_NO_CLONES)
#define FE_SGNS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FE_SGNS_CLONES
#endif

#define FE_SGNS_TABLE_SIZE 1024
#define FE_SGNS_MAX_X 8.0

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
static inline double fe_sgns_sigmoid(double x) {
    double pos, f;
    int i;
    if (!(x < FE_SGNS_MAX_X)) return 1.0;    /* NaN too: never index the table with it */
    if (!(x > -FE_SGNS_MAX_X)) return 0.0;
    pos = (x + FE_SGNS_MAX_X) * (FE_SGNS_TABLE_SIZE / (2.0 * FE_SGNS_MAX_X));
    i = (int)pos;
    f = pos - i;
    return fe_sgns_sigmoid_table[i] + f * (fe_sgns_sigmoid_table[i + 1] - fe_sgns_sigmoid_table[i]);
}

static inline double fe_sgns_softplus(double x) {
    double pos, f;
    int i;
    if (!(x < FE_SGNS_MAX_X)) return x;      /* NaN too */
    if (!(x > -FE_SGNS_MAX_X)) return 0.0;
    pos = (x + FE_SGNS_MAX_X) * (FE_SGNS_TABLE_SIZE / (2.0 * FE_SGNS_MAX_X));
    i = (int)pos;
    f = pos - i;
    return fe_sgns_softplus_table[i] + f * (fe_sgns_softplus_table[i + 1] - fe_sgns_softplus_table[i]);
}

static inline float fe_sgns_sigmoid_f(float x) {
    float pos, f;
    int i;
    if (!(x < (float)FE_SGNS_MAX_X)) return 1.0f;    /* NaN too */
    if (!(x > (float)-FE_SGNS_MAX_X)) return 0.0f;
    pos = (x + (float)FE_SGNS_MAX_X) * (float)(FE_SGNS_TABLE_SIZE / (2.0 * FE_SGNS_MAX_X));
    i = (int)pos;
    f = pos - (float)i;
    return fe_sgns_sigmoid_table_f[i] + f * (fe_sgns_sigmoid_table_f[i + 1] - fe_sgns_sigmoid_table_f[i]);
}

static inline float fe_sgns_softplus_f(float x) {
    float pos, f;
    int i;
    if (!(x < (float)FE_SGNS_MAX_X)) return x;       /* NaN too */
    if (!(x > (float)-FE_SGNS_MAX_X)) return 0.0f;
    pos = (x + (float)FE_SGNS_MAX_X) * (float)(FE_SGNS_TABLE_SIZE / (2.0 * FE_SGNS_MAX_X));
    i = (int)pos;
    f = pos - (float)i;
    return fe_sgns_softplus_table_f[i] + f * (fe_sgns_softplus_table_f[i + 1] - fe_sgns_softplus_table_f[i]);
}

/* Both at once, sharing the table position: sigmoid(x) and softplus(x). */
static inline void fe_sgns_sig_sp(double x, double *sig, double *sp) {
    double pos, f;
    int i;
    if (!(x < FE_SGNS_MAX_X)) { *sig = 1.0; *sp = x; return; }   /* NaN too */
    if (!(x > -FE_SGNS_MAX_X)) { *sig = 0.0; *sp = 0.0; return; }
    pos = (x + FE_SGNS_MAX_X) * (FE_SGNS_TABLE_SIZE / (2.0 * FE_SGNS_MAX_X));
    i = (int)pos;
    f = pos - i;
    *sig = fe_sgns_sigmoid_table[i] + f * (fe_sgns_sigmoid_table[i + 1] - fe_sgns_sigmoid_table[i]);
    *sp = fe_sgns_softplus_table[i] + f * (fe_sgns_softplus_table[i + 1] - fe_sgns_softplus_table[i]);
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
 *   fe_dot_SUF(x, y, n):        sum x[i] y[i], sixteen partial sums (two AVX registers, four
 *                               SSE ones: enough independent additions to hide their
 *                               latency), combined in a fixed order
 *   fe_axpy4_SUF(y, k, a, x, n): y += a[0] x[0] + ... + a[k-1] x[k-1] for k <= 4, added one
 *                               term after the other (the same sums as k single axpys, with
 *                               y loaded and stored once)
 *   fe_sgns_window_SUF(...):    one window's SGD step (see the top of the file); returns the
 *                               window's loss (before the update) as a double, with the
 *                               positive's softplus(-x) computed as softplus(x) - x.
 * g is scratch of n_in * n_out elements, delta of n_in * d elements. */
#define FE_SGNS_DEFINE(T, SUF, SIG_SP)                                                \
static inline T fe_dot_##SUF(const T *restrict x, const T *restrict y, ptrdiff_t n) {         \
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
static inline void fe_axpy4_##SUF(T *restrict y, int k, const T *a, T *const *x,              \
                                  ptrdiff_t n) {                                              \
    ptrdiff_t i;                                                                              \
    const T a0 = a[0], a1 = k > 1 ? a[1] : 0, a2 = k > 2 ? a[2] : 0, a3 = k > 3 ? a[3] : 0;  \
    const T *restrict x0 = x[0];                                                              \
    const T *restrict x1 = k > 1 ? x[1] : x[0];                                               \
    const T *restrict x2 = k > 2 ? x[2] : x[0];                                               \
    const T *restrict x3 = k > 3 ? x[3] : x[0];                                               \
    switch (k) {                                                                              \
    case 4:                                                                                   \
        for (i = 0; i < n; i++) {                                                             \
            T v = y[i] + a0 * x0[i];                                                          \
            v = v + a1 * x1[i];                                                               \
            v = v + a2 * x2[i];                                                               \
            y[i] = v + a3 * x3[i];                                                            \
        }                                                                                     \
        break;                                                                                \
    case 3:                                                                                   \
        for (i = 0; i < n; i++) {                                                             \
            T v = y[i] + a0 * x0[i];                                                          \
            v = v + a1 * x1[i];                                                               \
            y[i] = v + a2 * x2[i];                                                            \
        }                                                                                     \
        break;                                                                                \
    case 2:                                                                                   \
        for (i = 0; i < n; i++) {                                                             \
            T v = y[i] + a0 * x0[i];                                                          \
            y[i] = v + a1 * x1[i];                                                            \
        }                                                                                     \
        break;                                                                                \
    default:                                                                                  \
        for (i = 0; i < n; i++) y[i] = y[i] + a0 * x0[i];                                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
FE_SGNS_CLONES static double fe_sgns_window_##SUF(T *const *in_rows, int n_in,                \
                                   T *const *out_rows, int n_out, ptrdiff_t d, T alpha,       \
                                   T *restrict g, T *restrict delta) {                        \
    double loss = 0.0;                                                                        \
    T col[4];                                                                                 \
    int a, b, k;                                                                              \
    for (a = 0; a < n_in; a++) {                                                              \
        const T *in = in_rows[a];                                                             \
        T *ga = g + (ptrdiff_t)a * n_out;                                                     \
        T *da = delta + (ptrdiff_t)a * d;                                                     \
        for (b = 0; b < n_out; b++) {                                                         \
            T x = fe_dot_##SUF(in, out_rows[b], d);                                           \
            T sig, sp;                                                                         \
            SIG_SP(x, &sig, &sp);                                                              \
            /* loss: softplus(-x) = softplus(x) - x for the positive */                        \
            if (b == 0) {                                                                      \
                ga[b] = alpha * ((T)1 - sig);                                                  \
                loss += (double)(sp - x);                                                      \
            } else {                                                                           \
                ga[b] = alpha * ((T)0 - sig);                                                  \
                loss += (double)sp;                                                            \
            }                                                                                  \
        }                                                                                     \
        /* delta_a = sum_b g[a,b] out_b, from the old out rows */                             \
        memset(da, 0, (size_t)d * sizeof(T));                                                 \
        for (b = 0; b < n_out; b += 4) {                                                      \
            k = n_out - b < 4 ? n_out - b : 4;                                                \
            fe_axpy4_##SUF(da, k, ga + b, out_rows + b, d);                                   \
        }                                                                                     \
    }                                                                                         \
    /* out_b += sum_a g[a,b] in_a, from the old in rows */                                    \
    for (b = 0; b < n_out; b++) {                                                             \
        for (a = 0; a < n_in; a += 4) {                                                       \
            k = n_in - a < 4 ? n_in - a : 4;                                                  \
            for (int j = 0; j < k; j++) col[j] = g[(ptrdiff_t)(a + j) * n_out + b];           \
            fe_axpy4_##SUF(out_rows[b], k, col, in_rows + a, d);                              \
        }                                                                                     \
    }                                                                                         \
    for (a = 0; a < n_in; a++) {                                                              \
        T one = 1;                                                                            \
        T *dptr = delta + (ptrdiff_t)a * d;                                                   \
        fe_axpy4_##SUF(in_rows[a], 1, &one, &dptr, d);                                        \
    }                                                                                         \
    return loss;                                                                              \
}

FE_SGNS_DEFINE(float, f, fe_sgns_sig_sp_f)
FE_SGNS_DEFINE(double, d, fe_sgns_sig_sp)

#endif
