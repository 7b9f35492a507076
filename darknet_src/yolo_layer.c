/*
 * yolo_layer.c -- darknet's [yolo] layer (YOLOv3), forward pass, reproduced
 * operation for operation from upstream src/yolo_layer.c at f6afaab.
 *
 * Types matter here more than anywhere: an int times a float is a float, exp
 * and log take and return doubles, and every store into a float rounds.  Each
 * expression below keeps upstream's types and evaluation order; where that is
 * not obvious a comment says so.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dn_fast.h"

int yolo_layer_init(layer *l, int batch, int w, int h, int n, int total, int classes)
{
    layer z;
    memset(&z, 0, sizeof z);
    *l = z;
    if (batch < 1 || w < 1 || h < 1 || n < 1 || total < 1 || classes < 1) return DN_E_LAYER;
    if ((long long)w*h*n*(classes + 4 + 1)*batch > 0x7fffffffLL) return DN_E_LAYER;
    l->type = DN_YOLO;
    l->batch = batch;
    l->w = w;
    l->h = h;
    l->n = n;
    l->total = total;
    l->classes = classes;
    l->coords = 4;
    l->c = n*(classes + 4 + 1);
    l->outputs = h*w*l->c;
    l->inputs = l->outputs;
    l->truths = DN_YOLO_MAX_TRUTHS*(4 + 1);
    /* parse_yolo's defaults. */
    l->max_boxes = DN_YOLO_MAX_TRUTHS;
    l->ignore_thresh = .5f;
    l->truth_thresh = 1;
    return DN_OK;
}

layer make_yolo_layer(int batch, int w, int h, int n, int total, const int *mask, int classes)
{
    layer l;
    int i;
    if (yolo_layer_init(&l, batch, w, h, n, total, classes) != DN_OK) return l;
    l.mask = calloc((size_t)n, sizeof(int));
    l.biases = calloc((size_t)total*2, sizeof(float));
    l.cost = calloc(1, sizeof(float));
    l.stats = calloc(1, sizeof(loss_stats));
    l.delta = calloc((size_t)batch*l.outputs, sizeof(float));
    l.output = calloc((size_t)batch*l.outputs, sizeof(float));
    if (!l.mask || !l.biases || !l.cost || !l.stats || !l.delta || !l.output) {
        free_layer(l);
        memset(&l, 0, sizeof l);
        return l;
    }
    for (i = 0; i < n; ++i) l.mask[i] = mask ? mask[i] : i;
    for (i = 0; i < total*2; ++i) l.biases[i] = .5;
    return l;
}

void free_layer(layer l)
{
    free(l.mask);
    free(l.biases);
    free(l.cost);
    free(l.stats);
    free(l.delta);
    free(l.output);
}

/* The predicted box of anchor n at cell (i, j), in units of the network input:
 * x, y in float; w, h as exp(double) * bias / size in double, then rounded. */
box get_yolo_box(const float *x, const float *biases, int n, int index, int i, int j,
                 int lw, int lh, int w, int h, int stride)
{
    box b;
    b.x = (i + x[index + 0*stride]) / lw;
    b.y = (j + x[index + 1*stride]) / lh;
    b.w = (float)(exp((double)x[index + 2*stride]) * biases[2*n] / w);
    b.h = (float)(exp((double)x[index + 3*stride]) * biases[2*n + 1] / h);
    return b;
}

/* delta_yolo_box (and delta_region_box, the same code upstream with the grid
 * size for the network size): writes scale * (target - x) for the four box
 * entries and returns the IoU of the prediction with the truth.
 * tw = log(truth.w*w / bias): product and quotient in float, log in double. */
static void box_targets(box truth, const float *biases, int n, int i, int j, int lw, int lh, int w, int h,
                        float t[4])
{
    t[0] = (truth.x*lw - i);
    t[1] = (truth.y*lh - j);
    t[2] = (float)log((double)(truth.w*w / biases[2*n]));
    t[3] = (float)log((double)(truth.h*h / biases[2*n + 1]));
}

float dn_delta_box(const layer *l, box truth, const float *x, const float *biases, int n, int index,
                   int i, int j, int lw, int lh, int w, int h, float scale, int stride)
{
    box pred = get_yolo_box(x, biases, n, index, i, j, lw, lh, w, h, stride);
    float iou = box_iou(pred, truth);
    float t4[4];
    float tx, ty, tw, th;
    box_targets(truth, biases, n, i, j, lw, lh, w, h, t4);
    tx = t4[0];
    ty = t4[1];
    tw = t4[2];
    th = t4[3];

    put_delta(l, index + 0*stride, scale * (tx - x[index + 0*stride]), tx, scale);
    put_delta(l, index + 1*stride, scale * (ty - x[index + 1*stride]), ty, scale);
    put_delta(l, index + 2*stride, scale * (tw - x[index + 2*stride]), tw, scale);
    put_delta(l, index + 3*stride, scale * (th - x[index + 3*stride]), th, scale);
    return iou;
}

