/*
 * box.c -- box geometry with darknet's float arithmetic (src/box.c).
 *
 * Every intermediate is a float: `w/2` divides a float by an int, so it stays
 * in float; only box_rmse goes through double (pow and sqrt).  The ternaries
 * in overlap() decide which operand wins when one is NaN, so they are kept in
 * upstream's exact form.
 */
#include <math.h>

#include "darknet_loss.h"

box float_to_box(const float *f, int stride)
{
    box b;
    b.x = f[0];
    b.y = f[1*stride];
    b.w = f[2*stride];
    b.h = f[3*stride];
    return b;
}

/* Length of the overlap of two 1-D intervals given by centre and width;
 * negative when they are apart. */
float overlap(float x1, float w1, float x2, float w2)
{
    float l1 = x1 - w1/2;
    float l2 = x2 - w2/2;
    float left = l1 > l2 ? l1 : l2;
    float r1 = x1 + w1/2;
    float r2 = x2 + w2/2;
    float right = r1 < r2 ? r1 : r2;
    return right - left;
}

float box_intersection(box a, box b)
{
    float w = overlap(a.x, a.w, b.x, b.w);
    float h = overlap(a.y, a.h, b.y, b.h);
    if (w < 0 || h < 0) return 0;
    return w*h;
}

float box_union(box a, box b)
{
    float i = box_intersection(a, b);
    return a.w*a.h + b.w*b.h - i;
}

/* 0/0 (two zero-area boxes) is NaN, and NaN compares false everywhere:
 * upstream relies on that without saying so. */
float box_iou(box a, box b)
{
    return box_intersection(a, b)/box_union(a, b);
}

/* Each difference is a float, squared and summed in double. */
float box_rmse(box a, box b)
{
    return (float)sqrt(pow(a.x - b.x, 2) +
                       pow(a.y - b.y, 2) +
                       pow(a.w - b.w, 2) +
                       pow(a.h - b.h, 2));
}

/* Row-wise helpers for callers holding n boxes as x, y, w, h rows. */
void box_iou_rows(const float *a, const float *b, int n, float *out)
{
    int i;
    for (i = 0; i < n; ++i) {
        out[i] = box_iou(float_to_box(a + 4*i, 1), float_to_box(b + 4*i, 1));
    }
}

void box_rmse_rows(const float *a, const float *b, int n, float *out)
{
    int i;
    for (i = 0; i < n; ++i) {
        out[i] = box_rmse(float_to_box(a + 4*i, 1), float_to_box(b + 4*i, 1));
    }
}
