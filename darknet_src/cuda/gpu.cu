/*
 * gpu.cu -- the device half of darknet's GPU build (pjreddie/darknet f6afaab,
 * GPU=1), written for pydarknet_loss.
 *
 * Under GPU=1 upstream activates a loss layer's input on the device
 * (forward_yolo_layer_gpu / forward_region_layer_gpu: activate_array_gpu,
 * softmax_gpu, softmax_tree), pulls the activated buffer to the host and runs
 * the CPU loss code on it with the CPU activation compiled out.  This file
 * reproduces the device part: the logistic, the softmax and the tree softmax
 * as upstream's device code computes them.  gpu.c runs the host part.
 *
 * Bit-exactness depends on nvcc's defaults, which upstream's Makefile keeps:
 * no -use_fast_math, so -fmad=true (nvcc may contract `1.f + e` with the last
 * multiply of expf into one FMA, and upstream's build does the same),
 * -prec-div=true, -prec-sqrt=true and -ftz=false.  build_ffi.py and the
 * Makefile compile this file with those defaults whatever the host flags are.
 *
 * Nothing here prints or exits: every function returns DN_OK or a negative
 * code (DN_E_CUDA_RUNTIME - cudaError_t for a failed runtime call).  No
 * globals: each call allocates its device buffers and frees them.
 */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../darknet_loss.h"

/* upstream's BLOCK (cuda.h); the launch shape changes no arithmetic: every
 * element is computed by one thread on its own. */
#define DN_BLOCK 512

/* ---- device arithmetic ------------------------------------------------------ */

/* logistic_activate_kernel: float expf (not the double exp of the CPU build),
 * compiled with -fmad=true. */
__device__ __forceinline__ float dn_logistic(float x)
{
    return 1.f / (1.f + expf(-x));
}

/* softmax_device: the largest value is taken over the inputs converted to int
 * (`int val = input[i*stride]`, truncation toward zero, saturating on the
 * device; NaN gives 0), unlike the CPU softmax, which compares floats. */
__device__ void dn_softmax_device(const float *input, int n, float temp, int stride, float *output)
{
    float sum = 0;
    float largest = -INFINITY;
    for (int i = 0; i < n; ++i) {
        int val = input[i * stride];
        largest = (val > largest) ? val : largest;
    }
    for (int i = 0; i < n; ++i) {
        float e = expf(input[i * stride] / temp - largest / temp);
        sum += e;
        output[i * stride] = e;
    }
    for (int i = 0; i < n; ++i) {
        output[i * stride] /= sum;
    }
}

/* ---- kernels ---------------------------------------------------------------- */

/* activate_array_gpu(x, n, LOGISTIC) on `count` runs of `len` floats, run r
 * starting at first + r*step (the planes of every anchor of every image). */
__global__ void dn_logistic_runs_kernel(float *x, size_t first, size_t step, size_t len, size_t count)
{
    const size_t total = len * count;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const size_t at = first + (i / len) * step + i % len;
        x[at] = dn_logistic(x[at]);
    }
}

/* softmax_kernel (softmax_gpu) */
__global__ void dn_softmax_kernel(const float *input, int n, int batch, int batch_offset, int groups,
                                  int group_offset, int stride, float temp, float *output)
{
    const long long total = (long long)batch * groups;
    for (long long id = blockIdx.x * (long long)blockDim.x + threadIdx.x; id < total;
         id += (long long)gridDim.x * blockDim.x) {
        const long long b = id / groups;
        const long long g = id % groups;
        const long long at = b * batch_offset + g * group_offset;
        dn_softmax_device(input + at, n, temp, stride, output + at);
    }
}

/* softmax_tree_kernel (softmax_tree): one softmax per cell, anchor-image and group */
__global__ void dn_softmax_tree_kernel(const float *input, int spatial, int batch, int stride, float temp,
                                       float *output, int groups, const int *group_size, const int *group_offset)
{
    const long long total = (long long)spatial * batch * groups;
    for (long long id = blockIdx.x * (long long)blockDim.x + threadIdx.x; id < total;
         id += (long long)gridDim.x * blockDim.x) {
        const long long s = id % spatial;
        const long long rest = id / spatial;
        const long long g = rest % groups;
        const long long b = rest / groups;
        const long long at = (long long)group_offset[g] * spatial + b * stride + s;
        dn_softmax_device(input + at, group_size[g], temp, spatial, output + at);
    }
}

/* splitmix64's finaliser: the per-entry mix of dn_cuda_logistic_all's hash. */
__device__ __forceinline__ unsigned long long dn_mix64(unsigned long long z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Every float32 bit pattern through the logistic: hash = sum over all i of
 * mix64(i << 32 | bits(logistic(bits i))) mod 2^64 (independent of the order
 * the threads finish in), and the number of NaN results. */
__global__ void dn_logistic_all_kernel(unsigned long long *hash, unsigned long long *nans)
{
    unsigned long long h = 0, n = 0;
    const unsigned long long all = 1ULL << 32;
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < all;
         i += (unsigned long long)gridDim.x * blockDim.x) {
        const float y = dn_logistic(__uint_as_float((unsigned int)i));
        h += dn_mix64((i << 32) | __float_as_uint(y));
        n += isnan(y) ? 1 : 0;
    }
    atomicAdd(hash, h);
    atomicAdd(nans, n);
}

