/*
 * ab_yolo_layer.c -- AlexeyAB/darknet's [yolo] layer, forward pass, reproduced
 * operation for operation from upstream src/yolo_layer.c at 59596d7 (the
 * CPU build: no GPU activation, no OpenMP).
 *
 * What differs from pjreddie's forward_yolo_layer (yolo_layer.c), in the
 * order the forward meets it:
 *   - the logistic is 1.f/(1.f + expf(-x)) in float (pjreddie: double exp);
 *     with new_coords nothing is activated; x and y are then scaled by
 *     scale_x_y around the cell centre;
 *   - truth rows have 6 floats (x, y, w, h, class, track id) and the image
 *     stride is max_boxes*6 (pjreddie: 5 floats, a fixed 90 rows);
 *   - a class id outside [0, classes) is skipped (pjreddie indexes with it);
 *   - loop 1 keeps two maxima: best_iou over all truths and best_match_iou
 *     over truths when the cell has some class probability > 0.25; only
 *     the latter decides the ignore_thresh rule;
 *   - box_iou returns 0 for a zero intersection or union (ab_box.c);
 *   - box deltas are added (+=), never overwritten, with IoU-family losses,
 *     iou_normalizer, NaN/inf guards and max_delta; rewritten_bbox counts
 *     the additions onto a non-zero box delta;
 *   - the duplicate-hit test of the class delta looks at the *target*
 *     class's entry (pjreddie: the first class's), and only multiplies by
 *     classes_multipliers there;
 *   - iou_thresh assigns further anchors of the mask, and then every cell's
 *     box delta is divided by its number of positive class deltas;
 *   - the cost and the statistics ("v3 (...)") are computed differently.
 *
 * Upstream runs every image in its own thread (process_batch) and adds the
 * per-image float sums in image order afterwards.  ab_yolo_train_image is
 * that per-image function and ab_image_sums_add that summation, so a caller
 * may run images concurrently and get the same bits.  Upstream's
 * *net.total_bbox / *net.rewritten_bbox are incremented by all threads
 * without synchronisation (and can lose counts); here they are per-image
 * counts added exactly.
 *
 * The same functions run hank-ai/darknet's layer when l->flavor is
 * AB_FLAVOR_HANKAI: the differences are tagged HANK(n) where they are made
 * and listed together in darknet_loss.h.
 *
 * Types matter as in pjreddie's file: an int times a float is a float,
 * exp/log/sqrt/pow take doubles, 0.5*eps is a double, and every store into a
 * float rounds.  A comment names the upstream behaviour where a line's form
 * is not obvious.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ab_fast.h"
#include "ab_internal.h"
#include "darknet_loss.h"

/* A truth row's class id or track id truncated to int: (int)v.  Callers
 * have checked (ab_check_yolo_truths) that v fits an int. */
static inline int row_int(const float *row, int col)
{
    return (int)row[col];
}

/* Upstream: static inline float logistic_activate(float x){return 1.f/(1.f + expf(-x));} */
float ab_logistic_activate(float x)
{
    return 1.f/(1.f + expf(-x));
}

/* get_yolo_box.  Without new_coords this is pjreddie's: w, h as exp(double)
 * times the anchor divided by the network size in double, then rounded.
 * With new_coords: x_w*x_w*4*anchor/net_w in float. */
box ab_get_yolo_box(const float *x, const float *biases, int n, int index, int i, int j,
                    int lw, int lh, int w, int h, int stride, int new_coords)
{
    return ab_get_yolo_box_fl(x, biases, n, index, i, j, lw, lh, w, h, stride, new_coords, AB_FLAVOR_ALEXEYAB);
}

box ab_get_yolo_box_fl(const float *x, const float *biases, int n, int index, int i, int j,
                       int lw, int lh, int w, int h, int stride, int new_coords, int flavor)
{
    box b;
    b.x = (i + x[index + 0*stride])/lw;
    b.y = (j + x[index + 1*stride])/lh;
    if (new_coords) {
        b.w = x[index + 2*stride]*x[index + 2*stride]*4*biases[2*n]/w;
        b.h = x[index + 3*stride]*x[index + 3*stride]*4*biases[2*n + 1]/h;
    } else if (flavor == AB_FLAVOR_HANKAI) {
        /* HANK(1): expf, a float product and a float quotient */
        b.w = expf(x[index + 2*stride])*biases[2*n]/w;
        b.h = expf(x[index + 3*stride])*biases[2*n + 1]/h;
    } else {
        b.w = (float)(exp(x[index + 2*stride])*biases[2*n]/w);
        b.h = (float)(exp(x[index + 3*stride])*biases[2*n + 1]/h);
    }
    return b;
}

/* ---- layer set-up and checks ----------------------------------------------- */


int ab_yolo_layer_init(ab_yolo_layer *l, int batch, int w, int h, int n, int total, int classes, int max_boxes)
{
    ab_yolo_layer z;
    int c, outputs, truths;
    memset(&z, 0, sizeof z);
    *l = z;
    if (batch < 1 || w < 1 || h < 1 || n < 1 || total < 1 || classes < 1 || max_boxes < 0) return DN_E_LAYER;
    if (ab_layer_sizes(batch, w, h, n, classes + 4 + 1, max_boxes, &c, &outputs, &truths) != DN_OK) {
        return DN_E_LAYER;
    }
    l->batch = batch;
    l->w = w;
    l->h = h;
    l->n = n;
    l->total = total;
    l->classes = classes;
    l->c = c;
    l->outputs = outputs;
    l->inputs = l->outputs;
    l->max_boxes = max_boxes;
    l->truth_size = AB_TRUTH_SIZE;
    l->truths = truths;
    /* parse_yolo's defaults */
    l->ignore_thresh = .5f;
    l->truth_thresh = 1;
    l->iou_thresh = 1;
    l->iou_thresh_kind = AB_IOU;
    l->iou_loss = AB_MSE;
    l->iou_normalizer = 0.75f;
    l->obj_normalizer = 1;
    l->cls_normalizer = 1;
    l->delta_normalizer = 1;
    l->max_delta = FLT_MAX;
    l->scale_x_y = 1;
    l->label_smooth_eps = 0;
    l->show_details = 1;
    return DN_OK;
}

/* get_classes_multipliers (parser.c). */
int ab_classes_multipliers(const int *counters_per_class, int classes, float max_delta, float *out)
{
    float max_counter = 0;
    int i;
    if (classes < 1 || !counters_per_class || !out) return DN_E_LAYER;
    for (i = 0; i < classes; ++i) {
        const int c = counters_per_class[i] < 1 ? 1 : counters_per_class[i];
        if (max_counter < c) max_counter = (float)c;
    }
    for (i = 0; i < classes; ++i) {
        const int c = counters_per_class[i] < 1 ? 1 : counters_per_class[i];
        out[i] = max_counter/c;
        if (out[i] > max_delta) out[i] = max_delta;
    }
    return DN_OK;
}

