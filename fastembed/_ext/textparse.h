/* Parsing the numbers of word-vector text files, exactly as NumPy would.
 *
 * np.float32(token) parses the token with Python's float(), which rounds the decimal value
 * correctly to a double, then rounds that double to float32 ("double rounding"). To give the
 * same bits, fe_parse_double() returns the correctly rounded double, and the caller casts it.
 *
 * The grammar (a subset of Python's float(): what word-vector files contain):
 *     [+|-] ( digits [. [digits]] | . digits ) [ (e|E) [+|-] digits ]
 *     [+|-] ( inf | infinity | nan )            (any case)
 * Not accepted, although float() takes them: underscores between digits, non-ASCII digits,
 * surrounding whitespace (the caller splits on it). Hexadecimal floats and "nan(...)", which
 * C's strtod would take, are rejected too.
 *
 * Fast path (Clinger, 1990): when the significant digits fit in 53 bits and the decimal
 * exponent is within [-22, 22], the double is mantissa * 10^e or mantissa / 10^-e, one
 * correctly rounded IEEE operation on exact operands. Other tokens (more than 15-19
 * significant digits, large exponents) go to the C library's strtod in the "C" locale, which
 * glibc and every modern libc round correctly.
 */
#ifndef FASTEMBED_TEXTPARSE_H
#define FASTEMBED_TEXTPARSE_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GLIBC__) || defined(__APPLE__)
#include <locale.h>
#if defined(__APPLE__)
#include <xlocale.h>
#endif
#define FE_HAVE_STRTOD_L 1
static locale_t fe_c_locale = (locale_t)0;
#endif

/* Call once, with the GIL held, before any parsing. */
static void fe_textparse_init(void) {
#ifdef FE_HAVE_STRTOD_L
    if (fe_c_locale == (locale_t)0) fe_c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
#endif
}

static const double fe_pow10[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static inline int fe_is_sep(char c) { return c == ' ' || c == '\t'; }
static inline int fe_is_digit(char c) { return c >= '0' && c <= '9'; }

static int fe_token_equals_ci(const char *p, const char *end, const char *word) {
    size_t n = strlen(word);
    size_t i;
    if ((size_t)(end - p) != n) return 0;
    for (i = 0; i < n; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != word[i]) return 0;
    }
    return 1;
}

/* The slow path: strtod on a NUL-terminated copy of a token already checked against the
 * grammar. Returns 0 on success. */
