/*
 * region_layer.c -- darknet's [region] layer (YOLOv2, YOLO9000), forward
 * pass of the CPU build, reproduced operation for operation from upstream
 * src/region_layer.c at f6afaab.
 *
 * As in yolo_layer.c, every expression keeps upstream's types: int * float
 * is float, exp/log run in double, and each store into a float rounds.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <float.h>

#include "dn_fast.h"

int region_layer_init(layer *l, int batch, int w, int h, int n, int classes, int coords)
{
    layer z;
    memset(&z, 0, sizeof z);
    *l = z;
    if (batch < 1 || w < 1 || h < 1 || n < 1 || classes < 1 || coords < 4) return DN_E_LAYER;
    if ((long long)w*h*n*(classes + coords + 1)*batch > 0x7fffffffLL) return DN_E_LAYER;
    l->type = DN_REGION;
    l->batch = batch;
    l->w = w;
    l->h = h;
    l->n = n;
    l->total = n;
    l->classes = classes;
    l->coords = coords;
    l->c = n*(classes + coords + 1);
    l->outputs = h*w*l->c;
    l->inputs = l->outputs;
    l->truths = DN_REGION_MAX_TRUTHS*(coords + 1);
    /* parse_region's defaults. */
    l->max_boxes = DN_REGION_MAX_TRUTHS;
    l->thresh = .5f;
    l->coord_scale = 1;
    l->object_scale = 1;
    l->noobject_scale = 1;
    l->class_scale = 1;
    l->mask_scale = 1;
    return DN_OK;
}

layer make_region_layer(int batch, int w, int h, int n, int classes, int coords)
{
    layer l;
    int i;
    if (region_layer_init(&l, batch, w, h, n, classes, coords) != DN_OK) return l;
    l.biases = calloc((size_t)n*2, sizeof(float));
    l.cost = calloc(1, sizeof(float));
    l.stats = calloc(1, sizeof(loss_stats));
    l.delta = calloc((size_t)batch*l.outputs, sizeof(float));
    l.output = calloc((size_t)batch*l.outputs, sizeof(float));
    if (!l.biases || !l.cost || !l.stats || !l.delta || !l.output) {
        free_layer(l);
        memset(&l, 0, sizeof l);
        return l;
    }
    for (i = 0; i < n*2; ++i) l.biases[i] = .5;
    return l;
}

/* get_yolo_box with the grid size standing in for the network size. */
box get_region_box(const float *x, const float *biases, int n, int index, int i, int j,
                   int w, int h, int stride)
{
    return get_yolo_box(x, biases, n, index, i, j, w, h, w, h, stride);
}

/* Upstream passes mask_scale (a float) to an int parameter: 1.7 scales by 1. */
static void delta_region_mask(const layer *l, const float *truth, const float *x, int n, int index,
                              int stride, int scale)
{
    int i;
    for (i = 0; i < n; ++i) {
        put_delta(l, index + i*stride, scale*(truth[i] - x[index + i*stride]), truth[i], (float)scale);
    }
}

/* Flat classes: scale * (target - p), with the same short-circuit as [yolo]
 * when `tag` (= !softmax) is set, except that the short-circuit adds nothing
 * to avg_cat.  With a tree: walk from the class up to the root, pushing every
 * sibling group towards 0 and the node itself towards 1; avg_cat gets the
 * product of the probabilities along the way. */
static void delta_region_class(const layer *l, const float *output, int index, int class_id,
                               int classes, const tree *hier, float scale, int stride,
                               float *avg_cat, int tag)
{
    int i, n;
    if (hier) {
        float pred = 1;
        while (class_id >= 0) {
            int g, offset;
            pred = dn_mul_acc(pred, output[index + stride*class_id]);
            g = hier->group[class_id];
            offset = hier->group_offset[g];
            for (i = 0; i < hier->group_size[g]; ++i) {
                put_delta(l, index + stride*(offset + i), scale * (0 - output[index + stride*(offset + i)]),
                          0, scale);
            }
            put_delta(l, index + stride*class_id, scale * (1 - output[index + stride*class_id]), 1, scale);
            class_id = hier->parent[class_id];
        }
        *avg_cat = dn_add_v(*avg_cat, pred);  /* pred + avg_cat, as upstream's build adds it */
        return;
    }
    if (l->delta[index] && tag) {
        put_delta(l, index + stride*class_id, scale * (1 - output[index + stride*class_id]), 1, scale);
        return;
    }
    for (n = 0; n < classes; ++n) {
        put_delta(l, index + stride*n, scale * (((n == class_id) ? 1 : 0) - output[index + stride*n]),
                  (n == class_id) ? 1 : 0, scale);
        if (n == class_id) *avg_cat = dn_add_acc(*avg_cat, output[index + stride*n]);
    }
}