int ab_check_yolo_layer(const ab_yolo_layer *l)
{
    long long c, outputs, truths;
    int k;
    if (!l) return DN_E_LAYER;
    if (l->batch < 1 || l->w < 1 || l->h < 1 || l->n < 1 || l->total < 1 || l->classes < 1) return DN_E_LAYER;
    if (l->max_boxes < 0 || l->truth_size != AB_TRUTH_SIZE) return DN_E_LAYER;
    if (!l->mask || !l->biases || !l->output || !l->delta || !l->cost) return DN_E_LAYER;
    c = (long long)l->n*(l->classes + 4 + 1);
    outputs = c*l->w*l->h;
    truths = (long long)l->max_boxes*AB_TRUTH_SIZE;
    if (!ab_fits_int(c) || !ab_fits_int(outputs) || !ab_fits_int(outputs*l->batch)) return DN_E_LAYER;
    if (l->c != c || l->outputs != outputs || l->inputs != l->outputs) return DN_E_LAYER;
    if (l->truths != truths || !ab_fits_int(truths*l->batch)) return DN_E_LAYER;
    for (k = 0; k < l->n; ++k) {
        if (l->mask[k] < 0 || l->mask[k] >= l->total) return DN_E_LAYER;
    }
    if (l->iou_loss < AB_IOU || l->iou_loss > AB_CIOU) return DN_E_LAYER;
    if (l->flavor != AB_FLAVOR_ALEXEYAB && l->flavor != AB_FLAVOR_HANKAI) return DN_E_LAYER;
    if (l->iou_thresh_kind < AB_IOU || l->iou_thresh_kind > AB_CIOU) return DN_E_LAYER;
    if (l->map && l->map_len < 1) return DN_E_LAYER;
    /* truth_thresh < 0 makes loop 1 read truth row 0 of every image (its
     * best_t starts at 0); with max_boxes 0 there is no row 0. */
    if (l->truth_thresh < 0 && l->max_boxes == 0) return DN_E_LAYER;
    return DN_OK;
}

/* A class id used to index: in [0, classes) raw (upstream's own test), then
 * inside the map, then mapped into [0, classes) (ab_internal.h). */
static int check_used_class(const ab_yolo_layer *l, int cls)
{
    return ab_check_class(cls, l->classes, l->map, l->map_len);
}

static int check_row(const ab_yolo_layer *l, const float *row)
{
    int k, cls;
    float fx, fy;
    for (k = 0; k < AB_TRUTH_SIZE; ++k) {
        if (!isfinite(row[k])) return DN_E_TRUTH_VALUE;
    }
    /* Upstream's own test in loop 2: it prints "Wrong label" and runs
     * system("echo ... >> bad_label.list"). */
    if (row[0] < 0 || row[1] < 0 || row[0] > 1 || row[1] > 1 || row[2] < 0 || row[3] < 0) return DN_E_TRUTH_LABEL;
    if (!ab_int_convertible(row[4]) || !ab_int_convertible(row[5])) return DN_E_TRUTH_INT;
    cls = row_int(row, 4);
    /* Upstream skips such a row (continue) before computing its cell, in
     * both loops: nothing is indexed with it. */
    if (cls < 0 || cls >= l->classes) return DN_OK;
    /* The cell, (int)(x*w) with the product in float: x == 1 (or an x
     * whose product rounds up to w) indexes past the row. */
    fx = row[0]*l->w;
    fy = row[1]*l->h;
    if ((int)fx >= l->w || (int)fy >= l->h) return DN_E_TRUTH_CELL;
    return check_used_class(l, cls);
}

/* HANK(9): hank-ai's darknet_fatal_error("invalid class ID #%d") on (int)id
 * outside [0, classes).  (A NaN id reaches it as INT_MIN, x86's (int)NaN:
 * refused here as a non-finite value.) */
static int hank_class_check(const ab_yolo_layer *l, const float *row)
{
    int cls;
    if (!isfinite(row[4])) return DN_E_TRUTH_VALUE;
    if (!ab_int_convertible(row[4])) return DN_E_TRUTH_INT;
    cls = row_int(row, 4);
    if (cls < 0 || cls >= l->classes) return DN_E_TRUTH_CLASS;
    return DN_OK;
}

int ab_check_yolo_truths(const ab_yolo_layer *l, const float *truth, int *bad_image, int *bad_row)
{
    int b, t, err;
    if (bad_image) *bad_image = -1;
    if (bad_row) *bad_row = -1;
    if (ab_check_yolo_layer(l) != DN_OK || !truth) return DN_E_LAYER;
    for (b = 0; b < l->batch; ++b) {
        const float *truths = truth + (size_t)b*l->truths;
        /* HANK(9): hank-ai's loop 1 aborts on the first row (before the
         * x == 0 end) whose class id is outside [0, classes), before its
         * loop 2 looks at any row's coordinates. */
        for (t = 0; l->flavor == AB_FLAVOR_HANKAI && t < l->max_boxes; ++t) {
            const float *row = truths + t*AB_TRUTH_SIZE;
            if (!row[0]) break;
            err = hank_class_check(l, row);
            if (err != DN_OK) goto bad;
        }
        for (t = 0; t < l->max_boxes; ++t) {
            const float *row = truths + t*AB_TRUTH_SIZE;
            if (!row[0]) break;  /* upstream: if (!truth.x) break; */
            err = check_row(l, row);
            if (err != DN_OK) goto bad;
        }
        /* truth_thresh < 0: best_iou = 0 already beats it, so a cell with no
         * better truth takes row 0 (best_t's initial value) as its truth,
         * whether row 0 is a box, the x == 0 terminator or a skipped row.
         * Its class indexes the deltas. */
        if (l->truth_thresh < 0) {
            const float *row = truths;
            t = 0;
            err = ab_int_convertible(row[4]) ? check_used_class(l, row_int(row, 4)) : DN_E_TRUTH_INT;
            if (err != DN_OK) goto bad;
        }
    }
    return DN_OK;
bad:
    if (bad_image) *bad_image = b;
    if (bad_row) *bad_row = t;
    return err;
}

/* ---- deltas ------------------------------------------------------------------ */

typedef struct ab_ious {
    float iou, giou;
} ab_ious;

/* delta_yolo_box with accumulate = 1 (every call site passes 1).  x is
 * l.output; n the anchor (into biases); scale 2 - w*h (MSE only);
 * iou_normalizer already times the class multiplier. */