static int fe_strtod_token(const char *p, const char *end, double *out) {
    char stack_buf[128];
    char *buf = stack_buf;
    char *stop = NULL;
    size_t n = (size_t)(end - p);
    int status = 0;
    if (n + 1 > sizeof(stack_buf)) {
        buf = (char *)malloc(n + 1);
        if (buf == NULL) return 2;
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
#ifdef FE_HAVE_STRTOD_L
    *out = fe_c_locale ? strtod_l(buf, &stop, fe_c_locale) : strtod(buf, &stop);
#else
    *out = strtod(buf, &stop);
#endif
    if (stop != buf + n) status = 1;
    if (buf != stack_buf) free(buf);
    return status;
}

/* Parse the token [p, end) as a double. Returns 0 on success, 1 if the token is not a number
 * of the grammar above, 2 if memory ran out. */
static int fe_parse_double(const char *p, const char *end, double *out) {
    const char *start = p;
    int neg = 0;
    uint64_t mant = 0;
    int ndig = 0;          /* significant digits kept in mant */
    int any_digit = 0;
    int dropped = 0;       /* a non-zero digit beyond the 19 kept */
    long exp_adj = 0;      /* decimal exponent of mant's last digit, before the e part */
    long e10 = 0;
    if (p < end && (*p == '+' || *p == '-')) {
        neg = *p == '-';
        p++;
    }
    if (p < end && !fe_is_digit(*p) && *p != '.') {
        double v;
        if (fe_token_equals_ci(p, end, "inf") || fe_token_equals_ci(p, end, "infinity"))
            v = HUGE_VAL;
        else if (fe_token_equals_ci(p, end, "nan"))
            v = NAN;
        else
            return 1;
        *out = neg ? -v : v;   /* -nan keeps its sign bit, as in Python */
        return 0;
    }
    for (; p < end && fe_is_digit(*p); p++) {
        int d = *p - '0';
        any_digit = 1;
        if (mant == 0 && d == 0) continue;          /* leading zeros */
        if (ndig < 19) {
            mant = mant * 10 + (uint64_t)d;
            ndig++;
        } else {
            exp_adj++;
            if (d) dropped = 1;
        }
    }
    if (p < end && *p == '.') {
        p++;
        for (; p < end && fe_is_digit(*p); p++) {
            int d = *p - '0';
            any_digit = 1;
            if (mant == 0 && d == 0) {
                exp_adj--;
                continue;
            }
            if (ndig < 19) {
                mant = mant * 10 + (uint64_t)d;
                ndig++;
                exp_adj--;
            } else if (d) {
                dropped = 1;
            }
        }
    }
    if (!any_digit) return 1;
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        long ev = 0;
        int edig = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            eneg = *p == '-';
            p++;
        }
        for (; p < end && fe_is_digit(*p); p++) {
            if (ev < 100000000L) ev = ev * 10 + (*p - '0');
            edig = 1;
        }
        if (!edig) return 1;
        e10 = eneg ? -ev : ev;
    }
    if (p != end) return 1;
    if (mant == 0) {
        *out = neg ? -0.0 : 0.0;
        return 0;
    }
    e10 += exp_adj;
    if (!dropped && mant <= ((uint64_t)1 << 53) && e10 >= -22 && e10 <= 22) {
        double v = (double)mant;
        v = e10 < 0 ? v / fe_pow10[-e10] : v * fe_pow10[e10];
        *out = neg ? -v : v;
        return 0;
    }
    return fe_strtod_token(start, end, out);
}

/* Error codes of fe_parse_line. */
enum {
    FE_OK = 0,
    FE_ERR_EMPTY = 1,       /* an empty line, or a line without a word */
    FE_ERR_FEW = 2,         /* fewer values than dim */
    FE_ERR_MANY = 3,        /* more values than dim */
    FE_ERR_NUMBER = 4,      /* a token that is not a number */
    FE_ERR_MEMORY = 5
};

/* Parse one line [p, end) (without its newline; a final '\r' is ignored): a word, then dim
 * numbers, separated by runs of spaces or tabs. Writes the word's offset and length
 * (relative to `base`) and the values (as float or double, chosen by `out_double`).
 * On a bad token, *bad_off / *bad_len locate it. */
static int fe_parse_line(const char *base, const char *p, const char *end, int64_t dim,
                         void *out, int out_double, int64_t *word_off, int32_t *word_len,
                         int64_t *bad_off, int32_t *bad_len) {
    const char *w;
    int64_t j;
    if (end > p && end[-1] == '\r') end--;
    w = p;
    while (p < end && !fe_is_sep(*p)) p++;
    if (p == w) return FE_ERR_EMPTY;
    *word_off = (int64_t)(w - base);
    *word_len = (int32_t)(p - w);
    for (j = 0; j < dim; j++) {
        const char *t;
        double v;
        int status;
        while (p < end && fe_is_sep(*p)) p++;
        if (p == end) return FE_ERR_FEW;
        t = p;
        while (p < end && !fe_is_sep(*p)) p++;
        status = fe_parse_double(t, p, &v);
        if (status) {
            *bad_off = (int64_t)(t - base);
            *bad_len = (int32_t)(p - t);
            return status == 2 ? FE_ERR_MEMORY : FE_ERR_NUMBER;
        }
        if (out_double)
            ((double *)out)[j] = v;
        else
            ((float *)out)[j] = (float)v;
    }
    while (p < end && fe_is_sep(*p)) p++;
    if (p != end) {
        *bad_off = (int64_t)(p - base);
        *bad_len = 0;
        return FE_ERR_MANY;
    }
    return FE_OK;
}

#endif
