/*
 * record.c -- what a training forward decided, recorded for the parity
 * toolkit's diagnosis: which truth each cell's ignore test saw, which anchor
 * each truth went to, and what an implementation that reads more of the
 * truth list, or picks anchors among the mask alone, would have seen.
 *
 * It reruns the decisions of forward_yolo_layer / forward_region_layer with
 * the same arithmetic (get_yolo_box, box_iou, the same loops, ties and NaN
 * handling) on the output a forward pass has just left in l.output.  It
 * writes no delta and changes nothing the forward computed.
 */
#include <math.h>
#include <string.h>

#include "dn_fast.h"

/* A row upstream does not read, but that an implementation reading on
 * would take for a box: finite, positive size, its cell inside the grid. */
static int box_like(const layer *l, const float *row)
{
    int k;
    float fx, fy;
    for (k = 0; k < 4; ++k) {
        if (!isfinite(row[k])) return 0;
    }
    if (!(row[2] > 0 && row[3] > 0)) return 0;
    fx = row[0]*l->w;
    fy = row[1]*l->h;
    return fx > -1 && fx < l->w && fy > -1 && fy < l->h;
}

/* Whether box_intersection(a, b) is 0 because the boxes do not overlap
 * along x or y: the same overlap() it calls, so the test is exact.  Their
 * IoU is then 0/union, 0 or NaN, and neither beats a best that starts at 0
 * under the ignore loop's '>' (upstream's), so the division can be skipped. */
static int apart(box a, box b)
{
    return overlap(a.x, a.w, b.x, b.w) < 0 || overlap(a.y, a.h, b.y, b.h) < 0;
}

/* Which rows of one image upstream reads (DN_ROW_*). */
static void row_statuses(const layer *l, const float *truths, int rows, int cols, int *status)
{
    int t, state = DN_ROW_READ;
    int limit = l->type == DN_YOLO ? l->max_boxes : rows;
    for (t = 0; t < rows; ++t) {
        const float *row = truths + t*cols;
        if (state == DN_ROW_READ && !row[0]) {
            status[t] = DN_ROW_TERMINATOR;
            state = DN_ROW_AFTER;
            continue;
        }
        if (state == DN_ROW_READ && t >= limit) state = DN_ROW_BEYOND_MAX;
        status[t] = state;
    }
}

/* The best anchor of loop 2 for a [yolo] truth: over all `total` anchors by
 * the IoU of centred boxes, first strict maximum from 0 (so NaN never wins
 * and no overlap leaves anchor 0); and the same among the mask's anchors. */
static void yolo_best_anchor(const layer *l, const network *net, box truth, int *best_n, int *best_k)
{
    int n;
    float best = 0, best_m = 0;
    box shift = truth;
    shift.x = shift.y = 0;
    *best_n = 0;
    *best_k = 0;
    for (n = 0; n < l->total; ++n) {
        box pred = {0, 0, 0, 0};
        float iou;
        pred.w = l->biases[2*n]/net->w;
        pred.h = l->biases[2*n + 1]/net->h;
        iou = box_iou(pred, shift);
        if (iou > best) {
            best = iou;
            *best_n = n;
        }
    }
    for (n = 0; n < l->n; ++n) {
        box pred = {0, 0, 0, 0};
        float iou;
        pred.w = l->biases[2*l->mask[n]]/net->w;
        pred.h = l->biases[2*l->mask[n] + 1]/net->h;
        iou = box_iou(pred, shift);
        if (iou > best_m) {
            best_m = iou;
            *best_k = n;
        }
    }
}

/* [region]'s loop 2: the anchor whose box at the truth's cell (or, with
 * bias_match, whose anchor shape) best matches the truth's shape. */
static int region_best_anchor(const layer *l, box truth, int i, int j, int b)
{
    const int wh = l->w*l->h;
    int n, best_n = 0;
    float best = 0;
    box shift = truth;
    shift.x = shift.y = 0;
    for (n = 0; n < l->n; ++n) {
        int bi = entry_index(l, b, n*wh + j*l->w + i, 0);
        box pred = get_region_box(l->output, l->biases, n, bi, i, j, l->w, l->h, wh);
        float iou;
        if (l->bias_match) {
            pred.w = l->biases[2*n]/l->w;
            pred.h = l->biases[2*n + 1]/l->h;
        }
        pred.x = pred.y = 0;
        iou = box_iou(pred, shift);
        if (iou > best) {
            best = iou;
            best_n = n;
        }
    }
    return best_n;
}

/* The ignore loop over one image as written: best IoU of every prediction
 * with the rows read, and with every box-like row (read or not). */
