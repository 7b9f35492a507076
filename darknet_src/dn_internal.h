/*
 * dn_internal.h -- helpers shared by the layer files; not part of the API.
 */
#ifndef DN_INTERNAL_H
#define DN_INTERNAL_H

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

#endif
