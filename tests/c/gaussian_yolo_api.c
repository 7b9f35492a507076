/* AlexeyAB's [Gaussian_yolo] from C: set up an ab_gaussian_yolo_layer over
 * the caller's buffers, run it, read the statistics, then decode the
 * detections.  Built and run by tests/test_gaussian_yolo.py, which compares
 * what it prints with the Python API's results. */
#include <float.h>
#include <stdio.h>
#include <string.h>

#include "darknet_loss.h"

#define W 3
#define H 2
#define N 2
#define CLASSES 2
#define MAX_BOXES 4
#define C (N*(9 + CLASSES))

int main(void)
{
    const int mask[N] = {1, 2};
    const float anchors[8] = {10, 14, 23, 27, 37, 58, 81, 82};
    static float input[C*W*H], output[C*W*H], delta[C*W*H];
    static float truth[MAX_BOXES*AB_TRUTH_SIZE];
    static float prob[N*W*H*CLASSES], uc[N*W*H*4];
    static detection dets[N*W*H];
    float cost;
    ab_gaussian_stats stats;
    ab_gaussian_yolo_layer l;
    ab_network_state st;
    int i, rc, count;
    if (ab_gaussian_yolo_layer_init(&l, 1, W, H, N, 4, CLASSES, MAX_BOXES) != DN_OK) return 2;
    l.mask = mask;
    l.biases = anchors;
    l.output = output;
    l.delta = delta;
    l.cost = &cost;
    l.stats = &stats;
    l.iou_loss = AB_GIOU;
    l.yolo_point = AB_YOLO_LEFT_TOP;
    l.uc_normalizer = 0.5f;
    l.scale_x_y = 1.05f;
    l.iou_thresh = 0.213f;
    l.max_delta = 5;
    for (i = 0; i < (int)(sizeof input/sizeof input[0]); ++i) input[i] = (float)((i*37) % 11 - 5)/4;
    truth[0] = .3f; truth[1] = .6f; truth[2] = .3f; truth[3] = .5f; truth[4] = 1; truth[5] = 7;
    memset(&st, 0, sizeof st);
    st.input = input;
    st.truth = truth;
    st.train = 1;
    st.net_w = 96;
    st.net_h = 64;
    st.index = 30;
    rc = ab_forward_gaussian_yolo_layer(l, st);
    printf("rc %d cost %a count %d iou %a uc_loss %a\n", rc, cost, stats.count, stats.avg_iou, stats.uc_loss);
    for (i = 0; i < l.outputs; ++i) printf("%a %a\n", output[i], delta[i]);
    for (i = 0; i < N*W*H; ++i) dets[i].prob = prob + i*CLASSES;
    count = ab_get_gaussian_yolo_detections(l, 640, 480, 96, 64, 0.25f, 1, 1, dets, uc);
    printf("dets %d", count);
    for (i = 0; i < count; ++i) printf(" %a %a %a", dets[i].bbox.x, dets[i].objectness, uc[4*i + 1]);
    printf("\n");

    /* an assigned row with class id 2 >= classes: refused, buffers untouched */
    truth[4] = 2;
    output[0] = 1234.5f;
    rc = ab_forward_gaussian_yolo_layer(l, st);
    printf("refused %d %d untouched %d\n", rc, rc == DN_E_TRUTH_CLASS, output[0] == 1234.5f);
    return 0;
}
