/*
 * ab_gaussian_yolo_layer.c -- AlexeyAB/darknet's [Gaussian_yolo] layer
 * (Gaussian YOLOv3), forward pass and detections, reproduced operation for
 * operation from upstream src/gaussian_yolo_layer.c at 59596d7 (the CPU
 * build: no GPU activation, no OpenMP).
 *
 * It shares with AlexeyAB's [yolo] (ab_yolo_layer.c) the float logistic,
 * box.c's IoU family and dx_box_iou (ab_box.c), get_classes_multipliers,
 * the truth rows (x, y, w, h, class, track id; stride max*6) and
 * ab_internal.h: fix_nan_inf, clip_value, the class checks,
 * compare_*_class, the box-delta averaging, the truth loop's best anchor
 * and the iou_thresh test's IoU.  What is its own, in the order the
 * forward meets it:
 *   - 9 + classes entries per anchor (x, sx, y, sy, w, sw, h, sh, obj, ...):
 *     the logistic on x, sx, y, sy, sw, sh, obj and the classes, then
 *     scale_x_y on x and y only;
 *   - yolo_point: the box's x, y are its centre, its top-left or its
 *     bottom-right corner (get_gaussian_yolo_box, the truth's cell, tx, ty);
 *   - loop 1 is [yolo]'s older form: no NaN guard on objectness, no
 *     objectness_smooth maximum; a class id >= classes is skipped (with a
 *     warning upstream prints per cell and anchor) *before* the x == 0 test,
 *     so such a row with x == 0 does not end loop 1's list; negative ids are
 *     not skipped;
 *   - loop 2 has no class check at all (refused here where it would index
 *     outside the buffers) and no "Wrong label" test;
 *   - the box delta (delta_gaussian_yolo_box) is the Gaussian likelihood's
 *     gradient, or IoU-family gradients for x, y, w, h, plus the four sigma
 *     gradients times uc_normalizer; it returns GIoU (not IoU) for every
 *     iou_loss but mse, and that is what avg_iou and the recalls count;
 *   - the class delta's duplicate test reads the *first* class's delta;
 *   - after loop 2 every cell's eight box deltas are divided by its number
 *     of positive class deltas, whatever iou_thresh is;
 *   - the cost is |delta|^2 and the line splits it into class, iou and
 *     uncertainty parts.
 *
 * Types matter: an int times a float is a float, exp/log/pow/sqrt take
 * doubles, constants like 1./2. are doubles, every store into a float
 * rounds.  A comment names the upstream behaviour where a line's form is
 * not obvious.
 *
 * hank-ai/darknet f684e1d7's [Gaussian_yolo] (src-lib/gaussian_yolo_layer.cpp)
 * is this code compiled as C++ (float overloads of exp/log from OpenCV's
 * headers), run when l.flavor is AB_FLAVOR_HANKAI.  Every difference, tagged
 * HANK-G(n) where it is made (hank-ai gaussian_yolo_layer.cpp line):
 *   1  get_gaussian_yolo_box: w = expf(x)*anchor/net_w in float (:20-21)
 *   2  tw, th = logf(...)                                         (:97-98)
 *   3  temp = (1.0f/2.0f)*1.0f/(nd + epsi)*nd*scale in float (AlexeyAB:
 *      1./2. and 1. make it double)                               (:137-140)
 *   4  delta_x = temp*in_exp*(1.0f/sigma) in float                (:154-157)
 *   5  delta_ux = temp*(in_exp_2/sigma - 1.0f/(sigma + .3)) in float (:159-162)
 *   6  IoU-family chain rule: dw *= expf(x_w) in float            (:201-202)
 *   7  box_iou, box_giou, dx_box_iou, box_iou_kind and the best anchor's IoU
 *      are hank-ai's box.cpp ones: HANK(4)-(7) of darknet_loss.h
 *   8  delta_gaussian_yolo_class's duplicate branch: y_true*(1 - eps) +
 *      0.5f*eps in float (AlexeyAB: 0.5*eps, double)               (:313)
 *   9  loop 1: a class id >= classes before the x == 0 end is fatal
 *      (darknet_fatal_error "invalid class ID", :547): refused here
 *      (DN_E_TRUTH_CLASS); AlexeyAB warns and skips the row
 *  10  loop 2's cell for left_top / right_bottom: std::clamp(i, w - 1,
 *      (int)(x -+ w/2.0f)*w), which libstdc++ 12 evaluates as
 *      std::min(std::max(i, w - 1), hi) (hi < lo is not checked with NDEBUG):
 *      usually cell 0 or w - 1; a cell outside the grid is refused (:622-630)
 *  11  the line goes through hank-ai's output stream on every training
 *      forward, another format: Python's business.
 * Same: the logistic, normal_dist (a double expression in both: pow(float, int)
 * is double in C++11), epsi, fix_nan_inf, clip_value, the averaging, the cost.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ab_internal.h"
#include "darknet_loss.h"
#include "dn_fast.h"

/* Upstream's M_PI: <math.h> defines it in gnu mode (upstream's 3.141592
 * fallback is never used); we build with -std=c99, so it is spelled out. */
#define GY_PI 3.14159265358979323846
#define GY_ENTRIES 9  /* x, sx, y, sy, w, sw, h, sh, objectness */


/* entry_gaussian_index for anchor n, cell loc (row*w + col), entry e. */
static inline int gindex(const ab_gaussian_yolo_layer *l, int b, int n, int loc, int e)
{
    return b*l->outputs + n*l->w*l->h*(GY_ENTRIES + l->classes) + e*l->w*l->h + loc;
}