/* Class deltas 1 - p for the truth class and 0 - p elsewhere.  Upstream's
 * short-circuit: if the first class entry of this cell already holds a
 * non-zero delta (an earlier truth hit the same cell and anchor), only the
 * new class's entry is set and the others keep the earlier values. */
static void delta_yolo_class(const layer *l, const float *output, int index, int class_id,
                             int classes, int stride, float *avg_cat)
{
    int n;
    if (l->delta[index]) {
        put_delta(l, index + stride*class_id, 1 - output[index + stride*class_id], 1, 1);
        if (avg_cat) *avg_cat = dn_add_acc(*avg_cat, output[index + stride*class_id]);
        return;
    }
    for (n = 0; n < classes; ++n) {
        put_delta(l, index + stride*n, ((n == class_id) ? 1 : 0) - output[index + stride*n],
                  (n == class_id) ? 1 : 0, 1);
        if (n == class_id && avg_cat) *avg_cat = dn_add_acc(*avg_cat, output[index + stride*n]);
    }
}

#define CHUNK 256  /* cells per batch of the fast kernels */

/* (int)truth[4], then the optional map: a fractional id such as 2.7 is 2. */
static int truth_class(const layer *l, const float *truth_row)
{
    int class_id = (int)truth_row[4];
    if (l->map) class_id = l->map[class_id];
    return class_id;
}

/* What the truth loop of one image adds to the statistics, kept per image by
 * the fast path and added up afterwards in upstream's order, and the cells
 * (anchor*w*h + cell, sorted, each once) whose box and class entries it
 * wrote.  Only those, and the objectness planes, can hold a non-zero delta. */
typedef struct yolo_image {
    int n_hits;
    float obj[DN_YOLO_MAX_TRUTHS], cat[DN_YOLO_MAX_TRUTHS], iou[DN_YOLO_MAX_TRUTHS];
    int n_cells;
    int cells[DN_YOLO_MAX_TRUTHS];
    int n_slots;  /* forward_yolo_layer_terms: rows used, in first-hit order */
    double part[DN_IMPLIED_PARTS][2];  /* and the implied loss's parts: sum, compensation */
} yolo_image;

/* forward_yolo_layer_terms's outputs (see darknet_loss.h). */
typedef struct yolo_terms {
    float *obj_target, *obj_scale;
    int *cells;
    float *cell_target, *cell_scale;
    double *parts;
} yolo_terms;

/* Compensated (Neumaier) summation: sc[0] the sum, sc[1] the lost low
 * part; an infinite or NaN sum is left to plain addition. */
static void acc(double *sc, double v)
{
    double s = sc[0], t = s + v;
    if (isfinite(t)) sc[1] += fabs(s) >= fabs(v) ? (s - t) + v : (v - t) + s;
    sc[0] = t;
}

/* pydarknet_loss.implied._bce: softplus(x) - t*x without cancellation,
 * (1 - t)*max(x, 0) - t*min(x, 0) + log1p(exp(-|x|)), NaN kept as
 * np.maximum / np.minimum keep it. */
static double bce(double x, double t)
{
    double pos = x < 0 ? 0 : x;
    double neg = x > 0 ? 0 : x;
    return (1 - t)*pos - t*neg + log1p(exp(-fabs(x)));
}

/* The implied loss of image b (implied.ImpliedLoss.value's terms for
 * [yolo]) from the selection just written: objectness terms split by
 * whether the cell is assigned, and the assigned cells' box and class
 * terms; parts in implied.PARTS order (xy, wh, obj_pos, obj_neg, class,
 * prior, mask; the last two are 0 for [yolo]). */
