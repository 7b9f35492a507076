/*
 * compare.c -- the parity toolkit's element-wise comparison, in one pass.
 *
 * Not darknet's arithmetic: what pydarknet_loss.compare's table needs (the
 * failing elements and, per entry, the largest differences over all
 * elements), computed where the arrays already are instead of in several
 * float64 NumPy passes.  Every quantity is the one the Python definitions in
 * pydarknet_loss/parity/compare.py describe (ulp_distance, same_sign,
 * Tolerance.passes); tests/test_compare.py checks them against each other.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "darknet_loss.h"

/* A float32's bit pattern as an integer ordered like the values: negative
 * values mirrored below zero, so that +0 and -0 are both 0. */
static long long ordered_bits(float v)
{
    int i;
    memcpy(&i, &v, sizeof i);
    return i < 0 ? -(long long)(i & 0x7FFFFFFF) : (long long)i;
}

static long long ulp_distance(float e, float a)
{
    const int ne = isnan(e), na = isnan(a);
    long long d;
    if (ne && na) return 0;
    if (ne || na) return LLONG_MAX;
    d = ordered_bits(a) - ordered_bits(e);
    return d < 0 ? -d : d;
}

/* Whether some of v[0..n) is finite, and some finite one not 0: the bit
 * patterns read as integers (|v| below the infinities' exponent; not +-0),
 * a plane of zeros -- most of a delta -- told by one OR over it. */
static void plane_kinds(const float *v, long long n, int *finite, int *nonzero)
{
    long long k;
    unsigned int any = 0;
    for (k = 0; k < n; ++k) {
        unsigned int u;
        memcpy(&u, v + k, sizeof u);
        any |= u & 0x7FFFFFFFu;
    }
    if (!any) {  /* only +0 and -0 */
        *finite = n > 0;
        *nonzero = 0;
        return;
    }
    *finite = *nonzero = 0;
    for (k = 0; k < n; ++k) {
        unsigned int u;
        memcpy(&u, v + k, sizeof u);
        u &= 0x7FFFFFFFu;
        if (u < 0x7F800000u) {
            *finite = 1;
            if (u) {
                *nonzero = 1;
                return;
            }
        }
    }
}

#define RUN 256  /* floats compared at once: a run of the same bits skips the element loop */

long long dn_compare_arrays(const float *expected, const float *actual, long long blocks, int entries, long long hw,
                            double atol, double rtol, long long max_ulp, dn_compare_stats *stats,
                            unsigned char *fail)
{
    long long b, k, k0, k1, total = 0;
    int e;
    const int widen = atol != 0 || rtol != 0;
    for (e = 0; e < entries; ++e) {
        stats[e].size = stats[e].fail = stats[e].nan_vs_num = stats[e].flips = 0;
        stats[e].max_abs = stats[e].max_rel = -1;
        stats[e].max_ulp = -1;
    }
    for (b = 0; b < blocks; ++b) {
        for (e = 0; e < entries; ++e) {
            const long long off = (b*entries + e)*hw;
            const float *E = expected + off;
            const float *A = actual + off;
            dn_compare_stats *s = stats + e;
            s->size += hw;
            /* Runs of the same bits (most of a delta, even one that fails
             * somewhere): distance 0, difference 0 where finite.  Whether
             * some value there is finite, and some finite one not 0,
             * matters only while the entry has no difference yet. */
            for (k0 = 0; k0 < hw; k0 = k1) {
                k1 = hw - k0 < RUN ? hw : k0 + RUN;
                if (memcmp(E + k0, A + k0, (size_t)(k1 - k0)*sizeof *E) == 0) {
                    int finite = 0, nonzero = 0;
                    if (s->max_abs < 0 || s->max_rel < 0) plane_kinds(E + k0, k1 - k0, &finite, &nonzero);
                    if (finite && s->max_abs < 0) s->max_abs = 0;
                    if (nonzero && s->max_rel < 0) s->max_rel = 0;
                    if (s->max_ulp < 0) s->max_ulp = 0;
                    if (fail) memset(fail + off + k0, 0, (size_t)(k1 - k0));
                    continue;
                }
                for (k = k0; k < k1; ++k) {
                    const float ev = E[k], av = A[k];
                    const long long u = ulp_distance(ev, av);
                    const double d = fabs((double)av - (double)ev);
                    const int opposite = (ev > 0 && av < 0) || (ev < 0 && av > 0);
                    int bad = u > max_ulp;
                    if (bad && widen && d <= atol + rtol*fabs((double)ev)) bad = 0;
                    if (isfinite(d)) {
                        if (d > s->max_abs) s->max_abs = d;
                        if (ev != 0 && d/fabs((double)ev) > s->max_rel) s->max_rel = d/fabs((double)ev);
                    }
                    if (u == LLONG_MAX) s->nan_vs_num++;
                    else if (!opposite && u > s->max_ulp) s->max_ulp = u;
                    if (opposite && !isnan(d)) s->flips++;
                    s->fail += bad;
                    total += bad;
                    if (fail) fail[off + k] = (unsigned char)bad;
                }
            }
        }
    }
    return total;
}