int ab_gaussian_yolo_layer_init(ab_gaussian_yolo_layer *l, int batch, int w, int h, int n, int total, int classes,
                                int max_boxes)
{
    ab_gaussian_yolo_layer z;
    int c, outputs, truths;
    memset(&z, 0, sizeof z);
    *l = z;
    if (batch < 1 || w < 1 || h < 1 || n < 1 || total < 1 || classes < 1 || max_boxes < 0) return DN_E_LAYER;
    if (ab_layer_sizes(batch, w, h, n, classes + GY_ENTRIES, max_boxes, &c, &outputs, &truths) != DN_OK) {
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
    /* parse_gaussian_yolo's defaults */
    l->ignore_thresh = .5f;
    l->truth_thresh = 1;
    l->iou_thresh = 1;
    l->iou_thresh_kind = AB_IOU;
    l->iou_loss = AB_MSE;
    l->iou_normalizer = 0.75f;
    l->uc_normalizer = 1;
    l->obj_normalizer = 1;
    l->cls_normalizer = 1;
    l->max_delta = FLT_MAX;
    l->scale_x_y = 1;
    l->label_smooth_eps = 0;
    l->yolo_point = AB_YOLO_CENTER;
    return DN_OK;
}

int ab_check_gaussian_yolo_layer(const ab_gaussian_yolo_layer *l)
{
    long long c, outputs, truths;
    int k;
    if (!l) return DN_E_LAYER;
    if (l->batch < 1 || l->w < 1 || l->h < 1 || l->n < 1 || l->total < 1 || l->classes < 1) return DN_E_LAYER;
    if (l->max_boxes < 0 || l->truth_size != AB_TRUTH_SIZE) return DN_E_LAYER;
    if (!l->mask || !l->biases || !l->output || !l->delta || !l->cost) return DN_E_LAYER;
    c = (long long)l->n*(l->classes + GY_ENTRIES);
    outputs = c*l->w*l->h;
    truths = (long long)l->max_boxes*AB_TRUTH_SIZE;
    if (!ab_fits_int(c) || !ab_fits_int(outputs) || !ab_fits_int(outputs*l->batch)) return DN_E_LAYER;
    if (l->c != c || l->outputs != outputs || l->inputs != l->outputs) return DN_E_LAYER;
    if (l->truths != truths || !ab_fits_int(truths*l->batch)) return DN_E_LAYER;
    /* a mask value indexes biases (2*total floats) */
    for (k = 0; k < l->n; ++k) {
        if (l->mask[k] < 0 || l->mask[k] >= l->total) return DN_E_LAYER;
    }
    if (l->iou_loss < AB_IOU || l->iou_loss > AB_CIOU) return DN_E_LAYER;
    if (l->iou_thresh_kind < AB_IOU || l->iou_thresh_kind > AB_CIOU || l->iou_thresh_kind == AB_MSE) return DN_E_LAYER;
    if (l->yolo_point != AB_YOLO_CENTER && l->yolo_point != AB_YOLO_LEFT_TOP && l->yolo_point != AB_YOLO_RIGHT_BOTTOM) {
        return DN_E_LAYER;
    }
    if (l->map && l->map_len < 1) return DN_E_LAYER;
    if (l->flavor != AB_FLAVOR_ALEXEYAB && l->flavor != AB_FLAVOR_HANKAI) return DN_E_LAYER;
    /* A negative truth_thresh (or ignore_thresh with objectness_smooth)
     * makes loop 1 read row 0 of every image; max 0 has no row 0. */
    if (l->max_boxes == 0 && (l->truth_thresh < 0 || (l->ignore_thresh < 0 && l->objectness_smooth))) {
        return DN_E_LAYER;
    }
    return DN_OK;
}

/* ---- truth checks ------------------------------------------------------------ */

/* A class id that indexes (after truncation): in [0, classes), inside the
 * map, mapped into [0, classes) (ab_internal.h). */
static int check_class(const ab_gaussian_yolo_layer *l, int cls)
{
    return ab_check_class(cls, l->classes, l->map, l->map_len);
}

/* The cell loop 2 gives a truth: (int)(x*w) in float, or for the corner
 * points the clamped corner (min_val_cmp/max_val_cmp: a float, then
 * truncated). */
/* HANK-G(10): std::clamp(v, lo, hi) = std::min(std::max(v, lo), hi) in
 * libstdc++ 12, with v = (int)(x*w), lo = w - 1, hi = (int)(corner)*w. */
static int hank_clamp(int v, int lo, int hi)
{
    v = v < lo ? lo : v;   /* std::max(v, lo) */
    return hi < v ? hi : v; /* std::min(., hi) */
}

/* For HANK-G(10): the conversions and the product that truth_cell makes are
 * defined (the float products and the corners fit an int). */
static int hank_cell_defined(const ab_gaussian_yolo_layer *l, box truth)
{
    const float sx = l->yolo_point == AB_YOLO_LEFT_TOP ? truth.x - truth.w/2.0f : truth.x + truth.w/2.0f;
    const float sy = l->yolo_point == AB_YOLO_LEFT_TOP ? truth.y - truth.h/2.0f : truth.y + truth.h/2.0f;
    long long px, py;
    if (!ab_int_convertible(truth.x*l->w) || !ab_int_convertible(truth.y*l->h)) return 0;
    if (!ab_int_convertible(sx) || !ab_int_convertible(sy)) return 0;
    px = (long long)(int)sx*l->w;
    py = (long long)(int)sy*l->h;
    return px >= INT_MIN && px <= INT_MAX && py >= INT_MIN && py <= INT_MAX;
}

static void truth_cell(const ab_gaussian_yolo_layer *l, box truth, int *i, int *j)
{
    if ((l->yolo_point == AB_YOLO_LEFT_TOP || l->yolo_point == AB_YOLO_RIGHT_BOTTOM) &&
        l->flavor == AB_FLAVOR_HANKAI) {
        const float sx = l->yolo_point == AB_YOLO_LEFT_TOP ? truth.x - truth.w/2.0f : truth.x + truth.w/2.0f;
        const float sy = l->yolo_point == AB_YOLO_LEFT_TOP ? truth.y - truth.h/2.0f : truth.y + truth.h/2.0f;
        *i = hank_clamp((int)(truth.x*l->w), l->w - 1, (int)sx*l->w);
        *j = hank_clamp((int)(truth.y*l->h), l->h - 1, (int)sy*l->h);
    } else if (l->yolo_point == AB_YOLO_LEFT_TOP || l->yolo_point == AB_YOLO_RIGHT_BOTTOM) {
        const float sx = l->yolo_point == AB_YOLO_LEFT_TOP ? truth.x - truth.w/2 : truth.x + truth.w/2;
        const float sy = l->yolo_point == AB_YOLO_LEFT_TOP ? truth.y - truth.h/2 : truth.y + truth.h/2;
        float vx = sx*l->w, vy = sy*l->h;
        vx = 0 > vx ? 0 : vx;
        vy = 0 > vy ? 0 : vy;
        *i = (int)((float)(l->w - 1) < vx ? (float)(l->w - 1) : vx);
        *j = (int)((float)(l->h - 1) < vy ? (float)(l->h - 1) : vy);
    } else {
        *i = (int)(truth.x*l->w);
        *j = (int)(truth.y*l->h);
    }
}

/* Loop 2's best anchor over all `total` anchors by the IoU of centred
 * boxes, as AlexeyAB's [yolo] picks it (ab_internal.h). */
static int best_anchor(const ab_gaussian_yolo_layer *l, box truth, int net_w, int net_h)
{
    return ab_best_anchor(l->biases, l->total, truth, net_w, net_h, l->flavor);  /* HANK-G(7) */
}

/* Does loop 2 write deltas for this truth (best anchor in the mask, or an
 * iou_thresh extra)?  Only then does it index with the class id. */
static int row_assigned(const ab_gaussian_yolo_layer *l, box truth, int net_w, int net_h)
{
    const int best_n = best_anchor(l, truth, net_w, net_h);
    box truth_shift = truth;
    int n;
    if (int_index(l->mask, best_n, l->n) >= 0) return 1;
    if (!(l->iou_thresh < 1.0f)) return 0;
    truth_shift.x = truth_shift.y = 0;
    for (n = 0; n < l->total; ++n) {
        if (int_index(l->mask, n, l->n) >= 0 && n != best_n &&
            ab_anchor_iou_kind(l->biases, n, truth_shift, net_w, net_h, l->iou_thresh_kind, l->flavor) >
            l->iou_thresh) {
            return 1;
        }
    }
    return 0;
}

static int row_finite(const float *row)
{
    int k;
    for (k = 0; k < 5; ++k) {  /* the track id (column 5) is never read */
        if (!isfinite(row[k])) return 0;
    }
    return 1;
}

int ab_check_gaussian_yolo_truths(const ab_gaussian_yolo_layer *l, ab_network_state state, int *bad_image,
                                  int *bad_row)
{
    int b, t, err = DN_OK;
    if (bad_image) *bad_image = -1;
    if (bad_row) *bad_row = -1;
    if (ab_check_gaussian_yolo_layer(l) != DN_OK || !state.truth || state.net_w < 1 || state.net_h < 1) {
        return DN_E_LAYER;
    }
    for (b = 0; b < l->batch; ++b) {
        const float *truths = state.truth + (size_t)b*l->truths;
        int loop2_done = 0;
        for (t = 0; t < l->max_boxes; ++t) {
            const float *row = truths + t*AB_TRUTH_SIZE;
            int cls;
            if (!row_finite(row)) { err = DN_E_TRUTH_VALUE; goto bad; }
            if (!ab_int_convertible(row[4])) { err = DN_E_TRUTH_INT; goto bad; }
            cls = (int)row[4];
            /* Loop 2 reads rows up to the first x == 0, whatever the class. */
            if (!row[0]) loop2_done = 1;
            if (!loop2_done) {
                const box truth = ab_row_box(row);
                int i, j;
                if (l->yolo_point != AB_YOLO_CENTER && l->flavor == AB_FLAVOR_HANKAI &&
                    !hank_cell_defined(l, truth)) {
                    err = DN_E_TRUTH_CELL;
                    goto bad;
                }
                if (l->yolo_point == AB_YOLO_CENTER) {
                    /* (int)(x*w) is in [0, w) exactly when the float product
                     * is in (-1, w); tested before converting */
                    const float fx = truth.x*l->w, fy = truth.y*l->h;
                    if (!(fx > -1 && fx < l->w && fy > -1 && fy < l->h)) { err = DN_E_TRUTH_CELL; goto bad; }
                }
                /* (the corner points are clamped into the grid) */
                truth_cell(l, truth, &i, &j);
                if (i < 0 || i >= l->w || j < 0 || j >= l->h) { err = DN_E_TRUTH_CELL; goto bad; }
                /* No class test in loop 2: the class indexes the deltas,
                 * the map and the multipliers where the row is assigned. */
                if (cls < 0 || row_assigned(l, truth, state.net_w, state.net_h)) {
                    err = check_class(l, cls);
                    if (err != DN_OK) goto bad;
                }
            }
            /* Loop 1: a class id >= classes is skipped (warned) before the
             * x == 0 test; any other row may become the cell's best truth,
             * whose class indexes. */
            if (cls >= l->classes && l->flavor == AB_FLAVOR_HANKAI) { err = DN_E_TRUTH_CLASS; goto bad; }  /* HANK-G(9) */
            if (cls >= l->classes) continue;
            if (!row[0]) break;
            err = check_class(l, cls);
            if (err != DN_OK) goto bad;
        }
        /* A negative truth_thresh (or ignore_thresh with objectness_smooth):
         * best_iou = 0 already beats it, so a cell with no better truth
         * takes row 0 (best_t's start) as its truth, whatever row 0 is. */
        if (l->truth_thresh < 0 || (l->ignore_thresh < 0 && l->objectness_smooth)) {
            const float *row = truths;
            t = 0;
            if (!row_finite(row)) { err = DN_E_TRUTH_VALUE; goto bad; }
            err = ab_int_convertible(row[4]) ? check_class(l, (int)row[4]) : DN_E_TRUTH_INT;
            if (err != DN_OK) goto bad;
        }
    }
    return DN_OK;
bad:
    if (bad_image) *bad_image = b;
    if (bad_row) *bad_row = t;
    return err;
}

/* ---- boxes and deltas -------------------------------------------------------- */

static box gaussian_box(const float *x, const float *biases, int n, int index, int i, int j, int lw, int lh,
                        int w, int h, int stride, int yolo_point, int flavor)
{
    box b;
    if (flavor == AB_FLAVOR_HANKAI) {
        /* HANK-G(1): expf, then a float product and quotient */
        b.w = expf(x[index + 4*stride])*biases[2*n]/w;
        b.h = expf(x[index + 6*stride])*biases[2*n + 1]/h;
    } else {
        /* exp in double times the anchor over the net size, rounded once */
        b.w = (float)(exp(x[index + 4*stride])*biases[2*n]/w);
        b.h = (float)(exp(x[index + 6*stride])*biases[2*n + 1]/h);
    }
    b.x = (i + x[index + 0*stride])/lw;
    b.y = (j + x[index + 2*stride])/lh;
    if (yolo_point == AB_YOLO_LEFT_TOP) {
        b.x = (i + x[index + 0*stride])/lw + b.w/2;
        b.y = (j + x[index + 2*stride])/lh + b.h/2;
    } else if (yolo_point == AB_YOLO_RIGHT_BOTTOM) {
        b.x = (i + x[index + 0*stride])/lw - b.w/2;
        b.y = (j + x[index + 2*stride])/lh - b.h/2;
    }
    return b;
}

box ab_get_gaussian_yolo_box(const float *x, const float *biases, int n, int index, int i, int j, int lw, int lh,
                             int w, int h, int stride, int yolo_point)
{
    return gaussian_box(x, biases, n, index, i, j, lw, lh, w, h, stride, yolo_point, AB_FLAVOR_ALEXEYAB);
}

/* The Gaussian terms of one coordinate: d = t - mu, sigma the activated
 * sigma.  in_exp = d/sigma; in_exp_2 = pow(in_exp, 2) (float);
 * normal_dist = exp(-in_exp_2/2)/(sqrt(2*pi)*(sigma + 0.3)) in double;
 * temp = 1/2 * 1/(normal_dist + 1e-9) * normal_dist * scale, in double, left
 * to right, each rounded into its float. */
typedef struct gy_term {
    float in_exp, in_exp_2, temp;
} gy_term;

static gy_term gaussian_term(float d, float sigma, float scale, float sigma_const, float epsi, int flavor)
{
    gy_term r;
    float normal_dist;
    r.in_exp = d/sigma;
    r.in_exp_2 = (float)pow(r.in_exp, 2);
    normal_dist = (float)(exp(r.in_exp_2*(-1./2.))/(sqrt(GY_PI*2.0)*(sigma + sigma_const)));
    if (flavor == AB_FLAVOR_HANKAI) {
        r.temp = (1.0f/2.0f)*1.0f/(normal_dist + epsi)*normal_dist*scale;  /* HANK-G(3): float */
    } else {
        r.temp = (float)((1./2.)*1./(normal_dist + epsi)*normal_dist*scale);
    }
    return r;
}

/* delta_gaussian_yolo_box with accumulate = 1 (every call site passes 1).
 * x is l.output; n the anchor (into biases); scale 2 - w*h; iou_normalizer
 * already times the class multiplier.  Returns upstream's `iou`: IoU for
 * mse, GIoU for every other iou_loss. */
static float delta_gaussian_box(const ab_gaussian_yolo_layer *l, box truth, int n, int index, int i, int j,
                                int net_w, int net_h, float scale, float iou_normalizer)
{
    const int stride = l->w*l->h;
    const float *x = l->output;
    float *delta = l->delta;
    const int lw = l->w, lh = l->h;
    box pred = gaussian_box(x, l->biases, n, index, i, j, lw, lh, net_w, net_h, stride, l->yolo_point, l->flavor);
    const float iou_v = ab_box_iou_fl(pred, truth, l->flavor);   /* HANK-G(7) */
    const float giou_v = ab_box_giou_fl(pred, truth, l->flavor);
    /* (upstream also computes box_diou and box_ciou into values nothing reads) */
    const float sigma_const = 0.3f;
    const float epsi = (float)pow(10, -9);
    float iou = iou_v;
    float tx, ty, tw, th, dx, dy, dw, dh;
    float delta_x, delta_y, delta_w, delta_h, delta_ux, delta_uy, delta_uw, delta_uh;
    gy_term gx, gyy, gw, gh;
    const float sx = x[index + 1*stride], sy = x[index + 3*stride];
    const float sw = x[index + 5*stride], sh = x[index + 7*stride];

    if (pred.w == 0) pred.w = 1.0f;
    if (pred.h == 0) pred.h = 1.0f;

    tx = (truth.x*lw - i);
    ty = (truth.y*lh - j);
    if (l->flavor == AB_FLAVOR_HANKAI) {
        tw = logf(truth.w*net_w/l->biases[2*n]);  /* HANK-G(2) */
        th = logf(truth.h*net_h/l->biases[2*n + 1]);
    } else {
        tw = (float)log(truth.w*net_w/l->biases[2*n]);
        th = (float)log(truth.h*net_h/l->biases[2*n + 1]);
    }
    if (l->yolo_point == AB_YOLO_LEFT_TOP) {
        tx = ((truth.x - truth.w/2)*lw - i);
        ty = ((truth.y - truth.h/2)*lh - j);
    } else if (l->yolo_point == AB_YOLO_RIGHT_BOTTOM) {
        tx = ((truth.x + truth.w/2)*lw - i);
        ty = ((truth.y + truth.h/2)*lh - j);
    }
    dx = (tx - x[index + 0*stride]);
    dy = (ty - x[index + 2*stride]);
    dw = (tw - x[index + 4*stride]);
    dh = (th - x[index + 6*stride]);

    gx = gaussian_term(dx, sx, scale, sigma_const, epsi, l->flavor);
    gyy = gaussian_term(dy, sy, scale, sigma_const, epsi, l->flavor);
    gw = gaussian_term(dw, sw, scale, sigma_const, epsi, l->flavor);
    gh = gaussian_term(dh, sh, scale, sigma_const, epsi, l->flavor);

    /* temp*in_exp in float, times 1./sigma in double */
    delta_x = (float)(gx.temp*gx.in_exp*(1./sx));
    delta_y = (float)(gyy.temp*gyy.in_exp*(1./sy));
    delta_w = (float)(gw.temp*gw.in_exp*(1./sw));
    delta_h = (float)(gh.temp*gh.in_exp*(1./sh));

    /* temp*(in_exp_2/sigma - 1./(sigma + 0.3)): float quotient, double difference */
    delta_ux = (float)(gx.temp*(gx.in_exp_2/sx - 1./(sx + sigma_const)));
    delta_uy = (float)(gyy.temp*(gyy.in_exp_2/sy - 1./(sy + sigma_const)));
    delta_uw = (float)(gw.temp*(gw.in_exp_2/sw - 1./(sw + sigma_const)));
    delta_uh = (float)(gh.temp*(gh.in_exp_2/sh - 1./(sh + sigma_const)));
    if (l->flavor == AB_FLAVOR_HANKAI) {
        /* HANK-G(4), (5): 1.0f, so every step in float */
        delta_x = gx.temp*gx.in_exp*(1.0f/sx);
        delta_y = gyy.temp*gyy.in_exp*(1.0f/sy);
        delta_w = gw.temp*gw.in_exp*(1.0f/sw);
        delta_h = gh.temp*gh.in_exp*(1.0f/sh);
        delta_ux = gx.temp*(gx.in_exp_2/sx - 1.0f/(sx + sigma_const));
        delta_uy = gyy.temp*(gyy.in_exp_2/sy - 1.0f/(sy + sigma_const));
        delta_uw = gw.temp*(gw.in_exp_2/sw - 1.0f/(sw + sigma_const));
        delta_uh = gh.temp*(gh.in_exp_2/sh - 1.0f/(sh + sigma_const));
    }

    if (l->iou_loss != AB_MSE) {
        const dxrep g = ab_dx_box_iou_fl(pred, truth, l->iou_loss, l->flavor);  /* HANK-G(7) */
        /* upstream's "jacobian^t": dx = dt, dy = db, dw = dl, dh = dr */
        float gdx = g.dt, gdy = g.db, gdw = g.dl, gdh = g.dr;
        iou = giou_v;  /* every IoU-family loss returns GIoU */
        if (l->yolo_point == AB_YOLO_LEFT_TOP) {
            gdx = gdx - gdw/2;
            gdy = gdy - gdh/2;
        } else if (l->yolo_point == AB_YOLO_RIGHT_BOTTOM) {
            gdx = gdx + gdw/2;
            gdy = gdy + gdh/2;
        }
        /* the chain rule through exp for w, h only */
        if (l->flavor == AB_FLAVOR_HANKAI) {
            gdw *= expf(x[index + 4*stride]);  /* HANK-G(6) */
            gdh *= expf(x[index + 6*stride]);
        } else {
            gdw = (float)(gdw*exp(x[index + 4*stride]));
            gdh = (float)(gdh*exp(x[index + 6*stride]));
        }
        delta_x = gdx;
        delta_y = gdy;
        delta_w = gdw;
        delta_h = gdh;
    }

    delta_x *= iou_normalizer;
    delta_y *= iou_normalizer;
    delta_w *= iou_normalizer;
    delta_h *= iou_normalizer;

    delta_ux *= l->uc_normalizer;
    delta_uy *= l->uc_normalizer;
    delta_uw *= l->uc_normalizer;
    delta_uh *= l->uc_normalizer;

    delta_x = ab_fix_nan_inf(delta_x);
    delta_y = ab_fix_nan_inf(delta_y);
    delta_w = ab_fix_nan_inf(delta_w);
    delta_h = ab_fix_nan_inf(delta_h);
    delta_ux = ab_fix_nan_inf(delta_ux);
    delta_uy = ab_fix_nan_inf(delta_uy);
    delta_uw = ab_fix_nan_inf(delta_uw);
    delta_uh = ab_fix_nan_inf(delta_uh);

    if (l->max_delta != FLT_MAX) {
        delta_x = ab_clip_value(delta_x, l->max_delta);
        delta_y = ab_clip_value(delta_y, l->max_delta);
        delta_w = ab_clip_value(delta_w, l->max_delta);
        delta_h = ab_clip_value(delta_h, l->max_delta);
        delta_ux = ab_clip_value(delta_ux, l->max_delta);
        delta_uy = ab_clip_value(delta_uy, l->max_delta);
        delta_uw = ab_clip_value(delta_uw, l->max_delta);
        delta_uh = ab_clip_value(delta_uh, l->max_delta);
    }

    delta[index + 0*stride] += delta_x;
    delta[index + 2*stride] += delta_y;
    delta[index + 4*stride] += delta_w;
    delta[index + 6*stride] += delta_h;
    delta[index + 1*stride] += delta_ux;
    delta[index + 3*stride] += delta_uy;
    delta[index + 5*stride] += delta_uw;
    delta[index + 7*stride] += delta_uh;
    return iou;
}

/* delta_gaussian_yolo_class.  The duplicate-hit test reads delta[index],
 * the *first* class's delta (AlexeyAB's [yolo] reads the target class's);
 * then only the target class is set, times its multiplier but not
 * cls_normalizer.  No finiteness test on the result. */
static void delta_gaussian_class(const ab_gaussian_yolo_layer *l, int index, int class_id, int stride,
                                 float *avg_cat)
{
    const float *output = l->output;
    float *delta = l->delta;
    const float eps = l->label_smooth_eps;
    int n;
    if (delta[index]) {
        float y_true = 1;
        if (eps && l->flavor == AB_FLAVOR_HANKAI) {
            y_true = y_true*(1 - eps) + 0.5f*eps;  /* HANK-G(8): float */
        } else if (eps) {
            y_true = y_true*(1 - eps) + 0.5*eps;  /* float product, double sum, rounded */
        }
        delta[index + stride*class_id] = y_true - output[index + stride*class_id];
        if (l->classes_multipliers) delta[index + stride*class_id] *= l->classes_multipliers[class_id];
        if (avg_cat) *avg_cat += output[index + stride*class_id];
        return;
    }
    for (n = 0; n < l->classes; ++n) {
        float y_true = ((n == class_id) ? 1 : 0);
        if (eps) y_true = y_true*(1 - eps) + 0.5*eps;
        delta[index + stride*n] = y_true - output[index + stride*n];
        if (l->classes_multipliers && n == class_id) {
            delta[index + stride*class_id] *= l->classes_multipliers[class_id]*l->cls_normalizer;
        }
        if (n == class_id && avg_cat) *avg_cat += output[index + stride*n];
    }
}


static int mapped(const ab_gaussian_yolo_layer *l, int class_id)
{
    return l->map ? l->map[class_id] : class_id;
}

/* averages_gaussian_yolo_deltas: the eight box deltas over the number of
 * classes with a positive delta (ab_internal.h). */
static void average_cell(const ab_gaussian_yolo_layer *l, int class_index, int box_index, int stride)
{
    ab_average_box_deltas(l->delta, class_index, box_index, stride, l->classes, 8);
}

/* ---- the forward ------------------------------------------------------------- */

typedef struct gy_sums {
    float avg_iou, recall, recall75, avg_cat, avg_obj, avg_anyobj;
    int count, class_count;
} gy_sums;

static void activate_image(const ab_gaussian_yolo_layer *l, int b)
{
    const int wh = l->w*l->h;
    /* scal_add_cpu(wh, scale_x_y, -0.5*(scale_x_y - 1), ...): BETA is a
     * float parameter, so the double product is rounded once. */
    const float alpha = l->scale_x_y;
    const float beta = (float)(-0.5*(l->scale_x_y - 1));
    int n, k;
    for (n = 0; n < l->n; ++n) {
        float *p = l->output + gindex(l, b, n, 0, 0);
        /* x and sigma_x, then x scaled */
        for (k = 0; k < 2*wh; ++k) p[k] = ab_logistic_activate(p[k]);
        for (k = 0; k < wh; ++k) p[k] = p[k]*alpha + beta;
        /* y and sigma_y, then y scaled */
        for (k = 2*wh; k < 4*wh; ++k) p[k] = ab_logistic_activate(p[k]);
        for (k = 2*wh; k < 3*wh; ++k) p[k] = p[k]*alpha + beta;
        /* sigma_w, sigma_h; w and h stay raw */
        for (k = 5*wh; k < 6*wh; ++k) p[k] = ab_logistic_activate(p[k]);
        for (k = 7*wh; k < 8*wh; ++k) p[k] = ab_logistic_activate(p[k]);
        /* objectness and classes */
        for (k = 8*wh; k < (GY_ENTRIES + l->classes)*wh; ++k) p[k] = ab_logistic_activate(p[k]);
    }
}

/* Loop 1 for cell (i, j), anchor n of image b. */
static void ignore_cell(const ab_gaussian_yolo_layer *l, const ab_network_state *st, int b, int n, int i, int j,
                        gy_sums *s)
{
    const int stride = l->w*l->h;
    const int loc = j*l->w + i;
    const int class_index = gindex(l, b, n, loc, 9);
    const int obj_index = gindex(l, b, n, loc, 8);
    const int box_index = gindex(l, b, n, loc, 0);
    const float *truths = st->truth + (size_t)b*l->truths;
    const float *output = l->output;
    float *delta = l->delta;
    const box pred = gaussian_box(output, l->biases, l->mask[n], box_index, i, j, l->w, l->h,
                                  st->net_w, st->net_h, stride, l->yolo_point, l->flavor);
    float best_match_iou = 0;
    int best_match_t = 0;
    float best_iou = 0;
    int best_t = 0;
    int class_id_match = -1;  /* compare_gaussian_yolo_class: the same for every truth */
    int t;
    for (t = 0; t < l->max_boxes; ++t) {
        const float *row = truths + t*AB_TRUTH_SIZE;
        const int class_id = (int)row[4];
        float iou;
        /* skipped (upstream prints two warning lines) before the x == 0 test */
        if (class_id >= l->classes) continue;
        if (!row[0]) break;
        if (class_id_match < 0) class_id_match = ab_compare_class(output, l->classes, class_index, stride, 0.25f);
        iou = ab_box_iou_fl(pred, ab_row_box(row), l->flavor);  /* HANK-G(7) */
        if (iou > best_match_iou && class_id_match == 1) {
            best_match_iou = iou;
            best_match_t = t;
        }
        if (iou > best_iou) {
            best_iou = iou;
            best_t = t;
        }
    }

    s->avg_anyobj += output[obj_index];
    delta[obj_index] = l->obj_normalizer*(0 - output[obj_index]);
    if (best_match_iou > l->ignore_thresh) {
        const float iou_multiplier = best_match_iou*best_match_iou;
        if (l->objectness_smooth) {
            const int class_id = mapped(l, (int)truths[best_match_t*AB_TRUTH_SIZE + 4]);
            delta[obj_index] = l->obj_normalizer*(iou_multiplier - output[obj_index]);
            delta_gaussian_class(l, class_index, class_id, stride, NULL);
        } else {
            delta[obj_index] = 0;
        }
    }
    /* (upstream's net.adversarial branch: off in training, not reproduced) */
    if (best_iou > l->truth_thresh) {
        const float iou_multiplier = best_iou*best_iou;
        const float *row = truths + best_t*AB_TRUTH_SIZE;
        const int class_id = mapped(l, (int)row[4]);
        float class_multiplier;
        box truth;
        if (l->objectness_smooth) delta[obj_index] = l->obj_normalizer*(iou_multiplier - output[obj_index]);
        else delta[obj_index] = l->obj_normalizer*(1 - output[obj_index]);
        delta_gaussian_class(l, class_index, class_id, stride, NULL);
        class_multiplier = l->classes_multipliers ? l->classes_multipliers[class_id] : 1.0f;
        if (l->objectness_smooth) {
            delta[class_index + stride*class_id] = class_multiplier*(iou_multiplier - output[class_index + stride*class_id]);
        }
        truth = ab_row_box(row);
        delta_gaussian_box(l, truth, l->mask[n], box_index, i, j, st->net_w, st->net_h, (2 - truth.w*truth.h),
                           l->iou_normalizer*class_multiplier);
    }
}

/* One assignment of loop 2 (best anchor or iou_thresh extra): box, then
 * objectness, then class deltas, and the statistics. */
static void assign(const ab_gaussian_yolo_layer *l, const ab_network_state *st, int b, box truth, int class_id,
                   int anchor, int mask_n, int i, int j, gy_sums *s)
{
    const int stride = l->w*l->h;
    const int loc = j*l->w + i;
    const int box_index = gindex(l, b, mask_n, loc, 0);
    const int obj_index = gindex(l, b, mask_n, loc, 8);
    const int class_index = gindex(l, b, mask_n, loc, 9);
    const float class_multiplier = l->classes_multipliers ? l->classes_multipliers[class_id] : 1.0f;
    const float iou = delta_gaussian_box(l, truth, anchor, box_index, i, j, st->net_w, st->net_h,
                                         (2 - truth.w*truth.h), l->iou_normalizer*class_multiplier);
    s->avg_obj += l->output[obj_index];
    l->delta[obj_index] = class_multiplier*l->obj_normalizer*(1 - l->output[obj_index]);
    delta_gaussian_class(l, class_index, class_id, stride, &s->avg_cat);
    ++s->count;
    ++s->class_count;
    if (iou > .5) s->recall += 1;
    if (iou > .75) s->recall75 += 1;
    s->avg_iou += iou;
}

static void truth_loop(const ab_gaussian_yolo_layer *l, const ab_network_state *st, int b, gy_sums *s)
{
    const float *truths = st->truth + (size_t)b*l->truths;
    int t, n;
    for (t = 0; t < l->max_boxes; ++t) {
        const float *row = truths + t*AB_TRUTH_SIZE;
        const box truth = ab_row_box(row);
        box truth_shift;
        int best_n, mask_n, i, j;
        if (!truth.x) break;
        truth_cell(l, truth, &i, &j);
        best_n = best_anchor(l, truth, st->net_w, st->net_h);
        truth_shift = truth;
        truth_shift.x = truth_shift.y = 0;
        mask_n = int_index(l->mask, best_n, l->n);
        if (mask_n >= 0) assign(l, st, b, truth, mapped(l, (int)row[4]), best_n, mask_n, i, j, s);
        /* iou_thresh: every other anchor of the mask whose centred IoU of
         * the chosen kind beats it (the test iou_thresh < 1 sits inside the
         * anchor loop upstream; it does not change there) */
        for (n = 0; n < l->total; ++n) {
            const int extra_n = int_index(l->mask, n, l->n);
            if (extra_n >= 0 && n != best_n && l->iou_thresh < 1.0f &&
                ab_anchor_iou_kind(l->biases, n, truth_shift, st->net_w, st->net_h, l->iou_thresh_kind,
                                   l->flavor) >
                    l->iou_thresh) {
                assign(l, st, b, truth, mapped(l, (int)row[4]), n, extra_n, i, j, s);
            }
        }
    }
}

/* Upstream copies delta twice, zeroes the eight box entries of every cell in
 * one copy and w, sigma_w, h, sigma_h in the other, and takes mag_array of
 * both and of delta; the three sums of squares run here in one pass in
 * index order (+0 squares add nothing to a sum that started at +0; each sum
 * keeps its own NaN, as mag_array's sum += a*a does in upstream's build). */
static void finish(const ab_gaussian_yolo_layer *l, const gy_sums *s)
{
    const int wh = l->w*l->h;
    const int per_anchor = (GY_ENTRIES + l->classes)*wh;
    float sum_all = 0, sum_exc_uc = 0, sum_cls = 0;
    float class_loss, except_uc_loss, loss, uc_loss, iou_loss;
    int b, n, k;
    for (b = 0; b < l->batch; ++b) {
        for (n = 0; n < l->n; ++n) {
            const float *d = l->delta + gindex(l, b, n, 0, 0);
            for (k = 0; k < per_anchor; ++k) {
                const float sq = d[k]*d[k];
                const int e = k/wh;
                sum_all = dn_add_acc(sum_all, sq);
                if (e < 4 || e >= 8) sum_exc_uc = dn_add_acc(sum_exc_uc, sq);
                if (e >= 8) sum_cls = dn_add_acc(sum_cls, sq);
            }
        }
    }
    /* pow(mag_array(.), 2): sqrt in double returned as float, squared in double */
    class_loss = (float)pow((float)sqrt(sum_cls), 2);
    except_uc_loss = (float)pow((float)sqrt(sum_exc_uc), 2);
    *(l->cost) = (float)pow((float)sqrt(sum_all), 2);
    loss = (float)pow((float)sqrt(sum_all), 2);
    uc_loss = loss - except_uc_loss;
    iou_loss = except_uc_loss - class_loss;
    loss /= l->batch;
    class_loss /= l->batch;
    uc_loss /= l->batch;
    iou_loss /= l->batch;
    if (!l->stats) return;
    /* float/int in float; 0/0 is NaN as upstream prints it */
    l->stats->avg_iou = s->avg_iou/s->count;
    l->stats->avg_cat = s->avg_cat/s->class_count;
    l->stats->avg_obj = s->avg_obj/s->count;
    l->stats->avg_anyobj = s->avg_anyobj/(l->w*l->h*l->n*l->batch);
    l->stats->recall = s->recall/s->count;
    l->stats->recall75 = s->recall75/s->count;
    l->stats->count = s->count;
    l->stats->class_count = s->class_count;
    l->stats->class_loss = class_loss;
    l->stats->iou_loss = iou_loss;
    l->stats->uc_loss = uc_loss;
    l->stats->total_loss = loss;
}

int ab_forward_gaussian_yolo_layer(const ab_gaussian_yolo_layer l, ab_network_state state)
{
    gy_sums s;
    int b, i, j, n, err;
    err = ab_check_gaussian_yolo_layer(&l);
    if (err != DN_OK || !state.input) return DN_E_LAYER;
    if (state.train) {
        err = ab_check_gaussian_yolo_truths(&l, state, NULL, NULL);
        if (err != DN_OK) return err;
    }
    memcpy(l.output, state.input, (size_t)l.outputs*l.batch*sizeof(float));
    for (b = 0; b < l.batch; ++b) activate_image(&l, b);
    memset(l.delta, 0, (size_t)l.outputs*l.batch*sizeof(float));
    if (!state.train) return DN_OK;
    memset(&s, 0, sizeof s);
    *(l.cost) = 0;
    for (b = 0; b < l.batch; ++b) {
        /* loop 1: every cell and anchor, in the order j, i, n */
        for (j = 0; j < l.h; ++j) {
            for (i = 0; i < l.w; ++i) {
                for (n = 0; n < l.n; ++n) ignore_cell(&l, &state, b, n, i, j, &s);
            }
        }
        /* loop 2: every truth up to the first x == 0 */
        truth_loop(&l, &state, b, &s);
        /* then every cell's box deltas averaged, whatever iou_thresh is */
        for (j = 0; j < l.h; ++j) {
            for (i = 0; i < l.w; ++i) {
                for (n = 0; n < l.n; ++n) {
                    const int loc = j*l.w + i;
                    average_cell(&l, gindex(&l, b, n, loc, 9), gindex(&l, b, n, loc, 0), l.w*l.h);
                }
            }
        }
    }
    finish(&l, &s);
    return DN_OK;
}

/* ---- detections -------------------------------------------------------------- */

/* correct_gaussian_yolo_boxes: the letterbox (or plain) correction into
 * image coordinates, relative or in pixels. */
static void correct_gaussian_boxes(detection *dets, int n, int w, int h, int netw, int neth, int relative, int letter)
{
    int i;
    int new_w = 0, new_h = 0;
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
    for (i = 0; i < n; ++i) {
        box b = dets[i].bbox;
        /* (netw - new_w)/2./netw in double; the quotient's divisor in float */
        b.x = (float)((b.x - (netw - new_w)/2./netw)/((float)new_w/netw));
        b.y = (float)((b.y - (neth - new_h)/2./neth)/((float)new_h/neth));
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

int ab_get_gaussian_yolo_detections(const ab_gaussian_yolo_layer l, int w, int h, int netw, int neth, float thresh,
                                    int relative, int letter, detection *dets, float *uc)
{
    const float *predictions = l.output;
    const int wh = l.w*l.h;
    int i, j, n, count = 0;
    if (ab_check_gaussian_yolo_layer(&l) != DN_OK || !dets || !uc || w < 1 || h < 1 || netw < 1 || neth < 1) {
        return DN_E_LAYER;
    }
    for (i = 0; i < wh; ++i) {
        const int row = i/l.w;
        const int col = i % l.w;
        for (n = 0; n < l.n; ++n) {
            const float objectness = predictions[gindex(&l, 0, n, i, 8)];
            float *u = uc + 4*count;
            float uc_aver;
            if (objectness <= thresh) continue;  /* a NaN objectness passes (upstream notes it) */
            dets[count].bbox = ab_get_gaussian_yolo_box(predictions, l.biases, l.mask[n], gindex(&l, 0, n, i, 0),
                                                        col, row, l.w, l.h, netw, neth, wh, l.yolo_point);
            dets[count].objectness = objectness;
            dets[count].classes = l.classes;
            u[0] = predictions[gindex(&l, 0, n, i, 1)];
            u[1] = predictions[gindex(&l, 0, n, i, 3)];
            u[2] = predictions[gindex(&l, 0, n, i, 5)];
            u[3] = predictions[gindex(&l, 0, n, i, 7)];
            /* the float sum over 4.0 in double, rounded, as upstream
             * recomputes it for every class */
            uc_aver = (float)((u[0] + u[1] + u[2] + u[3])/4.0);
            for (j = 0; j < l.classes; ++j) {
                const float prob = (float)(objectness*predictions[gindex(&l, 0, n, i, 9 + j)]*(1.0 - uc_aver));
                dets[count].prob[j] = (prob > thresh) ? prob : 0;
            }
            ++count;
        }
    }
    correct_gaussian_boxes(dets, count, w, h, netw, neth, relative, letter);
    return count;
}
