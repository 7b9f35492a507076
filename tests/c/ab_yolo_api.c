/* The AlexeyAB layer from C: set up an ab_yolo_layer over the caller's
 * buffers, run it, read the statistics and counters.  Built and run by
 * tests/test_alexeyab_validation.py; prints the results for the test to
 * compare with the Python API's. */
#include <float.h>
#include <stdio.h>
#include <string.h>

#include "darknet_loss.h"

#define W 2
#define H 2
#define N 3
#define CLASSES 2
#define MAX_BOXES 4

int main(void)
{
    const int mask[N] = {3, 4, 5};
    const float anchors[12] = {10, 14, 23, 27, 37, 58, 81, 82, 135, 169, 344, 319};
    static float input[N*(5 + CLASSES)*W*H], output[N*(5 + CLASSES)*W*H], delta[N*(5 + CLASSES)*W*H];
    static float truth[MAX_BOXES*AB_TRUTH_SIZE];
    static int labels[N*W*H], class_ids[N*W*H];
    float cost;
    ab_yolo_stats stats;
    ab_yolo_layer l;
    ab_network_state st;
    int i, rc;
    if (ab_yolo_layer_init(&l, 1, W, H, N, 6, CLASSES, MAX_BOXES) != DN_OK) return 2;
    l.mask = mask;
    l.biases = anchors;
    l.output = output;
    l.delta = delta;
    l.cost = &cost;
    l.labels = labels;
    l.class_ids = class_ids;
    l.stats = &stats;
    l.iou_loss = AB_CIOU;
    l.iou_normalizer = 0.07f;
    l.scale_x_y = 1.05f;
    l.iou_thresh = 0.213f;
    l.max_delta = 5;
    for (i = 0; i < (int)(sizeof input/sizeof input[0]); ++i) input[i] = (float)((i*37) % 11 - 5)/4;
    truth[0] = .3f; truth[1] = .6f; truth[2] = .3f; truth[3] = .4f; truth[4] = 1; truth[5] = 7;
    memset(&st, 0, sizeof st);
    st.input = input;
    st.truth = truth;
    st.train = 1;
    st.net_w = st.net_h = 416;
    st.index = 30;
    rc = ab_forward_yolo_layer(l, st);
    printf("rc %d cost %a count %d iou %a total_bbox %lld\n", rc, cost, stats.count, stats.avg_iou,
           stats.sums.total_bbox);
    for (i = 0; i < l.outputs; ++i) printf("%a %a\n", output[i], delta[i]);

    /* x == 1.0 would index column w: refused, buffers untouched. */
    truth[0] = 1.0f;
    output[0] = 1234.5f;
    rc = ab_forward_yolo_layer(l, st);
    printf("refused %d %d untouched %d\n", rc, rc == DN_E_TRUTH_CELL, output[0] == 1234.5f);
    return 0;
}