static void yolo_image_parts(const layer *l, const network *net, const yolo_terms *terms, yolo_image *rec, int b,
                             int impl)
{
    const int wh = l->w*l->h, per = 4 + 1 + l->classes, per_anchor = wh*per;
    const float *in = net->input + (size_t)b*l->outputs;
    int a, c, c0, e, k, next = 0;
    memset(rec->part, 0, sizeof rec->part);
    for (a = 0; a < l->n; ++a) {
        const float *x = in + (size_t)a*per_anchor + 4*wh;
        for (c0 = 0; c0 < wh; c0 += CHUNK) {
            double tail[CHUNK];
            int count = wh - c0 < CHUNK ? wh - c0 : CHUNK;
            dn_softplus_tail_impl(x + c0, count, tail, impl);
            for (c = c0; c < c0 + count; ++c) {
                const int key = a*wh + c;
                const size_t o = (size_t)(b*l->n + a)*wh + c;
                double sc = terms->obj_scale[o], t = terms->obj_target[o], xd = x[c];
                int assigned;
                while (next < rec->n_cells && rec->cells[next] < key) ++next;
                assigned = next < rec->n_cells && rec->cells[next] == key;
                if (isnan(sc)) continue;
                /* bce(x, t) with the tail precomputed */
                acc(rec->part[assigned ? 2 : 3], sc*((1 - t)*(xd < 0 ? 0 : xd) - t*(xd > 0 ? 0 : xd) + tail[c - c0]));
            }
        }
    }
    for (k = 0; k < rec->n_slots; ++k) {
        const int row = b*l->max_boxes + k, key = terms->cells[row] - b*l->n*wh;
        const float *x = in + (size_t)(key / wh)*per_anchor + key % wh;
        const float *t = terms->cell_target + (size_t)row*per, *sc = terms->cell_scale + (size_t)row*per;
        for (e = 0; e < per; ++e) {
            double xe = x[(size_t)e*wh], te = t[e], se = sc[e];
            if (e == 4 || isnan(se)) continue;
            if (e < 2) acc(rec->part[0], se*bce(xe, te));
            else if (e < 4) acc(rec->part[1], se/2*((xe - te)*(xe - te)));
            else acc(rec->part[4], se*bce(xe, te));
        }
    }
}

/* The row of `terms` that holds image b's cell `key` (anchor*w*h + cell),
 * started with every entry at no term if new. */
static int terms_row(const layer *l, const yolo_terms *terms, yolo_image *rec, int b, int key)
{
    const int per = 4 + 1 + l->classes;
    const int first = b*l->max_boxes;
    int k, row;
    for (k = 0; k < rec->n_slots; ++k) {
        if (terms->cells[first + k] == b*l->n*l->w*l->h + key) return first + k;
    }
    row = first + rec->n_slots++;
    terms->cells[row] = b*l->n*l->w*l->h + key;
    for (k = 0; k < per; ++k) {
        terms->cell_target[(size_t)row*per + k] = 0;
        terms->cell_scale[(size_t)row*per + k] = NAN;
    }
    return row;
}

/* Upstream's ignore loop for one cell and anchor: the best IoU of the
 * predicted box with any truth, the first truth that attains it in *best_t. */
static float yolo_best_iou(const layer *l, const network *net, int b, int n, int i, int j, int *best_t)
{
    const int wh = l->w*l->h;
    const float *truths = net->truth + b*l->truths;
    int box_index = entry_index(l, b, n*wh + j*l->w + i, 0);
    box pred = get_yolo_box(l->output, l->biases, l->mask[n], box_index, i, j, l->w, l->h, net->w, net->h, wh);
    float best_iou = 0;
    int t;
    *best_t = 0;
    for (t = 0; t < l->max_boxes; ++t) {
        box truth = float_to_box(truths + t*(4 + 1), 1);
        float iou;
        if (!truth.x) break;  /* a truth with x == 0 ends the list */
        iou = box_iou(pred, truth);
        if (iou > best_iou) {
            best_iou = iou;
            *best_t = t;
        }
    }
    return best_iou;
}

/* best_iou > truth_thresh: the cell learns truth best_t as if assigned. */
static void yolo_truth_thresh_cell(const layer *l, const network *net, int b, int n, int i, int j, int best_t)
{
    const int wh = l->w*l->h;
    const float *row = net->truth + b*l->truths + best_t*(4 + 1);
    int box_index = entry_index(l, b, n*wh + j*l->w + i, 0);
    int obj_index = entry_index(l, b, n*wh + j*l->w + i, 4);
    int class_index = entry_index(l, b, n*wh + j*l->w + i, 4 + 1);
    box truth = float_to_box(row, 1);
    put_delta(l, obj_index, 1 - l->output[obj_index], 1, 1);
    delta_yolo_class(l, l->output, class_index, truth_class(l, row), l->classes, wh, 0);
    dn_delta_box(l, truth, l->output, l->biases, l->mask[n], box_index, i, j,
                 l->w, l->h, net->w, net->h, (2 - truth.w*truth.h), wh);
}

/* Upstream's truth loop for image b: each truth goes to the best of all
 * `total` anchors by shape alone; if that anchor is in this layer's mask,
 * its cell gets the box, objectness and class deltas.  A later truth in the
 * same cell and anchor overwrites the box and objectness deltas of an
 * earlier one.  The statistics go to *sums (the reference path) or, in
 * upstream's order, to *rec (the fast path, which adds them up later). */
