/*
 * ab_fast_avx2.c -- the AVX2+FMA versions of ab_fast.c's kernels, compiled
 * for those instructions by function attribute (the build's flags stay the
 * strict ones) and called only when the CPU reports both (dn_cpu_has_avx2).
 *
 * The logistic: the kernel ab_fast.c's argument is about (exp4 is its (F),
 * safe4 its check (C), and every lane outside (X) or failing (C) is
 * recomputed by libm).
 *
 * The best IoU: the very float operations of ab_box_iou lane by lane.
 */
#include "ab_fast.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#define AVX2 __attribute__((target("avx2,fma")))

/* exp(t) on four doubles, |t| <= 87, within a relative 2^-40.9 (ab_fast.c,
 * (F)): Cody-Waite reduction by ln2, the degree-10 Taylor polynomial by
 * Estrin's scheme, scaling by 2^k. */
AVX2 static inline __m256d exp4(__m256d t)
{
    const __m256d shift = _mm256_set1_pd(0x1.8p52);
    const __m256d kd = _mm256_fmadd_pd(t, _mm256_set1_pd(0x1.71547652b82fep0), shift);
    const __m256d k = _mm256_sub_pd(kd, shift);
    __m256d r = _mm256_fnmadd_pd(k, _mm256_set1_pd(0x1.62e42fee00000p-1), t);
    __m256d r2, r4, r8, a, b, c, p;
    __m256i ki;
    r = _mm256_fnmadd_pd(k, _mm256_set1_pd(0x1.a39ef35793c76p-33), r);
    r2 = _mm256_mul_pd(r, r);
    r4 = _mm256_mul_pd(r2, r2);
    r8 = _mm256_mul_pd(r4, r4);
    /* (C0 + C1 r) + r2 (C2 + C3 r), (C4 + C5 r) + r2 (C6 + C7 r), (C8 + C9 r) + r2 C10 */
    a = _mm256_fmadd_pd(r2, _mm256_fmadd_pd(r, _mm256_set1_pd(0x1.5555555555555p-3), _mm256_set1_pd(0.5)),
                        _mm256_fmadd_pd(r, _mm256_set1_pd(1.0), _mm256_set1_pd(1.0)));
    b = _mm256_fmadd_pd(r2, _mm256_fmadd_pd(r, _mm256_set1_pd(0x1.a01a01a01a01ap-13),
                                            _mm256_set1_pd(0x1.6c16c16c16c17p-10)),
                        _mm256_fmadd_pd(r, _mm256_set1_pd(0x1.1111111111111p-7), _mm256_set1_pd(0x1.5555555555555p-5)));
    c = _mm256_fmadd_pd(r2, _mm256_set1_pd(0x1.27e4fb7789f5cp-22),
                        _mm256_fmadd_pd(r, _mm256_set1_pd(0x1.71de3a556c734p-19), _mm256_set1_pd(0x1.a01a01a01a01ap-16)));
    p = _mm256_fmadd_pd(r8, c, _mm256_fmadd_pd(r4, b, a));
    /* 2^k: k is the low bits of kd = 1.5*2^52 + k */
    ki = _mm256_sub_epi64(_mm256_castpd_si256(kd), _mm256_castpd_si256(shift));
    ki = _mm256_slli_epi64(_mm256_add_epi64(ki, _mm256_set1_epi64x(1023)), 52);
    return _mm256_mul_pd(p, _mm256_castsi256_pd(ki));
}

/* Check (C) of ab_fast.c on four doubles: all-ones in the lanes whose low 29
 * significand bits are more than K = 2^22 from 2^28. */
AVX2 static inline __m256i safe4(__m256d z)
{
    const __m256i low = _mm256_and_si256(_mm256_castpd_si256(z), _mm256_set1_epi64x((1 << 29) - 1));
    const __m256i d = _mm256_sub_epi64(low, _mm256_set1_epi64x((1 << 28) - (1 << 22)));
    /* reject 0 <= d <= 2K: safe where d < 0 or d > 2K (d fits 30 bits signed) */
    const __m256i below = _mm256_cmpgt_epi64(_mm256_setzero_si256(), d);
    const __m256i above = _mm256_cmpgt_epi64(d, _mm256_set1_epi64x(2 << 22));
    return _mm256_or_si256(below, above);
}

/* The float results (expf(t) lane by lane) of eight t = sign*in[i], and
 * which lanes are proved: bit k of the returned mask set where lane k must
 * go to libm. */
AVX2 static inline int expf8(__m256 x, int negate, __m256 *f)
{
    const __m256 absx = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    /* |x| <= 87 (false for NaN) */
    const __m256 inrange = _mm256_cmp_ps(absx, _mm256_set1_ps(87.0f), _CMP_LE_OQ);
    __m256 t = negate ? _mm256_xor_ps(x, _mm256_set1_ps(-0.0f)) : x;
    __m256d lo, hi;
    __m256i slo, shi;
    __m128 flo, fhi;
    int ok;
    /* out-of-range lanes compute on 0 and are replaced by libm */
    t = _mm256_and_ps(t, inrange);
    lo = exp4(_mm256_cvtps_pd(_mm256_castps256_ps128(t)));
    hi = exp4(_mm256_cvtps_pd(_mm256_extractf128_ps(t, 1)));
    slo = safe4(lo);
    shi = safe4(hi);
    flo = _mm256_cvtpd_ps(lo);
    fhi = _mm256_cvtpd_ps(hi);
    *f = _mm256_insertf128_ps(_mm256_castps128_ps256(flo), fhi, 1);
    ok = _mm256_movemask_pd(_mm256_castsi256_pd(slo)) | (_mm256_movemask_pd(_mm256_castsi256_pd(shi)) << 4);
    ok &= _mm256_movemask_ps(inrange);
    return ~ok & 0xff;
}

