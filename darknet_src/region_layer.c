/*
 * region_layer.c -- darknet's [region] layer (YOLOv2, YOLO9000), forward
 * pass of the CPU build, reproduced operation for operation from upstream
 * src/region_layer.c at f6afaab.
 *
 * As in yolo_layer.c, every expression keeps upstream's types: int * float
 * is float, exp/log run in double, and each store into a float rounds.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dn_internal.h"

int region_layer_init(layer *l, int batch, int w, int h, int n, int classes, int coords)
{
    layer z;
    memset(&z, 0, sizeof z);
    *l = z;
    if (batch < 1 || w < 1 || h < 1 || n < 1 || classes < 1 || coords < 4) return DN_E_LAYER;
    if ((long long)w*h*n*(classes + coords + 1)*batch > 0x7fffffffLL) return DN_E_LAYER;
    l->type = DN_REGION;
    l->batch = batch;
    l->w = w;
    l->h = h;
    l->n = n;
    l->total = n;
    l->classes = classes;
    l->coords = coords;
    l->c = n*(classes + coords + 1);
    l->outputs = h*w*l->c;
    l->inputs = l->outputs;
    l->truths = DN_REGION_MAX_TRUTHS*(coords + 1);
    /* parse_region's defaults. */
    l->max_boxes = DN_REGION_MAX_TRUTHS;
    l->thresh = .5f;
    l->coord_scale = 1;
    l->object_scale = 1;
    l->noobject_scale = 1;
    l->class_scale = 1;
    l->mask_scale = 1;
    return DN_OK;
}

layer make_region_layer(int batch, int w, int h, int n, int classes, int coords)
{
    layer l;
    int i;
    if (region_layer_init(&l, batch, w, h, n, classes, coords) != DN_OK) return l;
    l.biases = calloc((size_t)n*2, sizeof(float));
    l.cost = calloc(1, sizeof(float));
    l.stats = calloc(1, sizeof(loss_stats));
    l.delta = calloc((size_t)batch*l.outputs, sizeof(float));
    l.output = calloc((size_t)batch*l.outputs, sizeof(float));
    if (!l.biases || !l.cost || !l.stats || !l.delta || !l.output) {
        free_layer(l);
        memset(&l, 0, sizeof l);
        return l;
    }
    for (i = 0; i < n*2; ++i) l.biases[i] = .5;
    return l;
}

/* get_yolo_box with the grid size standing in for the network size. */
box get_region_box(const float *x, const float *biases, int n, int index, int i, int j,
                   int w, int h, int stride)
{
    return get_yolo_box(x, biases, n, index, i, j, w, h, w, h, stride);
}

/* Upstream passes mask_scale (a float) to an int parameter: 1.7 scales by 1. */
static void delta_region_mask(const layer *l, const float *truth, const float *x, int n, int index,
                              int stride, int scale)
{
    int i;
    for (i = 0; i < n; ++i) {
        put_delta(l, index + i*stride, scale*(truth[i] - x[index + i*stride]), truth[i], (float)scale);
    }
}

/* Flat classes: scale * (target - p), with the same short-circuit as [yolo]
 * when `tag` (= !softmax) is set, except that the short-circuit adds nothing
 * to avg_cat.  With a tree: walk from the class up to the root, pushing every
 * sibling group towards 0 and the node itself towards 1; avg_cat gets the
 * product of the probabilities along the way. */
static void delta_region_class(const layer *l, const float *output, int index, int class_id,
                               int classes, const tree *hier, float scale, int stride,
                               float *avg_cat, int tag)
{
    int i, n;
    if (hier) {
        float pred = 1;
        while (class_id >= 0) {
            int g, offset;
            pred *= output[index + stride*class_id];
            g = hier->group[class_id];
            offset = hier->group_offset[g];
            for (i = 0; i < hier->group_size[g]; ++i) {
                put_delta(l, index + stride*(offset + i), scale * (0 - output[index + stride*(offset + i)]),
                          0, scale);
            }
            put_delta(l, index + stride*class_id, scale * (1 - output[index + stride*class_id]), 1, scale);
            class_id = hier->parent[class_id];
        }
        *avg_cat += pred;
        return;
    }
    if (l->delta[index] && tag) {
        put_delta(l, index + stride*class_id, scale * (1 - output[index + stride*class_id]), 1, scale);
        return;
    }
    for (n = 0; n < classes; ++n) {
        put_delta(l, index + stride*n, scale * (((n == class_id) ? 1 : 0) - output[index + stride*n]),
                  (n == class_id) ? 1 : 0, scale);
        if (n == class_id) *avg_cat += output[index + stride*n];
    }
}

