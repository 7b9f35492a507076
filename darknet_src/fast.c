/*
 * fast.c -- exp-based kernels that return the very float bits upstream's
 * libm expressions return, at a fraction of the cost, and the proof that they
 * do.  The AVX2 versions (fast_avx2.c) follow the same argument.
 *
 * The three reference expressions (x a float; every operation in double
 * unless said otherwise, each rounded to nearest; the last cast rounds to
 * float):
 *
 *   logistic   (float)(1./(1. + exp((double)-x)))          activations.c
 *   box size   (float)(exp((double)x) * (double)s / (double)d)   get_yolo_box
 *   softmax    (float)exp((double)z)                        softmax()
 *
 * ---- The argument -----------------------------------------------------------
 *
 * Write u = 2^-53 (the unit roundoff of double) and E* = exp(y) for the exact
 * real exponential of the double argument y (which is exact: a float, or its
 * negation, converted to double).
 *
 * (A) libm.  We assume libm's exp has a relative error below 2^-51 (two ULPs
 *     at the bottom of a binade).  glibc's exp, which the golden data came
 *     from, is within 0.52 ULP; a libm worse than 2^-51 would already give
 *     the reference path bits other than upstream's.
 *
 * (F) fast_exp below.  For |y| <= 700, with k = nearest integer to y/ln2 and
 *     r = y - k ln2 (|r| <= ln2/2 + 2^-44 <= 0.3466), it returns
 *     2^k * P(r~) where
 *       - r~ = (y - k*LN2_HI) - k*LN2_LO.  k*LN2_HI is exact (LN2_HI has 21
 *         trailing zero bits and |k| <= 1010 < 2^11); each of the two
 *         subtractions and k*LN2_LO round once, and LN2_HI + LN2_LO is ln2
 *         within 2^-84: |r~ - r| <= 2u*0.35 + u*1010*2^-32 + 1010*2^-84
 *         < 2^-52, a relative error below 2^-52 in exp(r);
 *       - P is the degree-11 Taylor polynomial of exp: for |r| <= 0.3466 its
 *         truncation error is at most e^0.3466 * 0.3466^12/12! < 8.9e-15,
 *         below 1.26e-14 < 2^-46.1 relative to e^r >= e^-0.3466;
 *       - P is evaluated by Estrin's scheme (r^2, r^4 = (r^2)^2, r^8 =
 *         (r^4)^2, then pairs c_2m + c_2m+1 r combined by those powers).
 *         Each term c_i r^i of the computed sum carries at most 14
 *         roundings (c_11 r^11: 7 in r^8, 5 in r^2 (c_10 + c_11 r), one
 *         product, one sum), so the computed value is sum c_i r^i (1 +
 *         theta_i) with |theta_i| <= gamma_14 = 14u/(1 - 14u) (Higham,
 *         Accuracy and Stability of Numerical Algorithms, Lemma 3.1): an
 *         error at most 14.1u * sum |c_i||r|^i = 14.1u * e^0.3466 (all c_i >
 *         0), below 2^-48.2 relative to e^r.  A fused multiply-add in place
 *         of a product and a sum removes a rounding; the bound holds.  The
 *         coefficients 1/i! rounded to double add at most u * e^0.3466,
 *         2^-52 relative;
 *       - the scaling by 2^k is exact: |k| <= 1010 keeps the result a
 *         normal double.
 *     So |fast_exp(y) - E*| <= eps_f E* with eps_f < 2^-46.1 + 2^-48.2 +
 *     2^-52 + 2^-52 < 2^-45.
 *
 * (R) Rounding sensitivity.  Each reference expression is R(E) = the double
 *     result of a short chain applied to E: 1/(1 + E), E*s/d, or E itself.
 *     With E = E*(1 + eta), the exact chain moves by a relative amount at
 *     most |eta|/(1 - |eta|) (for 1/(1+E): E/(1+E) < 1 damps it), and each of
 *     the (at most two) double operations rounds once more, a relative u.
 *     Hence the libm result R_l and the fast result R_f both lie within a
 *     relative (eps + 2u)(1 + 2^-40) of the exact R*, and
 *         |R_l - R_f| <= |R_f| (2^-45 + 2^-51 + 4u)(1 + 2^-39) < 2^-44.9 |R_f|,
 *     which is less than 2^8.1 = 275 ULPs of R_f (ulp(R_f) >= |R_f| 2^-53).
 *
 * (C) The check.  Round-to-nearest to float changes value only across a
 *     midpoint between two consecutive floats.  When |R_f| lies in
 *     [2^-126, 2^128) (a normal float), with 2^e <= |R_f| < 2^(e+1), the
 *     midpoints in that binade sit where the low 29 bits of R_f's 52-bit
 *     significand equal 2^28; the nearest ones outside the binade are
 *     2^(e-25) and 2^(e-23) away, far beyond 275 ULPs, and the powers of two
 *     between binades are floats, not midpoints.  So if those low bits
 *     differ from 2^28 by more than K = 1024 ULPs, no midpoint lies between
 *     R_f and R_l (both normal: within 2^-44 of each other, inside the range
 *     (X) keeps R_f in), and (float)R_f == (float)R_l: the same bits as the
 *     reference.  Rounding to float is symmetric in sign, so negative
 *     results (a negative anchor) are covered by |R_f|.
 *
 * (X) Elements the argument does not cover go to the reference expression
 *     itself (libm): an argument outside the range (NaN, infinities, |x| >
 *     87 for the logistic and the softmax, |x| > 700 for box sizes), a
 *     result outside the normal float range (box sizes: |R_f| < 2^-125 or
 *     > 2^127, zero anchors included), and the about 2K/2^29 = 4e-6 of
 *     elements that fail check (C).  For the logistic, x in [-87, 87] gives
 *     R in [1.6e-38, 1]: normal floats.  For the softmax, z in [-87, 87]
 *     gives E in [1.6e-38, 6.1e37]: normal floats.
 *
 * The argument assumes the default floating-point environment (round to
 * nearest, no flush-to-zero), as the reference arithmetic itself does.
 * scripts/check_fast_kernels.py checks the three kernels on all 2^32 float
 * inputs, AVX2 and portable (result: scripts/fast_kernels_exhaustive.txt);
 * the tests check a strided subset of them on every run.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "dn_fast.h"
#include "darknet_loss.h"

/* The window of check (C), in ULPs of the double result. */
#define CHECK_K 1024u

