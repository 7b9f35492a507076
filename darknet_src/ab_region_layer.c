/*
 * ab_region_layer.c -- AlexeyAB/darknet 59596d7's [region] layer (src/region_layer.c),
 * the YOLOv2 loss of AlexeyAB's and hank-ai's repositories, CPU build.
 *
 * It is not pjreddie's [region] (region_layer.c here).  What changes the numbers:
 *   - the CPU forward flatten()s l.output to channels-last per image
 *     ([row][col][anchor*(coords+1+classes) + entry]) and never flattens it
 *     back; every index below is into that layout (size*(cell*n + anchor));
 *   - only objectness is activated in place, with AlexeyAB's float logistic
 *     (1.f/(1.f+expf(-x))); x and y stay raw in l.output and the logistic is
 *     applied inside get_region_box / delta_region_box;
 *   - the x, y and objectness deltas are multiplied by logistic_gradient;
 *   - box_iou has AlexeyAB's guard (0 when the intersection or union is 0);
 *   - objectness sits at entry 4 and classes from entry 5, whatever coords is;
 *   - focal_loss, classfix (-1: objectness target best_iou; 1, 2: class deltas
 *     for cells over thresh, 2 scaled by objectness), no mask coords, no
 *     softmax tree here (refused by the Python layer);
 *   - a class id >= classes skips the row in both loops (upstream prints a
 *     warning in the second), and that test comes before the x == 0 test;
 *   - the second loop starts from best_index = 0, so a truth no anchor
 *     overlaps writes its deltas at index 0 of the whole buffer (image 0's
 *     first cell), whatever image it belongs to;
 *   - the classfix class deltas of the first loop use the raw class id (no map);
 *   - a negative class id (below -1 after truncation toward 0) is used as it is:
 *     no class matches it, so every class gets the background delta.
 * l.delta is un-flattened to darknet's layout before the cost.
 */
/*
 * hank-ai/darknet f684e1d7's [region] (src-lib/region_layer.cpp) is this
 * code compiled as C++ (OpenCV's headers give the float overloads of exp/log),
 * run when l.flavor is AB_FLAVOR_HANKAI.  Every difference, tagged HANK-R(n)
 * where it is made (hank-ai region_layer.cpp line):
 *   1  get_region_box: w = expf(x)*anchor/w in float (AlexeyAB: double exp,
 *      product and quotient, one rounding)                        (:94-95)
 *   2  delta_region_box: tw, th = logf(...) (AlexeyAB: double log) (:114-115)
 *   3  every box_iou is hank-ai's box.cpp one: HANK(4)-(6) of
 *      darknet_loss.h (std::max/min edges, no union test)
 *   4  softmax (blas.cpp:641): e = expf(x/temp - largest/temp) (AlexeyAB: exp
 *      in double, rounded to float)
 *   5  a class id >= classes in the second loop, before its x == 0 end, is
 *      fatal (darknet_fatal_error, :322): refused here (DN_E_TRUTH_CLASS);
 *      AlexeyAB prints a warning and skips the row
 *   6  the statistics line goes through hank-ai's output stream (always,
 *      not only with --verbose), another format: Python's business.
 * Same: logistic (expf in both), logistic_gradient, the focal loss's logf,
 * the seen < 12800 prior's double (i + .5)/w, the cost's double pow.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "ab_internal.h"
#include "dn_internal.h"
#include "dn_fast.h"

/* Upstream: static inline float logistic_gradient(float x){return (1-x)*x;} */
static inline float ab_logistic_gradient(float x)
{
    return (1 - x)*x;
}

int ab_region_layer_init(ab_region_layer *l, int batch, int w, int h, int n, int classes, int coords, int max_boxes)
{
    ab_region_layer z;
    int c, outputs, truths;
    memset(&z, 0, sizeof z);
    *l = z;
    if (batch < 1 || w < 1 || h < 1 || n < 1 || classes < 1 || coords < 4 || max_boxes < 0) return DN_E_LAYER;
    if (ab_layer_sizes(batch, w, h, n, classes + coords + 1, max_boxes, &c, &outputs, &truths) != DN_OK) {
        return DN_E_LAYER;
    }
    l->batch = batch;
    l->w = w;
    l->h = h;
    l->n = n;
    l->classes = classes;
    l->coords = coords;
    l->c = c;
    l->outputs = l->inputs = outputs;
    l->max_boxes = max_boxes;
    l->truths = truths;
    l->thresh = .5f;
    l->coord_scale = l->object_scale = l->noobject_scale = l->class_scale = 1;
    return DN_OK;
}

