/*
 * fast_avx2.c -- the AVX2+FMA versions of fast.c's kernels, compiled
 * for those instructions by function attribute (the build's flags stay the
 * strict ones) and called only when the CPU reports both (dn_cpu_has_avx2).
 *
 * Same algorithm, same range tests, same check (C) and the same libm fallback
 * as fast.c, whose argument covers these kernels as written: the fused
 * multiply-adds in the argument reduction and in Horner's rule round once
 * where the portable kernel rounds twice, so the error bound (F) holds a
 * fortiori.  The intermediate doubles may differ from the portable kernel's
 * in their last bits; the floats returned cannot, since both equal the
 * reference's wherever check (C) passes, and elsewhere both return the
 * reference's own result.
 */
#include "dn_fast.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#define AVX2 __attribute__((target("avx2,fma")))

int dn_cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* fast.c's fast_exp on four doubles (|y| <= 700). */
AVX2 static inline __m256d exp4(__m256d y)
{
    const __m256d shift = _mm256_set1_pd(0x1.8p52);
    __m256d kd = _mm256_add_pd(_mm256_mul_pd(y, _mm256_set1_pd(0x1.71547652b82fep0)), shift);
    __m256d k = _mm256_sub_pd(kd, shift);
    __m256d r = _mm256_fnmadd_pd(k, _mm256_set1_pd(0x1.62e42fee00000p-1), y);
    __m256d p;
    __m256d r2, r4, r8, lo, hi;
    __m256i ki;
    r = _mm256_fnmadd_pd(k, _mm256_set1_pd(0x1.a39ef35793c76p-33), r);
    /* Estrin's scheme, as fast.c's fast_exp. */
    r2 = _mm256_mul_pd(r, r);
    r4 = _mm256_mul_pd(r2, r2);
    r8 = _mm256_mul_pd(r4, r4);
    lo = _mm256_fmadd_pd(r4,
                         _mm256_fmadd_pd(r2, _mm256_fmadd_pd(r, _mm256_set1_pd(0x1.a01a01a01a01ap-13),
                                                             _mm256_set1_pd(0x1.6c16c16c16c17p-10)),
                                         _mm256_fmadd_pd(r, _mm256_set1_pd(0x1.1111111111111p-7),
                                                         _mm256_set1_pd(0x1.5555555555555p-5))),
                         _mm256_fmadd_pd(r2, _mm256_fmadd_pd(r, _mm256_set1_pd(0x1.5555555555555p-3),
                                                             _mm256_set1_pd(0.5)),
                                         _mm256_fmadd_pd(r, _mm256_set1_pd(1.0), _mm256_set1_pd(1.0))));
    hi = _mm256_mul_pd(r8, _mm256_fmadd_pd(r2, _mm256_fmadd_pd(r, _mm256_set1_pd(0x1.ae64567f544e4p-26),
                                                                _mm256_set1_pd(0x1.27e4fb7789f5cp-22)),
                                           _mm256_fmadd_pd(r, _mm256_set1_pd(0x1.71de3a556c734p-19),
                                                           _mm256_set1_pd(0x1.a01a01a01a01ap-16))));
    p = _mm256_add_pd(lo, hi);
    /* k as an integer: the low bits of kd = 1.5*2^52 + k. */
    ki = _mm256_sub_epi64(_mm256_castpd_si256(kd), _mm256_castpd_si256(shift));
    ki = _mm256_slli_epi64(_mm256_add_epi64(ki, _mm256_set1_epi64x(1023)), 52);
    return _mm256_mul_pd(p, _mm256_castsi256_pd(ki));
}

/* Check (C) on four doubles: a 4-bit mask of the lanes that FAIL it (a float
 * midpoint within CHECK_K ULPs). */