/* ---- host side -------------------------------------------------------------- */

static int dn_status(cudaError_t err)
{
    return err == cudaSuccess ? DN_OK : DN_E_CUDA_RUNTIME - (int)err;
}

static unsigned int dn_blocks(size_t work)
{
    size_t blocks = (work + DN_BLOCK - 1) / DN_BLOCK;
    if (blocks < 1) blocks = 1;
    return blocks > 65535 ? 65535u : (unsigned int)blocks;   /* the kernels stride over the rest */
}

/* A device to run on: DN_E_NO_DEVICE when the runtime sees none (no GPU, no
 * driver), else the current one. */
static int dn_need_device(void)
{
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count < 1) {
        (void)cudaGetLastError();   /* clear the sticky-less error state */
        return DN_E_NO_DEVICE;
    }
    return DN_OK;
}

/* The device buffers of one activation: the raw input and the output that
 * starts as its copy (upstream's copy_gpu into l.output_gpu). */
typedef struct dn_dev_buffers {
    float *in;
    float *out;
    int *ints;
} dn_dev_buffers;

static void dn_free(dn_dev_buffers *d)
{
    if (d->in) cudaFree(d->in);
    if (d->out) cudaFree(d->out);
    if (d->ints) cudaFree(d->ints);
    d->in = d->out = NULL;
    d->ints = NULL;
}

static int dn_push(dn_dev_buffers *d, const float *input, size_t n)
{
    int rc = dn_status(cudaMalloc((void **)&d->in, n * sizeof(float)));
    if (rc == DN_OK) rc = dn_status(cudaMalloc((void **)&d->out, n * sizeof(float)));
    if (rc == DN_OK) rc = dn_status(cudaMemcpy(d->in, input, n * sizeof(float), cudaMemcpyHostToDevice));
    if (rc == DN_OK) rc = dn_status(cudaMemcpy(d->out, d->in, n * sizeof(float), cudaMemcpyDeviceToDevice));
    return rc;
}

static int dn_pull(dn_dev_buffers *d, float *output, size_t n)
{
    int rc = dn_status(cudaGetLastError());
    if (rc == DN_OK) rc = dn_status(cudaMemcpy(output, d->out, n * sizeof(float), cudaMemcpyDeviceToHost));
    return rc;
}

/* activate_array_gpu over one entry range [entry, entry + entries) of every
 * anchor of every image (entry_index(l, b, n*w*h, entry), entries*w*h floats). */
static void dn_logistic_entries(const layer *l, float *out, int entry, int entries)
{
    const size_t plane = (size_t)l->w * l->h;
    const size_t per_anchor = plane * (size_t)(l->coords + l->classes + 1);
    const size_t len = plane * (size_t)entries;
    const size_t count = (size_t)l->batch * l->n;
    if (len == 0 || count == 0) return;
    dn_logistic_runs_kernel<<<dn_blocks(len * count), DN_BLOCK>>>(out, (size_t)entry * plane, per_anchor, len, count);
}

extern "C" int dn_cuda_activate_yolo(const layer *l, const float *input, float *output)
{
    int rc = check_layer(*l);
    if (rc != DN_OK) return rc;
    if (l->type != DN_YOLO) return DN_E_LAYER;
    if ((rc = dn_need_device()) != DN_OK) return rc;
    const size_t n = (size_t)l->batch * l->outputs;
    dn_dev_buffers d = {NULL, NULL, NULL};
    rc = dn_push(&d, input, n);
    if (rc == DN_OK) {
        /* forward_yolo_layer_gpu: x, y (two planes), then objectness and classes */
        dn_logistic_entries(l, d.out, 0, 2);
        dn_logistic_entries(l, d.out, 4, 1 + l->classes);
        rc = dn_pull(&d, output, n);
    }
    dn_free(&d);
    return rc;
}