static void ignore_loop_reference(const layer *l, const network *net, const loss_record *rec, int b,
                                  const int *status, int used)
{
    const int wh = l->w*l->h;
    const int cols = l->coords + 1;
    const float *truths = net->truth + b*l->truths;
    int i, j, n, t;
    for (j = 0; j < l->h; ++j) {
        for (i = 0; i < l->w; ++i) {
            for (n = 0; n < l->n; ++n) {
                int box_index = entry_index(l, b, n*wh + j*l->w + i, 0);
                int cell = ((b*l->n + n)*l->h + j)*l->w + i;
                box pred = l->type == DN_YOLO
                    ? get_yolo_box(l->output, l->biases, l->mask[n], box_index, i, j, l->w, l->h, net->w, net->h, wh)
                    : get_region_box(l->output, l->biases, n, box_index, i, j, l->w, l->h, wh);
                float best = 0, best_ext = 0;
                int best_t = -1, best_t_ext = -1;
                for (t = 0; t < used; ++t) {
                    const float *row = truths + t*cols;
                    float iou;
                    if (status[t] != DN_ROW_READ && !box_like(l, row)) continue;
                    if (apart(pred, float_to_box(row, 1))) continue;  /* its IoU is 0 (or NaN): never a best */
                    iou = box_iou(pred, float_to_box(row, 1));
                    if (status[t] == DN_ROW_READ && iou > best) {
                        best = iou;
                        best_t = t;
                    }
                    if (iou > best_ext) {
                        best_ext = iou;
                        best_t_ext = t;
                    }
                }
                rec->best_iou[cell] = best;
                rec->best_truth[cell] = best_t;
                rec->best_iou_ext[cell] = best_ext;
                rec->best_truth_ext[cell] = best_t_ext;
            }
        }
    }
}

#define CHUNK 256  /* cells per batch of the fast kernels */

/* box_iou(pred, truth t) with the prediction given by its edges and area and
 * the truth's from ts (dn_truths_load: the same float operations overlap()
 * and box_union() apply to it), as fast.c's kernels compute it: overlap()'s
 * ternaries, box_intersection's test, box_union's sum in its order.  Returns
 * 0 where the boxes are apart along x or y (box_intersection is 0 there, and
 * the IoU 0 or NaN, never a best under '>'), else 1 with *iou set. */
static int iou_edges(const dn_truths *ts, int t, float l1, float r1, float t1, float b1, float area1, float *iou)
{
    const float left = l1 > ts->l[t] ? l1 : ts->l[t];
    const float right = r1 < ts->r[t] ? r1 : ts->r[t];
    const float top = t1 > ts->t[t] ? t1 : ts->t[t];
    const float bottom = b1 < ts->b[t] ? b1 : ts->b[t];
    const float w = right - left, h = bottom - top;
    float inter;
    if (w < 0 || h < 0) return 0;
    inter = w*h;
    *iou = inter/(area1 + ts->area[t] - inter);
    return 1;
}

/* [yolo]'s ignore loop over one image when every row it can use is read
 * (the rows read are a prefix of the list, ts's): the forward's fast path's
 * arithmetic (fast.c: get_yolo_box's w and h by dn_exp_box_impl, the best
 * IoU of each cell by dn_max_iou_impl, both the reference's bits), then,
 * only at a cell whose best is positive, the rows in order for the first
 * one that attains it (box_iou as the kernels compute it, iou_edges):
 * no later row beats it under upstream's '>', so that one is the
 * reference loop's row.  A cell whose best is 0 has no row:
 * -1, as the reference leaves it. */
static void ignore_loop_yolo_fast(const layer *l, const network *net, const loss_record *rec, int b, int impl)
{
    const int wh = l->w*l->h;
    dn_truths ts;
    int n, c0, k, t;
    dn_truths_load(&ts, net->truth + b*l->truths, 4 + 1, l->max_boxes);
    for (n = 0; n < l->n; ++n) {
        const float *out = l->output + entry_index(l, b, n*wh, 0);
        for (c0 = 0; c0 < wh; c0 += CHUNK) {
            float px[CHUNK], py[CHUNK], pw[CHUNK], ph[CHUNK], m[CHUNK];
            int count = wh - c0 < CHUNK ? wh - c0 : CHUNK;
            /* get_yolo_box: (i + x)/lw in float; w, h as exp(double)*bias/net size. */
            dn_exp_box_impl(out + 2*wh + c0, pw, count, l->biases[2*l->mask[n]], net->w, impl);
            dn_exp_box_impl(out + 3*wh + c0, ph, count, l->biases[2*l->mask[n] + 1], net->h, impl);
            for (k = 0; k < count; ++k) {
                int c = c0 + k;
                px[k] = (c % l->w + out[c]) / l->w;
                py[k] = (c / l->w + out[wh + c]) / l->h;
            }
            dn_max_iou_impl(&ts, px, py, pw, ph, count, m, impl);
            for (k = 0; k < count; ++k) {
                const int cell = (b*l->n + n)*wh + c0 + k;
                float best = 0;
                int best_t = -1;
                if (m[k] > 0) {
                    /* overlap()'s l1, r1 and box_union's a.w*a.h for the prediction */
                    const float l1 = px[k] - pw[k]/2, r1 = px[k] + pw[k]/2;
                    const float t1 = py[k] - ph[k]/2, b1 = py[k] + ph[k]/2;
                    const float area1 = pw[k]*ph[k];
                    for (t = 0; t < ts.n; ++t) {
                        float iou;
                        if (!iou_edges(&ts, t, l1, r1, t1, b1, area1, &iou)) continue;  /* apart: 0 (or NaN) */
                        if (iou > best) {
                            best = iou;
                            best_t = t;
                            if (best == m[k]) break;
                        }
                    }
                }
                rec->best_iou[cell] = rec->best_iou_ext[cell] = best;
                rec->best_truth[cell] = rec->best_truth_ext[cell] = best_t;
            }
        }
    }
}

