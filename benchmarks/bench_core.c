/* bench_core.c -- times forward_yolo_layer_opt (and, bench_region_*,
 * forward_region_layer_opt) called directly from C.
 *
 * Built two ways by benchmarks/bench_yolo.py, with the core's strict flags:
 *   - as a shared object (-DBENCH_LIB) that the script loads with ctypes, so
 *     that C and Python repetitions can be interleaved one by one;
 *   - as a program: bench_core DIR REPS, printing "MEDIAN_MS COST".
 *
 * DIR holds what bench_yolo.py wrote: spec.txt (one line per layer: w h
 * classes total batch net_w net_h ignore_thresh and the three mask indices),
 * anchors.bin, truth.bin and one input_K.bin per layer.  Buffers are
 * allocated once, as darknet's make_yolo_layer does, and reused; they are
 * allocated the way NumPy allocates large arrays on Linux (2 MiB aligned,
 * advised for transparent huge pages), so that C and Python are timed on the
 * same kind of memory.
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#include "darknet_loss.h"

#define MAX_LAYERS 8

/* A benchmark driver, not the core: file-level state is fine here. */
static layer layers[MAX_LAYERS];
static network nets[MAX_LAYERS];
static int n_layers;
/* The driver's own buffers while bench_use() has swapped in the caller's. */
static float *own_output[MAX_LAYERS], *own_delta[MAX_LAYERS];
static const float *own_input[MAX_LAYERS], *own_truth;
/* forward_*_layer_opt's threads and path (bench_set). */
static int opt_threads = 1, opt_path = DN_PATH_AUTO;
/* The [region] workload: one layer. */
static layer rlayer;
static network rnet;
static float *r_own_output, *r_own_delta;
static const float *r_own_input, *r_own_truth;

static void *big_alloc(size_t bytes)
{
    void *p = NULL;
    const size_t huge = (size_t)2 << 20;
    size_t rounded = (bytes + huge - 1)/huge*huge;
    if (posix_memalign(&p, huge, rounded) != 0) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    madvise(p, rounded, MADV_HUGEPAGE);
#endif
    return p;
}