/* Upstream's CPU activations, read from net.input, written to l.output. */
static void activate_region(const layer *l, const float *input)
{
    const int wh = l->w*l->h;
    int b, n, i;
    for (b = 0; b < l->batch; ++b) {
        for (n = 0; n < l->n; ++n) {
            /* x, y; objectness unless background; flat classes unless a
             * softmax follows.  Mask coords (coords > 4) stay raw on the CPU. */
            int index = entry_index(l, b, n*wh, 0);
            activate_array_logistic(l->output + index, 2*wh);
            index = entry_index(l, b, n*wh, l->coords);
            if (!l->background) activate_array_logistic(l->output + index, wh);
            index = entry_index(l, b, n*wh, l->coords + 1);
            if (!l->softmax && !l->softmax_tree) activate_array_logistic(l->output + index, l->classes*wh);
        }
    }
    if (l->softmax_tree) {
        /* Upstream's bug, reproduced: each group's softmax runs once per
         * "group" g = 0 .. n*w*h-1 at element offset g with stride n*w*h,
         * which is right only when n*w*h == 1; otherwise it mixes entries of
         * different anchors and cells and overwrites them.  And parse_region
         * never sets the temperature: at 0 every value is NaN. */
        int count = l->coords + 1;
        for (i = 0; i < l->softmax_tree->groups; ++i) {
            int group_size = l->softmax_tree->group_size[i];
            softmax_cpu(input + count, group_size, l->batch, l->inputs, l->n*wh, 1, l->n*wh,
                        l->temperature, l->output + count);
            count += group_size;
        }
    } else if (l->softmax) {
        /* With background the softmax starts at the objectness entry. */
        int index = entry_index(l, 0, 0, l->coords + !l->background);
        softmax_cpu(input + index, l->classes + l->background, l->batch*l->n, l->inputs/l->n, wh, 1,
                    wh, 1, l->output + index);
    }
}

/* (int)truth[coords], then the optional map. */
static int region_truth_class(const layer *l, const float *row)
{
    int class_id = (int)row[l->coords];
    if (l->map) class_id = l->map[class_id];
    return class_id;
}

/* What one image's truth loop adds to the statistics (the fast path adds
 * them up later, in upstream's order), and the cells it wrote (anchor*w*h +
 * cell, sorted, each once).  The flat class delta adds nothing to avg_cat
 * when it short-circuits, so the class addends have their own count. */
typedef struct region_image {
    int n_hits;
    float obj[DN_REGION_MAX_TRUTHS], iou[DN_REGION_MAX_TRUTHS];
    int n_cat;
    float cat[DN_REGION_MAX_TRUTHS];
    int n_cells;
    int cells[DN_REGION_MAX_TRUTHS];
} region_image;

/* Upstream's truth loop for image b (all 30 rows up to the first x == 0):
 * the anchor that best matches the truth's shape at its cell learns the
 * box, the mask coords, objectness and the class.  The statistics go to
 * *sums, or (the fast path) to *rec. */
