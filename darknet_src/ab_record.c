/*
 * ab_record.c -- what AlexeyAB's [yolo] forward decided, for the parity
 * toolkit's diagnosis (darknet_loss.h, ab_loss_record).  It replays the
 * decisions of upstream 59596d7's process_batch (src/yolo_layer.c) on the
 * output a training forward has just computed, with the same functions
 * (ab_box.c, ab_internal.h) and the layer's flavor.  It writes neither
 * l.output nor l.delta: its replay of the deltas goes to rec.delta.
 */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include "darknet_loss.h"
#include "ab_internal.h"

/* (int) of a truth column: a C conversion, as upstream's int class_id = ... */
static int column_int(const float *row, int col)
{
    return (int)row[col];
}

/* ---- the per-element part: process_batch's writes, replayed ----
 * Every write of upstream's process_batch to l.delta is replayed here into
 * rec.delta with the same float operations in the same order, and each
 * element keeps how its value was formed (AB_FORM_*, darknet_loss.h). */

typedef struct elems {
    float *delta;
    int *form;
    float *target;
    float *scale;
    float *norm;
    const float *out;  /* l.output */
} elems;

static void put(const elems *e, int k, float value, int form, float target, float scale, float norm)
{
    e->delta[k] = value;
    e->form[k] = form;
    e->target[k] = target;
    e->scale[k] = scale;
    e->norm[k] = norm;
}

static void put_plain(const elems *e, int k, float value, int form)
{
    put(e, k, value, form, 0, 0, 0);
}

/* delta = scale*(target - output), times norm (1: the same bits). */
static void set_target(const elems *e, int k, float target, float scale, float norm)
{
    const float diff = target - e->out[k];
    const float prod = scale*diff;
    put(e, k, prod*norm, AB_FORM_TARGET, target, scale, norm);
}

/* delta += v (delta_yolo_box's accumulation), v of form `form`: a zero
 * plus v is v's bits unless both are zeros, v's zero changes no other
 * value; two values added are no target form. */
static void add(const elems *e, int k, float v, int form, float target, float scale, float norm)
{
    const float old = e->delta[k];
    const float sum = old + v;
    if (old == 0 && v != 0) put(e, k, sum, form, target, scale, norm);
    else if (v == 0 && old != 0) e->delta[k] = sum;
    else if (old == 0 && v == 0) put_plain(e, k, sum, AB_FORM_ZERO);
    else put_plain(e, k, sum, AB_FORM_OTHER);
}

/* delta *= f (the class multiplier, times cls_normalizer in the default
 * branch): ((s*(t - o))*1)*f is (s*(t - o))*f, and (1*(t - o))*f is
 * (f*(t - o))*1. */
static void times(const elems *e, int k, float f)
{
    const float v = e->delta[k]*f;
    if (e->form[k] == AB_FORM_TARGET && e->norm[k] == 1) {
        if (e->scale[k] == 1) e->scale[k] = f;
        else e->norm[k] = f;
        e->delta[k] = v;
    } else if (v == 0) {
        put_plain(e, k, v, AB_FORM_ZERO);
    } else {
        put_plain(e, k, v, AB_FORM_OTHER);
    }
}

/* delta_yolo_class (ab_yolo_layer.c): class_id already mapped. */
static void replay_class(const ab_yolo_layer *l, const elems *e, int index, int class_id, int stride)
{
    const float eps = l->label_smooth_eps;
    const int at = index + stride*class_id;
    int n;
    if (e->delta[at]) {  /* a second truth at this cell: only its class, no cls_normalizer */
        float y_true = 1;
        float result;
        if (eps) y_true = y_true*(1 - eps) + 0.5*eps;
        result = y_true - e->out[at];
        if (!isnan(result) && !isinf(result)) put(e, at, result, AB_FORM_TARGET, y_true, 1, 1);
        if (l->classes_multipliers) times(e, at, l->classes_multipliers[class_id]);
        return;
    }
    if (l->focal_loss) {
        /* (onehot - output)*(alpha*grad): a target form of scale alpha*grad */
        const float alpha = 0.5f;
        const float pt = e->out[at] + 0.000000000000001F;
        float grad = -(1 - pt)*(2*pt*logf(pt) + pt - 1);
        if (isnan(pt)) grad = 2*pt*logf(pt) + pt - 1;  /* as ab_yolo_layer.c picks the NaN */
        for (n = 0; n < l->classes; ++n) set_target(e, index + stride*n, (n == class_id) ? 1 : 0, alpha*grad, 1);
        return;
    }
    for (n = 0; n < l->classes; ++n) {
        float y_true = (n == class_id) ? 1 : 0;
        float result;
        if (eps) y_true = y_true*(1 - eps) + 0.5*eps;
        result = y_true - e->out[index + stride*n];
        /* a non-finite result leaves the old value */
        if (!isnan(result) && !isinf(result)) put(e, index + stride*n, result, AB_FORM_TARGET, y_true, 1, 1);
        if (l->classes_multipliers && n == class_id) {
            times(e, at, l->classes_multipliers[class_id]*l->cls_normalizer);
        }
    }
}