extern "C" int dn_cuda_activate_region(const layer *l, const float *input, float *output)
{
    int rc = check_layer(*l);
    if (rc != DN_OK) return rc;
    if (l->type != DN_REGION) return DN_E_LAYER;
    if ((rc = dn_need_device()) != DN_OK) return rc;
    const size_t n = (size_t)l->batch * l->outputs;
    const int plane = l->w * l->h;
    dn_dev_buffers d = {NULL, NULL, NULL};
    rc = dn_push(&d, input, n);
    if (rc == DN_OK) {
        /* forward_region_layer_gpu, in its order: x, y; the mask coords (which
         * the CPU build leaves raw); objectness unless background; the classes
         * when neither softmax applies. */
        dn_logistic_entries(l, d.out, 0, 2);
        if (l->coords > 4) dn_logistic_entries(l, d.out, 4, l->coords - 4);
        if (!l->background) dn_logistic_entries(l, d.out, l->coords, 1);
        if (!l->softmax && !l->softmax_tree) dn_logistic_entries(l, d.out, l->coords + 1, l->classes);
        if (l->softmax_tree) {
            /* softmax_tree(input + entry_index(l, 0, 0, coords+1), w*h, batch*n,
             * inputs/n, 1, ...): temperature 1 here, whatever l.temperature is,
             * and one softmax per cell and anchor (no CPU offset mix-up). */
            const tree *t = l->softmax_tree;
            const size_t at = (size_t)(l->coords + 1) * plane;
            rc = dn_status(cudaMalloc((void **)&d.ints, 2 * (size_t)t->groups * sizeof(int)));
            if (rc == DN_OK) rc = dn_status(cudaMemcpy(d.ints, t->group_size, t->groups * sizeof(int),
                                                       cudaMemcpyHostToDevice));
            if (rc == DN_OK) rc = dn_status(cudaMemcpy(d.ints + t->groups, t->group_offset, t->groups * sizeof(int),
                                                       cudaMemcpyHostToDevice));
            if (rc == DN_OK) {
                const size_t work = (size_t)plane * l->batch * l->n * t->groups;
                dn_softmax_tree_kernel<<<dn_blocks(work), DN_BLOCK>>>(d.in + at, plane, l->batch * l->n,
                                                                       l->inputs / l->n, 1.f, d.out + at, t->groups,
                                                                       d.ints, d.ints + t->groups);
            }
        } else if (l->softmax) {
            /* softmax_gpu(input + entry_index(l, 0, 0, coords + !background),
             * classes + background, batch*n, inputs/n, w*h, 1, w*h, 1, ...) */
            const size_t at = (size_t)(l->coords + !l->background) * plane;
            const size_t work = (size_t)l->batch * l->n * plane;
            dn_softmax_kernel<<<dn_blocks(work), DN_BLOCK>>>(d.in + at, l->classes + l->background, l->batch * l->n,
                                                             l->inputs / l->n, plane, 1, plane, 1.f, d.out + at);
        }
        if (rc == DN_OK) rc = dn_pull(&d, output, n);
    }
    dn_free(&d);
    return rc;
}

extern "C" int dn_cuda_logistic(const float *x, float *y, size_t n)
{
    int rc = dn_need_device();
    if (rc != DN_OK || n == 0) return rc;
    dn_dev_buffers d = {NULL, NULL, NULL};
    rc = dn_push(&d, x, n);
    if (rc == DN_OK) {
        dn_logistic_runs_kernel<<<dn_blocks(n), DN_BLOCK>>>(d.out, 0, n, n, 1);
        rc = dn_pull(&d, y, n);
    }
    dn_free(&d);
    return rc;
}

extern "C" int dn_cuda_logistic_all(unsigned long long *hash, unsigned long long *nans)
{
    int rc = dn_need_device();
    if (rc != DN_OK) return rc;
    unsigned long long *acc = NULL;
    unsigned long long host[2] = {0, 0};
    rc = dn_status(cudaMalloc((void **)&acc, sizeof host));
    if (rc == DN_OK) rc = dn_status(cudaMemset(acc, 0, sizeof host));
    if (rc == DN_OK) {
        dn_logistic_all_kernel<<<4096, 256>>>(acc, acc + 1);
        rc = dn_status(cudaGetLastError());
    }
    if (rc == DN_OK) rc = dn_status(cudaMemcpy(host, acc, sizeof host, cudaMemcpyDeviceToHost));
    if (acc) cudaFree(acc);
    *hash = host[0];
    *nans = host[1];
    return rc;
}

extern "C" int dn_cuda_info(dn_cuda_device *info)
{
    memset(info, 0, sizeof *info);
    info->built = 1;
    info->runtime_version = CUDART_VERSION;
    (void)cudaDriverGetVersion(&info->driver_version);   /* 0 when no driver is installed */
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        (void)cudaGetLastError();
        count = 0;
    }
    info->device_count = count;
    if (count < 1) return DN_OK;
    int dev = 0;
    cudaDeviceProp prop;
    int rc = dn_status(cudaGetDevice(&dev));
    if (rc == DN_OK) rc = dn_status(cudaGetDeviceProperties(&prop, dev));
    if (rc != DN_OK) return rc;
    info->device = dev;
    memcpy(info->name, prop.name, sizeof info->name - 1);   /* prop.name is 256 chars, NUL-terminated */
    info->name[sizeof info->name - 1] = '\0';
    info->cc_major = prop.major;
    info->cc_minor = prop.minor;
    return DN_OK;
}

extern "C" int dn_cuda_error_text(int code, char *buf, int size)
{
    if (size < 1) return DN_E_LAYER;
    const char *text;
    if (code <= DN_E_CUDA_RUNTIME) text = cudaGetErrorString((cudaError_t)(DN_E_CUDA_RUNTIME - code));
    else if (code == DN_E_NO_DEVICE) text = "no CUDA device (the runtime sees no GPU or no driver)";
    else if (code == DN_E_NO_CUDA) text = "built without CUDA";
    else text = "not a CUDA error";
    strncpy(buf, text, (size_t)size - 1);
    buf[size - 1] = '\0';
    return DN_OK;
}