int ab_check_region_layer(const ab_region_layer *l)
{
    long long c;
    if (!l || !l->biases || !l->output || !l->delta || !l->cost) return DN_E_LAYER;
    if (l->batch < 1 || l->w < 1 || l->h < 1 || l->n < 1 || l->classes < 1 || l->coords < 4) return DN_E_LAYER;
    c = (long long)l->n*(l->classes + l->coords + 1);
    if (c != l->c || c*l->w*l->h != l->outputs || l->inputs != l->outputs) return DN_E_LAYER;
    if (!ab_fits_int((long long)l->outputs*l->batch) || l->max_boxes < 0) return DN_E_LAYER;
    if ((long long)l->max_boxes*AB_TRUTH_SIZE != l->truths || !ab_fits_int((long long)l->truths*l->batch)) {
        return DN_E_LAYER;
    }
    if (l->map && l->map_len < 1) return DN_E_LAYER;
    if (l->flavor != AB_FLAVOR_ALEXEYAB && l->flavor != AB_FLAVOR_HANKAI) return DN_E_LAYER;
    return DN_OK;
}

static int int_convertible(float v)
{
    /* (int)v is defined for v in (INT_MIN - 1, INT_MAX + 1). */
    return v > -2147483649.0f && v < 2147483648.0f;
}

static int check_row(const ab_region_layer *l, const float *row, int terminator_only)
{
    int k, id;
    if (!isfinite(row[4])) return DN_E_TRUTH_VALUE;
    if (!int_convertible(row[4])) return DN_E_TRUTH_INT;
    id = (int)row[4];
    /* HANK-R(5): hank-ai's second loop aborts on it, before its x == 0 end */
    if (id >= l->classes && l->flavor == AB_FLAVOR_HANKAI) return DN_E_TRUTH_CLASS;
    if (terminator_only) return DN_OK;
    if (id >= l->classes) return DN_OK;  /* skipped by both loops (a warning in the second) */
    for (k = 0; k < 4; ++k) {
        if (!isfinite(row[k])) return DN_E_TRUTH_VALUE;
    }
    {
        /* i = (truth.x * l.w): float product truncated to int. */
        float fx = row[0]*l->w, fy = row[1]*l->h;
        if (!(fx > -1.0f && fy > -1.0f) || !int_convertible(fx) || !int_convertible(fy)) return DN_E_TRUTH_CELL;
        if ((int)fx < 0 || (int)fx >= l->w || (int)fy < 0 || (int)fy >= l->h) return DN_E_TRUTH_CELL;
    }
    if (id < 0) {
        /* A negative id is used as it is: the class loop never meets it (every
         * class gets 0 - p, nothing is added to avg_cat).  But l.map[id] reads
         * before the map, and the focal loss reads output[index + 5 + id],
         * before the buffer for some cells once id < -5: refused there. */
        if (l->map) return DN_E_MAP_INDEX;
        if (l->focal_loss && id < -5) return DN_E_TRUTH_CLASS;
        return DN_OK;
    }
    if (l->map) {
        if (id >= l->map_len) return DN_E_MAP_INDEX;
        if (l->map[id] < 0 || l->map[id] >= l->classes) return DN_E_TRUTH_CLASS;
    }
    return DN_OK;
}

int ab_check_region_truths(const ab_region_layer *l, const float *truth, int *bad_image, int *bad_row)
{
    int b, t, err;
    if (bad_image) *bad_image = -1;
    if (bad_row) *bad_row = -1;
    if (ab_check_region_layer(l) != DN_OK || !truth) return DN_E_LAYER;
    for (b = 0; b < l->batch; ++b) {
        for (t = 0; t < l->max_boxes; ++t) {
            const float *row = truth + (size_t)b*l->truths + (size_t)t*AB_TRUTH_SIZE;
            /* Upstream converts the class id before its x == 0 test. */
            int end;
            err = check_row(l, row, 1);
            if (err != DN_OK) goto bad;
            end = !row[0] && (int)row[4] < l->classes;
            if (end) break;
            err = check_row(l, row, 0);
            if (err != DN_OK) goto bad;
        }
    }
    return DN_OK;
bad:
    if (bad_image) *bad_image = b;
    if (bad_row) *bad_row = t;
    return err;
}