static void yolo_truths(const layer *l, const network *net, int b, dn_sums *sums, yolo_image *rec,
                        const yolo_terms *terms)
{
    const int wh = l->w*l->h;
    const float *truths = net->truth + b*l->truths;
    int t, n;
    for (t = 0; t < l->max_boxes; ++t) {
        const float *row = truths + t*(4 + 1);
        box truth = float_to_box(row, 1);
        box truth_shift;
        float best_iou = 0;
        int best_n = 0, i, j;
        int mask_n;
        if (!truth.x) break;
        /* Cell indices: float product truncated to int. */
        i = (int)(truth.x*l->w);
        j = (int)(truth.y*l->h);
        truth_shift = truth;
        truth_shift.x = truth_shift.y = 0;
        for (n = 0; n < l->total; ++n) {
            box pred = {0, 0, 0, 0};
            float iou;
            pred.w = l->biases[2*n]/net->w;
            pred.h = l->biases[2*n + 1]/net->h;
            iou = box_iou(pred, truth_shift);
            if (iou > best_iou) {
                best_iou = iou;
                best_n = n;
            }
        }

        mask_n = int_index(l->mask, best_n, l->n);
        if (mask_n >= 0) {
            int box_index = entry_index(l, b, mask_n*wh + j*l->w + i, 0);
            int obj_index = entry_index(l, b, mask_n*wh + j*l->w + i, 4);
            int class_index = entry_index(l, b, mask_n*wh + j*l->w + i, 4 + 1);
            float iou = dn_delta_box(l, truth, l->output, l->biases, best_n, box_index, i, j,
                                     l->w, l->h, net->w, net->h, (2 - truth.w*truth.h), wh);
            put_delta(l, obj_index, 1 - l->output[obj_index], 1, 1);
            if (terms) {
                /* The targets and scales these put_delta calls record, in
                 * the cell's row: box, objectness, and the classes as
                 * delta_yolo_class sets them (all, or only this truth's
                 * class when the short-circuit applies). */
                const int per = 4 + 1 + l->classes, key = mask_n*wh + j*l->w + i;
                const int r = terms_row(l, terms, rec, b, key);
                float *t = terms->cell_target + (size_t)r*per, *sc = terms->cell_scale + (size_t)r*per;
                float scale = (2 - truth.w*truth.h);
                int k, class_id = truth_class(l, row);
                box_targets(truth, l->biases, best_n, i, j, l->w, l->h, net->w, net->h, t);
                for (k = 0; k < 4; ++k) sc[k] = scale;
                t[4] = 1;
                sc[4] = 1;
                terms->obj_target[b*l->n*wh + key] = 1;
                terms->obj_scale[b*l->n*wh + key] = 1;
                if (!l->delta[class_index]) {
                    for (k = 0; k < l->classes; ++k) {
                        t[5 + k] = (k == class_id) ? 1 : 0;
                        sc[5 + k] = 1;
                    }
                } else {
                    t[5 + class_id] = 1;
                    sc[5 + class_id] = 1;
                }
            }
            if (rec) {
                float cat = 0;
                delta_yolo_class(l, l->output, class_index, truth_class(l, row), l->classes, wh, &cat);
                rec->obj[rec->n_hits] = l->output[obj_index];
                rec->cat[rec->n_hits] = cat;  /* 0 + p is p, exactly */
                rec->iou[rec->n_hits] = iou;
                ++rec->n_hits;
                dn_add_cell(rec->cells, &rec->n_cells, mask_n*wh + j*l->w + i);
                continue;
            }
            sums->avg_obj = dn_add_acc(sums->avg_obj, l->output[obj_index]);
            delta_yolo_class(l, l->output, class_index, truth_class(l, row), l->classes, wh, &sums->avg_cat);
            ++sums->count;
            ++sums->class_count;
            if (iou > .5) sums->recall += 1;
            if (iou > .75) sums->recall75 += 1;
            sums->avg_iou = dn_add_v(sums->avg_iou, iou);  /* iou + avg_iou, as upstream's build adds it */
        }
    }
}