static ab_ious delta_yolo_box(const ab_yolo_layer *l, box truth, int n, int index, int i, int j,
                              int net_w, int net_h, float scale, float iou_normalizer, long long *rewritten)
{
    const int stride = l->w*l->h;
    const float *x = l->output;
    float *delta = l->delta;
    ab_ious r;
    box pred;
    if (delta[index + 0*stride] || delta[index + 1*stride] || delta[index + 2*stride] || delta[index + 3*stride]) {
        ++*rewritten;
    }
    pred = ab_get_yolo_box_fl(x, l->biases, n, index, i, j, l->w, l->h, net_w, net_h, stride, l->new_coords,
                              l->flavor);
    r.iou = ab_box_iou_fl(pred, truth, l->flavor);
    r.giou = ab_box_giou_fl(pred, truth, l->flavor);
    /* Upstream also computes box_diou and box_ciou here into values nothing
     * reads (tot_diou, tot_ciou: never printed); they have no side effect
     * and are left out. */
    /* "avoid nan in dx_box_iou": after the IoUs, before the gradient */
    if (pred.w == 0) pred.w = 1.0f;
    if (pred.h == 0) pred.h = 1.0f;
    if (l->iou_loss == AB_MSE) {
        float tx = (truth.x*l->w - i);
        float ty = (truth.y*l->h - j);
        float tw, th;
        if (l->flavor == AB_FLAVOR_HANKAI) {
            /* HANK(2): logf */
            tw = logf(truth.w*net_w/l->biases[2*n]);
            th = logf(truth.h*net_h/l->biases[2*n + 1]);
        } else {
            tw = (float)log(truth.w*net_w/l->biases[2*n]);
            th = (float)log(truth.h*net_h/l->biases[2*n + 1]);
        }
        if (l->new_coords) {
            tw = (float)sqrt(truth.w*net_w/(4*l->biases[2*n]));
            th = (float)sqrt(truth.h*net_h/(4*l->biases[2*n + 1]));
        }
        /* pjreddie overwrites with scale*(t - x); here the product is
         * also times iou_normalizer (0.75 by default) and added. */
        delta[index + 0*stride] += scale*(tx - x[index + 0*stride])*iou_normalizer;
        delta[index + 1*stride] += scale*(ty - x[index + 1*stride])*iou_normalizer;
        delta[index + 2*stride] += scale*(tw - x[index + 2*stride])*iou_normalizer;
        delta[index + 3*stride] += scale*(th - x[index + 3*stride])*iou_normalizer;
    } else {
        const dxrep g = ab_dx_box_iou_fl(pred, truth, l->iou_loss, l->flavor);
        /* upstream's "jacobian^t": dx = dt, dy = db, dw = dl, dh = dr */
        float dx = g.dt;
        float dy = g.db;
        float dw = g.dl;
        float dh = g.dr;
        /* The chain rule through exp for w, h only: x and y get the
         * gradient in the activated output, not through the logistic. */
        if (!l->new_coords && l->flavor == AB_FLAVOR_HANKAI) {
            /* HANK(3): dw *= expf(x_w), a float product */
            dw *= expf(x[index + 2*stride]);
            dh *= expf(x[index + 3*stride]);
        } else if (!l->new_coords) {
            dw = (float)(dw*exp(x[index + 2*stride]));
            dh = (float)(dh*exp(x[index + 3*stride]));
        }
        dx *= iou_normalizer;
        dy *= iou_normalizer;
        dw *= iou_normalizer;
        dh *= iou_normalizer;
        dx = ab_fix_nan_inf(dx);
        dy = ab_fix_nan_inf(dy);
        dw = ab_fix_nan_inf(dw);
        dh = ab_fix_nan_inf(dh);
        if (l->max_delta != FLT_MAX) {
            dx = ab_clip_value(dx, l->max_delta);
            dy = ab_clip_value(dy, l->max_delta);
            dw = ab_clip_value(dw, l->max_delta);
            dh = ab_clip_value(dh, l->max_delta);
        }
        delta[index + 0*stride] += dx;
        delta[index + 1*stride] += dy;
        delta[index + 2*stride] += dw;
        delta[index + 3*stride] += dh;
    }
    return r;
}

/* delta_yolo_class (the statistic avg_cat it may add to is never printed,
 * so it is not kept). */
static void delta_yolo_class(const ab_yolo_layer *l, int index, int class_id, int stride)
{
    const float *output = l->output;
    float *delta = l->delta;
    const float eps = l->label_smooth_eps;
    int n;
    /* Duplicate hit: pjreddie tests delta[index] (class 0); this tests the
     * target class's own entry.  Only that class is set, smoothed, times
     * its multiplier but *not* cls_normalizer. */
    if (delta[index + stride*class_id]) {
        float y_true = 1;
        float result;
        if (eps) y_true = y_true*(1 - eps) + 0.5*eps;  /* float product, double sum, rounded */
        result = y_true - output[index + stride*class_id];
        if (!isnan(result) && !isinf(result)) delta[index + stride*class_id] = result;
        if (l->classes_multipliers) delta[index + stride*class_id] *= l->classes_multipliers[class_id];
        return;
    }
    if (l->focal_loss) {
        /* alpha 0.5, gamma 2 baked into the gradient; no smoothing, no
         * finiteness test, no multipliers. */
        const float alpha = 0.5f;
        const int ti = index + stride*class_id;
        const float pt = output[ti] + 0.000000000000001F;
        float grad = -(1 - pt)*(2*pt*logf(pt) + pt - 1);
        /* A NaN pt makes both factors NaN, of opposite signs, and which one
         * a product of two NaNs returns is the compiler's choice of operand
         * order, not C's.  Upstream's build (gcc 12, -O2) returns the second
         * factor's; so does this, whatever order this build picks, so that
         * a NaN cost prints as upstream's "-nan" or "nan". */
        if (isnan(pt)) grad = 2*pt*logf(pt) + pt - 1;
        for (n = 0; n < l->classes; ++n) {
            delta[index + stride*n] = (((n == class_id) ? 1 : 0) - output[index + stride*n]);
            delta[index + stride*n] *= alpha*grad;
        }
    } else {
        for (n = 0; n < l->classes; ++n) {
            float y_true = ((n == class_id) ? 1 : 0);
            float result;
            if (eps) y_true = y_true*(1 - eps) + 0.5*eps;
            result = y_true - output[index + stride*n];
            /* a non-finite result leaves the old value in place */
            if (!isnan(result) && !isinf(result)) delta[index + stride*n] = result;
            if (l->classes_multipliers && n == class_id) {
                delta[index + stride*class_id] *= l->classes_multipliers[class_id]*l->cls_normalizer;
            }
        }
    }
}

/* The cells loop 2 wrote in one image (anchor*w*h + row*w + col), when a
 * fast path wants them (NULL otherwise): the only cells besides loop 1's
 * truth_thresh cells whose box and class deltas can be non-zero. */