/* get_region_box: x, y through the float logistic, w, h as exp(double) times
 * the anchor divided by the grid size in double, rounded once. */
box ab_get_region_box_fl(const float *x, const float *biases, int n, int index, int i, int j, int w, int h,
                         int flavor)
{
    box b;
    b.x = (i + ab_logistic_activate(x[index + 0]))/w;
    b.y = (j + ab_logistic_activate(x[index + 1]))/h;
    if (flavor == AB_FLAVOR_HANKAI) {
        /* HANK-R(1): expf, then a float product and a float quotient */
        b.w = expf(x[index + 2])*biases[2*n]/w;
        b.h = expf(x[index + 3])*biases[2*n + 1]/h;
    } else {
        b.w = (float)(exp(x[index + 2])*biases[2*n]/w);
        b.h = (float)(exp(x[index + 3])*biases[2*n + 1]/h);
    }
    return b;
}

box ab_get_region_box(const float *x, const float *biases, int n, int index, int i, int j, int w, int h)
{
    return ab_get_region_box_fl(x, biases, n, index, i, j, w, h, AB_FLAVOR_ALEXEYAB);
}

/* HANK-R(4): hank-ai's softmax (blas.cpp) is AlexeyAB's with expf on the float argument. */
static void hank_softmax(const float *input, int n, float temp, float *output)
{
    int i;
    float sum = 0;
    float largest = -FLT_MAX;
    for (i = 0; i < n; ++i) {
        if (input[i] > largest) largest = input[i];
    }
    for (i = 0; i < n; ++i) {
        float e = expf(input[i]/temp - largest/temp);
        sum = dn_add_acc(sum, e);
        output[i] = e;
    }
    for (i = 0; i < n; ++i) {
        output[i] /= sum;
    }
}

/* Where flattened position p (b*outputs + cell*c + anchor*size + entry) of
 * upstream's channels-last delta lands after its final flatten(.., 0):
 * darknet's layout b*outputs + (anchor*size + entry)*w*h + cell. */
static inline size_t dpos(const ab_region_layer *l, int p)
{
    int b = p/l->outputs, r = p % l->outputs;
    int s = r/l->c, c = r % l->c;
    return (size_t)b*l->outputs + (size_t)c*l->w*l->h + s;
}

static inline float *dp(const ab_region_layer *l, int p)
{
    return l->delta + dpos(l, p);
}

/* The implied loss's record (l.target, l.target_scale, when the caller asks):
 * the delta just written at p is s*(t - v) in its term's form; s NaN: no term. */
static inline void term(const ab_region_layer *l, int p, float t, float s)
{
    if (l->target) {
        size_t q = dpos(l, p);
        l->target[q] = t;
        l->target_scale[q] = s;
    }
}

static float delta_region_box(box truth, const float *x, const float *biases, int n, int index, int i, int j,
                              int w, int h, const ab_region_layer *l, float scale)
{
    box pred = ab_get_region_box_fl(x, biases, n, index, i, j, w, h, l->flavor);
    float iou = ab_box_iou_fl(pred, truth, l->flavor);  /* HANK-R(3) */
    float tx = (truth.x*w - i);
    float ty = (truth.y*h - j);
    float tw, th;
    if (l->flavor == AB_FLAVOR_HANKAI) {
        /* HANK-R(2): logf */
        tw = logf(truth.w*w/biases[2*n]);
        th = logf(truth.h*h/biases[2*n + 1]);
    } else {
        tw = (float)log(truth.w*w/biases[2*n]);
        th = (float)log(truth.h*h/biases[2*n + 1]);
    }
    float lx = ab_logistic_activate(x[index + 0]);
    float ly = ab_logistic_activate(x[index + 1]);
    *dp(l, index + 0) = scale*(tx - lx)*ab_logistic_gradient(lx);
    *dp(l, index + 1) = scale*(ty - ly)*ab_logistic_gradient(ly);
    *dp(l, index + 2) = scale*(tw - x[index + 2]);
    *dp(l, index + 3) = scale*(th - x[index + 3]);
    term(l, index + 0, tx, scale);
    term(l, index + 1, ty, scale);
    term(l, index + 2, tw, scale);
    term(l, index + 3, th, scale);
    return iou;
}