/* The reference path: upstream's forward_yolo_layer loop for loop. */
static void forward_yolo_reference(const layer *lp, const network *netp)
{
    const layer l = *lp;
    int i, j, b, n;
    const int wh = l.w*l.h;
    dn_sums sums = {0, 0, 0, 0, 0, 0, 0, 0};

    memcpy(l.output, netp->input, (size_t)l.outputs*l.batch*sizeof(float));
    /* The GPU build compiles this activation out: its input comes activated. */
    for (b = 0; b < l.batch && !netp->input_activated; ++b) {
        for (n = 0; n < l.n; ++n) {
            /* x, y, then objectness and classes; w and h stay raw. */
            int index = entry_index(&l, b, n*wh, 0);
            activate_array_logistic(l.output + index, 2*wh);
            index = entry_index(&l, b, n*wh, 4);
            activate_array_logistic(l.output + index, (1 + l.classes)*wh);
        }
    }
    memset(l.delta, 0, (size_t)l.outputs*l.batch*sizeof(float));
    if (!netp->train) return;
    clear_targets(&l);

    *(l.cost) = 0;
    for (b = 0; b < l.batch; ++b) {
        /* Every cell and anchor: objectness target 0, unless the best IoU
         * with any truth beats ignore_thresh (no delta) or truth_thresh. */
        for (j = 0; j < l.h; ++j) {
            for (i = 0; i < l.w; ++i) {
                for (n = 0; n < l.n; ++n) {
                    int best_t;
                    float best_iou = yolo_best_iou(&l, netp, b, n, i, j, &best_t);
                    int obj_index = entry_index(&l, b, n*wh + j*l.w + i, 4);
                    sums.avg_anyobj = dn_add_acc(sums.avg_anyobj, l.output[obj_index]);
                    put_delta(&l, obj_index, 0 - l.output[obj_index], 0, 1);
                    if (best_iou > l.ignore_thresh) {
                        clear_delta(&l, obj_index);
                    }
                    if (best_iou > l.truth_thresh) {
                        yolo_truth_thresh_cell(&l, netp, b, n, i, j, best_t);
                    }
                }
            }
        }
        yolo_truths(&l, netp, b, &sums, NULL, NULL);
    }
    /* pow(float, 2) in double, rounded back into the float cost. */
    dn_finish_forward(&l, &sums);
}

/* ---- the fast path -------------------------------------------------------------
 *
 * The same arithmetic on every element, organised differently:
 *   1. per image and anchor (in parallel): the activations (fast.c's kernels:
 *      the reference's bits, proved), zeroed deltas, and the ignore loop,
 *      which needs only the best IoU of each cell (dn_max_iou_impl: the same
 *      float operations, the maximum taken in another order, which leaves
 *      a maximum unchanged); the rare cell above truth_thresh reruns the
 *      reference loop for best_t;
 *   2. per image (in parallel): the truth loop, as the reference runs it,
 *      after that image's ignore loop as upstream has it;
 *   3. on the calling thread: every float sum that crosses images, in
 *      upstream's order, from the stored values: the statistics, and the
 *      cost's sum of squares.  That sum skips entries that are certainly 0
 *      (+0 squared is +0, and adding +0 to a sum that started at +0 changes
 *      nothing), so it reads the objectness planes and the cells the truth
 *      loop wrote, in index order, and whole images where a truth_thresh
 *      cell wrote elsewhere.
 * Each task writes only its own image's (and anchor's) part of the buffers. */

typedef struct yolo_fast {
    const layer *l;
    const network *net;
    int impl;
    const yolo_terms *terms;  /* NULL but for forward_yolo_layer_terms */
    unsigned char *dense;  /* batch*n: a truth_thresh cell wrote deltas in this image and anchor */
    yolo_image *img;       /* batch */
} yolo_fast;

