/*
 * ab_internal.h -- arithmetic shared by AlexeyAB's loss layers
 * (ab_yolo_layer.c, ab_gaussian_yolo_layer.c); not part of the API.
 * Upstream 59596d7 has each of these as a static function in both
 * src/yolo_layer.c and src/gaussian_yolo_layer.c, with the same body.
 */
#ifndef AB_INTERNAL_H
#define AB_INTERNAL_H

#include <math.h>

#include "darknet_loss.h"

/* fix_nan_inf: a NaN or an infinity becomes 0. */
static inline float ab_fix_nan_inf(float v)
{
    if (isnan(v) || isinf(v)) v = 0;
    return v;
}

/* clip_value: clamp to [-max_val, max_val] (a NaN passes through). */
static inline float ab_clip_value(float v, const float max_val)
{
    if (v > max_val) v = max_val;
    else if (v < -max_val) v = -max_val;
    return v;
}

/* (int)v is defined only when v truncates into an int. */
static inline int ab_int_convertible(float v)
{
    return v > -2147483649.0 && v < 2147483648.0;
}

/* A truth row's x, y, w, h (float_to_box_stride(row, 1)). */
static inline box ab_row_box(const float *row)
{
    box b;
    b.x = row[0];
    b.y = row[1];
    b.w = row[2];
    b.h = row[3];
    return b;
}

/* A size that fits a C int (and is not negative). */
static inline int ab_fits_int(long long v)
{
    return v >= 0 && v <= 2147483647LL;
}

/* The sizes make_yolo_layer / make_gaussian_yolo_layer / make_region_layer
 * derive: c = n*entries channels, outputs = c*w*h floats per image, truths =
 * max_boxes*AB_TRUTH_SIZE floats per image.  DN_OK, or DN_E_LAYER when one of
 * them, or it times batch, does not fit an int (nothing is written then). */
static inline int ab_layer_sizes(int batch, int w, int h, int n, int entries, int max_boxes, int *c, int *outputs,
                                 int *truths)
{
    const long long cc = (long long)n*entries, out = cc*w*h, tr = (long long)max_boxes*AB_TRUTH_SIZE;
    if (!ab_fits_int(cc) || !ab_fits_int(out) || !ab_fits_int(out*batch)) return DN_E_LAYER;
    if (!ab_fits_int(tr) || !ab_fits_int(tr*batch)) return DN_E_LAYER;
    *c = (int)cc;
    *outputs = (int)out;
    *truths = (int)tr;
    return DN_OK;
}

/* A class id that indexes (after truncation): in [0, classes), then inside
 * the map (map_len entries) and mapped into [0, classes).  DN_OK,
 * DN_E_TRUTH_CLASS or DN_E_MAP_INDEX. */
static inline int ab_check_class(int cls, int classes, const int *map, int map_len)
{
    if (cls < 0 || cls >= classes) return DN_E_TRUTH_CLASS;
    if (map) {
        if (cls >= map_len) return DN_E_MAP_INDEX;
        cls = map[cls];
        if (cls < 0 || cls >= classes) return DN_E_TRUTH_CLASS;
    }
    return DN_OK;
}

/* compare_yolo_class / compare_gaussian_yolo_class: does the cell have any
 * class probability above conf_thresh (0.25f)?  Upstream passes objectness
 * and the truth's class id and reads neither. */
static inline int ab_compare_class(const float *output, int classes, int class_index, int stride, float conf_thresh)
{
    int k;
    for (k = 0; k < classes; ++k) {
        if (output[class_index + stride*k] > conf_thresh) return 1;
    }
    return 0;
}

/* averages_yolo_deltas / averages_gaussian_yolo_deltas: divide a cell's
 * `entries` box deltas (4 for [yolo], 8 for [Gaussian_yolo]) by its number
 * of classes with a positive delta, when there are any. */
static inline void ab_average_box_deltas(float *delta, int class_index, int box_index, int stride, int classes,
                                         int entries)
{
    int k, classes_in_one_box = 0;
    for (k = 0; k < classes; ++k) {
        if (delta[class_index + stride*k] > 0) classes_in_one_box++;
    }
    if (classes_in_one_box > 0) {
        for (k = 0; k < entries; ++k) delta[box_index + k*stride] /= classes_in_one_box;
    }
}

/* The truth loop's best anchor: of all `total` anchors (biases, w/h pairs),
 * the first with the largest IoU of the centred boxes (anchor over the
 * network size, in float), 0 when none overlaps; `flavor`: whose box_iou
 * (AB_FLAVOR_*: hank-ai's differs, see darknet_loss.h). */
static inline int ab_best_anchor(const float *biases, int total, box truth, int net_w, int net_h, int flavor)
{
    box truth_shift = truth;
    float best_iou = 0;
    int best_n = 0, n;
    truth_shift.x = truth_shift.y = 0;
    for (n = 0; n < total; ++n) {
        box pred = {0, 0, 0, 0};
        float iou;
        pred.w = biases[2*n]/net_w;
        pred.h = biases[2*n + 1]/net_h;
        iou = ab_box_iou_fl(pred, truth_shift, flavor);
        if (iou > best_iou) {
            best_iou = iou;
            best_n = n;
        }
    }
    return best_n;
}

/* The iou_thresh test's IoU of kind `kind` (AB_IOU, AB_GIOU, AB_DIOU,
 * AB_CIOU) between anchor n, centred, over the network size, and the
 * centred truth. */
static inline float ab_anchor_iou_kind(const float *biases, int n, box truth_shift, int net_w, int net_h, int kind,
                                       int flavor)
{
    box pred = {0, 0, 0, 0};
    pred.w = biases[2*n]/net_w;
    pred.h = biases[2*n + 1]/net_h;
    return ab_box_iou_kind_fl(pred, truth_shift, kind, flavor);
}

#endif