typedef struct ab_cells {
    int *cell;
    int n;
} ab_cells;

/* The part of loop 2 that a best anchor and an iou_thresh extra share:
 * box delta, counters, objectness and class deltas.  Only the best anchor
 * writes labels/class_ids. */
static void assign(const ab_yolo_layer *l, const ab_network_state *st, int b, const float *row, box truth,
                   int anchor, int mask_n, int i, int j, int class_id, int write_labels, ab_image_sums *s,
                   ab_cells *cells)
{
    const int wh = l->w*l->h;
    const int base = b*l->outputs + mask_n*wh*(4 + 1 + l->classes) + j*l->w + i;
    const int box_index = base;
    const int obj_index = base + 4*wh;
    const int class_index = base + (4 + 1)*wh;
    const float class_multiplier = l->classes_multipliers ? l->classes_multipliers[class_id] : 1.0f;
    ab_ious ious = delta_yolo_box(l, truth, anchor, box_index, i, j, st->net_w, st->net_h,
                                  (2 - truth.w*truth.h), l->iou_normalizer*class_multiplier, &s->rewritten_bbox);
    ++s->total_bbox;
    if (cells) cells->cell[cells->n++] = mask_n*wh + j*l->w + i;
    if (write_labels) {
        const int out = b*l->n*wh + mask_n*wh + j*l->w + i;
        if (l->labels) l->labels[out] = row_int(row, 5);  /* the track id */
        if (l->class_ids) l->class_ids[out] = class_id;
    }
    /* Each a float sum; when both operands are NaN upstream's build keeps
     * the addend's (its addss/addps have the new term first: objdump of
     * process_batch), so a NaN statistic prints with upstream's sign. */
    s->tot_iou = dn_add_v(s->tot_iou, ious.iou);
    s->tot_iou_loss = dn_add_v(s->tot_iou_loss, 1 - ious.iou);
    s->tot_giou_loss = dn_add_v(s->tot_giou_loss, 1 - ious.giou);
    if (l->objectness_smooth) {
        const float delta_obj = class_multiplier*l->obj_normalizer*(1 - l->output[obj_index]);
        if (l->delta[obj_index] == 0) l->delta[obj_index] = delta_obj;
    } else {
        l->delta[obj_index] = class_multiplier*l->obj_normalizer*(1 - l->output[obj_index]);
    }
    delta_yolo_class(l, class_index, class_id, wh);
    ++s->count;
    ++s->class_count;
}

static int mapped(const ab_yolo_layer *l, int class_id)
{
    return l->map ? l->map[class_id] : class_id;
}


/* The averaging after loop 2 (iou_thresh < 1) for one cell and anchor:
 * only a cell with a non-zero (or NaN) objectness delta. */
static void average_cell(const ab_yolo_layer *l, int b, int n, int cell)
{
    const int wh = l->w*l->h;
    const int box_index = b*l->outputs + n*wh*(4 + 1 + l->classes) + cell;
    /* averages_yolo_deltas: the four box deltas (ab_internal.h) */
    if (l->delta[box_index + 4*wh] != 0) ab_average_box_deltas(l->delta, box_index + 5*wh, box_index, wh, l->classes, 4);
}

/* The rows both loops read: those before the first x == 0. */
static int count_rows(const ab_yolo_layer *l, const float *truths)
{
    int ntruth;
    for (ntruth = 0; ntruth < l->max_boxes; ++ntruth) {
        if (!truths[ntruth*AB_TRUTH_SIZE]) break;
    }
    return ntruth;
}

/* make_yolo_layer's -1 in labels and class_ids, reset at the start of every
 * training forward: `count` cells of image b from cell `first` on. */
static void reset_labels(const ab_yolo_layer *l, int b, int first, int count)
{
    const size_t at = (size_t)b*l->n*l->w*l->h + (size_t)first;
    int k;
    for (k = 0; k < count; ++k) {
        if (l->labels) l->labels[at + k] = -1;
        if (l->class_ids) l->class_ids[at + k] = -1;
    }
}

void ab_yolo_activate_image(const ab_yolo_layer *l, const float *input, int b)
{
    const int wh = l->w*l->h;
    const int per_anchor = wh*(4 + 1 + l->classes);
    float *out = l->output + (size_t)b*l->outputs;
    /* scal_add_cpu(2*wh, scale_x_y, -0.5*(scale_x_y - 1), ...): BETA is a
     * float parameter, so the double product is rounded once. */
    const float alpha = l->scale_x_y;
    const float beta = (float)(-0.5*(l->scale_x_y - 1));
    int n, k;
    memcpy(out, input + (size_t)b*l->outputs, (size_t)l->outputs*sizeof(float));
    for (n = 0; n < l->n; ++n) {
        float *p = out + (size_t)n*per_anchor;
        if (!l->new_coords) {
            /* x, y, then objectness and classes; w, h stay raw */
            for (k = 0; k < 2*wh; ++k) p[k] = ab_logistic_activate(p[k]);
            for (k = 4*wh; k < per_anchor; ++k) p[k] = ab_logistic_activate(p[k]);
        }
        /* with new_coords too: nothing is activated but x, y are scaled */
        for (k = 0; k < 2*wh; ++k) p[k] = p[k]*alpha + beta;
    }
    memset(l->delta + (size_t)b*l->outputs, 0, (size_t)l->outputs*sizeof(float));
}

/* Loop 1 for one cell (i, j) and anchor n of image b, as upstream runs it:
 * the best IoU over the truths (and the best among them when the cell has
 * a class probability above .25), the objectness delta, and the
 * truth_thresh branch. */