/* numpy.spacing of |v| cast to float32, as a double: the float32 ULP there
 * (the gap to the next float away from zero); NaN for NaN and infinities,
 * an infinity at FLT_MAX. */
static double spacing32(double v)
{
    float f, next;
    unsigned int bits;
    v = fabs(v);
    if (isnan(v)) return NAN;
    /* Casting a double at or above FLT_MAX + half an ULP rounds to infinity
     * (done by hand: the cast itself is undefined there in C). */
    f = v >= 0x1.ffffffp127 ? INFINITY : (float)v;
    if (isinf(f)) return NAN;
    if (f == FLT_MAX) return INFINITY;
    /* nextafterf(f, INFINITY) for a finite f >= 0: the next bit pattern. */
    memcpy(&bits, &f, sizeof bits);
    bits += 1;
    memcpy(&next, &bits, sizeof next);
    return (double)(next - f);
}

/* numpy.maximum: NaN if either is NaN. */
static double nan_max(double a, double b)
{
    if (isnan(a) || isnan(b)) return NAN;
    return a > b ? a : b;
}

/* The bound of one element whose delta nd is not 0: entry e, at column
 * col and row row of its plane (dn_delta_bound's arithmetic, shared with
 * dn_delta_bound_at so that both give the same bits). */
static double element_bound(double nd, float target, float scale, float output, int e, int col, int row,
                            int coords, int region)
{
    const double sc = scale;
    const int has = !isnan(sc);
    const double S = has ? fabs(sc) : 0;
    const double T = has ? fabs((double)target) : 0;
    const double V = output;
    double bound = spacing32(S*nan_max(T, fabs(V)));
    if (e == 0) bound += 2*S*spacing32(T + col);
    if (e == 1) bound += 2*S*spacing32(T + row);
    if (e == 2 || e == 3) bound += S*0x1p-23*has;
    if (region && e == coords && T > 0 && T < 1) bound += S*T*0x1p-16;
    bound = 2*(bound + spacing32(nd));
    return nan_max(bound, 0x1p-126);
}

void dn_delta_bound(const float *target, const float *scale, const float *output, const float *delta,
                    long long blocks, int entries, int h, int w, int coords, int region, double *out)
{
    long long b;
    int e, k;
    const int hw = h*w;
    for (b = 0; b < blocks; ++b) {
        for (e = 0; e < entries; ++e) {
            const long long off = (b*entries + e)*hw;
            for (k = 0; k < hw; ++k) {
                const double nd = delta[off + k];
                /* the bound of a 0 delta is 1e-6 whatever the rest (most elements) */
                out[off + k] = nd == 0 ? 1e-6
                    : element_bound(nd, target[off + k], scale[off + k], output[off + k], e, k % w, k / w,
                                    coords, region);
            }
        }
    }
}

void dn_delta_bound_at(const float *target, const float *scale, const float *output, const float *delta,
                       const long long *flat, long long count, int entries, int h, int w, int coords,
                       int region, double *out)
{
    long long m;
    const long long hw = (long long)h*w;
    for (m = 0; m < count; ++m) {
        const long long f = flat[m];
        const long long k = f % hw;
        const int e = (int)((f / hw) % entries);
        const double nd = delta[f];
        out[m] = nd == 0 ? 1e-6
            : element_bound(nd, target[f], scale[f], output[f], e, (int)(k % w), (int)(k / w), coords, region);
    }
}