/* Upstream's CPU activations, read from net.input, written to l.output. */
static void activate_region(const layer *l, const float *input)
{
    const int wh = l->w*l->h;
    int b, n, i;
    for (b = 0; b < l->batch; ++b) {
        for (n = 0; n < l->n; ++n) {
            /* x, y; objectness unless background; flat classes unless a
             * softmax follows.  Mask coords (coords > 4) stay raw on the CPU. */
            int index = entry_index(l, b, n*wh, 0);
            activate_array_logistic(l->output + index, 2*wh);
            index = entry_index(l, b, n*wh, l->coords);
            if (!l->background) activate_array_logistic(l->output + index, wh);
            index = entry_index(l, b, n*wh, l->coords + 1);
            if (!l->softmax && !l->softmax_tree) activate_array_logistic(l->output + index, l->classes*wh);
        }
    }
    if (l->softmax_tree) {
        /* Upstream's bug, reproduced: each group's softmax runs once per
         * "group" g = 0 .. n*w*h-1 at element offset g with stride n*w*h,
         * which is right only when n*w*h == 1; otherwise it mixes entries of
         * different anchors and cells and overwrites them.  And parse_region
         * never sets the temperature: at 0 every value is NaN. */
        int count = l->coords + 1;
        for (i = 0; i < l->softmax_tree->groups; ++i) {
            int group_size = l->softmax_tree->group_size[i];
            softmax_cpu(input + count, group_size, l->batch, l->inputs, l->n*wh, 1, l->n*wh,
                        l->temperature, l->output + count);
            count += group_size;
        }
    } else if (l->softmax) {
        /* With background the softmax starts at the objectness entry. */
        int index = entry_index(l, 0, 0, l->coords + !l->background);
        softmax_cpu(input + index, l->classes + l->background, l->batch*l->n, l->inputs/l->n, wh, 1,
                    wh, 1, l->output + index);
    }
}

/* (int)truth[coords], then the optional map. */
static int region_truth_class(const layer *l, const float *row)
{
    int class_id = (int)row[l->coords];
    if (l->map) class_id = l->map[class_id];
    return class_id;
}