static void *slurp(const char *dir, const char *name, size_t bytes)
{
    char path[4096];
    void *buf = big_alloc(bytes);
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (!f || !buf || fread(buf, 1, bytes, f) != bytes) {
        fprintf(stderr, "bench_core: cannot read %s\n", path);
        if (f) fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    return buf;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec*1e3 + ts.tv_nsec/1e6;
}

void bench_free(void)
{
    int k;
    for (k = 0; k < n_layers; ++k) {
        if (own_output[k]) {  /* undo bench_use() */
            layers[k].output = own_output[k];
            layers[k].delta = own_delta[k];
            nets[k].input = own_input[k];
            nets[k].truth = own_truth;
            own_output[k] = own_delta[k] = NULL;
            own_input[k] = NULL;
        }
        free(layers[k].mask);
        free(layers[k].biases);
        free(layers[k].cost);
        free(layers[k].stats);
        free(layers[k].output);
        free(layers[k].delta);
        free((void *)nets[k].input);
        if (k == 0) free((void *)nets[k].truth);
    }
    n_layers = 0;
}

/* Reads DIR; 0 on success. */
int bench_load(const char *dir)
{
    char path[4096], name[64];
    int total = 0, k;
    float *anchors, *truth;
    FILE *spec;
    bench_free();
    snprintf(path, sizeof path, "%s/spec.txt", dir);
    spec = fopen(path, "r");
    if (!spec) return 1;
    while (n_layers < MAX_LAYERS) {
        int w, h, classes, batch, net_w, net_h, mask[3];
        float ignore_thresh;
        layer *l = &layers[n_layers];
        size_t n;
        if (fscanf(spec, "%d %d %d %d %d %d %d %f %d %d %d", &w, &h, &classes, &total, &batch, &net_w,
                   &net_h, &ignore_thresh, &mask[0], &mask[1], &mask[2]) != 11) break;
        /* The allocation-free initialiser, then our own buffers. */
        if (yolo_layer_init(l, batch, w, h, 3, total, classes) != DN_OK) break;
        n = (size_t)l->outputs*batch;
        l->mask = malloc(sizeof mask);
        l->biases = malloc((size_t)total*2*sizeof(float));
        l->cost = malloc(sizeof(float));
        l->stats = malloc(sizeof(loss_stats));
        l->output = big_alloc(n*sizeof(float));
        l->delta = big_alloc(n*sizeof(float));
        memset(&nets[n_layers], 0, sizeof nets[n_layers]);
        snprintf(name, sizeof name, "input_%d.bin", n_layers);
        nets[n_layers].input = slurp(dir, name, n*sizeof(float));
        ++n_layers;
        if (!l->mask || !l->biases || !l->cost || !l->stats || !l->output || !l->delta ||
            !nets[n_layers - 1].input) {
            fclose(spec);
            return 1;
        }
        memcpy(l->mask, mask, sizeof mask);
        l->ignore_thresh = ignore_thresh;
        nets[n_layers - 1].train = 1;
        nets[n_layers - 1].w = net_w;
        nets[n_layers - 1].h = net_h;
    }
    fclose(spec);
    if (n_layers == 0) return 1;
    anchors = slurp(dir, "anchors.bin", (size_t)total*2*sizeof(float));
    truth = slurp(dir, "truth.bin", (size_t)layers[0].batch*DN_YOLO_MAX_TRUTHS*5*sizeof(float));
    if (!anchors || !truth) return 1;
    for (k = 0; k < n_layers; ++k) {
        memcpy(layers[k].biases, anchors, (size_t)total*2*sizeof(float));
        nets[k].truth = truth;
    }
    free(anchors);
    return 0;
}

/* Points layer k at caller-owned buffers (the Python benchmark passes the
 * very arrays its own calls use, so that both sides run on the same memory).
 * The driver's own buffers stay allocated and are freed by bench_free(). */
int bench_use(int k, const float *input, const float *truth, float *output, float *delta)
{
    if (k < 0 || k >= n_layers) return 1;
    if (!own_output[k]) {
        own_output[k] = layers[k].output;
        own_delta[k] = layers[k].delta;
        own_input[k] = nets[k].input;
        if (k == 0) own_truth = nets[0].truth;
    }
    nets[k].input = input;
    nets[k].truth = truth;
    layers[k].output = output;
    layers[k].delta = delta;
    return 0;
}

/* The threads and path (DN_PATH_*) later forwards run with. */
void bench_set(int threads, int path)
{
    opt_threads = threads;
    opt_path = path;
}

/* One forward over every layer: milliseconds, and the costs summed in float
 * in layer order into *cost.  Negative on a refused input. */
double bench_forward(float *cost)
{
    int k;
    double t0 = now_ms(), t1;
    for (k = 0; k < n_layers; ++k) {
        if (forward_yolo_layer_opt(layers[k], nets[k], opt_threads, opt_path) != DN_OK) return -1;
    }
    t1 = now_ms();
    *cost = 0;
    for (k = 0; k < n_layers; ++k) *cost += *layers[k].cost;
    return t1 - t0;
}

/* ---- [region] ----------------------------------------------------------------
 * DIR/region_spec.txt: w h classes coords num batch seen softmax background
 * rescore bias_match thresh coord_scale object_scale noobject_scale
 * class_scale; region_anchors.bin, region_truth.bin (batch*30*(coords+1)
 * floats), region_input.bin. */

void bench_region_free(void)
{
    if (r_own_output) {
        rlayer.output = r_own_output;
        rlayer.delta = r_own_delta;
        rnet.input = r_own_input;
        rnet.truth = r_own_truth;
        r_own_output = r_own_delta = NULL;
    }
    free(rlayer.biases);
    free(rlayer.cost);
    free(rlayer.stats);
    free(rlayer.output);
    free(rlayer.delta);
    free((void *)rnet.input);
    free((void *)rnet.truth);
    memset(&rlayer, 0, sizeof rlayer);
    memset(&rnet, 0, sizeof rnet);
}

int bench_region_load(const char *dir)
{
    char path[4096];
    int w, h, classes, coords, num, batch, softmax, background, rescore, bias_match;
    long long seen;
    float thresh, coord_scale, object_scale, noobject_scale, class_scale;
    float *anchors;
    size_t n;
    FILE *spec;
    bench_region_free();
    snprintf(path, sizeof path, "%s/region_spec.txt", dir);
    spec = fopen(path, "r");
    if (!spec) return 1;
    if (fscanf(spec, "%d %d %d %d %d %d %lld %d %d %d %d %f %f %f %f %f", &w, &h, &classes, &coords, &num, &batch,
               &seen, &softmax, &background, &rescore, &bias_match, &thresh, &coord_scale, &object_scale,
               &noobject_scale, &class_scale) != 16) {
        fclose(spec);
        return 1;
    }
    fclose(spec);
    if (region_layer_init(&rlayer, batch, w, h, num, classes, coords) != DN_OK) return 1;
    rlayer.softmax = softmax;
    rlayer.background = background;
    rlayer.rescore = rescore;
    rlayer.bias_match = bias_match;
    rlayer.thresh = thresh;
    rlayer.coord_scale = coord_scale;
    rlayer.object_scale = object_scale;
    rlayer.noobject_scale = noobject_scale;
    rlayer.class_scale = class_scale;
    n = (size_t)rlayer.outputs*batch;
    rlayer.cost = malloc(sizeof(float));
    rlayer.stats = malloc(sizeof(loss_stats));
    rlayer.output = big_alloc(n*sizeof(float));
    rlayer.delta = big_alloc(n*sizeof(float));
    rlayer.biases = malloc((size_t)num*2*sizeof(float));
    anchors = slurp(dir, "region_anchors.bin", (size_t)num*2*sizeof(float));
    rnet.input = slurp(dir, "region_input.bin", n*sizeof(float));
    rnet.truth = slurp(dir, "region_truth.bin", (size_t)batch*rlayer.truths*sizeof(float));
    if (!rlayer.cost || !rlayer.stats || !rlayer.output || !rlayer.delta || !rlayer.biases || !anchors ||
        !rnet.input || !rnet.truth) return 1;
    memcpy(rlayer.biases, anchors, (size_t)num*2*sizeof(float));
    free(anchors);
    rnet.train = 1;
    rnet.seen = (size_t)seen;
    return 0;
}

int bench_region_use(const float *input, const float *truth, float *output, float *delta)
{
    if (!r_own_output) {
        r_own_output = rlayer.output;
        r_own_delta = rlayer.delta;
        r_own_input = rnet.input;
        r_own_truth = rnet.truth;
    }
    rnet.input = input;
    rnet.truth = truth;
    rlayer.output = output;
    rlayer.delta = delta;
    return 0;
}

double bench_region_forward(float *cost)
{
    double t0 = now_ms(), t1;
    if (forward_region_layer_opt(rlayer, rnet, opt_threads, opt_path) != DN_OK) return -1;
    t1 = now_ms();
    *cost = *rlayer.cost;
    return t1 - t0;
}

#ifndef BENCH_LIB
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int reps, r;
    double *times;
    float cost = 0;
    if (argc != 3) {
        fprintf(stderr, "usage: %s DIR REPS\n", argv[0]);
        return 2;
    }
    reps = atoi(argv[2]);
    if (reps < 1 || bench_load(argv[1]) != 0) return 2;
    times = malloc(sizeof(double)*reps);
    if (!times) return 2;
    for (r = 0; r < reps; ++r) {
        times[r] = bench_forward(&cost);
        if (times[r] < 0) return 3;
    }
    qsort(times, reps, sizeof(double), cmp_double);
    printf("%.3f %a\n", times[reps/2], cost);
    free(times);
    bench_free();
    return 0;
}
#endif
