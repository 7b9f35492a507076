/*
 * utils.c -- the two helpers of darknet's src/utils.c the loss layers use.
 */
#include <math.h>

#include "dn_fast.h"

/* Euclidean norm: float squares summed in float, in index order, then sqrt in
 * double rounded to float.  The layers' cost is pow(mag_array(delta), 2). */
float mag_array(const float *a, int n)
{
    return (float)sqrt((double)dn_sum_squares(a, n, 0));
}

/* mag_array's loop, continuing a running sum: sum + a[0]^2 + ... in order. */
float dn_sum_squares(const float *a, int n, float sum)
{
    int i;
    for (i = 0; i < n; ++i) {
        sum = dn_add_acc(sum, a[i]*a[i]);
    }
    return sum;
}

/* Index of the first a[i] == val, or -1. */
int int_index(const int *a, int val, int n)
{
    int i;
    for (i = 0; i < n; ++i) {
        if (a[i] == val) return i;
    }
    return -1;
}

void dn_finish_forward(const layer *l, const dn_sums *s)
{
    dn_finish_forward_sum(l, s, dn_sum_squares(l->delta, l->outputs*l->batch, 0));
}

/* As dn_finish_forward, given mag_array's sum of squares over the whole
 * batch (the fast paths add it up without reading entries known to be 0). */
void dn_finish_forward_sum(const layer *l, const dn_sums *s, float sumsq)
{
    /* pow(mag_array(delta), 2): sqrt in double rounded to float, then
     * pow(float, 2) in double, rounded back into the float cost. */
    *(l->cost) = (float)pow((double)(float)sqrt((double)sumsq), 2);
    if (!l->stats) return;
    /* The values upstream hands to printf: float sums divided by ints in
     * float, so a layer without truths gives 0/0 = NaN. */
    l->stats->avg_iou = s->avg_iou/s->count;
    l->stats->avg_cat = s->avg_cat/s->class_count;
    l->stats->avg_obj = s->avg_obj/s->count;
    l->stats->avg_anyobj = s->avg_anyobj/(l->w*l->h*l->n*l->batch);
    l->stats->recall = s->recall/s->count;
    l->stats->recall75 = l->type == DN_YOLO ? s->recall75/s->count : 0;
    l->stats->count = s->count;
    l->stats->class_count = s->class_count;
}
