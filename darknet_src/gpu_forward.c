/*
 * gpu_forward.c -- forward_yolo_layer_gpu / forward_region_layer_gpu: the
 * host half of darknet's GPU build (pjreddie/darknet f6afaab, GPU=1).
 *
 * Upstream's GPU forward copies the input on the device, activates it there
 * (cuda/gpu.cu reproduces those kernels), and then:
 *   - without train: pulls the activated buffer into l.output and returns;
 *   - with train: pulls it into net.input and runs the CPU forward, whose
 *     activation block the GPU build compiles out (#ifndef GPU), so the loss
 *     is the CPU code's arithmetic on the device's activations.
 * Here the device's activations go to a host buffer of their own and the
 * CPU forward runs on it with net.input_activated set; without train it
 * copies them into l.output and zeroes l.delta, as our CPU forward does.
 * The input is checked before the device is touched: a refusal (DN_E_*)
 * leaves every buffer as it was.
 */
#include <stdlib.h>
#include <string.h>

#include "darknet_loss.h"
#include "dn_internal.h"

static int forward_gpu(const layer *l, network net, int threads, int path, int type)
{
    int rc = dn_check_forward(l, &net, type);
    float *activated;
    if (rc != DN_OK) return rc;
    activated = malloc((size_t)l->batch*l->outputs*sizeof(float));
    if (!activated) return DN_E_NO_MEMORY;
    rc = type == DN_YOLO ? dn_cuda_activate_yolo(l, net.input, activated)
                         : dn_cuda_activate_region(l, net.input, activated);
    if (rc == DN_OK) {
        net.input = activated;
        net.input_activated = 1;
        rc = type == DN_YOLO ? forward_yolo_layer_opt(*l, net, threads, path)
                             : forward_region_layer_opt(*l, net, threads, path);
    }
    free(activated);
    return rc;
}

int forward_yolo_layer_gpu_opt(const layer l, network net, int threads, int path)
{
    return forward_gpu(&l, net, threads, path, DN_YOLO);
}

int forward_region_layer_gpu_opt(const layer l, network net, int threads, int path)
{
    return forward_gpu(&l, net, threads, path, DN_REGION);
}

int forward_yolo_layer_gpu(const layer l, network net)
{
    return forward_gpu(&l, net, 1, DN_PATH_AUTO, DN_YOLO);
}

int forward_region_layer_gpu(const layer l, network net)
{
    return forward_gpu(&l, net, 1, DN_PATH_AUTO, DN_REGION);
}