static void region_truths(const layer *l, const network *net, int b, dn_sums *sums, region_image *rec)
{
    const int wh = l->w*l->h;
    const int cols = l->coords + 1;
    const float *truths = net->truth + b*l->truths;
    int t, n, i, j;
    for (t = 0; t < DN_REGION_MAX_TRUTHS; ++t) {
        const float *row = truths + t*cols;
        box truth = float_to_box(row, 1);
        box truth_shift;
        float best_iou = 0, iou, cat = 0;
        int best_n = 0, box_index, obj_index, class_index;
        if (!truth.x) break;
        i = (int)(truth.x*l->w);
        j = (int)(truth.y*l->h);
        truth_shift = truth;
        truth_shift.x = 0;
        truth_shift.y = 0;
        for (n = 0; n < l->n; ++n) {
            int bi = entry_index(l, b, n*wh + j*l->w + i, 0);
            box pred = get_region_box(l->output, l->biases, n, bi, i, j, l->w, l->h, wh);
            float shape_iou;
            if (l->bias_match) {
                pred.w = l->biases[2*n]/l->w;
                pred.h = l->biases[2*n + 1]/l->h;
            }
            pred.x = 0;
            pred.y = 0;
            shape_iou = box_iou(pred, truth_shift);
            if (shape_iou > best_iou) {
                best_iou = shape_iou;
                best_n = n;
            }
        }

        box_index = entry_index(l, b, best_n*wh + j*l->w + i, 0);
        iou = dn_delta_box(l, truth, l->output, l->biases, best_n, box_index, i, j, l->w, l->h, l->w, l->h,
                           l->coord_scale * (2 - truth.w*truth.h), wh);
        if (l->coords > 4) {
            /* Upstream reads the mask targets from row + 5, one past
             * where they start: the last one read is the class id. */
            int mask_index = entry_index(l, b, best_n*wh + j*l->w + i, 4);
            delta_region_mask(l, row + 5, l->output, l->coords - 4, mask_index, wh, (int)l->mask_scale);
        }
        obj_index = entry_index(l, b, best_n*wh + j*l->w + i, l->coords);
        put_delta(l, obj_index, l->object_scale * (1 - l->output[obj_index]), 1, l->object_scale);
        if (l->rescore) {
            put_delta(l, obj_index, l->object_scale * (iou - l->output[obj_index]), iou, l->object_scale);
        }
        if (l->background) {
            put_delta(l, obj_index, l->object_scale * (0 - l->output[obj_index]), 0, l->object_scale);
        }
        class_index = entry_index(l, b, best_n*wh + j*l->w + i, l->coords + 1);
        if (rec) {
            /* delta_region_class adds one value to avg_cat unless the flat
             * short-circuit applies (a class delta already at this cell,
             * without softmax); 0 plus that value is the value itself. */
            int adds = l->softmax_tree || !(l->delta[class_index] && !l->softmax);
            delta_region_class(l, l->output, class_index, region_truth_class(l, row), l->classes,
                               l->softmax_tree, l->class_scale, wh, &cat, !l->softmax);
            if (adds) rec->cat[rec->n_cat++] = cat;
            rec->obj[rec->n_hits] = l->output[obj_index];
            rec->iou[rec->n_hits] = iou;
            ++rec->n_hits;
            dn_add_cell(rec->cells, &rec->n_cells, best_n*wh + j*l->w + i);
            continue;
        }
        if (iou > .5) sums->recall += 1;
        sums->avg_iou = dn_add_acc(sums->avg_iou, iou);
        sums->avg_obj = dn_add_acc(sums->avg_obj, l->output[obj_index]);
        delta_region_class(l, l->output, class_index, region_truth_class(l, row), l->classes,
                           l->softmax_tree, l->class_scale, wh, &sums->avg_cat, !l->softmax);
        ++sums->count;
        ++sums->class_count;
    }
}

