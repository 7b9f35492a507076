/*
 * detection_layer.c -- pjreddie/darknet f6afaab's [detection] layer (src/detection_layer.c),
 * YOLOv1's loss, and glibc's rand() that its `random` option draws from.
 *
 * Layout per image (flat, no activation): side*side*classes class scores
 * (cell-major), then side*side*n confidences, then side*side*n*coords box
 * entries (x, y relative to the cell, w, h to the image; sqrt=1: their
 * square roots).  The truth per cell is is_obj, classes one-hot values,
 * x, y, w, h (1 + classes + coords floats).
 *
 * Upstream behaviour reproduced: is_obj truncated to int (0.6 is no object);
 * the optional softmax (double exp) over each cell's classes; the box with
 * the highest IoU is responsible, or, while no box overlaps, the one with
 * the lowest RMSE under 20; `forced` picks box 1 for small truths (w*h < .1)
 * and box 0 otherwise; `random` with seen < 64000 replaces the pick by
 * rand() % n (glibc's sequence, seeded by srand(0) in make_detection_layer);
 * the objectness delta (1. - out) goes through double; the running cost
 * upstream adds up is overwritten by pow(mag_array(delta), 2), so it is not
 * computed here; box_iou without a guard (0/0 is NaN).
 * A cell no box qualifies for keeps best_index -1 and upstream uses "box -1"
 * (the previous cell's last box, or the tail of the class and confidence
 * blocks for a first cell); forced with num 1 uses "box 1" (the next cell's):
 * reproduced where those indices stay inside the buffer.  Refused: where
 * they would not, coords < 4 with an object cell (float_to_box reads four
 * entries of the truth and the output: the next cell's, past the buffers for
 * the last), is_obj that is not a finite int.
 */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "dn_internal.h"
#include "dn_fast.h"

/* ---- glibc's random_r, TYPE_3 (degree 31, separation 3) ----------------- */

void dn_glibc_srand(dn_glibc_rand *s, unsigned int seed)
{
    int i;
    int word;
    /* srandom_r: seed 0 is replaced by 1, then the Park-Miller LCG fills the
     * table (16807 * r mod 2^31-1, by Schrage's method). */
    if (seed == 0) seed = 1;
    s->r[0] = (int)seed;
    word = (int)seed;
    for (i = 1; i < 31; ++i) {
        long hi = word/127773;
        long lo = word % 127773;
        word = (int)(16807*lo - 2836*hi);
        if (word < 0) word += 2147483647;
        s->r[i] = word;
    }
    s->f = 3;
    s->b = 0;
    /* then 310 outputs are discarded */
    for (i = 0; i < 310; ++i) dn_glibc_rand_next(s);
}

int dn_glibc_rand_next(dn_glibc_rand *s)
{
    unsigned int v = (unsigned int)s->r[s->f] + (unsigned int)s->r[s->b];
    s->r[s->f] = (int)v;
    if (++s->f >= 31) s->f = 0;
    if (++s->b >= 31) s->b = 0;
    return (int)(v >> 1);
}

/* ---- the layer -------------------------------------------------------- */

static int fits(long long v)
{
    return v >= 0 && v <= INT_MAX;
}

int detection_layer_init(detection_layer *l, int batch, int side, int n, int classes, int coords)
{
    detection_layer z;
    long long loc, inputs, truths;
    memset(&z, 0, sizeof z);
    *l = z;
    if (batch < 1 || side < 1 || n < 1 || classes < 1 || coords < 0) return DN_E_LAYER;
    loc = (long long)side*side;
    inputs = loc*((1LL + coords)*n + classes);
    truths = loc*(1LL + coords + classes);
    if (!fits(loc) || !fits(inputs) || !fits(inputs*batch) || !fits(truths) || !fits(truths*batch)) return DN_E_LAYER;
    l->batch = batch;
    l->side = side;
    l->n = n;
    l->classes = classes;
    l->coords = coords;
    l->inputs = l->outputs = (int)inputs;
    l->truths = (int)truths;
    l->coord_scale = l->object_scale = l->noobject_scale = l->class_scale = 1;
    return DN_OK;
}

int check_detection_layer(const detection_layer *l)
{
    long long loc;
    if (!l || !l->output || !l->delta || !l->cost) return DN_E_LAYER;
    if (l->batch < 1 || l->side < 1 || l->n < 1 || l->classes < 1 || l->coords < 0) return DN_E_LAYER;
    loc = (long long)l->side*l->side;
    if (loc*((1LL + l->coords)*l->n + l->classes) != l->inputs || l->outputs != l->inputs) return DN_E_LAYER;
    if (loc*(1LL + l->coords + l->classes) != l->truths) return DN_E_LAYER;
    if (!fits((long long)l->inputs*l->batch) || !fits((long long)l->truths*l->batch)) return DN_E_LAYER;
    if (l->random && !l->rand_state) return DN_E_LAYER;
    return DN_OK;
}

/* The box of the cell's j-th prediction as the pick compares it: x, y over
 * side, w, h squared with sqrt. */