AVX2 long ab_logistic_avx2(const float *in, float *out, int n)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    long fallbacks = 0;
    int i = 0, k;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(in + i);
        __m256 f;
        const int bad = expf8(x, 1, &f);
        /* 1.f/(1.f + f): the reference's two float operations */
        _mm256_storeu_ps(out + i, _mm256_div_ps(one, _mm256_add_ps(one, f)));
        if (bad) {
            float xs[8];
            _mm256_storeu_ps(xs, x);
            for (k = 0; k < 8; ++k) {
                if (bad >> k & 1) {
                    out[i + k] = ab_logistic_activate(xs[k]);
                    ++fallbacks;
                }
            }
        }
    }
    for (; i < n; ++i, ++fallbacks) out[i] = ab_logistic_activate(in[i]);
    return fallbacks;
}

AVX2 long ab_expf_avx2(const float *in, float *out, int n)
{
    long fallbacks = 0;
    int i = 0, k;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(in + i);
        __m256 f;
        const int bad = expf8(x, 0, &f);
        _mm256_storeu_ps(out + i, f);
        if (bad) {
            float xs[8];
            _mm256_storeu_ps(xs, x);
            for (k = 0; k < 8; ++k) {
                if (bad >> k & 1) {
                    out[i + k] = expf(xs[k]);
                    ++fallbacks;
                }
            }
        }
    }
    for (; i < n; ++i, ++fallbacks) out[i] = expf(in[i]);
    return fallbacks;
}

/* Eight predictions per vector against one truth at a time, truths in row
 * order.  vmaxps(a, b) is (a > b) ? a : b and vminps(a, b) is (a < b) ? a :
 * b, the second operand when either is NaN: exactly overlap()'s ternaries
 * with the prediction first.  _CMP_LT_OQ and _CMP_EQ_OQ are C's < and ==
 * (false with a NaN).  w/2 is computed as w*0.5f: the same real number,
 * so the same float.  Each lane keeps max(iou, best) = (iou > best) ? iou :
 * best, upstream's `if (iou > best_iou) best_iou = iou`. */
AVX2 void ab_max_iou_avx2(const ab_truth_edges *ts, const float *px, const float *py, const float *pw,
                          const float *ph, int count, float *m)
{
    const __m256 half = _mm256_set1_ps(0.5f);
    const __m256 zero = _mm256_setzero_ps();
    int k = 0, t;
    for (; k + 8 <= count; k += 8) {
        const __m256 x = _mm256_loadu_ps(px + k), y = _mm256_loadu_ps(py + k);
        const __m256 w = _mm256_loadu_ps(pw + k), h = _mm256_loadu_ps(ph + k);
        const __m256 w2 = _mm256_mul_ps(w, half), h2 = _mm256_mul_ps(h, half);
        const __m256 l1 = _mm256_sub_ps(x, w2), r1 = _mm256_add_ps(x, w2);
        const __m256 t1 = _mm256_sub_ps(y, h2), b1 = _mm256_add_ps(y, h2);
        const __m256 area1 = _mm256_mul_ps(w, h);
        __m256 best = zero;
        for (t = 0; t < ts->n; ++t) {
            const __m256 ow = _mm256_sub_ps(_mm256_min_ps(r1, _mm256_set1_ps(ts->r[t])),
                                            _mm256_max_ps(l1, _mm256_set1_ps(ts->l[t])));
            const __m256 oh = _mm256_sub_ps(_mm256_min_ps(b1, _mm256_set1_ps(ts->b[t])),
                                            _mm256_max_ps(t1, _mm256_set1_ps(ts->t[t])));
            const __m256 apart = _mm256_or_ps(_mm256_cmp_ps(ow, zero, _CMP_LT_OQ), _mm256_cmp_ps(oh, zero, _CMP_LT_OQ));
            const __m256 inter = _mm256_andnot_ps(apart, _mm256_mul_ps(ow, oh));
            const __m256 uni = _mm256_sub_ps(_mm256_add_ps(area1, _mm256_set1_ps(ts->area[t])), inter);
            /* AlexeyAB's guard: 0 where inter == 0 or uni == 0 */
            const __m256 guard = _mm256_or_ps(_mm256_cmp_ps(inter, zero, _CMP_EQ_OQ),
                                              _mm256_cmp_ps(uni, zero, _CMP_EQ_OQ));
            const __m256 iou = _mm256_andnot_ps(guard, _mm256_div_ps(inter, uni));
            best = _mm256_max_ps(iou, best);
        }
        _mm256_storeu_ps(m + k, best);
    }
    if (k < count) ab_max_iou_impl(ts, px + k, py + k, pw + k, ph + k, count - k, m + k, DN_IMPL_PORTABLE);
}

#else

/* Without x86-64 intrinsics dn_cpu_has_avx2() is 0 and these never run;
 * they defer to the portable kernels all the same. */
long ab_logistic_avx2(const float *in, float *out, int n)
{
    return ab_logistic_impl(in, out, n, DN_IMPL_PORTABLE);
}

long ab_expf_avx2(const float *in, float *out, int n)
{
    return ab_expf_impl(in, out, n, DN_IMPL_PORTABLE);
}

void ab_max_iou_avx2(const ab_truth_edges *ts, const float *px, const float *py, const float *pw,
                     const float *ph, int count, float *m)
{
    ab_max_iou_impl(ts, px, py, pw, ph, count, m, DN_IMPL_PORTABLE);
}

#endif
