/*
 * ab_box.c -- AlexeyAB/darknet 59596d7's src/box.c where it differs from
 * pjreddie's (box.c here): the IoU guard, GIoU/DIoU/CIoU and dx_box_iou.
 *
 * overlap(), box_intersection() and box_union() are the same code in both
 * darknets; overlap() is reused from box.c, the other two are written out
 * here with the NaN operand order of AlexeyAB's build.  What differs:
 *   - box_iou returns 0 when the intersection or the union is 0 (pjreddie
 *     divides, so two zero-area boxes give NaN there);
 *   - the enclosing box and the corner form use fmin/fmax, the C library's
 *     *double* functions: with a NaN operand they return the other one,
 *     where a ternary would pick by position;
 *   - M_PI is the full double constant: upstream is compiled in gnu mode,
 *     where <math.h> defines it (its 3.141592 fallback is never used).  We
 *     build with -std=c99, where <math.h> does not, so it is spelled out.
 *
 * Types follow upstream exactly: every named intermediate is a float, the
 * constants 0.000001 and 4/(M_PI*M_PI) are doubles, atan and pow run in
 * double and their results are rounded when stored.
 *
 * hank-ai's box.cpp is the same code but for HANK(4)-(7) (darknet_loss.h
 * lists them): every function takes the flavor, and the AlexeyAB names are
 * these with AB_FLAVOR_ALEXEYAB.
 */
#include <math.h>

#include "darknet_loss.h"

#define AB_PI 3.14159265358979323846

/* a*b and a + b as upstream's build computes them when both operands are
 * NaN: mulss/addss keep their first operand's NaN, and which operand GCC
 * put first in AlexeyAB's box.o is a fact of that binary (objdump): w
 * before h, the width before the height, a's area before b's.  C leaves
 * the order to the compiler, so it is written out here: the sign of a NaN
 * IoU reaches the printed avg_iou ("nan" or "-nan").  (When at most one
 * operand is NaN, the result is that NaN in either order.) */
static float mul_first(float a, float b)
{
    return isnan(a) ? a + 0.0f : a*b;
}

static float add_first(float a, float b)
{
    return isnan(a) ? a + 0.0f : a + b;
}

/* overlap(): box.c's for AlexeyAB.  HANK(4): hank-ai picks the edges with
 * std::max(l1, l2), which is (l1 < l2) ? l2 : l1, and std::min(r1, r2),
 * (r2 < r1) ? r2 : r1: with a NaN operand both return the first (the
 * prediction's, in every call here), where AlexeyAB's ternaries return the
 * second. */
static float overlap_fl(float x1, float w1, float x2, float w2, int flavor)
{
    float l1, l2, r1, r2, left, right;
    if (flavor != AB_FLAVOR_HANKAI) return overlap(x1, w1, x2, w2);
    l1 = x1 - w1/2;
    l2 = x2 - w2/2;
    left = l1 < l2 ? l2 : l1;
    r1 = x1 + w1/2;
    r2 = x2 + w2/2;
    right = r2 < r1 ? r2 : r1;
    return right - left;
}

/* box_intersection and box_union: overlap(), then the products and the sum
 * in the operand order of AlexeyAB's build.  HANK(5): hank-ai returns 0 as
 * soon as w <= 0 (before computing h), then when h <= 0. */
static float intersection(box a, box b, int flavor)
{
    float w, h;
    if (flavor == AB_FLAVOR_HANKAI) {
        w = overlap_fl(a.x, a.w, b.x, b.w, flavor);
        if (w <= 0) return 0;
        h = overlap_fl(a.y, a.h, b.y, b.h, flavor);
        if (h <= 0) return 0;
        return mul_first(w, h);
    }
    w = overlap(a.x, a.w, b.x, b.w);
    h = overlap(a.y, a.h, b.y, b.h);
    if (w < 0 || h < 0) return 0;
    return mul_first(w, h);
}

static float union_with(box a, box b, float i)
{
    return add_first(mul_first(a.w, a.h), mul_first(b.w, b.h)) - i;
}