/* The reference path: upstream's forward_region_layer loop for loop. */
static void forward_region_reference(const layer *lp, const network *netp)
{
    const layer l = *lp;
    const network net = *netp;
    int i, j, b, t, n;
    const int wh = l.w*l.h;
    const int cols = l.coords + 1;
    dn_sums sums = {0, 0, 0, 0, 0, 0, 0, 0};

    memcpy(l.output, net.input, (size_t)l.outputs*l.batch*sizeof(float));
    /* The GPU build compiles the activation out: its input comes activated
     * (the mask coords too, and the softmax computed on the device). */
    if (!net.input_activated) activate_region(&l, net.input);
    memset(l.delta, 0, (size_t)l.outputs*l.batch*sizeof(float));
    if (!net.train) return;
    clear_targets(&l);

    *(l.cost) = 0;
    for (b = 0; b < l.batch; ++b) {
        const float *truths = net.truth + b*l.truths;

        if (l.softmax_tree) {
            /* A classification-only label (x, y > 100000): only the cell
             * and anchor that best predicts its class learns, and the rest
             * of the image's truths are skipped. */
            int onlyclass = 0;
            for (t = 0; t < DN_REGION_MAX_TRUTHS; ++t) {
                const float *row = truths + t*cols;
                box truth = float_to_box(row, 1);
                int class_id, maxi = 0, class_index, obj_index;
                float maxp = 0;
                if (!truth.x) break;
                if (!(truth.x > 100000 && truth.y > 100000)) continue;
                class_id = (int)row[l.coords];  /* not mapped on this path */
                for (n = 0; n < l.n*wh; ++n) {
                    int ci = entry_index(&l, b, n, l.coords + 1);
                    int oi = entry_index(&l, b, n, l.coords);
                    float scale = l.output[oi];
                    float p;
                    put_delta(&l, oi, l.noobject_scale * (0 - l.output[oi]), 0, l.noobject_scale);
                    p = scale*get_hierarchy_probability(l.output + ci, l.softmax_tree, class_id, wh);
                    if (p > maxp) {
                        maxp = p;
                        maxi = n;
                    }
                }
                class_index = entry_index(&l, b, maxi, l.coords + 1);
                obj_index = entry_index(&l, b, maxi, l.coords);
                delta_region_class(&l, l.output, class_index, class_id, l.classes,
                                   l.softmax_tree, l.class_scale, wh, &sums.avg_cat, !l.softmax);
                /* Upstream computes an objectness delta here and then
                 * overwrites it with 0. */
                clear_delta(&l, obj_index);
                ++sums.class_count;
                onlyclass = 1;
                break;
            }
            if (onlyclass) continue;
        }

        for (j = 0; j < l.h; ++j) {
            for (i = 0; i < l.w; ++i) {
                for (n = 0; n < l.n; ++n) {
                    int box_index = entry_index(&l, b, n*wh + j*l.w + i, 0);
                    int obj_index = entry_index(&l, b, n*wh + j*l.w + i, l.coords);
                    box pred = get_region_box(l.output, l.biases, n, box_index, i, j, l.w, l.h, wh);
                    float best_iou = 0;
                    for (t = 0; t < DN_REGION_MAX_TRUTHS; ++t) {
                        box truth = float_to_box(truths + t*cols, 1);
                        float iou;
                        if (!truth.x) break;
                        iou = box_iou(pred, truth);
                        if (iou > best_iou) best_iou = iou;
                    }
                    sums.avg_anyobj = dn_add_acc(sums.avg_anyobj, l.output[obj_index]);
                    put_delta(&l, obj_index, l.noobject_scale * (0 - l.output[obj_index]), 0, l.noobject_scale);
                    if (l.background) {
                        put_delta(&l, obj_index, l.noobject_scale * (1 - l.output[obj_index]), 1,
                                  l.noobject_scale);
                    }
                    if (best_iou > l.thresh) {
                        clear_delta(&l, obj_index);
                    }
                    /* Early training: pull every box towards its anchor at
                     * the cell centre.  (i + .5)/w is computed in double. */
                    if (net.seen < 12800) {
                        box truth;
                        truth.x = (float)((i + .5)/l.w);
                        truth.y = (float)((j + .5)/l.h);
                        truth.w = l.biases[2*n]/l.w;
                        truth.h = l.biases[2*n + 1]/l.h;
                        dn_delta_box(&l, truth, l.output, l.biases, n, box_index, i, j, l.w, l.h, l.w, l.h,
                                     .01f, wh);
                    }
                }
            }
        }
        region_truths(&l, &net, b, &sums, NULL);
    }
    dn_finish_forward(&l, &sums);
}

/* ---- the fast path (no softmax tree) ----------------------------------------------
 *
 * As yolo_layer.c's: per image and anchor, the activations (fast.c's
 * logistic; the softmax with fast.c's exp, its float sums taken per cell in
 * upstream's order, many cells at once), zeroed deltas, and the ignore loop
 * from the best IoU of each cell (a maximum: region never asks which truth);
 * per image, the truth loop as the reference runs it; on the calling thread,
 * every sum that crosses images, in upstream's order.  The prior-box rule
 * (seen < 12800) writes the four box entries of every cell: the cost then
 * reads those planes whole. */

#define CHUNK 256

typedef struct region_fast {
    const layer *l;
    const network *net;
    int impl;
    region_image *img;
} region_fast;

/* The softmax of one anchor block, cells c0 .. c0+count-1, at the
 * temperature activate_region passes (1): softmax()'s largest (from
 * -FLT_MAX; a NaN never wins `>`), e = (float)exp(x/1 - largest/1), the
 * float sum over the group in entry order, and the float division.  x/1 is
 * x (a signalling NaN comes out of the subtraction quieted just the same),
 * so z = x - largest has the reference's bits. */
