/*
 * ab_fast.c -- AlexeyAB's float logistic with libm's bits, fast, and the
 * proof that it returns them (the kernel itself, AVX2+FMA, is in
 * ab_fast_avx2.c); the ignore loop's best IoU (portable; AVX2 there too).
 *
 * The reference expression (x a float; float arithmetic; expf is the C
 * library's):
 *
 *   logistic   1.f/(1.f + expf(-x))                AlexeyAB's activations.h
 *
 * Unlike pjreddie's logistic (fast.c), whose exp runs in double and is
 * rounded to float once at the end, here expf itself returns a float, so
 * the argument has to be about expf's own rounding.  Once expf(-x) is known
 * bit for bit, 1.f + f and 1.f/(...) are single IEEE float operations,
 * which every path performs identically.
 *
 * ---- The argument -----------------------------------------------------------
 *
 * Write u = 2^-53 (the unit roundoff of double), t = -x (exact, as a double)
 * and E = exp(t) for the exact real exponential.
 *
 * (G) libm's expf.  Premise: expf(t) is the float nearest to a double y
 *     with |y - E| <= eps_g E, eps_g <= 2^-31.5.  This is glibc's expf since
 *     2.27 (sysdeps/ieee754/flt-32/e_expf.c, shared with musl and ARM's
 *     optimized-routines) for |t| < 88, the path every t below takes: y is
 *     computed in double as 2^(k/32) * p(r) (a 32-entry table of 2^(i/32),
 *     a degree-3 polynomial) and returned as (float)y.  Its stated error
 *     before that rounding is 1.69 * 2^-34 (the polynomial on the reduced
 *     interval); the reduction z = x*(32/ln2), whose rounding moves the
 *     exponent by at most 4096*2^-52 and so E by a relative 2^-45.5, the
 *     table entries (one rounding each) and the five double operations of
 *     the evaluation add less than 2^-45 more: eps_g < 2^-33.2, a factor
 *     3.2 inside the premise.  That holds with or without fused
 *     multiply-adds (glibc picks an FMA build of the same code on CPUs that
 *     have them: a fused operation only removes roundings).  A correctly
 *     rounded expf satisfies the premise too (eps_g = 0).
 *     ab_expf_premise() takes the fast path only on glibc 2.27 or later
 *     (checked where the core is compiled and again where it runs);
 *     anywhere else every element calls libm.
 *
 * (F) The fast exp (exp4 in ab_fast_avx2.c, four doubles at a time, with
 *     fused multiply-adds).  For |t| <= 87, with k = the integer nearest to
 *     t*INVLN2 (one rounding of t*INVLN2 + 1.5*2^52; |k| <= 126) and r =
 *     t - k ln2 (|r| <= ln2*(1/2 + 2^-46) < 0.3466), it returns 2^k * P(r~)
 *     where
 *       - r~ = fma(-k, LN2_LO, fma(-k, LN2_HI, t)).  LN2_HI has 32
 *         significant bits, so t - k*LN2_HI is exact: both terms are
 *         multiples of 2^-32 where k != 0 (t is then a float of magnitude
 *         above 0.34) and their difference is below 1.  The second fma
 *         rounds once, and LN2_HI + LN2_LO is ln2 within 2^-86:
 *         |r~ - r| <= u*0.35 + 126*2^-86 < 2^-54, a relative error below
 *         2^-53.9 in exp(r);
 *       - P is the degree-10 Taylor polynomial of exp: for |r| <= 0.3466
 *         the truncation error is at most e^0.3466 * 0.3466^11/11! <
 *         3.1e-13, below 4.4e-13 < 2^-41 relative to e^r >= e^-0.3466;
 *       - P is evaluated by Estrin's scheme with fused multiply-adds (r^2,
 *         r^4, r^8; pairs c_2m + c_2m+1 r; then combined by those powers).
 *         Each term c_i r^i of the computed sum carries at most 10
 *         roundings (c_8 r^8 .. c_10 r^10: 7 in r^8, 2 in c, 1 in the last
 *         fma), so the computed value is sum c_i r^i (1 + theta_i) with
 *         |theta_i| <= gamma_10 = 10u/(1 - 10u) (Higham, Accuracy and
 *         Stability of Numerical Algorithms, Lemma 3.1): an error at most
 *         10.1u * e^0.3466 (all c_i > 0), below 20.2u = 2^-48.6 relative to
 *         e^r.  The coefficients 1/i! rounded to double add at most
 *         u * e^0.3466 absolute, 2^-52 relative;
 *       - the scaling by 2^k is exact (2^-127 < 2^k P < 2^127: a normal
 *         double).
 *     So |z - E| <= eps_f E for z = exp4(t), eps_f < 2^-41 + 2^-48.6 +
 *     2^-52 + 2^-53.9 < 2^-40.9.
 *
 * (C) The check.  E lies in [e^-87, e^87] = [1.6e-38, 6.1e37], inside the
 *     normal floats, and so do y and z, within a relative 2^-31.5 of it.
 *     Round-to-nearest to float changes value only across a
 *     midpoint between two consecutive floats.  With 2^e <= z < 2^(e+1),
 *     the midpoints in z's binade sit where the low 29 bits of z's 52-bit
 *     significand equal 2^28; the nearest ones outside the binade are at
 *     least 2^(e-25) = 2^27 ULPs of z away, and the powers of two between
 *     binades are floats, not midpoints.  Now
 *         |z - y| <= |z - E| + |E - y| <= (eps_f + eps_g) E
 *                 <= (2^-40.9 + 2^-31.5)(1 + 2^-40) z < 2^-31.49 * 2^(e+1),
 *     which is below K = 2^22 ULPs of z (ulp(z) = 2^(e-52)), as 2^(e-30.49)
 *     < 2^(e-30).  So if z's low 29 bits differ from 2^28 by more than K, no
 *     midpoint lies between z and y (nor on either), and (float)z ==
 *     (float)y == expf(t): the reference's bits.  About 2K/2^29 = 1/64 of
 *     the elements fail the check and are computed by libm.  (The margin is
 *     wide on purpose: it leaves room for a libm whose expf errs three times
 *     more than glibc's.)
 *
 * (X) Elements outside the argument go to libm by design: NaN, infinities
 *     and |x| > 87 (where expf leaves the normal range or takes its special
 *     branches).
 *
 * Then 1.f + f and 1.f/(...) are the reference's own float operations on the
 * reference's own float.  The argument assumes the default floating-point
 * environment (round to nearest, no flush-to-zero), as the reference
 * arithmetic itself does.  scripts/check_ab_logistic.py checks the AVX2
 * kernels (expf and the logistic) against libm on all 2^32 float inputs
 * (result: scripts/ab_logistic_exhaustive.txt); the tests check a strided
 * subset on every run.
 */