static float union_area(box a, box b, int flavor)
{
    return union_with(a, b, intersection(a, b, flavor));
}

float ab_box_iou_fl(box a, box b, int flavor)
{
    float inter = intersection(a, b, flavor);
    float uni;
    if (flavor == AB_FLAVOR_HANKAI) {
        /* HANK(6): no test of the union (box_union(a, b, I)) */
        if (inter == 0) return 0;
        return inter/union_with(a, b, inter);
    }
    uni = union_area(a, b, flavor);
    if (inter == 0 || uni == 0) return 0;
    return inter/uni;
}

float ab_box_iou(box a, box b)
{
    return ab_box_iou_fl(a, b, AB_FLAVOR_ALEXEYAB);
}

/* The smallest box enclosing a and b. */
boxabs ab_box_c(box a, box b)
{
    boxabs c = {0, 0, 0, 0};
    c.top = (float)fmin(a.y - a.h/2, b.y - b.h/2);
    c.bot = (float)fmax(a.y + a.h/2, b.y + b.h/2);
    c.left = (float)fmin(a.x - a.w/2, b.x - b.w/2);
    c.right = (float)fmax(a.x + a.w/2, b.x + b.w/2);
    return c;
}

boxabs ab_to_tblr(box a)
{
    boxabs r = {0, 0, 0, 0};
    r.top = a.y - (a.h/2);
    r.bot = a.y + (a.h/2);
    r.left = a.x - (a.w/2);
    r.right = a.x + (a.w/2);
    return r;
}

float ab_box_giou_fl(box a, box b, int flavor)
{
    boxabs c = ab_box_c(a, b);
    float cw = c.right - c.left;
    float ch = c.bot - c.top;
    float area_c = mul_first(cw, ch);
    float iou = ab_box_iou_fl(a, b, flavor);
    float u, term;
    if (area_c == 0) return iou;
    u = union_area(a, b, flavor);
    term = (area_c - u)/area_c;
    return iou - term;
}

/* (squared centre distance / squared diagonal of the enclosing box)^0.6:
 * upstream's DIoU uses the power 0.6, not 1. */
float ab_box_giou(box a, box b)
{
    return ab_box_giou_fl(a, b, AB_FLAVOR_ALEXEYAB);
}

float ab_box_diou_fl(box a, box b, int flavor)
{
    boxabs c = ab_box_c(a, b);
    float cw = c.right - c.left;
    float ch = c.bot - c.top;
    float diag = cw*cw + ch*ch;
    float iou = ab_box_iou_fl(a, b, flavor);
    float dist, term;
    if (diag == 0) return iou;
    dist = (a.x - b.x)*(a.x - b.x) + (a.y - b.y)*(a.y - b.y);
    term = (float)pow(dist/diag, 0.6);
    return iou - term;
}

float ab_box_diou(box a, box b)
{
    return ab_box_diou_fl(a, b, AB_FLAVOR_ALEXEYAB);
}

/* CIoU's atan(ar_gt) - atan(ar_pred), as the double the formulas read.
 * HANK(7): hank-ai's atan on a float is atanf, and the difference of two
 * floats is a float, promoted only when the double constant multiplies it. */
static double atan_diff(float ar_gt, float ar_pred, int flavor)
{
    if (flavor == AB_FLAVOR_HANKAI) return (double)(atanf(ar_gt) - atanf(ar_pred));
    return atan(ar_gt) - atan(ar_pred);
}

float ab_box_ciou_fl(box a, box b, int flavor)
{
    boxabs c = ab_box_c(a, b);
    float cw = c.right - c.left;
    float ch = c.bot - c.top;
    float diag = cw*cw + ch*ch;
    float iou = ab_box_iou_fl(a, b, flavor);
    float dist, d, ar_gt, ar_pred, ar_loss, alpha, term;
    double da;
    if (diag == 0) return iou;
    dist = (a.x - b.x)*(a.x - b.x) + (a.y - b.y)*(a.y - b.y);
    d = dist/diag;
    ar_gt = b.w/b.h;
    ar_pred = a.w/a.h;
    da = atan_diff(ar_gt, ar_pred, flavor);
    /* double throughout, rounded once into the float */
    ar_loss = (float)(4/(AB_PI*AB_PI) * da * da);
    alpha = (float)(ar_loss/(1 - iou + ar_loss + 0.000001));
    term = d + alpha*ar_loss;
    return iou - term;
}

