/* Uses the C core the way a C or C++ user would: make, fill, forward, read
 * the statistics, free.  Built and run by tests/test_c_api.py; prints the
 * results for the test to compare with the Python API's. */
#include <stdio.h>
#include <string.h>

#include "darknet_loss.h"

int main(void)
{
    const int mask[3] = {6, 7, 8};
    const float anchors[18] = {10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119, 116, 90, 156, 198, 373, 326};
    float input[3*(5 + 2)*2*2];
    float truth[DN_YOLO_MAX_TRUTHS*5];
    network net;
    int i, rc;
    layer l = make_yolo_layer(1, 2, 2, 3, 9, mask, 2);
    if (!l.output) return 2;
    memcpy(l.biases, anchors, sizeof anchors);
    for (i = 0; i < (int)(sizeof input/sizeof input[0]); ++i) input[i] = (float)((i*37) % 11 - 5)/4;
    memset(truth, 0, sizeof truth);
    truth[0] = .3f; truth[1] = .6f; truth[2] = .8f; truth[3] = .7f; truth[4] = 1;
    memset(&net, 0, sizeof net);
    net.input = input;
    net.truth = truth;
    net.train = 1;
    net.w = net.h = 416;
    net.index = 82;
    rc = forward_yolo_layer(l, net);
    printf("rc %d cost %a count %d iou %a\n", rc, *l.cost, l.stats->count, l.stats->avg_iou);
    for (i = 0; i < l.outputs; ++i) printf("%a %a\n", l.output[i], l.delta[i]);

    /* x == 1.0 would index column w: refused, buffers untouched. */
    truth[0] = 1.0f;
    l.output[0] = 1234.5f;
    rc = forward_yolo_layer(l, net);
    printf("refused %d %d untouched %d\n", rc, rc == DN_E_TRUTH_CELL, l.output[0] == 1234.5f);
    free_layer(l);
    return 0;
}