AVX2 static inline int unsafe4(__m256d v)
{
    const __m256i k = _mm256_set1_epi64x(1024);
    __m256i low = _mm256_and_si256(_mm256_castpd_si256(v), _mm256_set1_epi64x(0x1fffffff));
    __m256i off = _mm256_sub_epi64(low, _mm256_set1_epi64x(0x10000000));
    /* fail when -K <= off <= K */
    __m256i above = _mm256_cmpgt_epi64(off, k);
    __m256i below = _mm256_cmpgt_epi64(_mm256_sub_epi64(_mm256_setzero_si256(), k), off);
    return 0xf & ~_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_or_si256(above, below)));
}

/* A lane mask (8 bits) of |x| <= lim (false for NaN). */
AVX2 static inline int in_range8(__m256 x, float lim)
{
    __m256 a = _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
    return _mm256_movemask_ps(_mm256_cmp_ps(a, _mm256_set1_ps(lim), _CMP_LE_OQ));
}

AVX2 static inline __m256 join(__m128 lo, __m128 hi)
{
    return _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
}

AVX2 long dn_logistic_avx2(const float *in, float *out, int n)
{
    const __m256d one = _mm256_set1_pd(1.0);
    const __m256d sign = _mm256_set1_pd(-0.0);
    long fallbacks = 0;
    int i = 0, j;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(in + i);
        /* y = (double)-x: negation is exact in float and in double alike. */
        __m256d y0 = _mm256_xor_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), sign);
        __m256d y1 = _mm256_xor_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), sign);
        __m256d d0 = _mm256_div_pd(one, _mm256_add_pd(one, exp4(y0)));
        __m256d d1 = _mm256_div_pd(one, _mm256_add_pd(one, exp4(y1)));
        int fix = (~in_range8(x, 87.0f) | unsafe4(d0) | unsafe4(d1) << 4) & 0xff;
        if (fix) {
            float xs[8];
            _mm256_storeu_ps(xs, x);
            _mm256_storeu_ps(out + i, join(_mm256_cvtpd_ps(d0), _mm256_cvtpd_ps(d1)));
            for (j = 0; j < 8; ++j) {
                if (fix >> j & 1) {
                    out[i + j] = logistic_activate(xs[j]);
                    ++fallbacks;
                }
            }
        } else {
            _mm256_storeu_ps(out + i, join(_mm256_cvtpd_ps(d0), _mm256_cvtpd_ps(d1)));
        }
    }
    for (; i < n; ++i) fallbacks += dn_logistic_one(in + i, out + i);
    return fallbacks;
}

AVX2 long dn_exp_box_avx2(const float *in, float *out, int n, float scale, int div)
{
    long fallbacks = 0;
    const __m256d s = _mm256_set1_pd((double)scale);
    const __m256d d = _mm256_set1_pd((double)div);
    const __m256d absmask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
    const __m256d lo = _mm256_set1_pd(0x1p-125), hi = _mm256_set1_pd(0x1p127);
    int i = 0, j;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(in + i);
        __m256d q0 = _mm256_div_pd(_mm256_mul_pd(exp4(_mm256_cvtps_pd(_mm256_castps256_ps128(x))), s), d);
        __m256d q1 = _mm256_div_pd(_mm256_mul_pd(exp4(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1))), s), d);
        __m256d a0 = _mm256_and_pd(q0, absmask), a1 = _mm256_and_pd(q1, absmask);
        int ok0 = _mm256_movemask_pd(_mm256_and_pd(_mm256_cmp_pd(a0, lo, _CMP_GE_OQ),
                                                   _mm256_cmp_pd(a0, hi, _CMP_LE_OQ)));
        int ok1 = _mm256_movemask_pd(_mm256_and_pd(_mm256_cmp_pd(a1, lo, _CMP_GE_OQ),
                                                   _mm256_cmp_pd(a1, hi, _CMP_LE_OQ)));
        int fix = (~(in_range8(x, 700.0f) & (ok0 | ok1 << 4)) | unsafe4(q0) | unsafe4(q1) << 4) & 0xff;
        float xs[8];
        if (fix) _mm256_storeu_ps(xs, x);
        _mm256_storeu_ps(out + i, join(_mm256_cvtpd_ps(q0), _mm256_cvtpd_ps(q1)));
        for (j = 0; fix && j < 8; ++j) {
            if (fix >> j & 1) {
                out[i + j] = (float)(exp((double)xs[j]) * scale / div);
                ++fallbacks;
            }
        }
    }
    for (; i < n; ++i) fallbacks += dn_exp_box_one(in + i, out + i, scale, div);
    return fallbacks;
}