static void ignore_cell(const ab_yolo_layer *l, const ab_network_state *st, int b, int n, int i, int j,
                        const float *truths, int ntruth, ab_image_sums *s)
{
    const int wh = l->w*l->h;
    const int stride = wh;
    const int per_anchor = wh*(4 + 1 + l->classes);
    const int box_index = b*l->outputs + n*per_anchor + j*l->w + i;
    const int obj_index = box_index + 4*wh;
    const int class_index = box_index + (4 + 1)*wh;
    const int net_w = st->net_w, net_h = st->net_h;
    float *output = l->output;
    float *delta = l->delta;
    const box pred = ab_get_yolo_box_fl(output, l->biases, l->mask[n], box_index, i, j, l->w, l->h,
                                        net_w, net_h, wh, l->new_coords, l->flavor);
    float best_match_iou = 0;
    float best_iou = 0;
    int best_t = 0;
    int class_id_match = -1;  /* compare_yolo_class, computed once per cell */
    int t;
    for (t = 0; t < ntruth; ++t) {
        const float *row = truths + t*AB_TRUTH_SIZE;
        const int class_id = row_int(row, 4);
        float iou;
        /* upstream prints two warning lines here, per cell and anchor;
         * they are counted in loop 2 instead */
        if (class_id >= l->classes || class_id < 0) continue;
        if (isnan(output[obj_index]) || isinf(output[obj_index])) output[obj_index] = 0;
        /* Upstream calls it for every truth; it reads only the class
         * outputs, which this loop never changes. */
        if (class_id_match < 0) {
            class_id_match = ab_compare_class(output, l->classes, class_index, wh, 0.25f);
        }
        iou = ab_box_iou_fl(pred, ab_row_box(row), l->flavor);
        if (iou > best_match_iou && class_id_match == 1) best_match_iou = iou;
        if (iou > best_iou) {
            best_iou = iou;
            best_t = t;
        }
    }

    delta[obj_index] = l->obj_normalizer*(0 - output[obj_index]);
    if (best_match_iou > l->ignore_thresh) {
        if (l->objectness_smooth) {
            const float delta_obj = l->obj_normalizer*(best_match_iou - output[obj_index]);
            if (delta_obj > delta[obj_index]) delta[obj_index] = delta_obj;
        } else {
            delta[obj_index] = 0;
        }
    }
    /* (upstream's net.adversarial branch: off in training, not reproduced) */
    if (best_iou > l->truth_thresh) {
        const float iou_multiplier = best_iou*best_iou;
        const float *row = truths + best_t*AB_TRUTH_SIZE;
        const int class_id = mapped(l, row_int(row, 4));
        float class_multiplier;
        box truth;
        if (l->objectness_smooth) delta[obj_index] = l->obj_normalizer*(iou_multiplier - output[obj_index]);
        else delta[obj_index] = l->obj_normalizer*(1 - output[obj_index]);
        delta_yolo_class(l, class_index, class_id, wh);
        class_multiplier = l->classes_multipliers ? l->classes_multipliers[class_id] : 1.0f;
        if (l->objectness_smooth) {
            delta[class_index + stride*class_id] =
                class_multiplier*(iou_multiplier - output[class_index + stride*class_id]);
        }
        truth = ab_row_box(row);
        delta_yolo_box(l, truth, l->mask[n], box_index, i, j, net_w, net_h, (2 - truth.w*truth.h),
                       l->iou_normalizer*class_multiplier, &s->rewritten_bbox);
        ++s->total_bbox;
    }
}

/* Loop 2, every truth of image b in row order; records the cells it
 * writes in `cells` when given. */
static void truth_loop(const ab_yolo_layer *l, const ab_network_state *st, int b, const float *truths, int ntruth,
                       ab_image_sums *s, ab_cells *cells)
{
    const int net_w = st->net_w, net_h = st->net_h;
    int t, n;
    for (t = 0; t < ntruth; ++t) {
        const float *row = truths + t*AB_TRUTH_SIZE;
        const box truth = ab_row_box(row);
        box truth_shift;
        int best_n;
        int mask_n, i, j;
        const int raw_class = row_int(row, 4);
        /* (upstream's "Wrong label" test and system() come first: such rows
         * were refused by ab_check_yolo_truths) */
        if (raw_class >= l->classes || raw_class < 0) {
            ++s->skipped_truths;
            continue;
        }
        i = (int)(truth.x*l->w);
        j = (int)(truth.y*l->h);
        truth_shift = truth;
        truth_shift.x = truth_shift.y = 0;
        /* the best of all `total` anchors by the IoU of centred boxes */
        best_n = ab_best_anchor(l->biases, l->total, truth, net_w, net_h, l->flavor);
        mask_n = int_index(l->mask, best_n, l->n);
        if (mask_n >= 0) {
            assign(l, st, b, row, truth, best_n, mask_n, i, j, mapped(l, raw_class), 1, s, cells);
        }
        /* iou_thresh: every other anchor of the mask whose centred IoU of
         * the chosen kind beats it.  (Upstream tests iou_thresh < 1 inside
         * the anchor loop; the test does not change in it.) */
        if (l->iou_thresh < 1.0f) {
            for (n = 0; n < l->total; ++n) {
                const int extra_n = int_index(l->mask, n, l->n);
                if (extra_n >= 0 && n != best_n) {
                    const float iou = ab_anchor_iou_kind(l->biases, n, truth_shift, net_w, net_h, l->iou_thresh_kind,
                                                         l->flavor);
                    if (iou > l->iou_thresh) {
                        assign(l, st, b, row, truth, n, extra_n, i, j, mapped(l, raw_class), 0, s, cells);
                    }
                }
            }
        }
    }
}

void ab_yolo_train_image(const ab_yolo_layer *l, const ab_network_state *st, int b, ab_image_sums *s)
{
    const float *truths = st->truth + (size_t)b*l->truths;
    int i, j, n, ntruth;

    memset(s, 0, sizeof *s);
    reset_labels(l, b, 0, l->n*l->w*l->h);
    /* Both loops stop at the first row with x == 0. */
    ntruth = count_rows(l, truths);

    /* Loop 1: every cell and anchor, in the order j, i, n. */
    for (j = 0; j < l->h; ++j) {
        for (i = 0; i < l->w; ++i) {
            for (n = 0; n < l->n; ++n) ignore_cell(l, st, b, n, i, j, truths, ntruth, s);
        }
    }
    /* Loop 2: every truth. */
    truth_loop(l, st, b, truths, ntruth, s, NULL);
    if (l->iou_thresh < 1.0f) {
        for (j = 0; j < l->h; ++j) {
            for (i = 0; i < l->w; ++i) {
                for (n = 0; n < l->n; ++n) average_cell(l, b, n, j*l->w + i);
            }
        }
    }
}

void ab_image_sums_add(ab_image_sums *acc, const ab_image_sums *image)
{
    /* forward_yolo_layer's `tot_iou += yolo_args[b].tot_iou`: there the
     * running sum is the first operand (objdump), whose NaN wins */
    acc->tot_iou = dn_add_acc(acc->tot_iou, image->tot_iou);
    acc->tot_iou_loss = dn_add_acc(acc->tot_iou_loss, image->tot_iou_loss);
    acc->tot_giou_loss = dn_add_acc(acc->tot_giou_loss, image->tot_giou_loss);
    acc->count += image->count;
    acc->class_count += image->class_count;
    acc->total_bbox += image->total_bbox;
    acc->rewritten_bbox += image->rewritten_bbox;
    acc->skipped_truths += image->skipped_truths;
}

/* The squares of one anchor's block of deltas (box planes, objectness,
 * classes), added in index order: all of them to *sum_all (mag_array of
 * delta), all but the box planes' to *sum_cls (mag_array of upstream's copy
 * with the box entries zeroed, whose +0 addends change nothing: a sum of
 * squares that starts at +0 is never -0).  Each sum keeps its own NaN when
 * the square is NaN too, as mag_array's `sum += a[i]*a[i]` does in
 * upstream's build (addss with the sum first). */
