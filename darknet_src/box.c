/*
 * box.c -- box geometry with darknet's float arithmetic, and non-maximum
 * suppression with glibc's sort order (src/box.c).
 *
 * Every intermediate is a float: `w/2` divides a float by an int, so it stays
 * in float; only box_rmse goes through double (pow and sqrt).  The ternaries
 * in overlap() decide which operand wins when one is NaN, so they are kept in
 * upstream's exact form.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "darknet_loss.h"
#include "dn_fast.h"

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
    return dn_mul_acc(w, h);  /* w*h, w's NaN first, as upstream's build multiplies */
}

float box_union(box a, box b)
{
    float i = box_intersection(a, b);
    /* a.w*a.h + b.w*b.h - i with the operand order of upstream's build
     * (objdump of its box.o): w before h, a's area before b's; it decides
     * which NaN survives, and so the sign of a NaN avg_iou it prints. */
    return dn_add_acc(dn_mul_acc(a.w, a.h), dn_mul_acc(b.w, b.h)) - i;
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

/* ---- non-maximum suppression ------------------------------------------------ */

/* darknet's comparator: descending by prob[sort_class], or by objectness
 * when sort_class < 0 (the second element's sort_class decides).  A NaN
 * difference compares equal. */
int nms_comparator(const void *pa, const void *pb)
{
    const detection *a = (const detection *)pa;
    const detection *b = (const detection *)pb;
    float diff = 0;
    if (b->sort_class >= 0) {
        diff = a->prob[b->sort_class] - b->prob[b->sort_class];
    } else {
        diff = a->objectness - b->objectness;
    }
    if (diff < 0) return 1;
    else if (diff > 0) return -1;
    return 0;
}

/* glibc 2.36 msort_with_tmp on indices: split n into n/2 and the rest, sort
 * both halves, merge taking the left element while cmp(left, right) <= 0.
 * With a comparator that is not a strict weak order (NaN), this exact
 * sequence of comparisons is what fixes the result. */
static void msort_idx(const detection *dets, int *b, int n, int *tmp)
{
    int n1, n2, *b1, *b2, *t = tmp;
    if (n <= 1) return;
    n1 = n/2;
    n2 = n - n1;
    b1 = b;
    b2 = b + n1;
    msort_idx(dets, b1, n1, tmp);
    msort_idx(dets, b2, n2, tmp);
    while (n1 > 0 && n2 > 0) {
        if (nms_comparator(&dets[*b1], &dets[*b2]) <= 0) {
            *t++ = *b1++;
            --n1;
        } else {
            *t++ = *b2++;
            --n2;
        }
    }
    if (n1 > 0) memcpy(t, b1, sizeof(int)*n1);
    memcpy(b, tmp, sizeof(int)*(n - n2));
}

typedef struct nms_scratch {
    int *idx, *tmp;
    detection *copy;
} nms_scratch;

static int scratch_alloc(nms_scratch *s, int n)
{
    size_t m = n > 0 ? (size_t)n : 1;
    s->idx = malloc(sizeof(int)*m);
    s->tmp = malloc(sizeof(int)*m);
    s->copy = malloc(sizeof(detection)*m);
    if (s->idx && s->tmp && s->copy) return 0;
    free(s->idx); free(s->tmp); free(s->copy);
    return -1;
}

static void scratch_free(nms_scratch *s)
{
    free(s->idx);
    free(s->tmp);
    free(s->copy);
}

static void sort_dets(detection *dets, int n, nms_scratch *s)
{
    int i;
    for (i = 0; i < n; ++i) s->idx[i] = i;
    msort_idx(dets, s->idx, n, s->tmp);
    for (i = 0; i < n; ++i) s->copy[i] = dets[s->idx[i]];
    memcpy(dets, s->copy, sizeof(detection)*n);
}

/* Zero-objectness entries are swapped to the end (which does not keep
 * their order); returns how many remain in front. */
static int drop_zero_objectness(detection *dets, int total)
{
    int i, k = total - 1;
    for (i = 0; i <= k; ++i) {
        if (dets[i].objectness == 0) {
            detection swap = dets[i];
            dets[i] = dets[k];
            dets[k] = swap;
            --k;
            --i;
        }
    }
    return k + 1;
}

int do_nms_obj(detection *dets, int total, int classes, float thresh)
{
    int i, j, k;
    nms_scratch s;
    if (scratch_alloc(&s, total)) return -1;
    total = drop_zero_objectness(dets, total);
    for (i = 0; i < total; ++i) dets[i].sort_class = -1;
    sort_dets(dets, total, &s);
    for (i = 0; i < total; ++i) {
        box a;
        if (dets[i].objectness == 0) continue;
        a = dets[i].bbox;
        for (j = i + 1; j < total; ++j) {
            if (dets[j].objectness == 0) continue;
            if (box_iou(a, dets[j].bbox) > thresh) {
                dets[j].objectness = 0;
                for (k = 0; k < classes; ++k) dets[j].prob[k] = 0;
            }
        }
    }
    scratch_free(&s);
    return 0;
}

int do_nms_sort(detection *dets, int total, int classes, float thresh)
{
    int i, j, k;
    nms_scratch s;
    if (scratch_alloc(&s, total)) return -1;
    total = drop_zero_objectness(dets, total);
    for (k = 0; k < classes; ++k) {
        for (i = 0; i < total; ++i) dets[i].sort_class = k;
        sort_dets(dets, total, &s);
        for (i = 0; i < total; ++i) {
            box a;
            if (dets[i].prob[k] == 0) continue;
            a = dets[i].bbox;
            for (j = i + 1; j < total; ++j) {
                if (box_iou(a, dets[j].bbox) > thresh) dets[j].prob[k] = 0;
            }
        }
    }
    scratch_free(&s);
    return 0;
}

void dets_from_arrays(detection *dets, int n, int classes, const float *bbox, const float *objectness,
                      float *prob, const int *sort_class, float *mask, int mask_n)
{
    int i;
    for (i = 0; i < n; ++i) {
        dets[i].bbox = float_to_box(bbox + 4*i, 1);
        dets[i].classes = classes;
        dets[i].prob = prob + (size_t)i*classes;
        dets[i].mask = mask ? mask + (size_t)i*mask_n : NULL;
        dets[i].objectness = objectness[i];
        dets[i].sort_class = sort_class ? sort_class[i] : 0;
    }
}

void dets_to_arrays(const detection *dets, int n, int classes, float *bbox, float *objectness,
                    float *prob, int *sort_class, int *order, const float *prob_base)
{
    int i, k;
    for (i = 0; i < n; ++i) {
        bbox[4*i + 0] = dets[i].bbox.x;
        bbox[4*i + 1] = dets[i].bbox.y;
        bbox[4*i + 2] = dets[i].bbox.w;
        bbox[4*i + 3] = dets[i].bbox.h;
        objectness[i] = dets[i].objectness;
        if (prob) {
            for (k = 0; k < classes; ++k) prob[(size_t)i*classes + k] = dets[i].prob[k];
        }
        if (sort_class) sort_class[i] = dets[i].sort_class;
        /* Each detection's prob row identifies where it came from. */
        if (order && prob_base && classes > 0) order[i] = (int)((dets[i].prob - prob_base)/classes);
    }
}
