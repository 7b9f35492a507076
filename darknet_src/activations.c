/*
 * activations.c -- logistic and softmax exactly as darknet's CPU code
 * computes them (src/activations.h, src/blas.c).
 */
#include <float.h>
#include <math.h>

#include "dn_fast.h"

/* Upstream: 1./(1. + exp(-x)).  The float is negated in float, exp and the
 * division run in double, and the result is rounded to float once. */
float logistic_activate(float x)
{
    return (float)(1./(1. + exp((double)-x)));
}

void activate_array_logistic(float *x, int n)
{
    int i;
    for (i = 0; i < n; ++i) {
        x[i] = logistic_activate(x[i]);
    }
}

/* Upstream's softmax(): the largest input (starting from -FLT_MAX, so an
 * all -inf group keeps -FLT_MAX), then e = exp(x/temp - largest/temp) with
 * both divisions and the subtraction in float and exp in double, a sequential
 * float sum, and a float division.  temp == 0 gives 0/0 = NaN everywhere. */
void softmax(const float *input, int n, float temp, int stride, float *output)
{
    int i;
    float sum = 0;
    float largest = -FLT_MAX;
    for (i = 0; i < n; ++i) {
        if (input[i*stride] > largest) largest = input[i*stride];
    }
    for (i = 0; i < n; ++i) {
        float e = (float)exp((double)(input[i*stride]/temp - largest/temp));
        sum = dn_add_acc(sum, e);  /* sum + e, as upstream's build adds it (dn_fast.h) */
        output[i*stride] = e;
    }
    for (i = 0; i < n; ++i) {
        output[i*stride] /= sum;
    }
}

void softmax_cpu(const float *input, int n, int batch, int batch_offset, int groups,
                 int group_offset, int stride, float temp, float *output)
{
    int g, b;
    for (b = 0; b < batch; ++b) {
        for (g = 0; g < groups; ++g) {
            softmax(input + b*batch_offset + g*group_offset, n, temp, stride,
                    output + b*batch_offset + g*group_offset);
        }
    }
}
