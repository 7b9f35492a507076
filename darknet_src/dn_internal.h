/*
 * dn_internal.h -- helpers shared by the layer files; not part of the API.
 */
#ifndef DN_INTERNAL_H
#define DN_INTERNAL_H

#include <math.h>

#include "darknet_loss.h"

/* darknet's entry_index(): the offset of `entry` for the anchor and cell in
 * `location` (= anchor*w*h + row*w + col) of image `batch`.  Layout per image
 * is [anchor][entry][row][col] with coords+classes+1 entries per anchor. */
static inline int entry_index(const layer *l, int batch, int location, int entry)
{
    int n = location / (l->w*l->h);
    int loc = location % (l->w*l->h);
    return batch*l->outputs + n*l->w*l->h*(l->coords + l->classes + 1) + entry*l->w*l->h + loc;
}

/* A [region] tree label row that only carries a class (upstream's test is
 * truth.x > 100000 && truth.y > 100000). */
static inline int is_onlyclass_row(const float *row)
{
    return row[0] > 100000 && row[1] > 100000;
}

/* delta[i] = d, and when the layer records them, the target t and scale s
 * such that d = s*(t - v).  The delta expression itself stays at the call
 * site, in upstream's form. */
static inline void put_delta(const layer *l, int i, float d, float t, float s)
{
    l->delta[i] = d;
    if (l->target) {
        l->target[i] = t;
        l->target_scale[i] = s;
    }
}

/* An entry left without a term (upstream sets its delta to 0). */
static inline void clear_delta(const layer *l, int i)
{
    l->delta[i] = 0;
    if (l->target) l->target_scale[i] = NAN;
}

/* delta_yolo_box / delta_region_box (yolo_layer.c). */
float dn_delta_box(const layer *l, box truth, const float *x, const float *biases, int n, int index,
                   int i, int j, int lw, int lh, int w, int h, float scale, int stride);

/* The forward functions' prologue (checks.c): the layer of the right type,
 * and for training the truths, all checked before any buffer is touched. */
int dn_check_forward(const layer *l, const network *net, int type);

/* What a sum of statistics over a forward pass adds up to. */
typedef struct dn_sums {
    float avg_iou, recall, recall75, avg_cat, avg_obj, avg_anyobj;
    int count, class_count;
} dn_sums;

/* The forward functions' epilogue (utils.c): *l->cost = pow(mag_array(delta),
 * 2) and the printed statistics, divided as upstream divides them. */
void dn_finish_forward(const layer *l, const dn_sums *s);

/* Start of a training forward: no entry has a term yet. */
static inline void clear_targets(const layer *l)
{
    int i, n = l->outputs*l->batch;
    if (!l->target) return;
    for (i = 0; i < n; ++i) {
        l->target[i] = 0;
        l->target_scale[i] = NAN;
    }
}

/* Inserts `cell` into the ascending list cells[0 .. *n) unless it is there:
 * the fast paths' record of the cells a truth loop wrote, which the cost's
 * sum of squares then reads in index order. */
static inline void dn_add_cell(int *cells, int *n, int cell)
{
    int k = *n, m;
    while (k > 0 && cells[k - 1] > cell) --k;
    if (k > 0 && cells[k - 1] == cell) return;
    for (m = *n; m > k; --m) cells[m] = cells[m - 1];
    cells[k] = cell;
    ++*n;
}

#endif