/* delta_region_class without a tree. */
static void delta_region_class(const float *output, const ab_region_layer *l, int index, int class_id, int classes,
                               float scale, float *avg_cat, int focal_loss)
{
    int n;
    if (focal_loss) {
        float alpha = 0.5;
        int ti = index + class_id;
        float pt = output[ti] + 0.000000000000001F;
        float grad = -(1 - pt)*(2*pt*logf(pt) + pt - 1);
        for (n = 0; n < classes; ++n) {
            *dp(l, index + n) = scale*(((n == class_id) ? 1 : 0) - output[index + n]);
            *dp(l, index + n) *= alpha*grad;
            term(l, index + n, (n == class_id) ? 1 : 0, NAN);  /* no implied loss: focal */
            if (n == class_id) *avg_cat = dn_add_acc(*avg_cat, output[index + n]);
        }
    } else {
        for (n = 0; n < classes; ++n) {
            *dp(l, index + n) = scale*(((n == class_id) ? 1 : 0) - output[index + n]);
            term(l, index + n, (n == class_id) ? 1 : 0, scale);
            if (n == class_id) *avg_cat = dn_add_acc(*avg_cat, output[index + n]);
        }
    }
}

/* memcpy(out, x) followed by flatten(out, size, layers, batch, forward),
 * as one permuted copy (no scratch buffer). */
static void flatten_into(const float *x, float *out, int size, int layers, int batch, int forward)
{
    int b, c, i;
    for (b = 0; b < batch; ++b) {
        for (c = 0; c < layers; ++c) {
            for (i = 0; i < size; ++i) {
                size_t i1 = (size_t)b*layers*size + (size_t)c*size + i;
                size_t i2 = (size_t)b*layers*size + (size_t)i*layers + c;
                if (forward) out[i2] = x[i1];
                else out[i1] = x[i2];
            }
        }
    }
}

