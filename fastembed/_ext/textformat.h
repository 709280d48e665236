/* Float32 to text for the word2vec text format: exactly the characters of C's and Python's
 * "%.9g" (nine significant digits, which read back to the same float32), without printf.
 *
 * A finite float32 is m * 2^e exactly (m < 2^24). Its nine digits D = round(|x| * 10^(8-k)),
 * k = floor(log10 |x|), are computed exactly in 128-bit integers and rounded half to even, as
 * glibc and Python round the exact binary value; then placed as %g places them (fixed
 * notation for -4 <= k < 9, else d.dddddddde+XX), trailing zeros dropped. Values below 1e-23
 * (beyond the integers' range) and compilers without 128-bit integers go through snprintf,
 * the same characters, slower, its locale's decimal point turned back into '.'. Zeros and
 * non-finite values are spelled out ("0", "-0", "nan", "inf", "-inf": glibc would print a
 * negative NaN as "-nan", Python as "nan").
 */
#ifndef FASTEMBED_TEXTFORMAT_H
#define FASTEMBED_TEXTFORMAT_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* At least the longest text fe_format_f32 writes: 15 characters, "-0.000" and nine digits or
 * "-d.dddddddde-XX" (no terminating NUL is written). */
#define FE_F32_TEXT_MAX 16

/* "%.9g" of a finite nonzero x through snprintf, whatever the C locale: its decimal point
 * (a ',' or several bytes in some locales) becomes '.'; at most FE_F32_TEXT_MAX bytes. */
static int fe_format_f32_printf(float x, char *buf) {
    char tmp[64];
    int n = snprintf(tmp, sizeof tmp, "%.9g", (double)x);
    int i, len = 0, in_point = 0;
    if (n < 0) n = 0;
    if (n > (int)sizeof tmp - 1) n = (int)sizeof tmp - 1;
    for (i = 0; i < n && len < FE_F32_TEXT_MAX; i++) {
        char c = tmp[i];
        if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e') {
            buf[len++] = c;
            in_point = 0;
        } else if (!in_point) {
            buf[len++] = '.';
            in_point = 1;
        }
    }
    return len;
}

/* Zeros and non-finite values, spelled as Python's "%.9g" spells them; else -1. */
static int fe_format_f32_special(float x, char *buf) {
    if (x != x) { memcpy(buf, "nan", 3); return 3; }
    if (isinf(x)) {
        if (x < 0) { memcpy(buf, "-inf", 4); return 4; }
        memcpy(buf, "inf", 3); return 3;
    }
    if (x == 0) {
        if (signbit(x)) { memcpy(buf, "-0", 2); return 2; }
        buf[0] = '0';
        return 1;
    }
    return -1;
}

#if defined(__SIZEOF_INT128__)
typedef unsigned __int128 fe_u128;

/* round(m * 2^e * 10^s) half to even, for 0 <= s <= 31 or -30 <= s < 0 with e >= 0. */
static uint64_t fe_digits9(uint32_t m, int e, int s) {
    fe_u128 n = m, p = 1, q, r, half;
    int i;
    if (s >= 0) {
        for (i = 0; i < s; i++) p *= 10;
        n *= p;
        if (e >= 0) return (uint64_t)(n << e);  /* only for s = 0 .. small: never overflows */
        int sh = -e;
        if (sh >= 128) return 0;
        q = n >> sh;
        r = n - (q << sh);
        half = (fe_u128)1 << (sh - 1);
    } else {
        for (i = 0; i < -s; i++) p *= 10;
        n <<= e;
        q = n / p;
        r = n - q * p;
        half = p / 2;   /* p is even (10^k, k >= 1): r == half is an exact tie */
    }
    if (r > half || (r == half && (q & 1))) q += 1;
    return (uint64_t)q;
}
#endif

/* Write "%.9g" of x into buf (at least FE_F32_TEXT_MAX bytes); return the length. */
static int fe_format_f32(float x, char *buf) {
    int special = fe_format_f32_special(x, buf);
    if (special >= 0) return special;
#if defined(__SIZEOF_INT128__)
    uint32_t bits;
    memcpy(&bits, &x, 4);
    uint32_t expo = (bits >> 23) & 0xFF, mant = bits & 0x7FFFFF;
    int neg = (int)(bits >> 31);
    int len = 0, k, e, i, tries;
    uint32_t m;
    uint64_t d = 0;
    char digits[9];
    double ax = fabs((double)x);
    if (ax < 1e-23) return fe_format_f32_printf(x, buf);
    /* from here on x is a normal float (1e-23 is far above the subnormals) */
    m = mant | 0x800000u;
    e = (int)expo - 150;
    k = (int)floor(log10(ax));
    for (tries = 0; tries < 4; tries++) {   /* k from log10 may be one off near 10^k */
        if (8 - k > 31 || 8 - k < -30) return fe_format_f32_printf(x, buf);
        d = fe_digits9(m, e, 8 - k);
        if (d >= 1000000000u) k += 1;
        else if (d < 100000000u) k -= 1;
        else break;
    }
    if (tries == 4) return fe_format_f32_printf(x, buf);
    for (i = 8; i >= 0; i--) { digits[i] = (char)('0' + d % 10); d /= 10; }
    int nd = 9;                              /* significant digits after dropping zeros */
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    if (neg) buf[len++] = '-';
    if (k < -4 || k >= 9) {
        buf[len++] = digits[0];
        if (nd > 1) {
            buf[len++] = '.';
            for (i = 1; i < nd; i++) buf[len++] = digits[i];
        }
        buf[len++] = 'e';
        buf[len++] = k < 0 ? '-' : '+';
        int ak = k < 0 ? -k : k;
        if (ak >= 100) buf[len++] = (char)('0' + ak / 100);
        buf[len++] = (char)('0' + (ak / 10) % 10);
        buf[len++] = (char)('0' + ak % 10);
    } else if (k >= 0) {
        for (i = 0; i <= k; i++) buf[len++] = digits[i];   /* k + 1 <= 9 integer digits */
        if (nd > k + 1) {
            buf[len++] = '.';
            for (i = k + 1; i < nd; i++) buf[len++] = digits[i];
        }
    } else {
        buf[len++] = '0';
        buf[len++] = '.';
        for (i = 0; i < -k - 1; i++) buf[len++] = '0';
        for (i = 0; i < nd; i++) buf[len++] = digits[i];
    }
    return len;
#else
    return fe_format_f32_printf(x, buf);
#endif
}

#endif