static void sum_block(const float *d, int wh, int classes, float *sum_all, float *sum_cls)
{
    float all = *sum_all, cls = *sum_cls;
    int k;
    for (k = 0; k < 4*wh; ++k) all = dn_add_acc(all, d[k]*d[k]);
    for (k = 4*wh; k < wh*(4 + 1 + classes); ++k) {
        const float sq = d[k]*d[k];
        all = dn_add_acc(all, sq);
        cls = dn_add_acc(cls, sq);
    }
    *sum_all = all;
    *sum_cls = cls;
}

/* Cost and statistics from mag_array's two sums of squares. */
static void finish_sums(const ab_yolo_layer *l, const ab_image_sums *sums, float sum_all, float sum_cls)
{
    int count = sums->count;
    float loss, class_loss = NAN, iou_loss = NAN;
    if (count == 0) count = 1;
    /* HANK(8): hank-ai reads no show_details: always the detailed branch */
    if (l->show_details == 0 && l->flavor != AB_FLAVOR_HANKAI) {
        loss = (float)pow((float)sqrt(sum_all), 2);  /* pow(mag_array(delta), 2) */
        *(l->cost) = loss;
        loss /= l->batch;
    } else {
        float avg_iou_loss = 0, mag_all, mag_cls;
        mag_all = (float)sqrt(sum_all);  /* mag_array: sqrt in double, returned as float */
        mag_cls = (float)sqrt(sum_cls);
        /* float times double pow, rounded once */
        class_loss = (float)(l->obj_normalizer*pow(mag_cls, 2));
        loss = (float)pow(mag_all, 2);
        iou_loss = loss - class_loss;
        *(l->cost) = loss;
        if (l->iou_loss != AB_MSE) {
            if (l->iou_loss == AB_GIOU) avg_iou_loss = l->iou_normalizer*(sums->tot_giou_loss/count);
            else avg_iou_loss = l->iou_normalizer*(sums->tot_iou_loss/count);
            *(l->cost) = avg_iou_loss + class_loss;
        }
        loss /= l->batch;
        class_loss /= l->batch;
        iou_loss /= l->batch;
    }
    if (!l->stats) return;
    l->stats->avg_iou = sums->tot_iou/count;
    l->stats->class_loss = class_loss;
    l->stats->iou_loss = iou_loss;
    l->stats->total_loss = loss;
    l->stats->count = count;
    l->stats->sums = *sums;
}

void ab_yolo_finish(const ab_yolo_layer *l, const ab_image_sums *sums)
{
    const int wh = l->w*l->h;
    float sum_all = 0, sum_cls = 0;
    int b, n;
    /* Upstream copies delta, zeroes the four box entries of every cell and
     * takes mag_array of the copy, then of delta itself: the two sums run
     * here in one pass in index order (sum_block). */
    for (b = 0; b < l->batch; ++b) {
        for (n = 0; n < l->n; ++n) {
            sum_block(l->delta + (size_t)b*l->outputs + (size_t)n*wh*(4 + 1 + l->classes), wh, l->classes,
                      &sum_all, &sum_cls);
        }
    }
    finish_sums(l, sums, sum_all, sum_cls);
}

/* ---- threads and the fast path ------------------------------------------------
 *
 * The reference path runs the functions above, one image per task.  The
 * fast path computes the same values, organised differently:
 *   1. per image and anchor (in parallel): the activations (ab_fast.c's
 *      logistic: expf's bits, proved; x, y scaled as upstream scales them),
 *      zeroed deltas, and loop 1, which needs each cell's best IoU
 *      (ab_max_iou_impl: the same float operations in the same order, eight
 *      cells at a time) and whether the cell has a class probability above
 *      .25; the rare cell above truth_thresh reruns upstream's loop
 *      (ignore_cell) for best_t and the branch.  The cells of an anchor are
 *      independent in loop 1: each writes only its own entries;
 *   2. per image (in parallel): loop 2 as upstream runs it, after that
 *      image's loop 1, and the averaging (iou_thresh < 1), which can only
 *      divide the box deltas of a cell with a positive class delta: the
 *      cells loop 2 wrote (and every cell of an image and anchor where a
 *      truth_thresh cell wrote);
 *   3. on the calling thread: the images' sums added in image order, and
 *      the cost's two sums of squares in index order, reading only entries
 *      that can be non-zero (objectness planes, the cells loop 2 wrote,
 *      whole blocks where a truth_thresh cell wrote): +0 squared is +0, and
 *      adding +0 to a sum of squares that started at +0 changes nothing.
 * Each task writes only its own image's (and anchor's) part of the buffers,
 * so the result does not depend on the number of threads. */

#define CHUNK 256

typedef struct ab_run {
    const ab_yolo_layer *l;
    const ab_network_state *st;
    int impl;                 /* DN_IMPL_* of the exp-based and IoU kernels */
    ab_image_sums *img;       /* batch: each image's sums */
    ab_image_sums *part;      /* batch*n: loop 1's counters per image and anchor */
    unsigned char *dense;     /* batch*n: a truth_thresh cell wrote deltas in this image and anchor */
    int *ntruth;              /* batch: rows before the x == 0 terminator */
    int *nedges;              /* batch: usable truths (class id in range) */
    float *edges;             /* batch*5*max_boxes: their edges and areas */
    int *cells;               /* batch*max_boxes*n: the cells loop 2 wrote, sorted, each once */
    int *ncells;              /* batch */
} ab_run;

static ab_truth_edges image_edges(const ab_run *r, int b)
{
    const int m = r->l->max_boxes;
    float *e = r->edges + (size_t)b*5*m;
    ab_truth_edges ts;
    ts.n = r->nedges[b];
    ts.l = e;
    ts.r = e + m;
    ts.t = e + 2*m;
    ts.b = e + 3*m;
    ts.area = e + 4*m;
    return ts;
}

/* Each image's rows and its usable truths' edges, on the calling thread
 * (a few hundred floats). */
static void load_truths(const ab_run *r)
{
    const ab_yolo_layer *l = r->l;
    int b, t;
    for (b = 0; b < l->batch; ++b) {
        const float *truths = r->st->truth + (size_t)b*l->truths;
        ab_truth_edges ts;
        r->ntruth[b] = count_rows(l, truths);
        r->nedges[b] = 0;
        ts = image_edges(r, b);
        ts.n = 0;
        for (t = 0; t < r->ntruth[b]; ++t) {
            const float *row = truths + t*AB_TRUTH_SIZE;
            const int class_id = row_int(row, 4);
            const box tb = ab_row_box(row);
            if (class_id >= l->classes || class_id < 0) continue;  /* loop 1 skips the row */
            /* overlap()'s l2, r2 and box_union's b.w*b.h, in float */
            ts.l[ts.n] = tb.x - tb.w/2;
            ts.r[ts.n] = tb.x + tb.w/2;
            ts.t[ts.n] = tb.y - tb.h/2;
            ts.b[ts.n] = tb.y + tb.h/2;
            ts.area[ts.n] = tb.w*tb.h;
            ++ts.n;
        }
        r->nedges[b] = ts.n;
    }
}