#include <limits.h>  /* on glibc: <features.h>, which defines __GLIBC__ */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GLIBC__)
#include <gnu/libc-version.h>
#endif

#include "ab_fast.h"
#include "darknet_loss.h"

int ab_expf_premise(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 27))
    const char *v = gnu_get_libc_version();
    char *end;
    long major = strtol(v, &end, 10), minor = 0;
    if (*end == '.') minor = strtol(end + 1, NULL, 10);
    return major > 2 || (major == 2 && minor >= 27);
#else
    return 0;
#endif
}

/* Only the AVX2 kernel is fast: the portable path calls libm, whose scalar
 * expf (glibc's: a 32-entry table and a cubic, in double) is already
 * faster than any scalar double polynomial precise enough for check (C). */
long ab_logistic_impl(const float *in, float *out, int n, int impl)
{
    int i;
    if (impl == DN_IMPL_AVX2 && ab_expf_premise()) return ab_logistic_avx2(in, out, n);
    for (i = 0; i < n; ++i) out[i] = ab_logistic_activate(in[i]);
    return n > 0 ? n : 0;
}

long ab_expf_impl(const float *in, float *out, int n, int impl)
{
    int i;
    if (impl == DN_IMPL_AVX2 && ab_expf_premise()) return ab_expf_avx2(in, out, n);
    for (i = 0; i < n; ++i) out[i] = expf(in[i]);
    return n > 0 ? n : 0;
}

long ab_logistic_array_path(const float *in, float *out, int n, int path)
{
    if (n <= 0) return 0;
    return ab_logistic_impl(in, out, n, dn_resolve_path(path));
}

long ab_expf_array_path(const float *in, float *out, int n, int path)
{
    if (n <= 0) return 0;
    return ab_expf_impl(in, out, n, dn_resolve_path(path));
}

/* ---- the ignore loop's best IoU -------------------------------------------------
 *
 * ab_box_iou(pred, truth) is box_intersection / box_union with AlexeyAB's
 * guard: overlap()'s edges l = x - w/2, r = x + w/2 and ternaries (the
 * prediction first), 0 when the width or height is negative, the union as
 * (pred.w*pred.h + truth.w*truth.h) - inter, and 0 when inter or the union
 * is 0.  Here the same operations run on edges computed once per box (the
 * same expressions, so the same floats), and each cell keeps `if (iou >
 * best) best = iou` over the truths in row order: nothing is reordered. */
static float iou_edges(float l1, float r1, float t1, float b1, float area1, float l2, float r2, float t2,
                       float b2, float area2)
{
    float left = l1 > l2 ? l1 : l2;
    float right = r1 < r2 ? r1 : r2;
    float top = t1 > t2 ? t1 : t2;
    float bottom = b1 < b2 ? b1 : b2;
    float w = right - left;
    float h = bottom - top;
    float inter = (w < 0 || h < 0) ? 0 : w*h;
    float uni = area1 + area2 - inter;
    if (inter == 0 || uni == 0) return 0;
    return inter/uni;
}

void ab_max_iou_impl(const ab_truth_edges *ts, const float *px, const float *py, const float *pw,
                     const float *ph, int count, float *m, int impl)
{
    int k, t;
    if (impl == DN_IMPL_AVX2) {
        ab_max_iou_avx2(ts, px, py, pw, ph, count, m);
        return;
    }
    for (k = 0; k < count; ++k) {
        const float l1 = px[k] - pw[k]/2, r1 = px[k] + pw[k]/2;
        const float t1 = py[k] - ph[k]/2, b1 = py[k] + ph[k]/2;
        const float area1 = pw[k]*ph[k];
        float best = 0;
        for (t = 0; t < ts->n; ++t) {
            float iou = iou_edges(l1, r1, t1, b1, area1, ts->l[t], ts->r[t], ts->t[t], ts->b[t], ts->area[t]);
            if (iou > best) best = iou;
        }
        m[k] = best;
    }
}
