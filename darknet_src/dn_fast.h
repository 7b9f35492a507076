/*
 * dn_fast.h -- the fast paths' internals (not part of the API): vectorised
 * exp-based kernels that return upstream's float bits (proved in fast.c,
 * falling back to libm wherever the proof does not cover an element), CPU
 * feature dispatch, and a per-call thread runner.
 *
 * Nothing here changes a bit of any result: every function returns exactly
 * what the reference expression named beside it returns.
 */
#ifndef DN_FAST_H
#define DN_FAST_H

#include "dn_internal.h"

/* What a forward pass runs, once DN_PATH_* (darknet_loss.h) is resolved
 * against the CPU it runs on. */
#define DN_IMPL_REFERENCE 0  /* upstream's loops as written */
#define DN_IMPL_PORTABLE 1   /* the fast algorithms in plain C99 */
#define DN_IMPL_AVX2 2       /* the same, with AVX2+FMA kernels (x86-64, chosen at run time) */

int dn_resolve_path(int path);

/* out[i] = logistic_activate(in[i]) for i < n, bit for bit (in may equal
 * out).  Returns how many elements went to the libm fallback. */
long dn_logistic_impl(const float *in, float *out, int n, int impl);

/* out[i] = (float)(exp((double)in[i]) * scale / div), the double product and
 * quotient of get_yolo_box's w and h, bit for bit.  These two return their
 * fallback counts too. */
long dn_exp_box_impl(const float *in, float *out, int n, float scale, int div, int impl);

/* out[i] = (float)exp((double)in[i]), bit for bit (in may equal out). */
long dn_expf_impl(const float *in, float *out, int n, int impl);

/* The AVX2 kernels (fast_avx2.c); only called when the CPU has AVX2 and FMA. */
long dn_logistic_avx2(const float *in, float *out, int n);
long dn_exp_box_avx2(const float *in, float *out, int n, float scale, int div);
long dn_expf_avx2(const float *in, float *out, int n);
int dn_cpu_has_avx2(void);

/* The portable kernels one element at a time (the AVX2 kernels' tails):
 * write *out, return 1 where the reference expression was taken. */
int dn_logistic_one(const float *in, float *out);
int dn_exp_box_one(const float *in, float *out, float scale, int div);
int dn_expf_one(const float *in, float *out);

/* out[i] = log1p(exp(-|x[i]|)) in double, the softplus tail of the implied
 * loss's cross-entropy terms (a float64 value, not a reproduced bit
 * pattern: the AVX2 kernel is accurate to a few units in 2^-45, libm's
 * otherwise). */
void dn_softplus_tail_impl(const float *x, int n, double *out, int impl);
void dn_softplus_tail_avx2(const float *x, int n, double *out);

/* region_layer.c's per-cell softmax at temperature 1, eight cells at a time
 * (count <= 256). */
void dn_softmax_cells_avx2(const float *in, float *out, int entries, int wh, int c0, int count);

/* p[0..n) = +0.  The AVX2 path uses streaming stores (no read of the old
 * contents, which a delta buffer never needs), then a store fence. */
void dn_zero_impl(float *p, size_t n, int impl);
void dn_zero_avx2(float *p, size_t n);

/* ---- the best IoU of many predicted boxes with an image's truths -------------- */

#define DN_TRUTH_PAD 96  /* at least 90 ([yolo]) and 30 ([region]) rows, a multiple of 8 */

/* One image's truths as box_iou sees them: the list read as upstream reads it
 * (rows before the first x == 0, at most max_rows), with each truth's edges
 * and area precomputed by the float operations overlap() and box_union()
 * apply to them.  Lanes past n hold NaN. */
typedef struct dn_truths {
    int n;
    float l[DN_TRUTH_PAD], r[DN_TRUTH_PAD], t[DN_TRUTH_PAD], b[DN_TRUTH_PAD], area[DN_TRUTH_PAD];
} dn_truths;

void dn_truths_load(dn_truths *ts, const float *rows, int cols, int max_rows);

/* m[k] = the best_iou upstream's ignore loop ends with for the predicted box
 * (px[k], py[k], pw[k], ph[k]): the largest non-NaN box_iou(pred, truth) over
 * the list, or 0 (NaN never wins a `>`, nor does anything <= 0).  The maximum
 * of a set does not depend on the order it is taken in; which truth attains
 * it (best_t) is left to the reference loop, run for the rare cell that
 * needs it. */
void dn_max_iou_impl(const dn_truths *ts, const float *px, const float *py, const float *pw,
                     const float *ph, int count, float *m, int impl);
void dn_max_iou_avx2(const dn_truths *ts, const float *px, const float *py, const float *pw,
                     const float *ph, int count, float *m);

/* ---- float sums as upstream's build adds them, NaN included ---------------------
 *
 * `acc += v` and `acc *= v` on x86-64 are addss/mulss, which return their
 * first operand's NaN when both operands are NaN.  C leaves the operand order
 * to the compiler, and it shows: the sign of a NaN statistic is printed
 * ("-nan" or "nan").  Which operand upstream's GCC put first is a fact of its
 * binary (objdump of the strict build at f6afaab): the accumulator for every
 * sum (statistics, mag_array's sum of squares, softmax's sum, the tree's
 * product) except [yolo]'s avg_iou (iou + avg_iou) and the tree's avg_cat
 * (pred + avg_cat).  These helpers make that order explicit, so that it does
 * not depend on how our own compiler allocates registers.  (When at most one
 * operand is NaN the result is that NaN, quieted, in either order.) */
static inline float dn_add_acc(float acc, float v)
{
    return isnan(acc) ? acc : acc + v;
}

static inline float dn_add_v(float acc, float v)
{
    return isnan(v) ? v + 0.0f : acc + v;
}

static inline float dn_mul_acc(float acc, float v)
{
    return isnan(acc) ? acc : acc*v;
}

/* ---- sums (utils.c) --------------------------------------------------------- */

/* sum + a[0]*a[0] + ... + a[n-1]*a[n-1], in float, in that order. */
float dn_sum_squares(const float *a, int n, float sum);
/* dn_finish_forward with the sum of squares of the whole delta given. */
void dn_finish_forward_sum(const layer *l, const dn_sums *s, float sumsq);

/* Runs fn(ctx, task) for task = 0 .. n_tasks-1 on up to `threads` threads
 * (the caller's own included), each task exactly once, in no fixed order;
 * returns when all are done.  With threads <= 1, or where threads cannot be
 * started, the caller runs them in order itself. */
void dn_parallel_for(int n_tasks, int threads, void (*fn)(void *ctx, int task), void *ctx);

#endif