static void region_softmax_cells(const float *in, float *out, int entries, int wh, int c0, int count, int impl)
{
    float largest[CHUNK], sum[CHUNK], z[CHUNK];
    int e, k;
    if (impl == DN_IMPL_AVX2) {
        dn_softmax_cells_avx2(in, out, entries, wh, c0, count);
        return;
    }
    for (k = 0; k < count; ++k) {
        largest[k] = -FLT_MAX;
        sum[k] = 0;
    }
    for (e = 0; e < entries; ++e) {
        const float *x = in + (size_t)e*wh + c0;
        for (k = 0; k < count; ++k) {
            if (x[k] > largest[k]) largest[k] = x[k];
        }
    }
    for (e = 0; e < entries; ++e) {
        const float *x = in + (size_t)e*wh + c0;
        float *y = out + (size_t)e*wh + c0;
        for (k = 0; k < count; ++k) z[k] = x[k] - largest[k];
        dn_expf_impl(z, y, count, impl);
        for (k = 0; k < count; ++k) sum[k] = dn_add_acc(sum[k], y[k]);
    }
    for (e = 0; e < entries; ++e) {
        float *y = out + (size_t)e*wh + c0;
        for (k = 0; k < count; ++k) y[k] /= sum[k];
    }
}

/* activate_region on one anchor block of one image (out holds a copy of
 * in): x, y; objectness unless background; flat classes unless a softmax
 * follows; w, h and the mask coords stay raw. */
static void region_activate_anchor(const layer *l, const float *in, float *out, int impl)
{
    const int wh = l->w*l->h;
    int c0;
    dn_logistic_impl(in, out, 2*wh, impl);
    if (!l->background) dn_logistic_impl(in + l->coords*wh, out + l->coords*wh, wh, impl);
    if (!l->softmax) {
        dn_logistic_impl(in + (l->coords + 1)*wh, out + (l->coords + 1)*wh, l->classes*wh, impl);
        return;
    }
    /* With background the softmax starts at the objectness entry. */
    for (c0 = 0; c0 < wh; c0 += CHUNK) {
        const int first = l->coords + !l->background;
        region_softmax_cells(in + first*wh, out + first*wh, l->classes + l->background, wh, c0,
                             wh - c0 < CHUNK ? wh - c0 : CHUNK, impl);
    }
}

static void region_image_anchor(void *ctx, int task)
{
    const region_fast *f = (const region_fast *)ctx;
    const layer *l = f->l;
    const network *net = f->net;
    const int b = task / l->n, a = task % l->n;
    const int wh = l->w*l->h, per_anchor = wh*(l->coords + 1 + l->classes);
    const size_t off = (size_t)b*l->outputs + (size_t)a*per_anchor;
    const float *in = net->input + off;
    float *out = l->output + off, *d = l->delta + off;
    const float bw = l->biases[2*a], bh = l->biases[2*a + 1];
    dn_truths ts;
    float prior_w = 0, prior_h = 0, prior_tw = 0, prior_th = 0;
    int c0, k;

    memcpy(out, in, (size_t)per_anchor*sizeof(float));
    /* The GPU build's input comes activated on the device (its CPU
     * activation is compiled out). */
    if (!net->input_activated) region_activate_anchor(l, in, out, f->impl);
    dn_zero_impl(d, (size_t)per_anchor, f->impl);
    if (!net->train) return;
    if (l->target) {
        for (k = 0; k < per_anchor; ++k) {
            l->target[off + k] = 0;
            l->target_scale[off + k] = NAN;
        }
    }
    if (net->seen < 12800) {
        /* The prior box's w, h and their log targets are the same in every
         * cell of this anchor (dn_delta_box's tw, th). */
        prior_w = bw/l->w;
        prior_h = bh/l->h;
        prior_tw = (float)log((double)(prior_w*l->w / bw));
        prior_th = (float)log((double)(prior_h*l->h / bh));
    }

    dn_truths_load(&ts, net->truth + b*l->truths, l->coords + 1, DN_REGION_MAX_TRUTHS);
    for (c0 = 0; c0 < wh; c0 += CHUNK) {
        float px[CHUNK], py[CHUNK], pw[CHUNK], ph[CHUNK], best[CHUNK];
        int count = wh - c0 < CHUNK ? wh - c0 : CHUNK;
        /* get_region_box: get_yolo_box with the grid size for the net size. */
        dn_exp_box_impl(out + 2*wh + c0, pw, count, bw, l->w, f->impl);
        dn_exp_box_impl(out + 3*wh + c0, ph, count, bh, l->h, f->impl);
        for (k = 0; k < count; ++k) {
            int c = c0 + k;
            px[k] = (c % l->w + out[c]) / l->w;
            py[k] = (c / l->w + out[wh + c]) / l->h;
        }
        dn_max_iou_impl(&ts, px, py, pw, ph, count, best, f->impl);
        for (k = 0; k < count; ++k) {
            int c = c0 + k, i = c % l->w, j = c / l->w;
            int obj_index = (int)off + l->coords*wh + c;
            put_delta(l, obj_index, l->noobject_scale * (0 - l->output[obj_index]), 0, l->noobject_scale);
            if (l->background) {
                put_delta(l, obj_index, l->noobject_scale * (1 - l->output[obj_index]), 1, l->noobject_scale);
            }
            if (best[k] > l->thresh) {
                clear_delta(l, obj_index);
            }
            if (net->seen < 12800) {
                /* dn_delta_box towards the anchor at the cell centre, scale
                 * .01 (its IoU is not used here). */
                const int bi = (int)off + c;
                const float scale = .01f;
                float tx = (float)((i + .5)/l->w)*l->w - i;
                float ty = (float)((j + .5)/l->h)*l->h - j;
                put_delta(l, bi + 0*wh, scale * (tx - l->output[bi + 0*wh]), tx, scale);
                put_delta(l, bi + 1*wh, scale * (ty - l->output[bi + 1*wh]), ty, scale);
                put_delta(l, bi + 2*wh, scale * (prior_tw - l->output[bi + 2*wh]), prior_tw, scale);
                put_delta(l, bi + 3*wh, scale * (prior_th - l->output[bi + 3*wh]), prior_th, scale);
            }
        }
    }
}