/* delta_yolo_box (accumulate = 1) for anchor n (into biases). */
static void replay_box(const ab_yolo_layer *l, const ab_network_state *st, const elems *e, box truth, int n,
                       int index, int i, int j, float scale, float iou_normalizer)
{
    const int stride = l->w*l->h;
    const float *x = e->out;
    box pred = ab_get_yolo_box_fl(x, l->biases, n, index, i, j, l->w, l->h, st->net_w, st->net_h, stride,
                                  l->new_coords, l->flavor);
    int k;
    if (pred.w == 0) pred.w = 1.0f;
    if (pred.h == 0) pred.h = 1.0f;
    if (l->iou_loss == AB_MSE) {
        float t[4];
        t[0] = (truth.x*l->w - i);
        t[1] = (truth.y*l->h - j);
        if (l->flavor == AB_FLAVOR_HANKAI) {
            t[2] = logf(truth.w*st->net_w/l->biases[2*n]);
            t[3] = logf(truth.h*st->net_h/l->biases[2*n + 1]);
        } else {
            t[2] = (float)log(truth.w*st->net_w/l->biases[2*n]);
            t[3] = (float)log(truth.h*st->net_h/l->biases[2*n + 1]);
        }
        if (l->new_coords) {
            t[2] = (float)sqrt(truth.w*st->net_w/(4*l->biases[2*n]));
            t[3] = (float)sqrt(truth.h*st->net_h/(4*l->biases[2*n + 1]));
        }
        for (k = 0; k < 4; ++k) {
            const int at = index + k*stride;
            const float diff = t[k] - x[at];
            const float prod = scale*diff;
            add(e, at, prod*iou_normalizer, AB_FORM_TARGET, t[k], scale, iou_normalizer);
        }
    } else {
        const dxrep g = ab_dx_box_iou_fl(pred, truth, l->iou_loss, l->flavor);
        float d[4];
        d[0] = g.dt;
        d[1] = g.db;
        d[2] = g.dl;
        d[3] = g.dr;
        if (!l->new_coords && l->flavor == AB_FLAVOR_HANKAI) {
            d[2] *= expf(x[index + 2*stride]);
            d[3] *= expf(x[index + 3*stride]);
        } else if (!l->new_coords) {
            d[2] = (float)(d[2]*exp(x[index + 2*stride]));
            d[3] = (float)(d[3]*exp(x[index + 3*stride]));
        }
        for (k = 0; k < 4; ++k) {
            d[k] *= iou_normalizer;
            d[k] = ab_fix_nan_inf(d[k]);
            if (l->max_delta != FLT_MAX) d[k] = ab_clip_value(d[k], l->max_delta);
            add(e, index + k*stride, d[k], AB_FORM_OTHER, 0, 0, 0);
        }
    }
}

/* Loop 2's writes for a row at anchor `anchor` (mask index mask_n). */
static void replay_assign(const ab_yolo_layer *l, const ab_network_state *st, const elems *e, int b, box truth,
                          int anchor, int mask_n, int i, int j, int class_id)
{
    const int wh = l->w*l->h;
    const int base = b*l->outputs + mask_n*wh*(4 + 1 + l->classes) + j*l->w + i;
    const int obj_index = base + 4*wh;
    const float class_multiplier = l->classes_multipliers ? l->classes_multipliers[class_id] : 1.0f;
    const float obj_scale = class_multiplier*l->obj_normalizer;
    replay_box(l, st, e, truth, anchor, base, i, j, (2 - truth.w*truth.h), l->iou_normalizer*class_multiplier);
    if (!l->objectness_smooth || e->delta[obj_index] == 0) set_target(e, obj_index, 1, obj_scale, 1);
    replay_class(l, e, base + (4 + 1)*wh, class_id, wh);
}

