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

#endif