float ab_box_ciou(box a, box b)
{
    return ab_box_ciou_fl(a, b, AB_FLAVOR_ALEXEYAB);
}

float ab_box_iou_kind_fl(box a, box b, int iou_kind, int flavor)
{
    switch (iou_kind) {
    case AB_IOU: return ab_box_iou_fl(a, b, flavor);
    case AB_GIOU: return ab_box_giou_fl(a, b, flavor);
    case AB_DIOU: return ab_box_diou_fl(a, b, flavor);
    case AB_CIOU: return ab_box_ciou_fl(a, b, flavor);
    default: return ab_box_iou_fl(a, b, flavor);
    }
}

float ab_box_iou_kind(box a, box b, int iou_kind)
{
    return ab_box_iou_kind_fl(a, b, iou_kind, AB_FLAVOR_ALEXEYAB);
}

/* The DIoU/CIoU distance term's gradient in x or y:
 * (2*(t - p)*C - (2*Cw*dCw + 2*Ch*dCh)*S) / (C*C), in float, in that order. */
static float dist_grad_xy(float t, float p, float cc, float cw, float dcw, float ch, float dch, float s)
{
    return (2*(t - p)*cc - (2*cw*dcw + 2*ch*dch)*s)/(cc*cc);
}

/* ... and in w or h: (2*Cw*dCw + 2*Ch*dCh)*S / (C*C). */
static float dist_grad_wh(float cc, float cw, float dcw, float ch, float dch, float s)
{
    return (2*cw*dcw + 2*ch*dch)*s/(cc*cc);
}

