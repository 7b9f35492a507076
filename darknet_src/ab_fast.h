/*
 * ab_fast.h -- the AlexeyAB layer's fast kernels (not part of the API):
 * AlexeyAB's float logistic 1.f/(1.f + expf(-x)) with libm's expf bits
 * (proved in ab_fast.c, libm wherever the proof does not cover an element),
 * and the ignore loop's best IoU with AlexeyAB's box_iou (the same float
 * operations, eight cells at a time on the AVX2 path).
 *
 * Nothing here changes a bit of any result.
 */
#ifndef AB_FAST_H
#define AB_FAST_H

#include "dn_fast.h"

/* ab_expf_premise() (darknet_loss.h): premise (G) of ab_fast.c. */

/* out[i] = 1.f/(1.f + expf(-in[i])) (in may equal out), bit for bit, on
 * DN_IMPL_*: the AVX2 kernel on DN_IMPL_AVX2 where ab_expf_premise() holds,
 * libm on every element otherwise.  Returns how many elements went to libm. */
long ab_logistic_impl(const float *in, float *out, int n, int impl);
/* out[i] = expf(in[i]), the same way (the kernel the logistic is built on;
 * for the exhaustive check). */
long ab_expf_impl(const float *in, float *out, int n, int impl);

/* The AVX2+FMA kernels (ab_fast_avx2.c), only called when the CPU has both
 * and ab_expf_premise() holds.  (The portable path calls libm.) */
long ab_logistic_avx2(const float *in, float *out, int n);
long ab_expf_avx2(const float *in, float *out, int n);

/* One image's usable truths as AlexeyAB's box_iou sees them: the rows
 * loop 1 reads (before the first x == 0, at most max_boxes) whose class id
 * is inside [0, classes), in row order, with each truth's edges and area
 * computed by the float operations overlap() and box_union() apply to them.
 * The arrays are the caller's, n entries each. */
typedef struct ab_truth_edges {
    int n;
    float *l, *r, *t, *b, *area;
} ab_truth_edges;

/* m[k] = the best_iou AlexeyAB's loop 1 ends with for the predicted box
 * (px[k], py[k], pw[k], ph[k]) over the truths: `if (iou > best) best = iou`
 * from best = 0, truth by truth in row order, with ab_box_iou's value (0
 * where the intersection or the union is 0). */
void ab_max_iou_impl(const ab_truth_edges *ts, const float *px, const float *py, const float *pw,
                     const float *ph, int count, float *m, int impl);
void ab_max_iou_avx2(const ab_truth_edges *ts, const float *px, const float *py, const float *pw,
                     const float *ph, int count, float *m);

#endif