int ab_forward_region_layer(const ab_region_layer l, ab_network_state state, size_t seen)
{
    int i, j, b, t, n, err;
    int size = l.coords + l.classes + 1;
    size_t total;
    float avg_iou = 0, recall = 0, avg_cat = 0, avg_obj = 0, avg_anyobj = 0;
    int count = 0, class_count = 0, warnings = 0;
    const float *tr = state.truth;

    if (ab_check_region_layer(&l) != DN_OK || !state.input) return DN_E_LAYER;
    if (state.train) {
        err = ab_check_region_truths(&l, state.truth, NULL, NULL);
        if (err != DN_OK) return err;
    }
    total = (size_t)l.outputs*l.batch;
    /* memcpy + flatten(l.output, w*h, size*n, batch, 1) */
    flatten_into(state.input, l.output, l.w*l.h, size*l.n, l.batch, 1);
    for (b = 0; b < l.batch; ++b) {
        for (i = 0; i < l.h*l.w*l.n; ++i) {
            int index = size*i + b*l.outputs;
            l.output[index + 4] = ab_logistic_activate(l.output[index + 4]);
        }
    }
    if (l.softmax) {
        for (b = 0; b < l.batch; ++b) {
            for (i = 0; i < l.h*l.w*l.n; ++i) {
                int index = size*i + b*l.outputs;
                if (l.flavor == AB_FLAVOR_HANKAI) {
                    hank_softmax(l.output + index + 5, l.classes, 1, l.output + index + 5);  /* HANK-R(4) */
                } else {
                    softmax(l.output + index + 5, l.classes, 1, 1, l.output + index + 5);
                }
            }
        }
    }
    if (!state.train) return DN_OK;
    memset(l.delta, 0, total*sizeof(float));
    if (l.target) {
        size_t k;
        for (k = 0; k < total; ++k) {
            l.target[k] = 0;
            l.target_scale[k] = NAN;
        }
    }
    *(l.cost) = 0;
    for (b = 0; b < l.batch; ++b) {
        const float *timg = tr + (size_t)b*l.truths;
        for (j = 0; j < l.h; ++j) {
            for (i = 0; i < l.w; ++i) {
                for (n = 0; n < l.n; ++n) {
                    int index = size*(j*l.w*l.n + i*l.n + n) + b*l.outputs;
                    box pred = ab_get_region_box_fl(l.output, l.biases, n, index, i, j, l.w, l.h, l.flavor);
                    float best_iou = 0;
                    int best_class_id = -1;
                    float o;
                    for (t = 0; t < l.max_boxes; ++t) {
                        const float *row = timg + (size_t)t*AB_TRUTH_SIZE;
                        box truth = float_to_box(row, 1);
                        int class_id = (int)row[4];
                        float iou;
                        if (class_id >= l.classes) continue;  /* upstream: before the x == 0 test */
                        if (!truth.x) break;
                        iou = ab_box_iou_fl(pred, truth, l.flavor);  /* HANK-R(3) */
                        if (iou > best_iou) {
                            best_class_id = (int)row[4];
                            best_iou = iou;
                        }
                    }
                    o = l.output[index + 4];
                    avg_anyobj = dn_add_acc(avg_anyobj, o);
                    *dp(&l, index + 4) = l.noobject_scale*((0 - o)*ab_logistic_gradient(o));
                    term(&l, index + 4, 0, l.noobject_scale);
                    if (l.classfix == -1) {
                        *dp(&l, index + 4) = l.noobject_scale*((best_iou - o)*ab_logistic_gradient(o));
                        term(&l, index + 4, best_iou, l.noobject_scale);
                    } else if (best_iou > l.thresh) {
                        *dp(&l, index + 4) = 0;
                        term(&l, index + 4, 0, NAN);
                        if (l.classfix > 0) {
                            /* the raw class id: the map is not applied here */
                            delta_region_class(l.output, &l, index + 5, best_class_id, l.classes,
                                               l.class_scale*(l.classfix == 2 ? o : 1), &avg_cat, l.focal_loss);
                            ++class_count;
                        }
                    }
                    if (seen < 12800) {
                        box truth = {0, 0, 0, 0};
                        truth.x = (float)((i + .5)/l.w);
                        truth.y = (float)((j + .5)/l.h);
                        truth.w = l.biases[2*n]/l.w;
                        truth.h = l.biases[2*n + 1]/l.h;
                        delta_region_box(truth, l.output, l.biases, n, index, i, j, l.w, l.h, &l, .01f);
                    }
                }
            }
        }
        for (t = 0; t < l.max_boxes; ++t) {
            const float *row = timg + (size_t)t*AB_TRUTH_SIZE;
            box truth = float_to_box(row, 1);
            box truth_shift;
            int class_id = (int)row[4];
            float best_iou = 0, iou, o;
            int best_index = 0, best_n = 0;
            if (class_id >= l.classes) {
                ++warnings;  /* upstream prints "Warning: in txt-labels class_id=..." */
                continue;
            }
            if (!truth.x) break;
            i = (int)(truth.x*l.w);
            j = (int)(truth.y*l.h);
            truth_shift = truth;
            truth_shift.x = 0;
            truth_shift.y = 0;
            for (n = 0; n < l.n; ++n) {
                int index = size*(j*l.w*l.n + i*l.n + n) + b*l.outputs;
                box pred = ab_get_region_box_fl(l.output, l.biases, n, index, i, j, l.w, l.h, l.flavor);
                float a_iou;
                if (l.bias_match) {
                    pred.w = l.biases[2*n]/l.w;
                    pred.h = l.biases[2*n + 1]/l.h;
                }
                pred.x = 0;
                pred.y = 0;
                a_iou = ab_box_iou_fl(pred, truth_shift, l.flavor);  /* HANK-R(3) */
                if (a_iou > best_iou) {
                    best_index = index;
                    best_iou = a_iou;
                    best_n = n;
                }
            }
            /* best_index stays 0 when no anchor overlaps: image 0's first cell. */
            iou = delta_region_box(truth, l.output, l.biases, best_n, best_index, i, j, l.w, l.h, &l,
                                   l.coord_scale);
            if (iou > .5) recall = dn_add_acc(recall, 1);
            avg_iou = dn_add_acc(avg_iou, iou);
            o = l.output[best_index + 4];
            avg_obj = dn_add_acc(avg_obj, o);
            *dp(&l, best_index + 4) = l.object_scale*(1 - o)*ab_logistic_gradient(o);
            term(&l, best_index + 4, 1, l.object_scale);
            if (l.rescore) {
                *dp(&l, best_index + 4) = l.object_scale*(iou - o)*ab_logistic_gradient(o);
                term(&l, best_index + 4, iou, l.object_scale);
            }
            if (l.map) class_id = l.map[class_id];
            delta_region_class(l.output, &l, best_index + 5, class_id, l.classes, l.class_scale, &avg_cat,
                               l.focal_loss);
            ++count;
            ++class_count;
        }
    }
    /* flatten(l.delta, w*h, size*n, batch, 0) is already done: every delta
     * was written at its darknet-layout position (dflat). */
    *(l.cost) = (float)pow((double)mag_array(l.delta, (int)total), 2);
    if (l.stats) {
        l.stats->avg_iou = avg_iou/count;
        l.stats->avg_cat = avg_cat/class_count;
        l.stats->avg_obj = avg_obj/count;
        l.stats->avg_anyobj = avg_anyobj/(l.w*l.h*l.n*l.batch);
        l.stats->recall = recall/count;
        l.stats->count = count;
        l.stats->class_count = class_count;
        l.stats->warnings = warnings;
    }
    return DN_OK;
}