dxrep ab_dx_box_iou_fl(box pred, box truth, int iou_loss, int flavor)
{
    const boxabs pt = ab_to_tblr(pred);
    const boxabs tt = ab_to_tblr(truth);
    /* the prediction's corners ordered (a negative w or h swaps them) */
    const float p_t = (float)fmin(pt.top, pt.bot);
    const float p_b = (float)fmax(pt.top, pt.bot);
    const float p_l = (float)fmin(pt.left, pt.right);
    const float p_r = (float)fmax(pt.left, pt.right);
    dxrep r = {0, 0, 0, 0};

    const float X = (p_b - p_t)*(p_r - p_l);
    const float Xhat = (tt.bot - tt.top)*(tt.right - tt.left);
    const float Ih = (float)(fmin(p_b, tt.bot) - fmax(p_t, tt.top));
    const float Iw = (float)(fmin(p_r, tt.right) - fmax(p_l, tt.left));
    const float I = Iw*Ih;
    const float U = X + Xhat - I;
    const float S = (pred.x - truth.x)*(pred.x - truth.x) + (pred.y - truth.y)*(pred.y - truth.y);
    const float giou_Cw = (float)(fmax(p_r, tt.right) - fmin(p_l, tt.left));
    const float giou_Ch = (float)(fmax(p_b, tt.bot) - fmin(p_t, tt.top));
    const float giou_C = giou_Cw*giou_Ch;

    /* d(prediction area)/d(edge) */
    const float dX_t = -1*(p_r - p_l);
    const float dX_b = p_r - p_l;
    const float dX_l = -1*(p_b - p_t);
    const float dX_r = p_b - p_t;
    /* d(intersection)/d(edge): only where the prediction's edge bounds it */
    const float dI_t = p_t > tt.top ? (-1*Iw) : 0;
    const float dI_b = p_b < tt.bot ? Iw : 0;
    const float dI_l = p_l > tt.left ? (-1*Ih) : 0;
    const float dI_r = p_r < tt.right ? Ih : 0;
    const float dU_t = dX_t - dI_t;
    const float dU_b = dX_b - dI_b;
    const float dU_l = dX_l - dI_l;
    const float dU_r = dX_r - dI_r;
    /* d(enclosing area)/d(edge) */
    const float dC_t = p_t < tt.top ? (-1*giou_Cw) : 0;
    const float dC_b = p_b > tt.bot ? giou_Cw : 0;
    const float dC_l = p_l < tt.left ? (-1*giou_Ch) : 0;
    const float dC_r = p_r > tt.right ? giou_Ch : 0;

    float p_dt = 0, p_db = 0, p_dl = 0, p_dr = 0;
    float p_dx, p_dy, p_dw, p_dh;
    float Ct, Cb, Cl, Cr, Cw, Ch, C;
    float dCw_dx, dCw_dy, dCw_dw, dCw_dh, dCh_dx, dCh_dy, dCh_dw, dCh_dh;

    if (U > 0) {
        p_dt = ((U*dI_t) - (I*dU_t))/(U*U);
        p_db = ((U*dI_b) - (I*dU_b))/(U*U);
        p_dl = ((U*dI_l) - (I*dU_l))/(U*U);
        p_dr = ((U*dI_r) - (I*dU_r))/(U*U);
    }
    /* Corner selection, in upstream's order: the second line reads the
     * first line's result, so a flipped box gets p_db on both. */
    p_dt = pt.top < pt.bot ? p_dt : p_db;
    p_db = pt.top < pt.bot ? p_db : p_dt;
    p_dl = pt.left < pt.right ? p_dl : p_dr;
    p_dr = pt.left < pt.right ? p_dr : p_dl;

    if (iou_loss == AB_GIOU) {
        if (giou_C > 0) {
            p_dt += ((giou_C*dU_t) - (U*dC_t))/(giou_C*giou_C);
            p_db += ((giou_C*dU_b) - (U*dC_b))/(giou_C*giou_C);
            p_dl += ((giou_C*dU_l) - (U*dC_l))/(giou_C*giou_C);
            p_dr += ((giou_C*dU_r) - (U*dC_r))/(giou_C*giou_C);
        }
        if (Iw <= 0 || Ih <= 0) {
            p_dt = ((giou_C*dU_t) - (U*dC_t))/(giou_C*giou_C);
            p_db = ((giou_C*dU_b) - (U*dC_b))/(giou_C*giou_C);
            p_dl = ((giou_C*dU_l) - (U*dC_l))/(giou_C*giou_C);
            p_dr = ((giou_C*dU_r) - (U*dC_r))/(giou_C*giou_C);
        }
    }

    /* The enclosing box again, from x, y, w, h (not the ordered corners). */
    Ct = (float)fmin(pred.y - pred.h/2, truth.y - truth.h/2);
    Cb = (float)fmax(pred.y + pred.h/2, truth.y + truth.h/2);
    Cl = (float)fmin(pred.x - pred.w/2, truth.x - truth.w/2);
    Cr = (float)fmax(pred.x + pred.w/2, truth.x + truth.w/2);
    Cw = Cr - Cl;
    Ch = Cb - Ct;
    C = Cw*Cw + Ch*Ch;

    {
        const float dCt_dy = p_t < tt.top ? 1 : 0;
        const float dCt_dh = p_t < tt.top ? -0.5f : 0;
        const float dCb_dy = p_b > tt.bot ? 1 : 0;
        const float dCb_dh = p_b > tt.bot ? 0.5f : 0;
        const float dCl_dx = p_l < tt.left ? 1 : 0;
        const float dCl_dw = p_l < tt.left ? -0.5f : 0;
        const float dCr_dx = p_r > tt.right ? 1 : 0;
        const float dCr_dw = p_r > tt.right ? 0.5f : 0;
        /* Upstream also spells out the partials that are identically 0
         * (dCt_dx, dCl_dy, ...); their differences are exactly +0.  They
         * still enter the products below: 2*Cw*0 is NaN when Cw is not
         * finite, so they are kept as zeros, not dropped. */
        dCw_dx = dCr_dx - dCl_dx;
        dCw_dy = 0;
        dCw_dw = dCr_dw - dCl_dw;
        dCw_dh = 0;
        dCh_dx = 0;
        dCh_dy = dCb_dy - dCt_dy;
        dCh_dw = 0;
        dCh_dh = dCb_dh - dCt_dh;
    }

    p_dx = p_dl + p_dr;
    p_dy = p_dt + p_db;
    p_dw = (p_dr - p_dl);  /* not divided by 2, as upstream notes */
    p_dh = (p_db - p_dt);

    if (iou_loss == AB_DIOU) {
        if (C > 0) {
            p_dx += dist_grad_xy(truth.x, pred.x, C, Cw, dCw_dx, Ch, dCh_dx, S);
            p_dy += dist_grad_xy(truth.y, pred.y, C, Cw, dCw_dy, Ch, dCh_dy, S);
            p_dw += dist_grad_wh(C, Cw, dCw_dw, Ch, dCh_dw, S);
            p_dh += dist_grad_wh(C, Cw, dCw_dh, Ch, dCh_dh, S);
        }
        if (Iw <= 0 || Ih <= 0) {
            p_dx = dist_grad_xy(truth.x, pred.x, C, Cw, dCw_dx, Ch, dCh_dx, S);
            p_dy = dist_grad_xy(truth.y, pred.y, C, Cw, dCw_dy, Ch, dCh_dy, S);
            p_dw = dist_grad_wh(C, Cw, dCw_dw, Ch, dCh_dw, S);
            p_dh = dist_grad_wh(C, Cw, dCw_dh, Ch, dCh_dh, S);
        }
    }

    if (iou_loss == AB_CIOU) {
        const float ar_gt = truth.w/truth.h;
        const float ar_pred = pred.w/pred.h;
        const double da = atan_diff(ar_gt, ar_pred, flavor);  /* HANK(7) */
        const float ar_loss = (float)(4/(AB_PI*AB_PI) * da * da);
        /* 1 - I/U here, where box_ciou has 1 - box_iou (0 when I or U is 0) */
        const float alpha = (float)(ar_loss/(1 - I/U + ar_loss + 0.000001));
        const float ar_dw = (float)(8/(AB_PI*AB_PI) * da * pred.h);
        const float ar_dh = (float)(-8/(AB_PI*AB_PI) * da * pred.w);
        if (C > 0) {
            p_dx += dist_grad_xy(truth.x, pred.x, C, Cw, dCw_dx, Ch, dCh_dx, S);
            p_dy += dist_grad_xy(truth.y, pred.y, C, Cw, dCw_dy, Ch, dCh_dy, S);
            p_dw += dist_grad_wh(C, Cw, dCw_dw, Ch, dCh_dw, S) + alpha*ar_dw;
            p_dh += dist_grad_wh(C, Cw, dCw_dh, Ch, dCh_dh, S) + alpha*ar_dh;
        }
        if (Iw <= 0 || Ih <= 0) {
            p_dx = dist_grad_xy(truth.x, pred.x, C, Cw, dCw_dx, Ch, dCh_dx, S);
            p_dy = dist_grad_xy(truth.y, pred.y, C, Cw, dCw_dy, Ch, dCh_dy, S);
            p_dw = dist_grad_wh(C, Cw, dCw_dw, Ch, dCh_dw, S) + alpha*ar_dw;
            p_dh = dist_grad_wh(C, Cw, dCw_dh, Ch, dCh_dh, S) + alpha*ar_dh;
        }
    }

    /* upstream's naming, kept: dt holds d/dx, db d/dy, dl d/dw, dr d/dh */
    r.dt = p_dx;
    r.db = p_dy;
    r.dl = p_dw;
    r.dr = p_dh;
    return r;
}

dxrep ab_dx_box_iou(box pred, box truth, int iou_loss)
{
    return ab_dx_box_iou_fl(pred, truth, iou_loss, AB_FLAVOR_ALEXEYAB);
}