AVX2 long dn_expf_avx2(const float *in, float *out, int n)
{
    long fallbacks = 0;
    int i = 0, j;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(in + i);
        __m256d e0 = exp4(_mm256_cvtps_pd(_mm256_castps256_ps128(x)));
        __m256d e1 = exp4(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)));
        int fix = (~in_range8(x, 87.0f) | unsafe4(e0) | unsafe4(e1) << 4) & 0xff;
        float xs[8];
        if (fix) _mm256_storeu_ps(xs, x);
        _mm256_storeu_ps(out + i, join(_mm256_cvtpd_ps(e0), _mm256_cvtpd_ps(e1)));
        for (j = 0; fix && j < 8; ++j) {
            if (fix >> j & 1) {
                out[i + j] = (float)exp((double)xs[j]);
                ++fallbacks;
            }
        }
    }
    for (; i < n; ++i) fallbacks += dn_expf_one(in + i, out + i);
    return fallbacks;
}

/* Eight predictions per vector against one truth at a time.  vmaxps(a, b)
 * is (a > b) ? a : b and vminps(a, b) is (a < b) ? a : b, the second operand
 * when either is NaN: exactly overlap()'s ternaries with the prediction
 * first.  Each lane keeps max(iou, best) the same way, so a NaN IoU leaves
 * best as it is, as upstream's `iou > best_iou` does. */
AVX2 void dn_max_iou_avx2(const dn_truths *ts, const float *px, const float *py, const float *pw,
                          const float *ph, int count, float *m)
{
    const __m256 half = _mm256_set1_ps(2.0f);
    const __m256 zero = _mm256_setzero_ps();
    int k = 0, t;
    for (; k + 8 <= count; k += 8) {
        __m256 x = _mm256_loadu_ps(px + k), y = _mm256_loadu_ps(py + k);
        __m256 w = _mm256_loadu_ps(pw + k), h = _mm256_loadu_ps(ph + k);
        __m256 w2 = _mm256_div_ps(w, half), h2 = _mm256_div_ps(h, half);
        __m256 l1 = _mm256_sub_ps(x, w2), r1 = _mm256_add_ps(x, w2);
        __m256 t1 = _mm256_sub_ps(y, h2), b1 = _mm256_add_ps(y, h2);
        __m256 area1 = _mm256_mul_ps(w, h);
        __m256 best = zero;
        for (t = 0; t < ts->n; ++t) {
            __m256 ow = _mm256_sub_ps(_mm256_min_ps(r1, _mm256_set1_ps(ts->r[t])),
                                      _mm256_max_ps(l1, _mm256_set1_ps(ts->l[t])));
            __m256 oh = _mm256_sub_ps(_mm256_min_ps(b1, _mm256_set1_ps(ts->b[t])),
                                      _mm256_max_ps(t1, _mm256_set1_ps(ts->t[t])));
            __m256 apart = _mm256_or_ps(_mm256_cmp_ps(ow, zero, _CMP_LT_OQ), _mm256_cmp_ps(oh, zero, _CMP_LT_OQ));
            __m256 inter = _mm256_andnot_ps(apart, _mm256_mul_ps(ow, oh));
            __m256 uni = _mm256_sub_ps(_mm256_add_ps(area1, _mm256_set1_ps(ts->area[t])), inter);
            best = _mm256_max_ps(_mm256_div_ps(inter, uni), best);
        }
        _mm256_storeu_ps(m + k, best);
    }
    if (k < count) dn_max_iou_impl(ts, px + k, py + k, pw + k, ph + k, count - k, m + k, DN_IMPL_PORTABLE);
}