int forward_region_layer_opt(const layer l, network net, int threads, int path)
{
    int i, j, b, t, n, err;
    const int wh = l.w*l.h;
    const int cols = l.coords + 1;
    dn_sums sums = {0, 0, 0, 0, 0, 0, 0, 0};

    err = dn_check_forward(&l, &net, DN_REGION);
    if (err != DN_OK) return err;
    (void)threads;
    (void)path;

    memcpy(l.output, net.input, (size_t)l.outputs*l.batch*sizeof(float));
    activate_region(&l, net.input);
    memset(l.delta, 0, (size_t)l.outputs*l.batch*sizeof(float));
    if (!net.train) return DN_OK;
    clear_targets(&l);

    *(l.cost) = 0;
    for (b = 0; b < l.batch; ++b) {
        const float *truths = net.truth + b*l.truths;

        if (l.softmax_tree) {
            /* A classification-only label (x, y > 100000): only the cell
             * and anchor that best predicts its class learns, and the rest
             * of the image's truths are skipped. */
            int onlyclass = 0;
            for (t = 0; t < DN_REGION_MAX_TRUTHS; ++t) {
                const float *row = truths + t*cols;
                box truth = float_to_box(row, 1);
                int class_id, maxi = 0, class_index, obj_index;
                float maxp = 0;
                if (!truth.x) break;
                if (!(truth.x > 100000 && truth.y > 100000)) continue;
                class_id = (int)row[l.coords];  /* not mapped on this path */
                for (n = 0; n < l.n*wh; ++n) {
                    int ci = entry_index(&l, b, n, l.coords + 1);
                    int oi = entry_index(&l, b, n, l.coords);
                    float scale = l.output[oi];
                    float p;
                    put_delta(&l, oi, l.noobject_scale * (0 - l.output[oi]), 0, l.noobject_scale);
                    p = scale*get_hierarchy_probability(l.output + ci, l.softmax_tree, class_id, wh);
                    if (p > maxp) {
                        maxp = p;
                        maxi = n;
                    }
                }
                class_index = entry_index(&l, b, maxi, l.coords + 1);
                obj_index = entry_index(&l, b, maxi, l.coords);
                delta_region_class(&l, l.output, class_index, class_id, l.classes,
                                   l.softmax_tree, l.class_scale, wh, &sums.avg_cat, !l.softmax);
                /* Upstream computes an objectness delta here and then
                 * overwrites it with 0. */
                clear_delta(&l, obj_index);
                ++sums.class_count;
                onlyclass = 1;
                break;
            }
            if (onlyclass) continue;
        }

        for (j = 0; j < l.h; ++j) {
            for (i = 0; i < l.w; ++i) {
                for (n = 0; n < l.n; ++n) {
                    int box_index = entry_index(&l, b, n*wh + j*l.w + i, 0);
                    int obj_index = entry_index(&l, b, n*wh + j*l.w + i, l.coords);
                    box pred = get_region_box(l.output, l.biases, n, box_index, i, j, l.w, l.h, wh);
                    float best_iou = 0;
                    for (t = 0; t < DN_REGION_MAX_TRUTHS; ++t) {
                        box truth = float_to_box(truths + t*cols, 1);
                        float iou;
                        if (!truth.x) break;
                        iou = box_iou(pred, truth);
                        if (iou > best_iou) best_iou = iou;
                    }
                    sums.avg_anyobj += l.output[obj_index];
                    put_delta(&l, obj_index, l.noobject_scale * (0 - l.output[obj_index]), 0, l.noobject_scale);
                    if (l.background) {
                        put_delta(&l, obj_index, l.noobject_scale * (1 - l.output[obj_index]), 1,
                                  l.noobject_scale);
                    }
                    if (best_iou > l.thresh) {
                        clear_delta(&l, obj_index);
                    }
                    /* Early training: pull every box towards its anchor at
                     * the cell centre.  (i + .5)/w is computed in double. */
                    if (net.seen < 12800) {
                        box truth;
                        truth.x = (float)((i + .5)/l.w);
                        truth.y = (float)((j + .5)/l.h);
                        truth.w = l.biases[2*n]/l.w;
                        truth.h = l.biases[2*n + 1]/l.h;
                        dn_delta_box(&l, truth, l.output, l.biases, n, box_index, i, j, l.w, l.h, l.w, l.h,
                                     .01f, wh);
                    }
                }
            }
        }

        for (t = 0; t < DN_REGION_MAX_TRUTHS; ++t) {
            const float *row = truths + t*cols;
            box truth = float_to_box(row, 1);
            box truth_shift;
            float best_iou = 0, iou;
            int best_n = 0, box_index, obj_index, class_index;
            if (!truth.x) break;
            i = (int)(truth.x*l.w);
            j = (int)(truth.y*l.h);
            truth_shift = truth;
            truth_shift.x = 0;
            truth_shift.y = 0;
            for (n = 0; n < l.n; ++n) {
                int bi = entry_index(&l, b, n*wh + j*l.w + i, 0);
                box pred = get_region_box(l.output, l.biases, n, bi, i, j, l.w, l.h, wh);
                float shape_iou;
                if (l.bias_match) {
                    pred.w = l.biases[2*n]/l.w;
                    pred.h = l.biases[2*n + 1]/l.h;
                }
                pred.x = 0;
                pred.y = 0;
                shape_iou = box_iou(pred, truth_shift);
                if (shape_iou > best_iou) {
                    best_iou = shape_iou;
                    best_n = n;
                }
            }

            box_index = entry_index(&l, b, best_n*wh + j*l.w + i, 0);
            iou = dn_delta_box(&l, truth, l.output, l.biases, best_n, box_index, i, j, l.w, l.h, l.w, l.h,
                               l.coord_scale * (2 - truth.w*truth.h), wh);
            if (l.coords > 4) {
                /* Upstream reads the mask targets from row + 5, one past
                 * where they start: the last one read is the class id. */
                int mask_index = entry_index(&l, b, best_n*wh + j*l.w + i, 4);
                delta_region_mask(&l, row + 5, l.output, l.coords - 4, mask_index, wh, (int)l.mask_scale);
            }
            if (iou > .5) sums.recall += 1;
            sums.avg_iou += iou;

            obj_index = entry_index(&l, b, best_n*wh + j*l.w + i, l.coords);
            sums.avg_obj += l.output[obj_index];
            put_delta(&l, obj_index, l.object_scale * (1 - l.output[obj_index]), 1, l.object_scale);
            if (l.rescore) {
                put_delta(&l, obj_index, l.object_scale * (iou - l.output[obj_index]), iou, l.object_scale);
            }
            if (l.background) {
                put_delta(&l, obj_index, l.object_scale * (0 - l.output[obj_index]), 0, l.object_scale);
            }

            class_index = entry_index(&l, b, best_n*wh + j*l.w + i, l.coords + 1);
            delta_region_class(&l, l.output, class_index, region_truth_class(&l, row), l.classes,
                               l.softmax_tree, l.class_scale, wh, &sums.avg_cat, !l.softmax);
            ++sums.count;
            ++sums.class_count;
        }
    }
    dn_finish_forward(&l, &sums);
    return DN_OK;
}