static void yolo_image_anchor(void *ctx, int task)
{
    const yolo_fast *f = (const yolo_fast *)ctx;
    const layer *l = f->l;
    const network *net = f->net;
    const int b = task / l->n, a = task % l->n;
    const int wh = l->w*l->h, per_anchor = wh*(4 + 1 + l->classes);
    const size_t off = (size_t)b*l->outputs + (size_t)a*per_anchor;
    const float *in = net->input + off;
    float *out = l->output + off, *d = l->delta + off;
    dn_truths ts;
    int c0, k;

    /* Activations: x, y, objectness and classes; w and h stay raw.  The
     * GPU build's input comes activated (its CPU activation is compiled out). */
    if (net->input_activated) {
        memcpy(out, in, (size_t)per_anchor*sizeof(float));
    } else {
        dn_logistic_impl(in, out, 2*wh, f->impl);
        memcpy(out + 2*wh, in + 2*wh, (size_t)2*wh*sizeof(float));
        dn_logistic_impl(in + 4*wh, out + 4*wh, (1 + l->classes)*wh, f->impl);
    }
    dn_zero_impl(d, (size_t)per_anchor, f->impl);
    if (!net->train) return;
    if (l->target) {
        for (k = 0; k < per_anchor; ++k) {
            l->target[off + k] = 0;
            l->target_scale[off + k] = NAN;
        }
    }

    /* The ignore loop, objectness delta by objectness delta. */
    dn_truths_load(&ts, net->truth + b*l->truths, 4 + 1, l->max_boxes);
    for (c0 = 0; c0 < wh; c0 += CHUNK) {
        float px[CHUNK], py[CHUNK], pw[CHUNK], ph[CHUNK], best[CHUNK];
        int count = wh - c0 < CHUNK ? wh - c0 : CHUNK;
        /* get_yolo_box: (i + x)/lw in float; w, h as exp(double)*bias/net size. */
        dn_exp_box_impl(in + 2*wh + c0, pw, count, l->biases[2*l->mask[a]], net->w, f->impl);
        dn_exp_box_impl(in + 3*wh + c0, ph, count, l->biases[2*l->mask[a] + 1], net->h, f->impl);
        for (k = 0; k < count; ++k) {
            int c = c0 + k;
            px[k] = (c % l->w + out[c]) / l->w;
            py[k] = (c / l->w + out[wh + c]) / l->h;
        }
        dn_max_iou_impl(&ts, px, py, pw, ph, count, best, f->impl);
        for (k = 0; k < count; ++k) {
            int c = c0 + k;
            int obj_index = (int)off + 4*wh + c;
            put_delta(l, obj_index, 0 - l->output[obj_index], 0, 1);
            if (best[k] > l->ignore_thresh) {
                clear_delta(l, obj_index);
            }
            if (f->terms) {
                f->terms->obj_target[task*wh + c] = 0;
                f->terms->obj_scale[task*wh + c] = best[k] > l->ignore_thresh ? NAN : 1;
            }
            if (best[k] > l->truth_thresh) {
                int best_t;
                (void)yolo_best_iou(l, net, b, a, c % l->w, c / l->w, &best_t);
                yolo_truth_thresh_cell(l, net, b, a, c % l->w, c / l->w, best_t);
                f->dense[task] = 1;
            }
        }
    }
}

static void yolo_image_truths(void *ctx, int b)
{
    const yolo_fast *f = (const yolo_fast *)ctx;
    int k;
    f->img[b].n_hits = 0;
    f->img[b].n_cells = 0;
    f->img[b].n_slots = 0;
    yolo_truths(f->l, f->net, b, NULL, &f->img[b], f->terms);
    if (f->terms) {
        const layer *l = f->l;
        const int wh = l->w*l->h, per_anchor = wh*(4 + 1 + l->classes);
        const yolo_image *rec = &f->img[b];
        int a, c, e, dense = 0;
        for (k = rec->n_slots; k < l->max_boxes; ++k) f->terms->cells[b*l->max_boxes + k] = -1;
        for (a = 0; a < l->n; ++a) dense |= f->dense[b*l->n + a];
        if (dense) return;  /* the caller runs the forward again */
        /* The gradient pdl.torch hands on: 0 - delta, written where delta
         * can be non-zero (0 - +0 is +0 everywhere else).  The cost's sum
         * of squares, taken later, is the same for either sign. */
        for (a = 0; a < l->n; ++a) {
            float *d = l->delta + (size_t)b*l->outputs + (size_t)a*per_anchor;
            for (c = 0; c < wh; ++c) d[4*wh + c] = 0 - d[4*wh + c];
        }
        for (k = 0; k < rec->n_cells; ++k) {
            float *d = l->delta + (size_t)b*l->outputs + (size_t)(rec->cells[k] / wh)*per_anchor + rec->cells[k] % wh;
            for (e = 0; e < 4 + 1 + l->classes; ++e) {
                if (e != 4) d[(size_t)e*wh] = 0 - d[(size_t)e*wh];
            }
        }
        yolo_image_parts(l, f->net, f->terms, &f->img[b], b, f->impl);
    }
}

/* Returns 0, -1 when out of memory (nothing written yet), or 1 when a cell
 * went through the truth_thresh branch (which `terms` cannot describe). */