/* Loop 1's writes for one cell and anchor (ignore_cell). */
static void replay_cell(const ab_yolo_layer *l, const ab_network_state *st, const elems *e, const float *truths,
                        int n, int i, int j, int box_index, float best_match, float best, int best_t)
{
    const int wh = l->w*l->h;
    const int obj_index = box_index + 4*wh;
    const int class_index = box_index + (4 + 1)*wh;
    set_target(e, obj_index, 0, l->obj_normalizer, 1);
    if (best_match > l->ignore_thresh) {
        if (l->objectness_smooth) {
            const float delta_obj = l->obj_normalizer*(best_match - e->out[obj_index]);
            if (delta_obj > e->delta[obj_index]) set_target(e, obj_index, best_match, l->obj_normalizer, 1);
        } else {
            put_plain(e, obj_index, 0, AB_FORM_ZERO);
        }
    }
    if (best > l->truth_thresh) {
        const float iou_multiplier = best*best;
        const float *row = truths + best_t*AB_TRUTH_SIZE;
        const int raw = column_int(row, 4);
        const int class_id = l->map ? l->map[raw] : raw;
        const float class_multiplier = l->classes_multipliers ? l->classes_multipliers[class_id] : 1.0f;
        const box truth = ab_row_box(row);
        set_target(e, obj_index, l->objectness_smooth ? iou_multiplier : 1, l->obj_normalizer, 1);
        replay_class(l, e, class_index, class_id, wh);
        if (l->objectness_smooth) set_target(e, class_index + wh*class_id, iou_multiplier, class_multiplier, 1);
        replay_box(l, st, e, truth, l->mask[n], box_index, i, j, (2 - truth.w*truth.h),
                   l->iou_normalizer*class_multiplier);
    }
}

/* The averaging after loop 2 (iou_thresh < 1): a cell with a non-zero
 * objectness delta has its box deltas divided by its classes with a
 * positive delta; by 1 changes no bit. */
static void replay_average(const ab_yolo_layer *l, const elems *e, int b)
{
    const int wh = l->w*l->h;
    int n, cell, c, k;
    for (n = 0; n < l->n; ++n) {
        for (cell = 0; cell < wh; ++cell) {
            const int box_index = b*l->outputs + n*wh*(4 + 1 + l->classes) + cell;
            int classes_in_one_box = 0;
            if (e->delta[box_index + 4*wh] == 0) continue;
            for (c = 0; c < l->classes; ++c) {
                if (e->delta[box_index + (5 + c)*wh] > 0) classes_in_one_box++;
            }
            if (classes_in_one_box == 0) continue;
            for (k = 0; k < 4; ++k) {
                const int at = box_index + k*wh;
                e->delta[at] /= classes_in_one_box;
                if (classes_in_one_box > 1 && e->form[at] != AB_FORM_ZERO) put_plain(e, at, e->delta[at], AB_FORM_OTHER);
            }
        }
    }
}