static void region_image_truths(void *ctx, int b)
{
    const region_fast *f = (const region_fast *)ctx;
    f->img[b].n_hits = 0;
    f->img[b].n_cat = 0;
    f->img[b].n_cells = 0;
    region_truths(f->l, f->net, b, NULL, &f->img[b]);
}

static int forward_region_fast(const layer *l, const network *net, int threads, int impl)
{
    const int wh = l->w*l->h, per_anchor = wh*(l->coords + 1 + l->classes);
    region_fast f;
    dn_sums sums = {0, 0, 0, 0, 0, 0, 0, 0};
    float sumsq = 0;
    int b, n, c, k, e;
    f.l = l;
    f.net = net;
    f.impl = impl;
    f.img = NULL;
    if (net->train) {
        f.img = malloc((size_t)l->batch*sizeof(region_image));
        if (!f.img) return -1;
    }
    dn_parallel_for(l->batch*l->n, threads, region_image_anchor, &f);
    if (!net->train) return 0;
    dn_parallel_for(l->batch, threads, region_image_truths, &f);

    /* Statistics in upstream's order: the ignore loop's over images, rows,
     * columns and anchors; the truth loop's over images and truths. */
    for (b = 0; b < l->batch; ++b) {
        const float *obj = l->output + (size_t)b*l->outputs + l->coords*wh;
        for (c = 0; c < wh; ++c) {
            for (n = 0; n < l->n; ++n) sums.avg_anyobj = dn_add_acc(sums.avg_anyobj, obj[(size_t)n*per_anchor + c]);
        }
    }
    for (b = 0; b < l->batch; ++b) {
        const region_image *rec = &f.img[b];
        for (k = 0; k < rec->n_hits; ++k) {
            if (rec->iou[k] > .5) sums.recall += 1;
            sums.avg_iou = dn_add_acc(sums.avg_iou, rec->iou[k]);
            sums.avg_obj = dn_add_acc(sums.avg_obj, rec->obj[k]);
            ++sums.count;
            ++sums.class_count;
        }
        for (k = 0; k < rec->n_cat; ++k) sums.avg_cat = dn_add_acc(sums.avg_cat, rec->cat[k]);
    }

    /* The cost's sum of squares, in index order, over the entries that can
     * be non-zero: objectness planes, the box planes under the prior rule,
     * and every entry of the cells the truth loop wrote. */
    for (b = 0; b < l->batch; ++b) {
        const region_image *rec = &f.img[b];
        int first = 0;
        for (n = 0; n < l->n; ++n) {
            const float *d = l->delta + (size_t)b*l->outputs + (size_t)n*per_anchor;
            int last = first;
            while (last < rec->n_cells && rec->cells[last] < (n + 1)*wh) ++last;
            for (e = 0; e < l->coords + 1 + l->classes; ++e) {
                if (e == l->coords || (e < 4 && net->seen < 12800)) {
                    sumsq = dn_sum_squares(d + (size_t)e*wh, wh, sumsq);
                    continue;
                }
                for (k = first; k < last; ++k) {
                    float v = d[(size_t)e*wh + rec->cells[k] - n*wh];
                    sumsq = dn_add_acc(sumsq, v*v);
                }
            }
            first = last;
        }
    }
    free(f.img);
    dn_finish_forward_sum(l, &sums, sumsq);
    return 0;
}

