/*
 * no_cuda.c -- the GPU build's functions in a library built without CUDA
 * (the default): each says so, DN_E_NO_CUDA, so that a caller learns it at
 * run time instead of failing to link.  gpu.cu replaces this file in a CUDA
 * build (PYDARKNET_LOSS_CUDA=1, make lib CUDA=1).
 */
#include <string.h>

#include "../darknet_loss.h"

int dn_cuda_info(dn_cuda_device *info)
{
    memset(info, 0, sizeof *info);
    return DN_OK;
}

int dn_cuda_error_text(int code, char *buf, int size)
{
    const char *text = code == DN_E_NO_CUDA ? "built without CUDA" : "not a CUDA error (built without CUDA)";
    if (size < 1) return DN_E_LAYER;
    strncpy(buf, text, (size_t)size - 1);
    buf[size - 1] = '\0';
    return DN_OK;
}

int dn_cuda_activate_yolo(const layer *l, const float *input, float *output)
{
    (void)l, (void)input, (void)output;
    return DN_E_NO_CUDA;
}

int dn_cuda_activate_region(const layer *l, const float *input, float *output)
{
    (void)l, (void)input, (void)output;
    return DN_E_NO_CUDA;
}

int dn_cuda_logistic(const float *x, float *y, size_t n)
{
    (void)x, (void)y, (void)n;
    return DN_E_NO_CUDA;
}

int dn_cuda_logistic_all(unsigned long long *hash, unsigned long long *nans)
{
    *hash = 0;
    *nans = 0;
    return DN_E_NO_CUDA;
}