typedef struct record_task {
    const layer *l;
    const network *net;
    const loss_record *rec;
    int impl;
} record_task;

/* Everything the record holds for image b (its own part of each array). */
static void record_image(void *ctx, int b)
{
    const record_task *task = (const record_task *)ctx;
    const layer *l = task->l;
    const network *net = task->net;
    const loss_record *rec = task->rec;
    const int wh = l->w*l->h;
    const int cols = l->coords + 1;
    const int rows = l->truths/cols;
    const float *truths = net->truth + b*l->truths;
    int *status = rec->row_status + b*rows;
    int used = 0;  /* one past the last row the ignore loop can use */
    int unread = 0;  /* a box-like row it uses that upstream does not read */
    int i, j, t;
    row_statuses(l, truths, rows, cols, status);
    /* Rows that are neither read nor box-like never enter the ignore
     * loop; padding after the last box is usually most of the list, so
     * the loop stops at the last row that counts (same rows, same order). */
    for (t = 0; t < rows; ++t) {
        if (status[t] == DN_ROW_READ) {
            used = t + 1;
        } else if (box_like(l, truths + t*cols)) {
            used = t + 1;
            unread = 1;
        }
    }
    if (l->type == DN_YOLO && task->impl != DN_IMPL_REFERENCE && !unread && l->max_boxes <= rows &&
        rows <= DN_TRUTH_PAD) {
        ignore_loop_yolo_fast(l, net, rec, b, task->impl);
    } else {
        ignore_loop_reference(l, net, rec, b, status, used);
    }

    /* Loop 2, for every row that is (or looks like) a box. */
    for (t = 0; t < rows; ++t) {
        const float *row = truths + t*cols;
        int r = b*rows + t;
        box truth;
        rec->best_anchor[r] = -1;
        rec->best_in_mask[r] = -1;
        rec->row_iou[r] = NAN;
        /* Rows upstream reads passed check_truths, so only a tree's
         * class-only row (and unread non-boxes) are skipped here. */
        if (!box_like(l, row)) continue;
        truth = float_to_box(row, 1);
        i = (int)(truth.x*l->w);
        j = (int)(truth.y*l->h);
        if (l->type == DN_YOLO) {
            int best_n, best_k, mask_n;
            yolo_best_anchor(l, net, truth, &best_n, &best_k);
            rec->best_anchor[r] = best_n;
            rec->best_in_mask[r] = best_k;
            mask_n = int_index(l->mask, best_n, l->n);
            if (mask_n >= 0) {
                int bi = entry_index(l, b, mask_n*wh + j*l->w + i, 0);
                box pred = get_yolo_box(l->output, l->biases, best_n, bi, i, j, l->w, l->h, net->w, net->h, wh);
                rec->row_iou[r] = box_iou(pred, truth);
            }
        } else {
            int best_n = region_best_anchor(l, truth, i, j, b);
            int bi = entry_index(l, b, best_n*wh + j*l->w + i, 0);
            box pred = get_region_box(l->output, l->biases, best_n, bi, i, j, l->w, l->h, wh);
            rec->best_anchor[r] = best_n;
            rec->best_in_mask[r] = best_n;
            rec->row_iou[r] = box_iou(pred, truth);
        }
    }
}

int record_loss_layer_opt(const layer l, network net, loss_record rec, int threads, int path)
{
    record_task task;
    if (check_layer(l) != DN_OK || !net.truth || !rec.row_status) return DN_E_LAYER;
    if (l.type == DN_YOLO && (net.w < 1 || net.h < 1)) return DN_E_LAYER;
    task.l = &l;
    task.net = &net;
    task.rec = &rec;
    task.impl = dn_resolve_path(path);
    dn_parallel_for(l.batch, threads, record_image, &task);
    return DN_OK;
}

int record_loss_layer(const layer l, network net, loss_record rec)
{
    return record_loss_layer_opt(l, net, rec, 1, DN_PATH_REFERENCE);
}