/* Activations of image b's anchor n (ab_yolo_activate_image's values). */
static void activate_anchor(const ab_yolo_layer *l, const float *input, int b, int n, int impl)
{
    const int wh = l->w*l->h;
    const int per_anchor = wh*(4 + 1 + l->classes);
    const size_t off = (size_t)b*l->outputs + (size_t)n*per_anchor;
    const float *in = input + off;
    float *p = l->output + off;
    const float alpha = l->scale_x_y;
    const float beta = (float)(-0.5*(l->scale_x_y - 1));
    int k;
    if (l->new_coords) {
        memcpy(p, in, (size_t)per_anchor*sizeof(float));
    } else {
        ab_logistic_impl(in, p, 2*wh, impl);
        memcpy(p + 2*wh, in + 2*wh, (size_t)2*wh*sizeof(float));
        ab_logistic_impl(in + 4*wh, p + 4*wh, (1 + l->classes)*wh, impl);
    }
    for (k = 0; k < 2*wh; ++k) p[k] = p[k]*alpha + beta;
}

/* Phase 1: image b = task / n, anchor n = task % n. */
static void anchor_task(void *ctx, int task)
{
    const ab_run *r = (const ab_run *)ctx;
    const ab_yolo_layer *l = r->l;
    const ab_network_state *st = r->st;
    const int b = task / l->n, n = task % l->n;
    const int wh = l->w*l->h;
    const int per_anchor = wh*(4 + 1 + l->classes);
    const size_t off = (size_t)b*l->outputs + (size_t)n*per_anchor;
    const float *truths;
    float *out = l->output + off;
    ab_truth_edges ts;
    ab_image_sums *s = &r->part[task];
    int c0, k;

    activate_anchor(l, st->input, b, n, r->impl);
    dn_zero_impl(l->delta + off, (size_t)per_anchor, r->impl);
    if (!st->train) return;
    reset_labels(l, b, n*wh, wh);
    memset(s, 0, sizeof *s);
    truths = st->truth + (size_t)b*l->truths;
    ts = image_edges(r, b);
    for (c0 = 0; c0 < wh; c0 += CHUNK) {
        float px[CHUNK], py[CHUNK], pw[CHUNK], ph[CHUNK], best[CHUNK];
        const int count = wh - c0 < CHUNK ? wh - c0 : CHUNK;
        const float bw = l->biases[2*l->mask[n]], bh = l->biases[2*l->mask[n] + 1];
        /* get_yolo_box: (i + x)/lw in float; w, h as exp(double)*anchor/net
         * size rounded to float (dn_exp_box_impl: the same bits), or with
         * new_coords x*x*4*anchor/net size in float */
        for (k = 0; k < count; ++k) {
            const int c = c0 + k;
            px[k] = (c % l->w + out[c])/l->w;
            py[k] = (c / l->w + out[wh + c])/l->h;
        }
        if (l->new_coords) {
            for (k = 0; k < count; ++k) {
                const float xw = out[2*wh + c0 + k], xh = out[3*wh + c0 + k];
                pw[k] = xw*xw*4*bw/st->net_w;
                ph[k] = xh*xh*4*bh/st->net_h;
            }
        } else {
            dn_exp_box_impl(out + 2*wh + c0, pw, count, bw, st->net_w, r->impl);
            dn_exp_box_impl(out + 3*wh + c0, ph, count, bh, st->net_h, r->impl);
        }
        ab_max_iou_impl(&ts, px, py, pw, ph, count, best, r->impl);
        for (k = 0; k < count; ++k) {
            const int c = c0 + k;
            const int obj_index = (int)off + 4*wh + c;
            float best_match_iou = 0;
            if (best[k] > l->truth_thresh) {
                /* the truth_thresh branch needs best_t: upstream's loop */
                ignore_cell(l, st, b, n, c % l->w, c / l->w, truths, r->ntruth[b], s);
                r->dense[task] = 1;
                continue;
            }
            if (ts.n > 0) {
                /* what the first usable truth does in upstream's loop */
                if (isnan(l->output[obj_index]) || isinf(l->output[obj_index])) l->output[obj_index] = 0;
                /* best_match_iou follows best_iou step for step when the
                 * cell has a class above .25, and stays 0 otherwise */
                if (ab_compare_class(l->output, l->classes, (int)off + 5*wh + c, wh, 0.25f)) {
                    best_match_iou = best[k];
                }
            }
            l->delta[obj_index] = l->obj_normalizer*(0 - l->output[obj_index]);
            if (best_match_iou > l->ignore_thresh) {
                if (l->objectness_smooth) {
                    const float delta_obj = l->obj_normalizer*(best_match_iou - l->output[obj_index]);
                    if (delta_obj > l->delta[obj_index]) l->delta[obj_index] = delta_obj;
                } else {
                    l->delta[obj_index] = 0;
                }
            }
        }
    }
}