static box pred_box(const detection_layer *l, const float *out, int index, int locations, int i, int j)
{
    int box_index = index + locations*(l->classes + l->n) + (i*l->n + j)*l->coords;
    box o = float_to_box(out + box_index, 1);
    o.x /= l->side;
    o.y /= l->side;
    if (l->sqrt) {
        o.w = o.w*o.w;
        o.h = o.h*o.h;
    }
    return o;
}

/* The IoU / RMSE pick before forced and random (-1 when nothing qualifies). */
static int pick_box(const detection_layer *l, const float *out, int index, int locations, int i, box truth)
{
    int j, best_index = -1;
    float best_iou = 0, best_rmse = 20;
    for (j = 0; j < l->n; ++j) {
        box o = pred_box(l, out, index, locations, i, j);
        float iou = box_iou(o, truth);
        float rmse = box_rmse(o, truth);
        if (best_iou > 0 || iou > 0) {
            if (iou > best_iou) {
                best_iou = iou;
                best_index = j;
            }
        } else {
            if (rmse < best_rmse) {
                best_rmse = rmse;
                best_index = j;
            }
        }
    }
    if (l->forced) {
        best_index = (truth.w*truth.h < .1) ? 1 : 0;
    }
    return best_index;
}

static box truth_box(const detection_layer *l, const float *truth, int truth_index)
{
    box t = float_to_box(truth + truth_index + 1 + l->classes, 1);
    t.x /= l->side;
    t.y /= l->side;
    return t;
}

static int int_convertible(float v)
{
    return v > -2147483649.0f && v < 2147483648.0f;
}

int check_detection_truths(const detection_layer *l, const float *input, const float *truth, size_t seen,
                           int *bad_image, int *bad_cell)
{
    int b, i, err = DN_OK;
    int locations;
    int randomized;
    if (bad_image) *bad_image = -1;
    if (bad_cell) *bad_cell = -1;
    if (check_detection_layer(l) != DN_OK || !truth || !input) return DN_E_LAYER;
    locations = l->side*l->side;
    randomized = l->random && seen < 64000;
    for (b = 0; b < l->batch; ++b) {
        int index = b*l->inputs;
        for (i = 0; i < locations; ++i) {
            int truth_index = (b*locations + i)*(1 + l->coords + l->classes);
            float v = truth[truth_index];
            int pick;
            if (!isfinite(v) || !int_convertible(v)) { err = DN_E_DET_TRUTH; goto bad; }
            if (!(int)v) continue;
            if (l->coords < 4) { err = DN_E_DET_COORDS; goto bad; }
            if (randomized) continue;
            /* The box entries are not touched by the softmax: the input's
             * are the output's. */
            pick = pick_box(l, input, index, locations, i, truth_box(l, truth, truth_index));
            if (pick < 0 || pick >= l->n) {
                /* Upstream indexes box `pick` of this cell anyway: box -1 is the previous
                 * cell's last box (for the first cell, the tail of the class and
                 * confidence blocks), forced's box 1 with num 1 the next cell's.  That
                 * is reproduced while the confidence and the four box entries stay
                 * inside the buffer; refused where they would not. */
                long long total = (long long)l->batch*l->outputs;
                long long p_index = (long long)index + (long long)locations*l->classes + (long long)i*l->n + pick;
                long long box_index = (long long)index + (long long)locations*(l->classes + l->n)
                                      + ((long long)i*l->n + pick)*l->coords;
                if (p_index < 0 || p_index >= total || box_index < 0 || box_index + 3 >= total) {
                    err = DN_E_DET_PICK;
                    goto bad;
                }
            }
        }
    }
    return DN_OK;
bad:
    if (bad_image) *bad_image = b;
    if (bad_cell) *bad_cell = i;
    return err;
}

