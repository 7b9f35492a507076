/* AlexeyAB's [region] and YOLOv1's [detection] from C: each layer over the
 * caller's buffers, its refusal codes, and glibc's rand() per layer.  Built
 * and run by tests/test_more_layers.py, which compares what it prints (float
 * bit patterns) with the Python API's results on the same input. */
#include <stdio.h>
#include <string.h>

#include "darknet_loss.h"

#define W 3
#define H 2
#define NUM 2
#define CLASSES 3
#define MAXB 4
#define SIZE (4 + 1 + CLASSES)

static unsigned bits(float f)
{
    unsigned u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static unsigned sum_bits(const float *a, int n)
{
    unsigned h = 0;
    int i;
    for (i = 0; i < n; ++i) h = h*31u + bits(a[i]);
    return h;
}

int main(void)
{
    static float input[NUM*SIZE*W*H], output[NUM*SIZE*W*H], delta[NUM*SIZE*W*H], truth[MAXB*AB_TRUTH_SIZE];
    const float anchors[2*NUM] = {1.5f, 2.0f, 3.0f, 1.0f};
    float cost;
    ab_region_stats rs;
    ab_region_layer r;
    ab_network_state st;
    int i, rc, bad_image, bad_row;

    /* ---- AlexeyAB's [region] ---- */
    if (ab_region_layer_init(&r, 1, W, H, NUM, CLASSES, 4, MAXB) != DN_OK) return 2;
    r.biases = anchors;
    r.output = output;
    r.delta = delta;
    r.cost = &cost;
    r.stats = &rs;
    r.softmax = 1;
    r.rescore = 1;
    for (i = 0; i < NUM*SIZE*W*H; ++i) input[i] = (float)((i*37) % 11 - 5)/4;
    truth[0] = .3f; truth[1] = .6f; truth[2] = .3f; truth[3] = .4f; truth[4] = 1;
    memset(&st, 0, sizeof st);
    st.input = input;
    st.truth = truth;
    st.train = 1;
    rc = ab_forward_region_layer(r, st, 20000);
    printf("region rc %d cost %08x count %d iou %08x output %08x delta %08x\n", rc, bits(cost), rs.count,
           bits(rs.avg_iou), sum_bits(output, NUM*SIZE*W*H), sum_bits(delta, NUM*SIZE*W*H));
    truth[0] = 1.0f;  /* x == 1: column W, outside the grid */
    rc = ab_check_region_truths(&r, truth, &bad_image, &bad_row);
    printf("region refused %d %d %d\n", rc == DN_E_TRUTH_CELL, bad_image, bad_row);

    /* ---- YOLOv1's [detection] ---- */
    {
        enum { SIDE = 2, N = 2, C = 2, CO = 4, LOC = SIDE*SIDE, IN = LOC*((1 + CO)*N + C), TR = LOC*(1 + C + CO) };
        static float din[2*IN], dout[2*IN], ddelta[2*IN], dtruth[2*TR];
        dn_glibc_rand rs0;
        detection_layer d;
        detection_stats ds;
        network net;
        int picks[2*LOC];
        if (detection_layer_init(&d, 2, SIDE, N, C, CO) != DN_OK) return 3;
        dn_glibc_srand(&rs0, 0);  /* make_detection_layer's srand(0) */
        {
            int r1 = dn_glibc_rand_next(&rs0);
            int r2 = dn_glibc_rand_next(&rs0);
            printf("rand %d %d\n", r1, r2);
        }
        dn_glibc_srand(&rs0, 0);
        d.rand_state = &rs0;
        d.random = 1;
        d.sqrt = 1;
        d.output = dout;
        d.delta = ddelta;
        d.cost = &cost;
        d.stats = &ds;
        d.picks = picks;
        for (i = 0; i < 2*IN; ++i) din[i] = (float)((i*29) % 13)/13;
        for (i = 0; i < 2*LOC; i += 2) {
            float *t = dtruth + i*(1 + C + CO);
            t[0] = 1; t[1 + i % C] = 1; t[1 + C] = .4f; t[2 + C] = .6f; t[3 + C] = .3f; t[4 + C] = .5f;
        }
        memset(&net, 0, sizeof net);
        net.input = din;
        net.truth = dtruth;
        net.train = 1;
        net.seen = 100;
        rc = forward_detection_layer(d, net);
        printf("detection rc %d cost %08x count %d iou %08x output %08x delta %08x picks",
               rc, bits(cost), ds.count, bits(ds.avg_iou), sum_bits(dout, 2*IN), sum_bits(ddelta, 2*IN));
        for (i = 0; i < 2*LOC; ++i) printf(" %d", picks[i]);
        printf("\n");
        dtruth[0] = 1e30f;  /* is_obj beyond a C int */
        rc = check_detection_truths(&d, din, dtruth, 100, &bad_image, &bad_row);
        printf("detection refused %d %d %d\n", rc == DN_E_DET_TRUTH, bad_image, bad_row);
    }
    return 0;
}