int ab_record_yolo_layer(const ab_yolo_layer *l, const ab_network_state *st, ab_loss_record rec)
{
    const int wh = l->w*l->h;
    const int per_anchor = wh*(4 + 1 + l->classes);
    const elems el = {rec.delta, rec.form, rec.target, rec.scale, rec.norm, l->output};
    const elems *e = rec.form ? &el : NULL;
    int b, t, n, i, j, k;
    if (ab_check_yolo_layer(l) != DN_OK || !l->output || !st->truth) return DN_E_LAYER;
    if (e && (!rec.delta || !rec.target || !rec.scale || !rec.norm)) return DN_E_LAYER;
    for (b = 0; b < l->batch; ++b) {
        const float *truths = st->truth + (size_t)b*l->truths;
        const size_t cells = (size_t)b*l->n*wh;
        const size_t rows = (size_t)b*l->max_boxes;
        int ntruth;
        /* Both loops stop at the first row with x == 0. */
        for (ntruth = 0; ntruth < l->max_boxes; ++ntruth) {
            if (!truths[ntruth*AB_TRUTH_SIZE]) break;
        }
        for (t = 0; t < l->max_boxes; ++t) {
            rec.row_status[rows + t] = t < ntruth ? 0 : 1;
            rec.best_anchor[rows + t] = rec.best_in_mask[rows + t] = -1;
            rec.row_i[rows + t] = rec.row_j[rows + t] = -1;
            for (k = 0; k < l->n; ++k) rec.extra[(rows + t)*l->n + k] = 0;
        }
        for (k = 0; k < l->n*wh; ++k) rec.writes[cells + k] = 0;
        /* activate_image's memset of the image's deltas */
        for (k = 0; e && k < l->outputs; ++k) put_plain(e, b*l->outputs + k, 0, AB_FORM_ZERO);
        /* Loop 1: the ignore test's best IoU (class gate) and the best IoU
         * over every truth (the truth_thresh branch). */
        for (n = 0; n < l->n; ++n) {
            for (j = 0; j < l->h; ++j) {
                for (i = 0; i < l->w; ++i) {
                    const int box_index = b*l->outputs + n*per_anchor + j*l->w + i;
                    const int class_index = box_index + (4 + 1)*wh;
                    const size_t at = cells + (size_t)n*wh + j*l->w + i;
                    const box pred = ab_get_yolo_box_fl(l->output, l->biases, l->mask[n], box_index, i, j, l->w,
                                                        l->h, st->net_w, st->net_h, wh, l->new_coords, l->flavor);
                    const int gate = ab_compare_class(l->output, l->classes, class_index, wh, 0.25f);
                    float best_match = 0, best = 0;
                    int best_t = 0;
                    for (t = 0; t < ntruth; ++t) {
                        const float *row = truths + t*AB_TRUTH_SIZE;
                        const int cls = column_int(row, 4);
                        float iou;
                        if (cls >= l->classes || cls < 0) continue;
                        iou = ab_box_iou_fl(pred, ab_row_box(row), l->flavor);
                        if (iou > best_match && gate == 1) best_match = iou;
                        if (iou > best) {
                            best = iou;
                            best_t = t;
                        }
                    }
                    rec.best_iou[at] = best_match;
                    rec.best_iou_all[at] = best;
                    rec.best_truth[at] = best_t;
                    if (best > l->truth_thresh) rec.writes[at]++;
                    if (e) replay_cell(l, st, e, truths, n, i, j, box_index, best_match, best, best_t);
                }
            }
        }
        /* Loop 2: each truth's best anchor, cell and iou_thresh anchors. */
        for (t = 0; t < ntruth; ++t) {
            const float *row = truths + t*AB_TRUTH_SIZE;
            const box truth = ab_row_box(row);
            box truth_shift = truth;
            const int cls = column_int(row, 4);
            int best_n, mask_n;
            if (cls >= l->classes || cls < 0) {
                rec.row_status[rows + t] = 2;
                continue;
            }
            i = (int)(truth.x*l->w);
            j = (int)(truth.y*l->h);
            truth_shift.x = truth_shift.y = 0;
            best_n = ab_best_anchor(l->biases, l->total, truth, st->net_w, st->net_h, l->flavor);
            mask_n = int_index(l->mask, best_n, l->n);
            rec.best_anchor[rows + t] = best_n;
            rec.best_in_mask[rows + t] = mask_n;
            rec.row_i[rows + t] = i;
            rec.row_j[rows + t] = j;
            if (mask_n >= 0) {
                rec.writes[cells + (size_t)mask_n*wh + j*l->w + i]++;
                if (e) replay_assign(l, st, e, b, truth, best_n, mask_n, i, j, l->map ? l->map[cls] : cls);
            }
            if (l->iou_thresh < 1.0f) {
                for (n = 0; n < l->total; ++n) {
                    const int extra_n = int_index(l->mask, n, l->n);
                    if (extra_n >= 0 && n != best_n &&
                        ab_anchor_iou_kind(l->biases, n, truth_shift, st->net_w, st->net_h, l->iou_thresh_kind,
                                           l->flavor) > l->iou_thresh) {
                        rec.extra[(rows + t)*l->n + extra_n] = 1;
                        rec.writes[cells + (size_t)extra_n*wh + j*l->w + i]++;
                        if (e) replay_assign(l, st, e, b, truth, n, extra_n, i, j, l->map ? l->map[cls] : cls);
                    }
                }
            }
        }
        if (e && l->iou_thresh < 1.0f) replay_average(l, e, b);
    }
    return DN_OK;
}
