/*
 * utils.c -- the two helpers of darknet's src/utils.c the loss layers use.
 */
#include <math.h>

#include "darknet_loss.h"

/* Euclidean norm: float squares summed in float, in index order, then sqrt in
 * double rounded to float.  The layers' cost is pow(mag_array(delta), 2). */
float mag_array(const float *a, int n)
{
    int i;
    float sum = 0;
    for (i = 0; i < n; ++i) {
        sum += a[i]*a[i];
    }
    return (float)sqrt((double)sum);
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
