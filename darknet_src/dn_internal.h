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

#endif