static int forward_yolo_fast(const layer *l, const network *net, int threads, int impl, const yolo_terms *terms)
{
    const int wh = l->w*l->h, per_anchor = wh*(4 + 1 + l->classes);
    yolo_fast f;
    dn_sums sums = {0, 0, 0, 0, 0, 0, 0, 0};
    float sumsq = 0;
    int b, n, c, k, e;
    int any_dense = 0;
    f.l = l;
    f.net = net;
    f.impl = impl;
    f.terms = terms;
    f.dense = calloc((size_t)l->batch*l->n, 1);
    f.img = net->train ? malloc((size_t)l->batch*sizeof(yolo_image)) : NULL;
    if (!f.dense || (net->train && !f.img)) {
        free(f.dense);
        free(f.img);
        return -1;
    }
    dn_parallel_for(l->batch*l->n, threads, yolo_image_anchor, &f);
    if (!net->train) {
        free(f.dense);
        return 0;
    }
    dn_parallel_for(l->batch, threads, yolo_image_truths, &f);

    /* Statistics, each sum in upstream's order: the ignore loop's over
     * images, rows, columns and anchors; the truth loop's over images and
     * truths. */
    for (b = 0; b < l->batch; ++b) {
        const float *obj = l->output + (size_t)b*l->outputs + 4*wh;
        for (c = 0; c < wh; ++c) {
            for (n = 0; n < l->n; ++n) sums.avg_anyobj = dn_add_acc(sums.avg_anyobj, obj[(size_t)n*per_anchor + c]);
        }
    }
    for (b = 0; b < l->batch; ++b) {
        const yolo_image *rec = &f.img[b];
        for (k = 0; k < rec->n_hits; ++k) {
            float iou = rec->iou[k];
            sums.avg_obj = dn_add_acc(sums.avg_obj, rec->obj[k]);
            sums.avg_cat = dn_add_acc(sums.avg_cat, rec->cat[k]);
            ++sums.count;
            ++sums.class_count;
            if (iou > .5) sums.recall += 1;
            if (iou > .75) sums.recall75 += 1;
            sums.avg_iou = dn_add_v(sums.avg_iou, iou);
        }
    }

    /* The cost's sum of squares over the whole batch, in index order. */
    for (b = 0; b < l->batch; ++b) {
        const yolo_image *rec = &f.img[b];
        int dense = 0, first = 0;
        for (n = 0; n < l->n; ++n) dense |= f.dense[b*l->n + n];
        any_dense |= dense;
        if (dense) {
            sumsq = dn_sum_squares(l->delta + (size_t)b*l->outputs, l->outputs, sumsq);
            continue;
        }
        for (n = 0; n < l->n; ++n) {
            const float *d = l->delta + (size_t)b*l->outputs + (size_t)n*per_anchor;
            int last = first;
            while (last < rec->n_cells && rec->cells[last] < (n + 1)*wh) ++last;
            for (e = 0; e < 4 + 1 + l->classes; ++e) {
                if (e == 4) {
                    sumsq = dn_sum_squares(d + 4*wh, wh, sumsq);
                    continue;
                }
                for (k = first; k < last; ++k) {
                    float v = d[e*wh + rec->cells[k] - n*wh];
                    sumsq = dn_add_acc(sumsq, v*v);
                }
            }
            first = last;
        }
    }
    if (terms && !any_dense) {
        /* The implied loss's parts: the images' compensated sums, added in
         * image order (the same for any number of threads). */
        int p;
        for (p = 0; p < DN_IMPLIED_PARTS; ++p) {
            double sc[2] = {0, 0};
            for (b = 0; b < l->batch; ++b) acc(sc, f.img[b].part[p][0] + f.img[b].part[p][1]);
            terms->parts[p] = sc[0] + sc[1];
        }
    }
    free(f.dense);
    free(f.img);
    dn_finish_forward_sum(l, &sums, sumsq);
    return terms && any_dense ? 1 : 0;
}

int forward_yolo_layer_opt(const layer l, network net, int threads, int path)
{
    int err = dn_check_forward(&l, &net, DN_YOLO);
    int impl;
    if (err != DN_OK) return err;
    impl = dn_resolve_path(path);
    if (impl != DN_IMPL_REFERENCE) {
        if (forward_yolo_fast(&l, &net, threads, impl, NULL) == 0) return DN_OK;
        /* No memory for the per-image records: the reference path needs none. */
    }
    forward_yolo_reference(&l, &net);
    return DN_OK;
}

int forward_yolo_layer_terms(const layer l, network net, int threads, int path, float *obj_target,
                             float *obj_scale, int *cells, float *cell_target, float *cell_scale, double *parts)
{
    yolo_terms terms;
    int err = dn_check_forward(&l, &net, DN_YOLO);
    int impl, rc;
    if (err != DN_OK) return err;
    /* The implied loss's parts read the raw logits, which an activated
     * input no longer holds. */
    if (!net.train || l.target || net.input_activated) return DN_E_LAYER;
    terms.obj_target = obj_target;
    terms.obj_scale = obj_scale;
    terms.cells = cells;
    terms.cell_target = cell_target;
    terms.cell_scale = cell_scale;
    terms.parts = parts;
    impl = dn_resolve_path(path);
    rc = forward_yolo_fast(&l, &net, threads, impl == DN_IMPL_REFERENCE ? DN_IMPL_PORTABLE : impl, &terms);
    if (rc < 0) {
        forward_yolo_reference(&l, &net);
        return DN_TERMS_DENSE;
    }
    return rc ? DN_TERMS_DENSE : DN_OK;
}