static const double INVLN2 = 0x1.71547652b82fep0;
static const double SHIFT = 0x1.8p52;               /* t + SHIFT rounds t to an integer */
static const double LN2_HI = 0x1.62e42fee00000p-1;  /* 21 trailing zero bits */
static const double LN2_LO = 0x1.a39ef35793c76p-33;

/* 1/i!, i = 0..11, rounded to double. */
#define C0 1.0
#define C1 1.0
#define C2 0.5
#define C3 0x1.5555555555555p-3
#define C4 0x1.5555555555555p-5
#define C5 0x1.1111111111111p-7
#define C6 0x1.6c16c16c16c17p-10
#define C7 0x1.a01a01a01a01ap-13
#define C8 0x1.a01a01a01a01ap-16
#define C9 0x1.71de3a556c734p-19
#define C10 0x1.27e4fb7789f5cp-22
#define C11 0x1.ae64567f544e4p-26

static uint64_t bits_of(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static double from_bits(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

/* (F): exp(y) within a relative 2^-45, for |y| <= 700. */
static inline double fast_exp(double y)
{
    double t = y*INVLN2;
    double kd = t + SHIFT;
    double k = kd - SHIFT;
    double r = (y - k*LN2_HI) - k*LN2_LO;
    int64_t ki = (int64_t)(bits_of(kd) - bits_of(SHIFT));
    double r2 = r*r, r4 = r2*r2, r8 = r4*r4;
    double lo = r4*(r2*(r*C7 + C6) + (r*C5 + C4)) + (r2*(r*C3 + C2) + (r*C1 + C0));
    double hi = r8*(r2*(r*C11 + C10) + (r*C9 + C8));
    return (lo + hi)*from_bits((uint64_t)(ki + 1023) << 52);
}

/* (C): true when no float midpoint lies within CHECK_K ULPs of v. */
static int rounds_safely(double v)
{
    uint32_t low = (uint32_t)(bits_of(v) & 0x1fffffffu);
    return (uint32_t)(low - (0x10000000u - CHECK_K)) > 2*CHECK_K;
}

/* One element of each kernel: writes *out, returns 1 when it took the
 * reference expression (libm), 0 when the fast result was proved. */
int dn_logistic_one(const float *in, float *out)
{
    float x = *in;
    if (fabsf(x) <= 87.0f) {
        double d = 1./(1. + fast_exp((double)-x));
        if (rounds_safely(d)) {
            *out = (float)d;
            return 0;
        }
    }
    *out = logistic_activate(x);
    return 1;
}

/* The reference box size, as get_yolo_box writes it. */
static float exp_box_ref(float x, float scale, int div)
{
    return (float)(exp((double)x) * scale / div);
}

int dn_exp_box_one(const float *in, float *out, float scale, int div)
{
    float x = *in;
    if (fabsf(x) <= 700.0f) {
        double q = fast_exp((double)x) * scale / div;
        double a = fabs(q);
        if (a >= 0x1p-125 && a <= 0x1p127 && rounds_safely(q)) {
            *out = (float)q;
            return 0;
        }
    }
    *out = exp_box_ref(x, scale, div);
    return 1;
}

int dn_expf_one(const float *in, float *out)
{
    float x = *in;
    if (fabsf(x) <= 87.0f) {
        double e = fast_exp((double)x);
        if (rounds_safely(e)) {
            *out = (float)e;
            return 0;
        }
    }
    *out = (float)exp((double)x);
    return 1;
}

/* ---- dispatch --------------------------------------------------------------- */

int dn_resolve_path(int path)
{
    if (path == DN_PATH_REFERENCE) return DN_IMPL_REFERENCE;
    if (path == DN_PATH_PORTABLE) return DN_IMPL_PORTABLE;
    return dn_cpu_has_avx2() ? DN_IMPL_AVX2 : DN_IMPL_PORTABLE;
}

int dn_path_in_use(int path)
{
    switch (dn_resolve_path(path)) {
    case DN_IMPL_REFERENCE: return DN_PATH_REFERENCE;
    case DN_IMPL_PORTABLE: return DN_PATH_PORTABLE;
    default: return DN_PATH_AVX2;
    }
}

/* The portable kernels work on four elements at a time, so that the four
 * independent chains overlap in the CPU. */
long dn_logistic_impl(const float *in, float *out, int n, int impl)
{
    int i = 0, j;
    long fallbacks = 0;
    if (impl == DN_IMPL_AVX2) return dn_logistic_avx2(in, out, n);
    if (impl == DN_IMPL_REFERENCE) {
        for (i = 0; i < n; ++i) out[i] = logistic_activate(in[i]);
        return 0;
    }
    for (; i + 4 <= n; i += 4) {
        double d[4];
        float x[4];
        int ok = 1;
        for (j = 0; j < 4; ++j) x[j] = in[i + j];
        for (j = 0; j < 4; ++j) d[j] = 1./(1. + fast_exp((double)-x[j]));
        for (j = 0; j < 4; ++j) ok &= (fabsf(x[j]) <= 87.0f) & rounds_safely(d[j]);
        if (ok) {
            for (j = 0; j < 4; ++j) out[i + j] = (float)d[j];
            continue;
        }
        for (j = 0; j < 4; ++j) {
            if (fabsf(x[j]) <= 87.0f && rounds_safely(d[j])) {
                out[i + j] = (float)d[j];
            } else {
                out[i + j] = logistic_activate(x[j]);
                ++fallbacks;
            }
        }
    }
    for (; i < n; ++i) fallbacks += dn_logistic_one(in + i, out + i);
    return fallbacks;
}

long dn_exp_box_impl(const float *in, float *out, int n, float scale, int div, int impl)
{
    int i = 0, j;
    long fallbacks = 0;
    if (impl == DN_IMPL_AVX2) return dn_exp_box_avx2(in, out, n, scale, div);
    if (impl == DN_IMPL_REFERENCE) {
        for (i = 0; i < n; ++i) out[i] = exp_box_ref(in[i], scale, div);
        return 0;
    }
    for (; i + 4 <= n; i += 4) {
        double q[4];
        float x[4];
        for (j = 0; j < 4; ++j) x[j] = in[i + j];
        for (j = 0; j < 4; ++j) q[j] = fast_exp((double)x[j]) * scale / div;
        for (j = 0; j < 4; ++j) {
            double a = fabs(q[j]);
            if (fabsf(x[j]) <= 700.0f && a >= 0x1p-125 && a <= 0x1p127 && rounds_safely(q[j])) {
                out[i + j] = (float)q[j];
            } else {
                out[i + j] = exp_box_ref(x[j], scale, div);
                ++fallbacks;
            }
        }
    }
    for (; i < n; ++i) fallbacks += dn_exp_box_one(in + i, out + i, scale, div);
    return fallbacks;
}

long dn_expf_impl(const float *in, float *out, int n, int impl)
{
    int i = 0, j;
    long fallbacks = 0;
    if (impl == DN_IMPL_AVX2) return dn_expf_avx2(in, out, n);
    if (impl == DN_IMPL_REFERENCE) {
        for (i = 0; i < n; ++i) out[i] = (float)exp((double)in[i]);
        return 0;
    }
    for (; i + 4 <= n; i += 4) {
        double e[4];
        float x[4];
        for (j = 0; j < 4; ++j) x[j] = in[i + j];
        for (j = 0; j < 4; ++j) e[j] = fast_exp((double)x[j]);
        for (j = 0; j < 4; ++j) {
            if (fabsf(x[j]) <= 87.0f && rounds_safely(e[j])) {
                out[i + j] = (float)e[j];
            } else {
                out[i + j] = (float)exp((double)x[j]);
                ++fallbacks;
            }
        }
    }
    for (; i < n; ++i) fallbacks += dn_expf_one(in + i, out + i);
    return fallbacks;
}

long logistic_array_path(const float *in, float *out, int n, int path)
{
    if (n <= 0) return 0;
    return dn_logistic_impl(in, out, n, dn_resolve_path(path));
}

long box_size_array_path(const float *in, float *out, int n, float scale, int div, int path)
{
    if (n <= 0 || div == 0) return 0;
    return dn_exp_box_impl(in, out, n, scale, div, dn_resolve_path(path));
}

long expf_array_path(const float *in, float *out, int n, int path)
{
    if (n <= 0) return 0;
    return dn_expf_impl(in, out, n, dn_resolve_path(path));
}

void dn_softplus_tail_impl(const float *x, int n, double *out, int impl)
{
    int i;
    if (impl == DN_IMPL_AVX2) {
        dn_softplus_tail_avx2(x, n, out);
        return;
    }
    for (i = 0; i < n; ++i) out[i] = log1p(exp(-fabs((double)x[i])));
}

void dn_zero_impl(float *p, size_t n, int impl)
{
    if (impl == DN_IMPL_AVX2) {
        dn_zero_avx2(p, n);
        return;
    }
    memset(p, 0, n*sizeof(float));
}

/* ---- best IoU ---------------------------------------------------------------- */

void dn_truths_load(dn_truths *ts, const float *rows, int cols, int max_rows)
{
    int t;
    ts->n = 0;
    for (t = 0; t < max_rows && t < DN_TRUTH_PAD; ++t) {
        box b = float_to_box(rows + t*cols, 1);
        if (!b.x) break;  /* the x == 0 terminator */
        /* overlap(pred, truth)'s l2, r2 and box_union's b.w*b.h, in float. */
        ts->l[t] = b.x - b.w/2;
        ts->r[t] = b.x + b.w/2;
        ts->t[t] = b.y - b.h/2;
        ts->b[t] = b.y + b.h/2;
        ts->area[t] = b.w*b.h;
        ts->n = t + 1;
    }
    for (t = ts->n; t < DN_TRUTH_PAD; ++t) {
        ts->l[t] = ts->r[t] = ts->t[t] = ts->b[t] = ts->area[t] = NAN;
    }
}

/* box_iou(pred, truth k) with pred given by its edges and area: overlap()'s
 * ternaries (which pick the second operand when one is NaN) in their exact
 * form, box_intersection's test, box_union's sum in its order. */
static float iou_with(const dn_truths *ts, int k, float l1, float r1, float t1, float b1, float area1)
{
    float left = l1 > ts->l[k] ? l1 : ts->l[k];
    float right = r1 < ts->r[k] ? r1 : ts->r[k];
    float top = t1 > ts->t[k] ? t1 : ts->t[k];
    float bottom = b1 < ts->b[k] ? b1 : ts->b[k];
    float w = right - left;
    float h = bottom - top;
    float inter = (w < 0 || h < 0) ? 0 : w*h;
    return inter/(area1 + ts->area[k] - inter);
}

void dn_max_iou_impl(const dn_truths *ts, const float *px, const float *py, const float *pw,
                     const float *ph, int count, float *m, int impl)
{
    int k, t;
    if (impl == DN_IMPL_AVX2) {
        dn_max_iou_avx2(ts, px, py, pw, ph, count, m);
        return;
    }
    for (k = 0; k < count; ++k) {
        /* overlap()'s l1, r1 and box_union's a.w*a.h for the prediction. */
        float l1 = px[k] - pw[k]/2, r1 = px[k] + pw[k]/2;
        float t1 = py[k] - ph[k]/2, b1 = py[k] + ph[k]/2;
        float area1 = pw[k]*ph[k];
        float best = 0;
        for (t = 0; t < ts->n; ++t) {
            float iou = iou_with(ts, t, l1, r1, t1, b1, area1);
            if (iou > best) best = iou;
        }
        m[k] = best;
    }
}
