/*
 * ab_record.c -- what AlexeyAB's [yolo] forward decided, for the parity
 * toolkit's diagnosis (darknet_loss.h, ab_loss_record).  It replays the
 * decisions of upstream 59596d7's process_batch (src/yolo_layer.c) on the
 * output a training forward has just computed, with the same functions
 * (ab_box.c, ab_internal.h) and the layer's flavor; it writes no delta.
 */
#include <stddef.h>
#include "darknet_loss.h"
#include "ab_internal.h"

/* (int) of a truth column: a C conversion, as upstream's int class_id = ... */
static int column_int(const float *row, int col)
{
    return (int)row[col];
}

int ab_record_yolo_layer(const ab_yolo_layer *l, const ab_network_state *st, ab_loss_record rec)
{
    const int wh = l->w*l->h;
    const int per_anchor = wh*(4 + 1 + l->classes);
    int b, t, n, i, j, k;
    if (ab_check_yolo_layer(l) != DN_OK || !l->output || !st->truth) return DN_E_LAYER;
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
            if (mask_n >= 0) rec.writes[cells + (size_t)mask_n*wh + j*l->w + i]++;
            if (l->iou_thresh < 1.0f) {
                for (n = 0; n < l->total; ++n) {
                    const int extra_n = int_index(l->mask, n, l->n);
                    if (extra_n >= 0 && n != best_n &&
                        ab_anchor_iou_kind(l->biases, n, truth_shift, st->net_w, st->net_h, l->iou_thresh_kind,
                                           l->flavor) > l->iou_thresh) {
                        rec.extra[(rows + t)*l->n + extra_n] = 1;
                        rec.writes[cells + (size_t)extra_n*wh + j*l->w + i]++;
                    }
                }
            }
        }
    }
    return DN_OK;
}