/* region_layer.c's softmax over `entries` planes (stride wh) for cells
 * [c0, c0 + count), temperature 1, count <= 256: the same float operations
 * lane by lane -- largest as (x > l) ? x : l (vmaxps), z = x - largest, e =
 * the expf kernel, sum += e in entry order (dn_add_acc's NaN rule), e / sum
 * -- eight cells at a time. */
AVX2 void dn_softmax_cells_avx2(const float *in, float *out, int entries, int wh, int c0, int count)
{
    float largest[256], sum[256], z[256];
    int e, k;
    for (k = 0; k < count; ++k) {
        largest[k] = -FLT_MAX;
        sum[k] = 0;
    }
    for (e = 0; e < entries; ++e) {
        const float *x = in + (size_t)e*wh + c0;
        for (k = 0; k + 8 <= count; k += 8) {
            _mm256_storeu_ps(largest + k, _mm256_max_ps(_mm256_loadu_ps(x + k), _mm256_loadu_ps(largest + k)));
        }
        for (; k < count; ++k) {
            if (x[k] > largest[k]) largest[k] = x[k];
        }
    }
    for (e = 0; e < entries; ++e) {
        const float *x = in + (size_t)e*wh + c0;
        float *y = out + (size_t)e*wh + c0;
        for (k = 0; k + 8 <= count; k += 8) {
            _mm256_storeu_ps(z + k, _mm256_sub_ps(_mm256_loadu_ps(x + k), _mm256_loadu_ps(largest + k)));
        }
        for (; k < count; ++k) z[k] = x[k] - largest[k];
        dn_expf_avx2(z, y, count);
        for (k = 0; k + 8 <= count; k += 8) {
            /* sum + e, keeping sum's NaN when both are NaN (dn_add_acc) */
            __m256 sm = _mm256_loadu_ps(sum + k);
            __m256 nan = _mm256_cmp_ps(sm, sm, _CMP_UNORD_Q);
            _mm256_storeu_ps(sum + k, _mm256_blendv_ps(_mm256_add_ps(sm, _mm256_loadu_ps(y + k)), sm, nan));
        }
        for (; k < count; ++k) sum[k] = dn_add_acc(sum[k], y[k]);
    }
    for (e = 0; e < entries; ++e) {
        float *y = out + (size_t)e*wh + c0;
        for (k = 0; k + 8 <= count; k += 8) {
            _mm256_storeu_ps(y + k, _mm256_div_ps(_mm256_loadu_ps(y + k), _mm256_loadu_ps(sum + k)));
        }
        for (; k < count; ++k) y[k] /= sum[k];
    }
}

/* log1p(exp(-|x|)): z = exp4(-|x|) (relative error 2^-45), then log1p(z)
 * as log(w) * z/(w - 1) with w = 1 + z (Goldberg's correction for the
 * rounding of w; w - 1 is exact), log(w) = k ln2 + 2 atanh(s) with s =
 * (m - 1)/(m + 1), m = w or w/2 in [0.707, 1.414], |s| <= 0.1716, the atanh
 * series to s^19 (truncation below 2.5e-17).  Lanes with |x| > 700 or NaN
 * take libm. */