int forward_detection_layer(const detection_layer l, network net)
{
    int locations = l.side*l.side;
    int i, j, b, err;
    size_t total;
    if (check_detection_layer(&l) != DN_OK || !net.input) return DN_E_LAYER;
    if (net.train) {
        err = check_detection_truths(&l, net.input, net.truth, net.seen, NULL, NULL);
        if (err != DN_OK) return err;
    }
    total = (size_t)l.outputs*l.batch;
    memcpy(l.output, net.input, total*sizeof(float));
    if (l.softmax) {
        for (b = 0; b < l.batch; ++b) {
            int index = b*l.inputs;
            for (i = 0; i < locations; ++i) {
                int offset = i*l.classes;
                softmax(l.output + index + offset, l.classes, 1, 1, l.output + index + offset);
            }
        }
    }
    if (net.train) {
        float avg_iou = 0, avg_cat = 0, avg_allcat = 0, avg_obj = 0, avg_anyobj = 0;
        int count = 0;
        *(l.cost) = 0;
        memset(l.delta, 0, total*sizeof(float));
        for (b = 0; b < l.batch; ++b) {
            int index = b*l.inputs;
            for (i = 0; i < locations; ++i) {
                int truth_index = (b*locations + i)*(1 + l.coords + l.classes);
                int is_obj = (int)net.truth[truth_index];
                int best_index, box_index, tbox_index, p_index, class_index;
                box truth, out;
                float iou;
                if (l.picks) l.picks[b*locations + i] = -2;
                for (j = 0; j < l.n; ++j) {
                    p_index = index + locations*l.classes + i*l.n + j;
                    l.delta[p_index] = l.noobject_scale*(0 - l.output[p_index]);
                    /* (the running *l.cost sums are overwritten at the end) */
                    avg_anyobj = dn_add_acc(avg_anyobj, l.output[p_index]);
                }
                if (!is_obj) continue;

                class_index = index + i*l.classes;
                for (j = 0; j < l.classes; ++j) {
                    l.delta[class_index + j] = l.class_scale*(net.truth[truth_index + 1 + j] - l.output[class_index + j]);
                    if (net.truth[truth_index + 1 + j]) avg_cat = dn_add_acc(avg_cat, l.output[class_index + j]);
                    avg_allcat = dn_add_acc(avg_allcat, l.output[class_index + j]);
                }

                truth = truth_box(&l, net.truth, truth_index);
                best_index = pick_box(&l, l.output, index, locations, i, truth);
                if (l.random && net.seen < 64000) {
                    /* rand() % l.n from the layer's own glibc sequence */
                    best_index = dn_glibc_rand_next(l.rand_state) % l.n;
                }

                if (l.picks) l.picks[b*locations + i] = best_index;
                box_index = index + locations*(l.classes + l.n) + (i*l.n + best_index)*l.coords;
                tbox_index = truth_index + 1 + l.classes;
                out = pred_box(&l, l.output, index, locations, i, best_index);
                iou = box_iou(out, truth);

                p_index = index + locations*l.classes + i*l.n + best_index;
                avg_obj = dn_add_acc(avg_obj, l.output[p_index]);
                /* 1. - out: double arithmetic, rounded into the float delta */
                l.delta[p_index] = (float)(l.object_scale*(1. - l.output[p_index]));
                if (l.rescore) {
                    l.delta[p_index] = l.object_scale*(iou - l.output[p_index]);
                }

                l.delta[box_index + 0] = l.coord_scale*(net.truth[tbox_index + 0] - l.output[box_index + 0]);
                l.delta[box_index + 1] = l.coord_scale*(net.truth[tbox_index + 1] - l.output[box_index + 1]);
                l.delta[box_index + 2] = l.coord_scale*(net.truth[tbox_index + 2] - l.output[box_index + 2]);
                l.delta[box_index + 3] = l.coord_scale*(net.truth[tbox_index + 3] - l.output[box_index + 3]);
                if (l.sqrt) {
                    /* sqrt in double, the difference and product too */
                    l.delta[box_index + 2] = (float)(l.coord_scale*(sqrt(net.truth[tbox_index + 2])
                                                                    - l.output[box_index + 2]));
                    l.delta[box_index + 3] = (float)(l.coord_scale*(sqrt(net.truth[tbox_index + 3])
                                                                    - l.output[box_index + 3]));
                }
                avg_iou = dn_add_acc(avg_iou, iou);
                ++count;
            }
        }
        *(l.cost) = (float)pow((double)mag_array(l.delta, (int)total), 2);
        if (l.stats) {
            l.stats->avg_iou = avg_iou/count;
            l.stats->pos_cat = avg_cat/count;
            l.stats->all_cat = avg_allcat/(count*l.classes);
            l.stats->pos_obj = avg_obj/count;
            l.stats->any_obj = avg_anyobj/(l.batch*locations*l.n);
            l.stats->count = count;
        }
    }
    return DN_OK;
}

int get_detection_detections(const detection_layer l, int w, int h, float thresh, detection *dets)
{
    int i, j, n;
    const float *predictions = l.output;
    if (check_detection_layer(&l) != DN_OK || !dets || l.coords < 4) return DN_E_LAYER;
    for (i = 0; i < l.side*l.side; ++i) {
        int row = i/l.side;
        int col = i % l.side;
        for (n = 0; n < l.n; ++n) {
            int index = i*l.n + n;
            int p_index = l.side*l.side*l.classes + i*l.n + n;
            float scale = predictions[p_index];
            /* four box entries per box here, whatever coords is */
            int box_index = l.side*l.side*(l.classes + l.n) + (i*l.n + n)*4;
            box b;
            b.x = (predictions[box_index + 0] + col)/l.side*w;
            b.y = (predictions[box_index + 1] + row)/l.side*h;
            b.w = (float)(pow(predictions[box_index + 2], (l.sqrt ? 2 : 1))*w);
            b.h = (float)(pow(predictions[box_index + 3], (l.sqrt ? 2 : 1))*h);
            dets[index].bbox = b;
            dets[index].objectness = scale;
            for (j = 0; j < l.classes; ++j) {
                int class_index = i*l.classes;
                float prob = scale*predictions[class_index + j];
                dets[index].prob[j] = (prob > thresh) ? prob : 0;
            }
        }
    }
    return DN_OK;
}