/* ---- inference ---------------------------------------------------------------------------- */

void ab_correct_yolo_boxes(detection *dets, int n, int w, int h, int netw, int neth, int relative, int letter)
{
    int i, new_w = 0, new_h = 0;
    float deltaw, deltah, ratiow, ratioh;
    if (letter) {
        if (((float)netw/w) < ((float)neth/h)) {
            new_w = netw;
            new_h = (h*netw)/w;
        } else {
            new_h = neth;
            new_w = (w*neth)/h;
        }
    } else {
        new_w = netw;
        new_h = neth;
    }
    deltaw = netw - new_w;
    deltah = neth - new_h;
    ratiow = (float)new_w/netw;
    ratioh = (float)new_h/neth;
    for (i = 0; i < n; ++i) {
        box b = dets[i].bbox;
        b.x = (float)((b.x - deltaw/2./netw)/ratiow);
        b.y = (float)((b.y - deltah/2./neth)/ratioh);
        b.w *= 1/ratiow;
        b.h *= 1/ratioh;
        if (!relative) {
            b.x *= w;
            b.w *= w;
            b.y *= h;
            b.h *= h;
        }
        dets[i].bbox = b;
    }
}

int ab_custom_get_region_detections(const ab_region_layer l, const float *output, int w, int h, int netw,
                                    int neth, float thresh, int relative, int letter, detection *dets)
{
    int i, j, n;
    if (ab_check_region_layer(&l) != DN_OK || !output || !dets || w < 1 || h < 1 || netw < 1 || neth < 1) {
        return DN_E_LAYER;
    }
    /* get_region_boxes(l, 1, 1, thresh, probs, boxes, 0, map): image 0 of the flattened output */
    for (i = 0; i < l.w*l.h; ++i) {
        int row = i/l.w;
        int col = i % l.w;
        for (n = 0; n < l.n; ++n) {
            int index = i*l.n + n;
            /* classes + 5 entries per anchor: upstream's stride whatever coords is */
            int p_index = index*(l.classes + 5) + 4;
            int box_index = index*(l.classes + 5);
            int class_index = index*(l.classes + 5) + 5;
            float scale = output[p_index];
            box b;
            if (l.classfix == -1 && scale < .5) scale = 0;
            b = ab_get_region_box(output, l.biases, n, box_index, col, row, l.w, l.h);
            /* boxes[index].x *= w with w == 1 (and likewise y, w, h): unchanged */
            dets[index].bbox = b;
            dets[index].objectness = 1;
            for (j = 0; j < l.classes; ++j) {
                float prob = scale*output[class_index + j];
                dets[index].prob[j] = (prob > thresh) ? prob : 0;
            }
        }
    }
    ab_correct_yolo_boxes(dets, l.w*l.h*l.n, w, h, netw, neth, relative, letter);
    return DN_OK;
}