AVX2 void dn_softplus_tail_avx2(const float *x, int n, double *out)
{
    const __m256d one = _mm256_set1_pd(1.0), half = _mm256_set1_pd(0.5);
    const __m256d absmask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
    int i = 0, j;
    for (; i + 4 <= n; i += 4) {
        __m256d xd = _mm256_cvtps_pd(_mm_loadu_ps(x + i));
        __m256d a = _mm256_and_pd(xd, absmask);
        int ok = _mm256_movemask_pd(_mm256_cmp_pd(a, _mm256_set1_pd(700.0), _CMP_LE_OQ));
        __m256d z = exp4(_mm256_sub_pd(_mm256_setzero_pd(), a));
        __m256d w = _mm256_add_pd(one, z);
        __m256d wm1 = _mm256_sub_pd(w, one);
        __m256d big = _mm256_cmp_pd(w, _mm256_set1_pd(0x1.6a09e667f3bcdp0), _CMP_GT_OQ);
        __m256d m = _mm256_blendv_pd(w, _mm256_mul_pd(w, half), big);
        __m256d k = _mm256_and_pd(big, _mm256_set1_pd(0x1.62e42fefa39efp-1));
        __m256d s = _mm256_div_pd(_mm256_sub_pd(m, one), _mm256_add_pd(m, one));
        __m256d s2 = _mm256_mul_pd(s, s), s4 = _mm256_mul_pd(s2, s2), s8 = _mm256_mul_pd(s4, s4);
        __m256d p0 = _mm256_fmadd_pd(s2, _mm256_set1_pd(1/3.), one);
        __m256d p1 = _mm256_fmadd_pd(s2, _mm256_set1_pd(1/7.), _mm256_set1_pd(1/5.));
        __m256d p2 = _mm256_fmadd_pd(s2, _mm256_set1_pd(1/11.), _mm256_set1_pd(1/9.));
        __m256d p3 = _mm256_fmadd_pd(s2, _mm256_set1_pd(1/15.), _mm256_set1_pd(1/13.));
        __m256d p4 = _mm256_fmadd_pd(s2, _mm256_set1_pd(1/19.), _mm256_set1_pd(1/17.));
        __m256d p = _mm256_fmadd_pd(s8, _mm256_fmadd_pd(s8, p4, _mm256_fmadd_pd(s4, p3, p2)),
                                    _mm256_fmadd_pd(s4, p1, p0));
        __m256d lg = _mm256_fmadd_pd(_mm256_add_pd(s, s), p, k);
        __m256d tail = _mm256_mul_pd(lg, _mm256_div_pd(z, wm1));
        tail = _mm256_blendv_pd(tail, z, _mm256_cmp_pd(wm1, _mm256_setzero_pd(), _CMP_EQ_OQ));
        _mm256_storeu_pd(out + i, tail);
        for (j = 0; ok != 0xf && j < 4; ++j) {
            if (!(ok >> j & 1)) out[i + j] = log1p(exp(-fabs((double)x[i + j])));
        }
    }
    for (; i < n; ++i) out[i] = log1p(exp(-fabs((double)x[i])));
}

AVX2 void dn_zero_avx2(float *p, size_t n)
{
    size_t i = 0;
    const __m256 z = _mm256_setzero_ps();
    while (i < n && ((uintptr_t)(p + i) & 31)) p[i++] = 0;
    for (; i + 8 <= n; i += 8) _mm256_stream_ps(p + i, z);
    for (; i < n; ++i) p[i] = 0;
    _mm_sfence();
}

#else  /* no AVX2 kernels on this compiler or architecture: never dispatched to */

int dn_cpu_has_avx2(void)
{
    return 0;
}

long dn_logistic_avx2(const float *in, float *out, int n)
{
    return dn_logistic_impl(in, out, n, DN_IMPL_PORTABLE);
}

long dn_exp_box_avx2(const float *in, float *out, int n, float scale, int div)
{
    return dn_exp_box_impl(in, out, n, scale, div, DN_IMPL_PORTABLE);
}

long dn_expf_avx2(const float *in, float *out, int n)
{
    return dn_expf_impl(in, out, n, DN_IMPL_PORTABLE);
}

void dn_max_iou_avx2(const dn_truths *ts, const float *px, const float *py, const float *pw,
                     const float *ph, int count, float *m)
{
    dn_max_iou_impl(ts, px, py, pw, ph, count, m, DN_IMPL_PORTABLE);
}

void dn_zero_avx2(float *p, size_t n)
{
    dn_zero_impl(p, n, DN_IMPL_PORTABLE);
}

void dn_softplus_tail_avx2(const float *x, int n, double *out)
{
    dn_softplus_tail_impl(x, n, out, DN_IMPL_PORTABLE);
}

/* Never called: without these kernels dn_cpu_has_avx2() is 0 and the
 * portable path runs region_layer.c's own loops. */
void dn_softmax_cells_avx2(const float *in, float *out, int entries, int wh, int c0, int count)
{
    (void)in, (void)out, (void)entries, (void)wh, (void)c0, (void)count;
}

#endif