static int cmp_int(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Phase 2: image b's loop 2 and averaging. */
static void image_task(void *ctx, int b)
{
    const ab_run *r = (const ab_run *)ctx;
    const ab_yolo_layer *l = r->l;
    const int wh = l->w*l->h;
    ab_image_sums *s = &r->img[b];
    ab_cells cells;
    int k, n, c, m;
    memset(s, 0, sizeof *s);
    cells.cell = r->cells + (size_t)b*l->max_boxes*l->n;
    cells.n = 0;
    truth_loop(l, r->st, b, r->st->truth + (size_t)b*l->truths, r->ntruth[b], s, &cells);
    /* sorted, each once: the order of the cost's sum */
    qsort(cells.cell, (size_t)cells.n, sizeof(int), cmp_int);
    for (k = 0, m = 0; k < cells.n; ++k) {
        if (m == 0 || cells.cell[k] != cells.cell[m - 1]) cells.cell[m++] = cells.cell[k];
    }
    cells.n = m;
    r->ncells[b] = m;
    if (l->iou_thresh < 1.0f) {
        for (n = 0; n < l->n; ++n) {
            if (!r->dense[b*l->n + n]) continue;
            for (c = 0; c < wh; ++c) average_cell(l, b, n, c);
        }
        for (k = 0; k < m; ++k) {
            n = cells.cell[k] / wh;
            if (!r->dense[b*l->n + n]) average_cell(l, b, n, cells.cell[k] % wh);
        }
    }
    /* loop 1's counters (integers: exact in any order) */
    for (n = 0; n < l->n; ++n) {
        s->total_bbox += r->part[b*l->n + n].total_bbox;
        s->rewritten_bbox += r->part[b*l->n + n].rewritten_bbox;
    }
}

/* The cost's sums of squares over entries that can be non-zero, in index
 * order (see above). */
static void sparse_sums(const ab_run *r, float *sum_all, float *sum_cls)
{
    const ab_yolo_layer *l = r->l;
    const int wh = l->w*l->h;
    const int per_anchor = wh*(4 + 1 + l->classes);
    float all = 0, cls = 0;
    int b, n, e, k;
    for (b = 0; b < l->batch; ++b) {
        const int *cells = r->cells + (size_t)b*l->max_boxes*l->n;
        int first = 0;
        for (n = 0; n < l->n; ++n) {
            const float *d = l->delta + (size_t)b*l->outputs + (size_t)n*per_anchor;
            int last = first;
            while (last < r->ncells[b] && cells[last] < (n + 1)*wh) ++last;
            if (r->dense[b*l->n + n]) {
                sum_block(d, wh, l->classes, &all, &cls);
            } else {
                for (e = 0; e < 4 + 1 + l->classes; ++e) {
                    if (e == 4) {
                        for (k = 0; k < wh; ++k) {
                            const float sq = d[4*wh + k]*d[4*wh + k];
                            all = dn_add_acc(all, sq);
                            cls = dn_add_acc(cls, sq);
                        }
                        continue;
                    }
                    for (k = first; k < last; ++k) {
                        const float v = d[(size_t)e*wh + cells[k] - n*wh];
                        all = dn_add_acc(all, v*v);
                        if (e > 4) cls = dn_add_acc(cls, v*v);
                    }
                }
            }
            first = last;
        }
    }
    *sum_all = all;
    *sum_cls = cls;
}

static void reference_image(void *ctx, int b)
{
    const ab_run *r = (const ab_run *)ctx;
    ab_yolo_activate_image(r->l, r->st->input, b);
    if (r->st->train) ab_yolo_train_image(r->l, r->st, b, &r->img[b]);
}

/* Upstream's loops, one image per task.  Returns -1 when out of memory for
 * the images' sums with more than one thread (nothing written yet). */
static int forward_reference(const ab_yolo_layer *l, const ab_network_state *st, int threads)
{
    ab_run r;
    ab_image_sums acc, one;
    int b;
    memset(&r, 0, sizeof r);
    r.l = l;
    r.st = st;
    if (threads > 1 && l->batch > 1) {
        r.img = malloc((size_t)l->batch*sizeof *r.img);
        if (r.img) {
            dn_parallel_for(l->batch, threads, reference_image, &r);
            if (st->train) {
                memset(&acc, 0, sizeof acc);
                for (b = 0; b < l->batch; ++b) ab_image_sums_add(&acc, &r.img[b]);
                ab_yolo_finish(l, &acc);
            }
            free(r.img);
            return 0;
        }
    }
    memset(&acc, 0, sizeof acc);
    for (b = 0; b < l->batch; ++b) ab_yolo_activate_image(l, st->input, b);
    if (!st->train) return 0;
    for (b = 0; b < l->batch; ++b) {
        ab_yolo_train_image(l, st, b, &one);
        ab_image_sums_add(&acc, &one);
    }
    ab_yolo_finish(l, &acc);
    return 0;
}

/* Returns 0, or -1 when out of memory (nothing written yet). */
static int forward_fast(const ab_yolo_layer *l, const ab_network_state *st, int threads, int impl)
{
    const size_t batch = (size_t)l->batch, cells = batch*l->n;
    const size_t rows = batch*(size_t)l->max_boxes;
    ab_run r;
    ab_image_sums acc;
    float sum_all, sum_cls;
    int b;
    memset(&r, 0, sizeof r);
    r.l = l;
    r.st = st;
    r.impl = impl;
    r.img = malloc(batch*sizeof *r.img);
    r.part = malloc(cells*sizeof *r.part);
    r.dense = calloc(cells, 1);
    r.ntruth = malloc(batch*sizeof(int));
    r.nedges = malloc(batch*sizeof(int));
    r.ncells = malloc(batch*sizeof(int));
    r.edges = malloc((rows > 0 ? rows : 1)*5*sizeof(float));
    r.cells = malloc((rows > 0 ? rows : 1)*(size_t)l->n*sizeof(int));
    if (!r.img || !r.part || !r.dense || !r.ntruth || !r.nedges || !r.ncells || !r.edges || !r.cells) {
        free(r.img), free(r.part), free(r.dense), free(r.ntruth), free(r.nedges), free(r.ncells);
        free(r.edges), free(r.cells);
        return -1;
    }
    if (st->train) load_truths(&r);
    dn_parallel_for(l->batch*l->n, threads, anchor_task, &r);
    if (st->train) {
        dn_parallel_for(l->batch, threads, image_task, &r);
        memset(&acc, 0, sizeof acc);
        for (b = 0; b < l->batch; ++b) ab_image_sums_add(&acc, &r.img[b]);
        sparse_sums(&r, &sum_all, &sum_cls);
        finish_sums(l, &acc, sum_all, sum_cls);
    }
    free(r.img), free(r.part), free(r.dense), free(r.ntruth), free(r.nedges), free(r.ncells);
    free(r.edges), free(r.cells);
    return 0;
}

int ab_forward_yolo_layer_opt(const ab_yolo_layer l, ab_network_state state, int threads, int path)
{
    int err, impl;
    err = ab_check_yolo_layer(&l);
    if (err != DN_OK || !state.input) return DN_E_LAYER;
    if (state.train) {
        if (!state.truth || state.net_w < 1 || state.net_h < 1) return DN_E_LAYER;
        err = ab_check_yolo_truths(&l, state.truth, NULL, NULL);
        if (err != DN_OK) return err;
    }
    if (state.train) *(l.cost) = 0;
    impl = dn_resolve_path(path);
    /* The fast paths prove AlexeyAB's double exp and IoU (ab_fast.c), not
     * hank-ai's HANK(1), (4)-(6): a hankai layer runs the reference path. */
    if (l.flavor == AB_FLAVOR_HANKAI) impl = DN_IMPL_REFERENCE;
    if (impl != DN_IMPL_REFERENCE && forward_fast(&l, &state, threads, impl) == 0) return DN_OK;
    /* (or no memory for the fast path's records: the reference path needs none) */
    forward_reference(&l, &state, impl == DN_IMPL_REFERENCE ? threads : 1);
    return DN_OK;
}

int ab_forward_yolo_layer(const ab_yolo_layer l, ab_network_state state)
{
    return ab_forward_yolo_layer_opt(l, state, 1, DN_PATH_AUTO);
}