int forward_yolo_layer(const layer l, network net)
{
    return forward_yolo_layer_opt(l, net, 1, DN_PATH_AUTO);
}

/* ---- detections ------------------------------------------------------------- */

int yolo_num_detections(const layer l, float thresh)
{
    int i, n, count = 0;
    for (i = 0; i < l.w*l.h; ++i) {
        for (n = 0; n < l.n; ++n) {
            int obj_index = entry_index(&l, 0, n*l.w*l.h + i, 4);
            if (l.output[obj_index] > thresh) ++count;
        }
    }
    return count;
}

/* Upstream's test-time flip averaging for batch 2 (get_region_detections
 * repeats the same loop with coords + 1 + classes entries).  Its indices treat
 * the buffer as [entry][anchor][cell] while it is [anchor][entry][cell]: with
 * z*w*h*n + n*w*h it mirrors and negates (z == 0) planes that belong to
 * anchor 0's entries, never touches the middle column of an odd width, and
 * only image 0 is averaged with the flipped image 1. */
void avg_flipped_yolo(const layer l)
{
    int i, j, n, z;
    float *flip = l.output + l.outputs;
    for (j = 0; j < l.h; ++j) {
        for (i = 0; i < l.w/2; ++i) {
            for (n = 0; n < l.n; ++n) {
                for (z = 0; z < l.classes + l.coords + 1; ++z) {
                    int i1 = z*l.w*l.h*l.n + n*l.w*l.h + j*l.w + i;
                    int i2 = z*l.w*l.h*l.n + n*l.w*l.h + j*l.w + (l.w - i - 1);
                    float swap = flip[i1];
                    flip[i1] = flip[i2];
                    flip[i2] = swap;
                    if (z == 0) {
                        flip[i1] = -flip[i1];
                        flip[i2] = -flip[i2];
                    }
                }
            }
        }
    }
    for (i = 0; i < l.outputs; ++i) {
        l.output[i] = (float)((l.output[i] + flip[i])/2.);
    }
}

/* correct_yolo_boxes and correct_region_boxes are the same code upstream. */
void correct_yolo_boxes(detection *dets, int n, int w, int h, int netw, int neth, int relative)
{
    int i;
    int new_w = 0;
    int new_h = 0;
    /* Letterbox size with int division: a 1x1000 image gets new_w 0 and
     * then inf/NaN boxes, as upstream does. */
    if (((float)netw/w) < ((float)neth/h)) {
        new_w = netw;
        new_h = (h*netw)/w;
    } else {
        new_h = neth;
        new_w = (w*neth)/h;
    }
    for (i = 0; i < n; ++i) {
        box b = dets[i].bbox;
        /* (netw - new_w)/2./netw is a double; the float quotient is promoted. */
        b.x = (float)((b.x - (netw - new_w)/2./netw) / ((float)new_w/netw));
        b.y = (float)((b.y - (neth - new_h)/2./neth) / ((float)new_h/neth));
        b.w *= (float)netw/new_w;
        b.h *= (float)neth/new_h;
        if (!relative) {
            b.x *= w;
            b.w *= w;
            b.y *= h;
            b.h *= h;
        }
        dets[i].bbox = b;
    }
}

int get_yolo_detections(const layer l, int w, int h, int netw, int neth, float thresh, const int *map,
                        int relative, detection *dets)
{
    int i, j, n, count = 0;
    const float *predictions = l.output;
    (void)map;  /* upstream takes it and never reads it */
    if (l.batch == 2) avg_flipped_yolo(l);
    for (i = 0; i < l.w*l.h; ++i) {
        int row = i / l.w;
        int col = i % l.w;
        for (n = 0; n < l.n; ++n) {
            int obj_index = entry_index(&l, 0, n*l.w*l.h + i, 4);
            int box_index;
            float objectness = predictions[obj_index];
            if (objectness <= thresh) continue;
            box_index = entry_index(&l, 0, n*l.w*l.h + i, 0);
            dets[count].bbox = get_yolo_box(predictions, l.biases, l.mask[n], box_index, col, row,
                                            l.w, l.h, netw, neth, l.w*l.h);
            dets[count].objectness = objectness;
            dets[count].classes = l.classes;
            for (j = 0; j < l.classes; ++j) {
                int class_index = entry_index(&l, 0, n*l.w*l.h + i, 4 + 1 + j);
                float prob = objectness*predictions[class_index];
                dets[count].prob[j] = (prob > thresh) ? prob : 0;
            }
            ++count;
        }
    }
    correct_yolo_boxes(dets, count, w, h, netw, neth, relative);
    return count;
}