int forward_region_layer(const layer l, network net)
{
    return forward_region_layer_opt(l, net, 1, DN_PATH_AUTO);
}

/* ---- detections ------------------------------------------------------------- */

void correct_region_boxes(detection *dets, int n, int w, int h, int netw, int neth, int relative)
{
    correct_yolo_boxes(dets, n, w, h, netw, neth, relative);
}

void get_region_detections(const layer l, int w, int h, int netw, int neth, float thresh, const int *map,
                           float tree_thresh, int relative, detection *dets)
{
    int i, j, n;
    float *predictions = l.output;
    if (l.batch == 2) avg_flipped_yolo(l);
    for (i = 0; i < l.w*l.h; ++i) {
        int row = i / l.w;
        int col = i % l.w;
        for (n = 0; n < l.n; ++n) {
            int index = n*l.w*l.h + i;
            int obj_index = entry_index(&l, 0, n*l.w*l.h + i, l.coords);
            int box_index = entry_index(&l, 0, n*l.w*l.h + i, 0);
            int mask_index = entry_index(&l, 0, n*l.w*l.h + i, 4);
            int class_index = entry_index(&l, 0, n*l.w*l.h + i, l.coords + !l.background);
            float scale;
            for (j = 0; j < l.classes; ++j) dets[index].prob[j] = 0;
            scale = l.background ? 1 : predictions[obj_index];
            dets[index].bbox = get_region_box(predictions, l.biases, n, box_index, col, row, l.w, l.h,
                                              l.w*l.h);
            dets[index].objectness = scale > thresh ? scale : 0;
            if (dets[index].mask) {
                for (j = 0; j < l.coords - 4; ++j) {
                    dets[index].mask[j] = l.output[mask_index + j*l.w*l.h];
                }
            }
            if (l.softmax_tree) {
                /* In place: each class times its parent's (output_after shows it). */
                hierarchy_predictions(predictions + class_index, l.classes, l.softmax_tree, 0, l.w*l.h);
                if (map) {
                    /* Upstream reads 200 map entries whatever the map's length. */
                    for (j = 0; j < 200; ++j) {
                        int ci = entry_index(&l, 0, n*l.w*l.h + i, l.coords + 1 + map[j]);
                        float prob = scale*predictions[ci];
                        dets[index].prob[j] = (prob > thresh) ? prob : 0;
                    }
                } else {
                    int top = hierarchy_top_prediction(predictions + class_index, l.softmax_tree,
                                                       tree_thresh, l.w*l.h);
                    dets[index].prob[top] = (scale > thresh) ? scale : 0;
                }
            } else if (dets[index].objectness) {
                for (j = 0; j < l.classes; ++j) {
                    int ci = entry_index(&l, 0, n*l.w*l.h + i, l.coords + 1 + j);
                    float prob = scale*predictions[ci];
                    dets[index].prob[j] = (prob > thresh) ? prob : 0;
                }
            }
        }
    }
    correct_region_boxes(dets, l.w*l.h*l.n, w, h, netw, neth, relative);
}