int forward_region_layer_opt(const layer l, network net, int threads, int path)
{
    int err = dn_check_forward(&l, &net, DN_REGION);
    int impl;
    if (err != DN_OK) return err;
    impl = dn_resolve_path(path);
    /* The softmax tree (and its classification-only labels) always takes
     * upstream's loops: its softmax mixes cells and anchors across the batch. */
    if (impl != DN_IMPL_REFERENCE && !l.softmax_tree) {
        if (forward_region_fast(&l, &net, threads, impl) == 0) return DN_OK;
    }
    forward_region_reference(&l, &net);
    return DN_OK;
}

int forward_region_layer(const layer l, network net)
{
    return forward_region_layer_opt(l, net, 1, DN_PATH_AUTO);
}

/* ---- detections ------------------------------------------------------------- */

void correct_region_boxes(detection *dets, int n, int w, int h, int netw, int neth, int relative)
{
    correct_yolo_boxes(dets, n, w, h, netw, neth, relative);
}

void get_region_detections(const layer l, int w, int h, int netw, int neth, float thresh, const int *map,
                           float tree_thresh, int relative, detection *dets)
{
    int i, j, n;
    float *predictions = l.output;
    if (l.batch == 2) avg_flipped_yolo(l);
    for (i = 0; i < l.w*l.h; ++i) {
        int row = i / l.w;
        int col = i % l.w;
        for (n = 0; n < l.n; ++n) {
            int index = n*l.w*l.h + i;
            int obj_index = entry_index(&l, 0, n*l.w*l.h + i, l.coords);
            int box_index = entry_index(&l, 0, n*l.w*l.h + i, 0);
            int mask_index = entry_index(&l, 0, n*l.w*l.h + i, 4);
            int class_index = entry_index(&l, 0, n*l.w*l.h + i, l.coords + !l.background);
            float scale;
            for (j = 0; j < l.classes; ++j) dets[index].prob[j] = 0;
            scale = l.background ? 1 : predictions[obj_index];
            dets[index].bbox = get_region_box(predictions, l.biases, n, box_index, col, row, l.w, l.h,
                                              l.w*l.h);
            dets[index].objectness = scale > thresh ? scale : 0;
            if (dets[index].mask) {
                for (j = 0; j < l.coords - 4; ++j) {
                    dets[index].mask[j] = l.output[mask_index + j*l.w*l.h];
                }
            }
            if (l.softmax_tree) {
                /* In place: each class times its parent's (output_after shows it). */
                hierarchy_predictions(predictions + class_index, l.classes, l.softmax_tree, 0, l.w*l.h);
                if (map) {
                    /* Upstream reads 200 map entries whatever the map's length. */
                    for (j = 0; j < 200; ++j) {
                        int ci = entry_index(&l, 0, n*l.w*l.h + i, l.coords + 1 + map[j]);
                        float prob = scale*predictions[ci];
                        dets[index].prob[j] = (prob > thresh) ? prob : 0;
                    }
                } else {
                    int top = hierarchy_top_prediction(predictions + class_index, l.softmax_tree,
                                                       tree_thresh, l.w*l.h);
                    dets[index].prob[top] = (scale > thresh) ? scale : 0;
                }
            } else if (dets[index].objectness) {
                for (j = 0; j < l.classes; ++j) {
                    int ci = entry_index(&l, 0, n*l.w*l.h + i, l.coords + 1 + j);
                    float prob = scale*predictions[ci];
                    dets[index].prob[j] = (prob > thresh) ? prob : 0;
                }
            }
        }
    }
    correct_region_boxes(dets, l.w*l.h*l.n, w, h, netw, neth, relative);
}
