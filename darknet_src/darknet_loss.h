/*
 * darknet_loss.h -- the one public header of the pydarknet_loss C core.
 *
 * A bit-exact reproduction of the loss-layer arithmetic of pjreddie/darknet
 * at commit f6afaabcdf85f77e7aff2ec55c020c0e297c77f9 (src/yolo_layer.c,
 * src/region_layer.c, src/box.c and the pieces of activations/blas/utils they
 * use).  The code is our own; the names at the boundary are darknet's, so that
 * people who know darknet find `layer`, `network`, `box` and
 * `forward_yolo_layer` where they expect them.
 *
 * Differences from upstream's interface, all deliberate:
 *   - nothing prints: the statistics upstream printf()s are written to
 *     `*layer.stats` (when that pointer is not NULL);
 *   - no globals, no allocation inside forward passes;
 *   - forward functions return 0, or a negative DN_E* code *before touching
 *     any buffer* when the input would make upstream read or write outside
 *     its buffers (a truth whose cell lies outside the grid, a class id
 *     outside [0, classes)).  Upstream would silently corrupt memory there.
 *
 * Build with -O2 -fno-fast-math -ffp-contract=off (never -ffast-math or
 * -march=native): bit-exactness depends on it.
 *
 * This header is also the single source of truth for the cffi binding:
 * build_ffi.py feeds it to cdef() after dropping preprocessor lines, so it
 * must stay plain C declarations (no macros beyond integer #defines).
 */
#ifndef DARKNET_LOSS_H
#define DARKNET_LOSS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Fixed truth strides.  Upstream allocates net.truth per image with room for
 * 90 boxes for [yolo] (whatever `max` says) and 30 for [region]. */
#define DN_YOLO_MAX_TRUTHS 90
#define DN_REGION_MAX_TRUTHS 30

/* Return codes.  The forward functions check their input first and return
 * one of these, without touching any buffer, where upstream would read or
 * write outside its buffers or where a truth row is not a box at all. */
#define DN_OK 0
#define DN_E_LAYER -1           /* the layer is inconsistent (sizes, mask, max_boxes, tree) */
#define DN_E_TRUTH_VALUE -2     /* a used truth row holds NaN or an infinity */
#define DN_E_TRUTH_SIZE -3      /* a used truth row has w <= 0 or h <= 0 */
#define DN_E_TRUTH_CELL -4      /* (int)(x*w) or (int)(y*h), in float, lies outside the grid */
#define DN_E_MAP_INDEX -5       /* a class id lies outside the class map */
#define DN_E_TRUTH_CLASS -6     /* a class id (after the map) lies outside [0, classes) */
#define DN_E_TREE_LOOP -7       /* upstream's hierarchy_top_prediction would never return */

/* Layer types, as darknet's LAYER_TYPE names them. */
#define DN_YOLO 1
#define DN_REGION 2

typedef struct box {
    float x, y, w, h;
} box;

/* darknet's detection: one box with its objectness and class probabilities.
 * prob points at `classes` floats (200 for the [region] tree+map path), mask
 * at coords-4 floats or NULL; both are the caller's. */
typedef struct detection {
    box bbox;
    int classes;
    float *prob;
    float *mask;
    float objectness;
    int sort_class;
} detection;

/* darknet's box_label: one line of a label file, with its edges. */
typedef struct box_label {
    int id;
    float x, y, w, h;
    float left, right, top, bottom;
} box_label;

/* Why read_boxes_checked() refused a label file. */
#define DN_LABEL_MALFORMED 1    /* a line is not "int float float float float" */
#define DN_LABEL_RANGE 2        /* a negative class id, or x, y, w, h outside [0, 1] */
#define DN_LABEL_UNREADABLE 3   /* the file cannot be opened or memory ran out */
#define DN_LABEL_NUL 4          /* a line holds a NUL byte (not text: upstream's fscanf misreads it) */

/* darknet's tree (read_tree): a softmax hierarchy. */
typedef struct tree {
    int *leaf;
    int n;
    int *parent;
    int *child;
    int *group;
    char **name;
    int groups;
    int *group_size;
    int *group_offset;
} tree;

/* The statistics upstream prints at the end of a training forward, as the
 * float values it passes to printf (already divided: 0/0 is NaN).
 * [yolo]:   "Region %d Avg IOU: %f, Class: %f, Obj: %f, No Obj: %f, .5R: %f, .75R: %f,  count: %d"
 * [region]: "Region Avg IOU: %f, Class: %f, Obj: %f, No Obj: %f, Avg Recall: %f,  count: %d"
 * recall75 is [yolo] only. */
typedef struct loss_stats {
    float avg_iou;
    float avg_cat;
    float avg_obj;
    float avg_anyobj;
    float recall;
    float recall75;
    int count;
    int class_count;
} loss_stats;

/* The subset of darknet's `layer` that the loss layers read. */
typedef struct layer {
    int type;                 /* DN_YOLO or DN_REGION */
    int batch;
    int w, h, c;              /* grid width/height; c = n*(classes+coords+1) */
    int n;                    /* anchors in this layer (len(mask) for [yolo]) */
    int total;                /* [yolo]: all anchors of the network */
    int classes;
    int coords;               /* 4 for [yolo] */
    int outputs, inputs;      /* per image: w*h*c */
    int truths;               /* per image truth stride in floats */
    int max_boxes;            /* [yolo] `max`; [region] parses it but never reads it */
    int *mask;                /* [yolo]: n anchor indices into biases */
    const int *map;           /* optional class map, borrowed (NULL when absent) */
    int map_len;              /* entries in map; ids at or beyond it are refused */
    float *biases;            /* anchors: 2*total ([yolo]) or 2*n ([region]) */

    float ignore_thresh;      /* [yolo] */
    float truth_thresh;       /* [yolo] */

    int softmax;              /* [region] */
    int background;
    int rescore;
    int bias_match;
    float thresh;
    float coord_scale;
    float object_scale;
    float noobject_scale;
    float class_scale;
    float mask_scale;         /* truncated to int when used, as upstream does */
    float temperature;        /* softmax-tree temperature; upstream's parser leaves it 0 */
    const tree *softmax_tree; /* borrowed */

    /* Written by the forward pass (through the pointers: the layer itself is
     * passed as `const layer`, as upstream does). */
    float *output;            /* batch*outputs */
    float *delta;             /* batch*outputs */
    float *cost;              /* one float */
    loss_stats *stats;        /* may be NULL */
    /* Optional, for the implied loss (NULL normally): for every entry the
     * forward pass gives a delta, the target t and scale s with
     * delta = s*(t - v), v being the output (or the raw input for w, h and
     * the mask coords); target_scale is NaN where an entry has no term. */
    float *target;            /* batch*outputs, or NULL */
    float *target_scale;      /* batch*outputs, or NULL */
} layer;

/* The subset of darknet's `network` that the loss layers read. */
typedef struct network {
    const float *input;       /* batch*inputs, darknet layout [b][anchor][entry][row][col] */
    const float *truth;       /* batch*truths */
    int train;
    int w, h;                 /* network input size (net.w, net.h) */
    int index;                /* layer index, only printed by upstream */
    size_t seen;              /* upstream's *net.seen ([region] prior rule) */
    int input_activated;      /* nonzero: `input` already holds the GPU build's device activations
                                 (forward_*_layer_gpu pulls them into net.input), so the forward skips
                                 its CPU activation, as upstream's GPU=1 build compiles it out */
} network;

/* ---- box.c ---- */
box float_to_box(const float *f, int stride);
float overlap(float x1, float w1, float x2, float w2);
float box_intersection(box a, box b);
float box_union(box a, box b);
float box_iou(box a, box b);
float box_rmse(box a, box b);
/* out[i] = box_iou / box_rmse of rows i of a and b (n rows of x, y, w, h). */
void box_iou_rows(const float *a, const float *b, int n, float *out);
void box_rmse_rows(const float *a, const float *b, int n, float *out);

/* do_nms_sort / do_nms_obj (upstream f6afaab).  The order is that of
 * glibc 2.36's qsort on these 48-byte elements: a top-down merge sort that
 * keeps the left element on ties, implemented here (the platform's qsort is
 * never called), so the result does not depend on the C library.  Return 0,
 * or -1 when the scratch memory cannot be had (nothing is changed then). */
int do_nms_sort(detection *dets, int total, int classes, float thresh);
int do_nms_obj(detection *dets, int total, int classes, float thresh);
int nms_comparator(const void *pa, const void *pb);
/* Fills n detections from arrays (bbox n*4, objectness n, sort_class n or
 * NULL for 0) with prob[i] = prob + i*classes and mask[i] = mask + i*mask_n
 * (NULL mask: none); dets_to_arrays reads them back, order[i] being the row
 * of prob_base that detection i's prob points at. */
void dets_from_arrays(detection *dets, int n, int classes, const float *bbox, const float *objectness,
                      float *prob, const int *sort_class, float *mask, int mask_n);
void dets_to_arrays(const detection *dets, int n, int classes, float *bbox, float *objectness,
                    float *prob, int *sort_class, int *order, const float *prob_base);

/* ---- activations.c ---- */
float logistic_activate(float x);
void activate_array_logistic(float *x, int n);
void softmax(const float *input, int n, float temp, int stride, float *output);
void softmax_cpu(const float *input, int n, int batch, int batch_offset, int groups,
                 int group_offset, int stride, float temp, float *output);

/* ---- tree.c ---- */
/* Fills *t from a parent array (parent[i] in [-1, i)) the way read_tree()
 * builds it line by line, without allocating: the caller provides child,
 * group and leaf (n ints each) and group_size, group_offset (n+1 ints each);
 * the tree points at them and at parent.  t->name is left NULL. */
int tree_init(tree *t, int n, int *parent, int *child, int *group, int *leaf,
              int *group_size, int *group_offset);
/* darknet's read_tree(): one "name parent" line per node.  Returns NULL when
 * the file cannot be read or a line is malformed (no name, a name longer than
 * 255 bytes, no integer parent, or a parent outside [-1, line index));
 * *bad_line then holds the 1-based line number (0 when the file could not be
 * read at all).  Release with free_tree(). */
tree *read_tree_checked(const char *filename, int *bad_line);
tree *read_tree(const char *filename);
void free_tree(tree *t);
float get_hierarchy_probability(const float *x, const tree *hier, int c, int stride);
/* Multiplies each class probability by its parent's (parents first), in place. */
void hierarchy_predictions(float *predictions, int n, const tree *hier, int only_leaves, int stride);
/* darknet's hierarchy_top_prediction, bounded (tree.c explains the bound):
 * upstream's result wherever upstream returns.  Where upstream would loop
 * forever (only possible when thresh < 0) the checked version returns
 * DN_E_TREE_LOOP, and DN_E_LAYER when the tree's indices are out of range;
 * the unchecked one returns node 0 in both cases. */
int hierarchy_top_prediction_checked(const float *predictions, const tree *hier, float thresh, int stride,
                                     int *top);
int hierarchy_top_prediction(const float *predictions, const tree *hier, float thresh, int stride);

/* ---- data.c ---- */
/* read_boxes' box_label for one "id x y w h" (left = x - w/2, ... in float). */
box_label box_label_from(int id, float x, float y, float w, float h);
/* darknet's read_boxes, line by line and strict: where upstream's fscanf
 * loop silently stops (or misreads a "1.5" class as two numbers), this
 * refuses the file and names the 1-based line and the reason (DN_LABEL_*).
 * Blank lines are skipped.  Release the boxes with free_boxes(). */
box_label *read_boxes_checked(const char *filename, int *n, int *bad_line, int *why);
void free_boxes(box_label *boxes);
void correct_boxes(box_label *boxes, int n, float dx, float dy, float sx, float sy, int flip);
/* fill_truth_detection after read_boxes and without randomize_boxes:
 * correct_boxes, truncation to num_boxes, then boxes under .001 wide or high
 * dropped; writes rows of x, y, w, h, id into truth (num_boxes*5 floats,
 * zeroed by the caller) and returns how many. */
int fill_truth_detection_boxes(box_label *boxes, int count, int num_boxes, float *truth,
                               float dx, float dy, float sx, float sy, int flip);

/* ---- utils.c ---- */
float mag_array(const float *a, int n);
int int_index(const int *a, int val, int n);

/* ---- checks.c ---- */
/* DN_OK, or DN_E_LAYER when the layer's fields cannot be run safely. */
int check_layer(const layer l);
/* Why check_layer refuses the layer (a static string), or NULL.  forward = 0
 * checks only what the detection functions read (no delta, cost). */
const char *layer_problem(const layer l, int forward);
/* A tree as read_tree builds it: every index in range (parents earlier,
 * groups and children within [0, groups), each node inside its group).
 * tree_problem says why not (a static string), or NULL. */
int check_tree(const tree *t);
const char *tree_problem(const tree *t);
/* For the [region] tree path without a map: DN_OK when upstream's
 * hierarchy_top_prediction returns for every cell and anchor of image 0 of
 * l.output (as get_region_detections leaves it) at this thresh; else
 * DN_E_TREE_LOOP (or DN_E_LAYER) and the detection index in *bad_index. */
int check_tree_top(const layer l, float thresh, int *bad_index);
/* Scan the truth rows a forward pass of `l` will read (per image: rows before
 * the first x == 0, at most max_boxes for [yolo] and 30 for [region]) and
 * report the first bad one in *bad_image, *bad_row (either may be NULL). */
int check_truths(const layer l, const float *truth, int *bad_image, int *bad_row);

/* ---- yolo_layer.c ---- */
/* Fill the shape fields of a [yolo] layer without allocating anything; the
 * caller then points mask, biases, output, delta, cost (and stats) at its own
 * buffers.  Returns DN_OK or DN_E_LAYER. */
int yolo_layer_init(layer *l, int batch, int w, int h, int n, int total, int classes);
/* darknet's make_yolo_layer: allocates every buffer (mask copied, or 0..n-1
 * when NULL; biases set to .5; ignore_thresh .5, truth_thresh 1, max 90 as
 * parse_yolo defaults them).  Release with free_layer().  On failure the
 * returned layer has output == NULL. */
layer make_yolo_layer(int batch, int w, int h, int n, int total, const int *mask, int classes);
/* Frees what make_*_layer allocated. */
void free_layer(layer l);
int forward_yolo_layer(const layer l, network net);
box get_yolo_box(const float *x, const float *biases, int n, int index, int i, int j,
                 int lw, int lh, int w, int h, int stride);

/* Detections ([yolo] on l.output, image 0; l.output is modified in place
 * when batch == 2, as upstream's flip-averaging does).  dets must hold
 * l.w*l.h*l.n entries: with batch 2 the count can exceed what
 * yolo_num_detections() counted before the averaging, which is all upstream
 * allocates. */
int yolo_num_detections(const layer l, float thresh);
void avg_flipped_yolo(const layer l);
int get_yolo_detections(const layer l, int w, int h, int netw, int neth, float thresh, const int *map,
                        int relative, detection *dets);
/* The letterbox correction; new_w/new_h use int division as upstream's. */
void correct_yolo_boxes(detection *dets, int n, int w, int h, int netw, int neth, int relative);

/* ---- region_layer.c ---- */
/* As yolo_layer_init for [region]: shape fields and parse_region's defaults
 * (thresh .5, every scale 1), no allocation.  total is set to n. */
int region_layer_init(layer *l, int batch, int w, int h, int n, int classes, int coords);
/* darknet's make_region_layer: allocates biases (.5), output, delta, cost and
 * stats; release with free_layer().  map and softmax_tree are borrowed. */
layer make_region_layer(int batch, int w, int h, int n, int classes, int coords);
/* The CPU build's forward_region_layer.  (Its backward_region_layer is empty:
 * the CPU build hands no gradient on.) */
int forward_region_layer(const layer l, network net);
box get_region_box(const float *x, const float *biases, int n, int index, int i, int j,
                   int w, int h, int stride);
/* All l.w*l.h*l.n detections of image 0 (index n*w*h + cell).  With a tree
 * and a map, upstream reads map[0..199] and writes prob[0..199]: map must
 * have 200 entries in [0, classes) and prob room for max(classes, 200). */
void get_region_detections(const layer l, int w, int h, int netw, int neth, float thresh, const int *map,
                           float tree_thresh, int relative, detection *dets);
void correct_region_boxes(detection *dets, int n, int w, int h, int netw, int neth, int relative);

/* ---- speed: paths and threads (fast.c, parallel.c) ---- */
/* Every path returns the same bits: the fast paths compute differently only
 * where fast.c proves the reference's float result, and fall back to the
 * reference expression elsewhere.  DN_PATH_AUTO picks AVX2 kernels when the
 * CPU has AVX2 and FMA, the portable ones otherwise; DN_PATH_PORTABLE forces
 * plain C99 (what a machine without AVX2 runs); DN_PATH_REFERENCE runs
 * upstream's loops as written (libm per element, the full ignore loop). */
#define DN_PATH_AUTO 0
#define DN_PATH_PORTABLE 1
#define DN_PATH_REFERENCE 2
#define DN_PATH_AVX2 3          /* reported by dn_path_in_use; as a request, the same as AUTO */
/* The path a request runs on this CPU (DN_PATH_AVX2, _PORTABLE or _REFERENCE). */
int dn_path_in_use(int path);
/* out[i] = logistic_activate(in[i]) (in may equal out) on the given path;
 * returns how many elements the fast kernels handed to libm. */
long logistic_array_path(const float *in, float *out, int n, int path);
/* The other two fast kernels, likewise: out[i] = (float)(exp((double)in[i])
 * * scale / div), get_yolo_box's w and h; and (float)exp((double)in[i]),
 * softmax()'s terms. */
long box_size_array_path(const float *in, float *out, int n, float scale, int div, int path);
long expf_array_path(const float *in, float *out, int n, int path);
/* forward_yolo_layer / forward_region_layer on the given path, with up to
 * `threads` threads (the caller's included) working on separate images;
 * every float sum that crosses images is added on the calling thread in
 * upstream's order, so the result does not depend on `threads`.  The plain
 * forward functions are these with one thread and DN_PATH_AUTO. */
int forward_yolo_layer_opt(const layer l, network net, int threads, int path);
int forward_region_layer_opt(const layer l, network net, int threads, int path);
/* A training forward_yolo_layer_opt (l.target NULL) that also hands back the
 * implied loss's selection compactly (pdl.torch reads it instead of the dense
 * l.target/l.target_scale): obj_target/obj_scale[(b*n + anchor)*w*h + cell],
 * the objectness entries' target and scale (NaN: no term); and one row per
 * cell the truth loop assigned, at rows b*max_boxes .. b*max_boxes +
 * max_boxes - 1 for image b: cells[row] = (b*n + anchor)*w*h + cell (-1 for
 * an unused row), cell_target/cell_scale[row*(5 + classes) + entry] its
 * entries' targets and scales.  The arrays hold batch*n*w*h and
 * batch*max_boxes (times 5 + classes) values.  With DN_OK, l.delta holds
 * the gradient of the implied loss, 0 - delta (cost and statistics are the
 * forward's own), and parts[0..DN_IMPLIED_PARTS) the implied loss's parts in
 * pydarknet_loss.implied.PARTS order (xy, wh, obj_pos, obj_neg, class,
 * prior, mask), compensated double sums added in image order.  Returns DN_OK, a DN_E* code (nothing touched), or
 * DN_TERMS_DENSE when a cell went through the truth_thresh branch, which
 * these rows do not describe (output, cost and statistics are complete;
 * run the forward again, with l.target, for the selection and delta). */
#define DN_TERMS_DENSE 1
#define DN_IMPLIED_PARTS 7
int forward_yolo_layer_terms(const layer l, network net, int threads, int path, float *obj_target,
                             float *obj_scale, int *cells, float *cell_target, float *cell_scale, double *parts);

/* ---- record.c ---- */
/* Which rows of an image's truth list upstream reads. */
#define DN_ROW_READ 0           /* read by both loops */
#define DN_ROW_TERMINATOR 1     /* the first row with x == 0: the list ends here */
#define DN_ROW_AFTER 2          /* after that terminator */
#define DN_ROW_BEYOND_MAX 3     /* [yolo]: at or beyond max_boxes, before any terminator */

/* What a training forward decided, for explaining where another
 * implementation departs from it.  Every pointer is the caller's.
 * Per cell and anchor (batch*n*h*w entries, ((b*n + a)*h + j)*w + i):
 *   best_iou, best_truth: the ignore loop's best IoU and its row (0 and -1
 *   when no truth overlaps), over the rows upstream reads;
 *   best_iou_ext, best_truth_ext: the same over those rows and every row
 *   upstream does not read that still looks like a box (finite, w, h > 0,
 *   its cell inside the grid).
 * Per truth row (batch*rows entries, rows = l.truths/(coords + 1)):
 *   row_status: DN_ROW_*;
 *   best_anchor: the anchor loop 2 picks for the row ([yolo]: an index into
 *   the biases, over all `total` anchors; [region]: 0..n-1), -1 when the row
 *   is not a box inside the grid;
 *   best_in_mask: [yolo]: the mask index of the best anchor among the
 *   mask's alone; [region]: best_anchor;
 *   row_iou: IoU of the prediction at the row's cell and anchor with the
 *   truth (NaN when its anchor is not in this layer). */
typedef struct loss_record {
    float *best_iou;
    int *best_truth;
    float *best_iou_ext;
    int *best_truth_ext;
    int *row_status;
    int *best_anchor;
    int *best_in_mask;
    float *row_iou;
} loss_record;

/* Fills rec for a layer whose l.output a training forward of the same net
 * has just computed.  Returns DN_OK, or DN_E_LAYER for an unusable layer.
 * record_loss_layer runs upstream's loops as written, on one thread;
 * record_loss_layer_opt runs on a DN_PATH_* with up to `threads` threads
 * (images in parallel; [yolo]'s ignore loop through the forward's fast
 * kernels) and fills rec with the same values, bit for bit. */
int record_loss_layer(const layer l, network net, loss_record rec);
int record_loss_layer_opt(const layer l, network net, loss_record rec, int threads, int path);

/* ==== The parity toolkit's comparison (compare.c) ====
 *
 * Not darknet's arithmetic: pydarknet_loss.compare's table in one pass.
 * expected and actual hold `blocks` blocks ([b][anchor]) of `entries`
 * entries of `hw` floats each.  An element passes when its ULP distance
 * (float32 bit patterns ordered as integers, +0 and -0 apart by 0, NaN from
 * NaN by 0, NaN from a number by LLONG_MAX) is at most max_ulp, or
 * |actual - expected| <= atol + rtol*|expected| (tried only when atol or
 * rtol is not 0).  stats[e] gets entry e's reductions over every element;
 * fail (NULL, or one byte per element) 1 where an element fails.  Returns
 * the number of failing elements. */
typedef struct dn_compare_stats {
    long long size;        /* elements */
    long long fail;        /* failing elements */
    double max_abs;        /* largest finite |actual - expected|; -1 when none */
    double max_rel;        /* largest finite |actual - expected|/|expected| where expected != 0; -1 when none */
    long long max_ulp;     /* largest ULP distance between values of one sign; -1 when none */
    long long nan_vs_num;  /* elements where NaN meets a number */
    long long flips;       /* elements of opposite signs (neither NaN) */
} dn_compare_stats;

/* The diagnosis's rounding bound of a forward's delta, without a softmax
 * (pydarknet_loss.implied.rounding_bound(of="delta") computes the same
 * numbers, every step in the same order): per element, two float32 ULPs of
 * each rounding step upstream takes (the scale times the larger of target
 * and output; the box targets' x*W, the prior's (i + .5)/W, log's argument;
 * [region]'s float32 IoU for rescore), floored at 2^-126, 1e-6 where the
 * delta is 0.  Arrays are `blocks` blocks ([b][anchor]) of `entries`
 * entries of h*w floats; scale is NaN where an element has no term.
 * region != 0 for [region]; coords is its objectness entry. */
void dn_delta_bound(const float *target, const float *scale, const float *output, const float *delta,
                    long long blocks, int entries, int h, int w, int coords, int region, double *out);

/* dn_delta_bound at `count` elements only: flat indices into the same
 * (blocks, entries, h, w) arrays; out[m] is the bound of element flat[m],
 * bit for bit what dn_delta_bound writes there.  For a comparison whose
 * failing elements are a part of a large delta. */
void dn_delta_bound_at(const float *target, const float *scale, const float *output, const float *delta,
                       const long long *flat, long long count, int entries, int h, int w, int coords,
                       int region, double *out);

long long dn_compare_arrays(const float *expected, const float *actual, long long blocks, int entries, long long hw,
                            double atol, double rtol, long long max_ulp, dn_compare_stats *stats,
                            unsigned char *fail);

/* ==== AlexeyAB/darknet 59596d7: the [yolo] layer of the YOLOv4/YOLOv7 lineage ====
 *
 * AlexeyAB's forward_yolo_layer (src/yolo_layer.c, src/box.c at commit
 * 59596d7880f6504768df41d6daa586f5cb2b932f) is a different loss from
 * pjreddie's: box deltas accumulate, IoU-family box losses, normalizers,
 * scale_x_y, new_coords, iou_thresh extra anchors, objectness_smooth, label
 * smoothing, focal loss and per-class multipliers.  Its `layer` holds far
 * more fields than pjreddie's, so it gets its own struct, `ab_yolo_layer`
 * (the fields forward reads, named as upstream names them), and its own
 * `ab_network_state` (upstream's `network_state`: input, truth, train,
 * index, net.w/net.h).  pjreddie's `layer` is untouched.
 *
 * As for pjreddie: nothing prints (the "v3 (...)" statistics go to
 * *l.stats; the out-of-range class warnings are counted, not printed), no
 * globals, no system(); the forward returns a DN_E_* code before touching
 * any buffer where upstream would read or write outside its buffers, or
 * would run system() on a bad label.
 */

/* Truth rows are x, y, w, h, class_id, track_id; the image stride is
 * l.truths = max_boxes*AB_TRUTH_SIZE floats (upstream's l.truth_size = 4 + 2). */
#define AB_TRUTH_SIZE 6

/* Return codes only the AlexeyAB layer gives (besides DN_E_*).
 * DN_E_TRUTH_LABEL: a used row has x, y outside [0, 1] or w, h < 0, for which
 * upstream prints "Wrong label" and runs system() to append it to bad_label.list.
 * DN_E_TRUTH_INT: a class id or track id does not fit a C int ((int) is undefined there). */
#define DN_E_TRUTH_LABEL -7
#define DN_E_TRUTH_INT -8

/* IOU_LOSS, in upstream's enum order (include/darknet.h). */
#define AB_IOU 0
#define AB_GIOU 1
#define AB_MSE 2
#define AB_DIOU 3
#define AB_CIOU 4

/* upstream's box.h types: a box as top/bottom/left/right, and dx_box_iou's
 * result (named dt, db, dl, dr but holding d/dx, d/dy, d/dw, d/dh). */
typedef struct boxabs {
    float left, right, top, bot;
} boxabs;

typedef struct dxrep {
    float dt, db, dl, dr;
} dxrep;

/* One image's partial sums, as upstream's per-image thread (process_batch)
 * leaves them in its train_yolo_args; forward adds them in image order. */
typedef struct ab_image_sums {
    float tot_iou;            /* sum of IoU over assignments (float, in truth order) */
    float tot_iou_loss;       /* sum of 1 - IoU */
    float tot_giou_loss;      /* sum of 1 - GIoU */
    int count;                /* assignments (best anchor + iou_thresh extras) */
    int class_count;
    long long total_bbox;     /* box deltas written (both loops): upstream's *net.total_bbox, exactly */
    long long rewritten_bbox; /* ... onto a box delta already non-zero: *net.rewritten_bbox */
    long long skipped_truths; /* truth rows skipped because (int)class_id is outside [0, classes) */
} ab_image_sums;

/* What upstream prints at the end of a training forward ("v3 (...)" on
 * stderr), as the values passed to fprintf, and the counters. */
typedef struct ab_yolo_stats {
    float avg_iou;            /* tot_iou / count */
    float class_loss;         /* obj_normalizer*|delta without box entries|^2 / batch (show_details != 0) */
    float iou_loss;           /* (loss - class_loss) / batch, as upstream subtracts before dividing */
    float total_loss;         /* pow(mag_array(delta), 2) / batch */
    int count;                /* printed count: 1 when nothing was assigned */
    ab_image_sums sums;       /* the per-image sums added in image order (count there is the raw one) */
} ab_yolo_stats;

/* ==== hank-ai/darknet f684e1d7 ("Darknet/YOLO"): variation points of the AlexeyAB layer ====
 *
 * hank-ai's [yolo] (src-lib/yolo_layer.cpp, src-lib/box.cpp) is AlexeyAB's
 * C code compiled as C++ with OpenCV's headers, which put the float
 * overloads of exp/log/atan into the global namespace.  The AlexeyAB layer
 * runs it when ab_yolo_layer.flavor is AB_FLAVOR_HANKAI.  Every difference,
 * tagged HANK(n) at the line that makes it (hank-ai file:line):
 *
 *  n  where (ours)                   AlexeyAB 59596d7                 hank-ai f684e1d7
 *  1  ab_get_yolo_box                w = (float)(exp(x)*anchor/net_w) w = expf(x)*anchor/net_w in float
 *                                    (double, one rounding)           (yolo_layer.cpp:38-39)
 *  2  delta_yolo_box, MSE            tw = (float)log(t.w*net_w/anchor) tw = logf(...)     (:113-114)
 *  3  delta_yolo_box, IoU losses     dw = (float)(dw*exp(x_w))        dw *= expf(x_w)     (:163-164)
 *  4  ab_box.c overlap               left = l1 > l2 ? l1 : l2         std::max(l1, l2) = l1 < l2 ? l2 : l1,
 *                                    (a NaN picks the second)         std::min likewise: a NaN first
 *                                                                     operand propagates  (box.cpp:75,79)
 *  5  ab_box.c box_intersection      0 when w < 0 or h < 0            0 when w <= 0, then h <= 0
 *                                                                     (0*inf is never formed) (:91,97)
 *  6  ab_box.c box_iou               0 when I == 0 or U == 0          0 when I == 0; I/U otherwise (:321)
 *  7  ab_box.c CIoU (box_ciou,       atan in double, the difference   atanf, the difference in float,
 *     dx_box_iou)                    in double                        then the double formula (:478, 645-648)
 *  8  finish_sums (cost, stats)      show_details=0: pow(|delta|,2)   show_details is not read: always
 *                                    and no class/iou_loss            the detailed cost (:1096-1122)
 *  9  ab_check_yolo_truths           class id outside [0, classes):   fatal in loop 1 (:545), before any
 *                                    row skipped with warnings        coordinate check (any row)
 * 10  ab_check_yolo_truths           bad x, y, w, h: "Wrong label",   fatal in loop 2 (:662)
 *                                    system() (refused here too)
 * 11  the "v3" line                  fprintf(stderr, "v3 (...) ")     std::ostream, only with --verbose,
 *                                                                     another format (Python: hankai.py)
 *
 * Same by construction (not variation points): the logistic (expf in both),
 * sqrt (float or double: the same rounding), mag_array, delta_yolo_class,
 * averages_yolo_deltas, the loops' order.  The fast paths (ab_fast*.c) prove
 * AlexeyAB's double exp; a hankai layer always runs the reference path. */
#define AB_FLAVOR_ALEXEYAB 0
#define AB_FLAVOR_HANKAI 1
/* ==== end hank-ai ==== */

/* The fields of AlexeyAB's `layer` that forward_yolo_layer reads. */
typedef struct ab_yolo_layer {
    int batch;
    int w, h, c;              /* c = n*(classes + 4 + 1) */
    int n;                    /* anchors in this layer (len(mask)) */
    int total;                /* anchors of the network (num=) */
    int classes;
    int outputs, inputs;      /* per image: w*h*c */
    int max_boxes;            /* max= (default 200) */
    int truth_size;           /* AB_TRUTH_SIZE */
    int truths;               /* max_boxes*truth_size: the truth stride per image */
    const int *mask;          /* n anchor indices into biases */
    const float *biases;      /* 2*total anchors (upstream's 0.5 where the cfg gives fewer) */
    const int *map;           /* optional class map (NULL when absent), map_len entries */
    int map_len;
    const float *classes_multipliers; /* NULL, or `classes` values (ab_classes_multipliers) */

    float ignore_thresh;      /* .5 */
    float truth_thresh;       /* 1 */
    float iou_thresh;         /* 1: the extra-anchor branch is off at >= 1 */
    int iou_thresh_kind;      /* AB_IOU (AB_GIOU, AB_DIOU, AB_CIOU) */
    int iou_loss;             /* AB_MSE (AB_IOU, AB_GIOU, AB_DIOU, AB_CIOU) */
    float iou_normalizer;     /* .75 */
    float obj_normalizer;     /* 1 */
    float cls_normalizer;     /* 1 (acts only with classes_multipliers) */
    float delta_normalizer;   /* 1 (never read by forward) */
    float max_delta;          /* FLT_MAX means unset */
    float scale_x_y;          /* 1 */
    float label_smooth_eps;   /* 0 */
    int new_coords;           /* 0 */
    int objectness_smooth;    /* 0 */
    int focal_loss;           /* 0 */
    int show_details;         /* 1: the detailed cost and line */

    /* Written by the forward pass (through the pointers). */
    float *output;            /* batch*outputs */
    float *delta;             /* batch*outputs */
    float *cost;              /* one float */
    int *labels;              /* batch*n*h*w track ids, -1 where unassigned; may be NULL */
    int *class_ids;           /* batch*n*h*w class ids (after map), -1 elsewhere; may be NULL */
    ab_yolo_stats *stats;     /* may be NULL */

    int flavor;               /* AB_FLAVOR_ALEXEYAB (0, ab_yolo_layer_init's) or AB_FLAVOR_HANKAI: see HANK(n) above */
} ab_yolo_layer;

/* upstream's network_state, the fields forward reads. */
typedef struct ab_network_state {
    const float *input;       /* batch*inputs, layout [b][anchor][entry][row][col] */
    const float *truth;       /* batch*truths */
    int train;
    int index;                /* layer index, printed as "Region %d" */
    int net_w, net_h;         /* state.net.w, state.net.h */
} ab_network_state;

/* ---- ab_box.c: AlexeyAB's box.c where it differs from pjreddie's ---- */
/* box_iou with upstream's guard: 0 when the intersection or the union is 0. */
float ab_box_iou(box a, box b);
float ab_box_giou(box a, box b);
float ab_box_diou(box a, box b);
float ab_box_ciou(box a, box b);
/* box_iou_kind: AB_IOU, AB_GIOU, AB_DIOU, AB_CIOU (anything else: ab_box_iou). */
float ab_box_iou_kind(box a, box b, int iou_kind);
boxabs ab_box_c(box a, box b);
boxabs ab_to_tblr(box a);
/* dx_box_iou: the gradient of IoU/GIoU/DIoU/CIoU in x, y, w, h (stored as dt, db, dl, dr). */
dxrep ab_dx_box_iou(box pred, box truth, int iou_loss);
/* The same functions for a flavor (AB_FLAVOR_*): HANK(4)-(7).  The names
 * above are these with AB_FLAVOR_ALEXEYAB. */
float ab_box_iou_fl(box a, box b, int flavor);
float ab_box_giou_fl(box a, box b, int flavor);
float ab_box_diou_fl(box a, box b, int flavor);
float ab_box_ciou_fl(box a, box b, int flavor);
float ab_box_iou_kind_fl(box a, box b, int iou_kind, int flavor);
dxrep ab_dx_box_iou_fl(box pred, box truth, int iou_loss, int flavor);

/* ---- ab_yolo_layer.c ---- */
/* 1.f/(1.f + expf(-x)): AlexeyAB's logistic, in float with expf (pjreddie's
 * logistic_activate runs exp in double). */
float ab_logistic_activate(float x);
/* Shape fields and parse_yolo's defaults, no allocation; the caller points
 * mask, biases, output, delta, cost (labels, class_ids, stats) at its own
 * buffers.  Returns DN_OK or DN_E_LAYER. */
int ab_yolo_layer_init(ab_yolo_layer *l, int batch, int w, int h, int n, int total, int classes, int max_boxes);
/* get_classes_multipliers: counters below 1 count as 1, multiplier =
 * max_counter/counter in float, clipped to max_delta.  Returns DN_OK, or
 * DN_E_LAYER for classes < 1. */
int ab_classes_multipliers(const int *counters_per_class, int classes, float max_delta, float *out);
int ab_check_yolo_layer(const ab_yolo_layer *l);
/* The first truth row a training forward of l would refuse (DN_E_*), in
 * *bad_image, *bad_row (row -1: the layer itself). */
int ab_check_yolo_truths(const ab_yolo_layer *l, const float *truth, int *bad_image, int *bad_row);
/* Upstream's get_yolo_box with new_coords. */
box ab_get_yolo_box(const float *x, const float *biases, int n, int index, int i, int j,
                    int lw, int lh, int w, int h, int stride, int new_coords);
/* ... for a flavor (HANK(1)) */
box ab_get_yolo_box_fl(const float *x, const float *biases, int n, int index, int i, int j,
                       int lw, int lh, int w, int h, int stride, int new_coords, int flavor);
/* The whole forward: checks, then per image the activation, the training
 * loops, and the sums in image order; then cost and statistics.  0 or DN_E_*. */
int ab_forward_yolo_layer(const ab_yolo_layer l, ab_network_state state);
/* The pieces, for a caller that runs images on threads (no checks: call
 * ab_check_yolo_layer / ab_check_yolo_truths first).  Image b's activation
 * (output, delta zeroed); its training loops (labels/class_ids reset to -1
 * first), leaving its partial sums in *sums; then, with the images' sums
 * added in image order by ab_image_sums_add, the cost and statistics. */
void ab_yolo_activate_image(const ab_yolo_layer *l, const float *input, int b);
void ab_yolo_train_image(const ab_yolo_layer *l, const ab_network_state *state, int b, ab_image_sums *sums);
void ab_image_sums_add(ab_image_sums *acc, const ab_image_sums *image);
void ab_yolo_finish(const ab_yolo_layer *l, const ab_image_sums *sums);
/* ab_forward_yolo_layer on a DN_PATH_* with up to `threads` threads (the
 * caller's included) working on separate images and anchors; the images'
 * float sums are added on the calling thread in image order, as upstream
 * adds its per-image threads' sums, so the result does not depend on
 * `threads`.  DN_PATH_REFERENCE runs upstream's loops as written (libm's
 * expf per element); the fast paths compute differently only where
 * ab_fast.c proves the same bits.  ab_forward_yolo_layer is this with one
 * thread and DN_PATH_AUTO. */
int ab_forward_yolo_layer_opt(const ab_yolo_layer l, ab_network_state state, int threads, int path);

/* ---- ab_record.c: the decisions AlexeyAB's forward took (the diagnosis) ----
 * Per cell and anchor (batch*n*h*w, [b][anchor][row][col]):
 *   best_iou: loop 1's best_match_iou: the best IoU of the decoded box (the
 *     output's scaled x, y) with a truth read, over the truths when the cell
 *     has a class probability above .25 (the class gate), else 0;
 *   best_iou_all, best_truth: the best IoU over every truth read and its row
 *     (the truth_thresh branch's; 0 and 0 when none);
 *   writes: how many box deltas loop 2 and the truth_thresh branch add there.
 * Per truth row (batch*max_boxes):
 *   row_status: 0 read, 1 not read (at or after the first x == 0),
 *     2 skipped (class id outside [0, classes));
 *   best_anchor: the best of all anchors (IoU of the centred shapes), -1 when
 *     not read; best_in_mask: its mask index, -1 when not in the mask;
 *   row_i, row_j: its cell ((int)(x*w), (int)(y*h)), -1 when not read.
 * Per truth row and mask index (batch*max_boxes*n):
 *   extra: 1 where the iou_thresh loop assigns the row at that anchor.
 * Per element of l.delta (batch*outputs, its layout), filled only when form
 * is not NULL (then delta, target, scale and norm must be given too):
 *   delta: the record's replay of process_batch's writes (its working
 *     values; the forward's l.delta, bit for bit);
 *   form: how that value was formed, AB_FORM_*;
 *   target, scale, norm: where form is AB_FORM_TARGET, the value is
 *     (scale*(target - output))*norm in float, output being l.output there
 *     (norm is 1 but for MSE box deltas, whose iou_normalizer times the
 *     class multiplier is applied after scale = 2 - w*h); 0 elsewhere. */
#define AB_FORM_ZERO 0    /* a zero no target form gave: never written, or set to 0 (ignore_thresh) */
#define AB_FORM_TARGET 1  /* (scale*(target - output))*norm */
#define AB_FORM_OTHER 2   /* an IoU-family box gradient, two box writes added, a division by the cell's classes, or what a non-finite class result left */
typedef struct ab_loss_record {
    float *best_iou;
    float *best_iou_all;
    int *best_truth;
    int *writes;
    int *row_status;
    int *best_anchor;
    int *best_in_mask;
    int *row_i;
    int *row_j;
    int *extra;
    float *delta;
    int *form;
    float *target;
    float *scale;
    float *norm;
} ab_loss_record;

/* Fills rec for a layer whose l.output a training forward with the same
 * state has just computed (upstream's own arithmetic, the layer's flavor);
 * it changes neither l.output nor l.delta.  Returns DN_OK, or DN_E_LAYER
 * for an unusable layer. */
int ab_record_yolo_layer(const ab_yolo_layer *l, const ab_network_state *st, ab_loss_record rec);
/* out[i] = ab_logistic_activate(in[i]) (in may equal out), and out[i] =
 * expf(in[i]), on the given path; they return how many elements went to
 * libm (all of them on DN_PATH_REFERENCE, or where the C library is not one
 * ab_fast.c's proof covers). */
long ab_logistic_array_path(const float *in, float *out, int n, int path);
long ab_expf_array_path(const float *in, float *out, int n, int path);
/* 1 where the C library's expf is one ab_fast.c's proof covers (glibc 2.27
 * or later, at build and at run time): the fast paths then use the fast
 * logistic; 0 elsewhere (they call expf per element). */
int ab_expf_premise(void);

/* ==== issue 23 (layers branch): AlexeyAB's [region] and pjreddie's [detection] ====
 * (own block: kept apart from the other layers' declarations to ease merging) */

/* Return codes only these two layers give (besides DN_E_*). */
#define DN_E_DET_TRUTH -30      /* [detection]: a cell's is_obj is NaN, infinite or does not fit an int */
#define DN_E_DET_PICK -31       /* [detection]: the box upstream picks (-1 when none qualifies, forced's 1 with num 1) lies outside the buffer */
#define DN_E_DET_COORDS -32     /* [detection]: coords < 4 with an object cell (upstream reads the next cell's entries) */

/* ---- ab_region_layer.c: AlexeyAB 59596d7's [region] (YOLOv2 in AlexeyAB's and hank-ai's repositories) ----
 * Not pjreddie's [region]: the CPU forward flatten()s l.output to
 * channels-last ([b][row][col][anchor*(coords+1+classes) + entry]) and
 * leaves it so; only objectness is activated in place (AlexeyAB's float
 * logistic), x, y go through the logistic inside get_region_box; the x, y
 * and objectness deltas carry logistic_gradient; focal_loss and classfix;
 * objectness at entry 4 and classes from entry 5 whatever coords says.
 * l.delta is un-flattened (darknet layout) before the cost. */
typedef struct ab_region_stats {
    float avg_iou;            /* avg_iou/count */
    float avg_cat;            /* avg_cat/class_count */
    float avg_obj;            /* avg_obj/count */
    float avg_anyobj;         /* avg_anyobj/(w*h*n*batch) */
    float recall;             /* recall/count */
    int count;
    int class_count;
    int warnings;             /* truth rows with class_id >= classes (upstream prints one warning each) */
} ab_region_stats;

typedef struct ab_region_layer {
    int batch;
    int w, h, c;              /* c = n*(classes + coords + 1) */
    int n;                    /* num= */
    int classes;
    int coords;               /* >= 4 */
    int outputs, inputs;      /* per image: w*h*c */
    int max_boxes;            /* max= (default 200) */
    int truths;               /* max_boxes*AB_TRUTH_SIZE */
    const float *biases;      /* 2*n (0.5 where anchors= gives fewer) */
    const int *map;           /* optional class map (NULL when absent), map_len entries */
    int map_len;
    int softmax;
    int focal_loss;
    int rescore;
    int bias_match;
    int classfix;             /* -1, 0, 1 or 2 */
    float thresh;             /* .5 */
    float coord_scale, object_scale, noobject_scale, class_scale;

    float *output;            /* batch*outputs, left channels-last as upstream's CPU forward leaves it */
    float *delta;             /* batch*outputs, darknet layout */
    float *cost;
    ab_region_stats *stats;   /* may be NULL */
    /* Optional (NULL normally), darknet layout: for each delta the forward writes
     * last, its term's target t and scale s (NaN: no term; the focal loss's class
     * deltas: NaN, not a gradient).  x, y, objectness: s*(t - sigma(x))*sigma';
     * w, h: s*(t - x); classes: s*(t - p) (p = softmax or the raw output). */
    float *target;
    float *target_scale;
    int flavor;               /* AB_FLAVOR_ALEXEYAB (0, ab_region_layer_init's) or AB_FLAVOR_HANKAI: HANK-R(n) in ab_region_layer.c */
} ab_region_layer;

/* Shape fields and parse_region's defaults (thresh .5, scales 1), no allocation. */
int ab_region_layer_init(ab_region_layer *l, int batch, int w, int h, int n, int classes, int coords, int max_boxes);
int ab_check_region_layer(const ab_region_layer *l);
/* The first truth row a training forward would refuse: *bad_image, *bad_row
 * (row -1: the layer itself).  DN_E_TRUTH_VALUE (NaN/inf in x, y, w, h or
 * class), DN_E_TRUTH_INT (class id does not fit an int), DN_E_TRUTH_CLASS
 * (a class id below 0), DN_E_TRUTH_CELL, DN_E_MAP_INDEX. */
int ab_check_region_truths(const ab_region_layer *l, const float *truth, int *bad_image, int *bad_row);
/* AlexeyAB's get_region_box on a flattened buffer (stride 1). */
box ab_get_region_box(const float *x, const float *biases, int n, int index, int i, int j, int w, int h);
/* ... for a flavor (HANK-R(1): hank-ai's expf and float product/quotient) */
box ab_get_region_box_fl(const float *x, const float *biases, int n, int index, int i, int j, int w, int h,
                         int flavor);
/* forward_region_layer (CPU build); state.net_w/net_h/index are not read.
 * seen is *state.net.seen (the seen < 12800 prior).  0 or DN_E_*. */
int ab_forward_region_layer(const ab_region_layer l, ab_network_state state, size_t seen);
/* AlexeyAB's inference path for [region] (network.c's custom_get_region_detections,
 * which fill_network_boxes calls; get_region_detections is not reached): get_region_boxes
 * on the flattened output of image 0 (stride classes + 5 per anchor whatever coords is,
 * classfix -1 zeroes objectness under .5), objectness 1, prob = objectness*class where
 * above thresh, then correct_yolo_boxes with `letter`.  dets: w*h*n entries with prob
 * rooms of `classes`.  DN_OK or DN_E_LAYER. */
int ab_custom_get_region_detections(const ab_region_layer l, const float *output, int w, int h, int netw,
                                    int neth, float thresh, int relative, int letter, detection *dets);
/* AlexeyAB's correct_yolo_boxes (yolo_layer.c 59596d7, with `letter`). */
void ab_correct_yolo_boxes(detection *dets, int n, int w, int h, int netw, int neth, int relative, int letter);

/* ---- detection_layer.c: pjreddie f6afaab's [detection] (YOLOv1) ---- */
/* glibc's random_r TYPE_3 state (the default of rand()): r[i] = r[i-3] + r[i-31]. */
typedef struct dn_glibc_rand {
    int r[31];
    int f, b;                 /* front and rear indices into r */
} dn_glibc_rand;
/* srand(seed) (seed 0 acts as 1, as glibc's srandom_r does) and rand(). */
void dn_glibc_srand(dn_glibc_rand *s, unsigned int seed);
int dn_glibc_rand_next(dn_glibc_rand *s);

typedef struct detection_stats {
    float avg_iou;            /* avg_iou/count */
    float pos_cat;            /* avg_cat/count */
    float all_cat;            /* avg_allcat/(count*classes) */
    float pos_obj;            /* avg_obj/count */
    float any_obj;            /* avg_anyobj/(batch*side*side*n) */
    int count;
} detection_stats;

typedef struct detection_layer {
    int batch;
    int side;
    int n;                    /* num= */
    int classes;
    int coords;
    int inputs, outputs;      /* side*side*((1 + coords)*n + classes) */
    int truths;               /* side*side*(1 + coords + classes) */
    int rescore, softmax, sqrt, forced, random;
    float coord_scale, object_scale, noobject_scale, class_scale;
    dn_glibc_rand *rand_state; /* the layer's rand() (srand(0) at make_detection_layer) */
    int *picks;               /* optional (NULL): batch*side*side, the box each object cell used
                                 (after forced and random; -1: upstream's "box -1"), -2 without an object */

    float *output;
    float *delta;
    float *cost;
    detection_stats *stats;   /* may be NULL */
} detection_layer;

int detection_layer_init(detection_layer *l, int batch, int side, int n, int classes, int coords);
int check_detection_layer(const detection_layer *l);
/* The first cell a training forward would refuse (DN_E_DET_*), in *bad_image, *bad_cell. */
int check_detection_truths(const detection_layer *l, const float *input, const float *truth, size_t seen,
                           int *bad_image, int *bad_cell);
/* forward_detection_layer: net.input, truth, train, seen are read.  0 or DN_E_*. */
int forward_detection_layer(const detection_layer l, network net);
/* get_detection_detections on l.output, image 0 (side*side*n dets). */
int get_detection_detections(const detection_layer l, int w, int h, float thresh, detection *dets);
/* ==== end of issue 23's block ==== */

/* ==== AlexeyAB/darknet 59596d7: [Gaussian_yolo] (Gaussian YOLOv3) ====
 *
 * src/gaussian_yolo_layer.c at 59596d7, CPU build.  Per anchor 9 + classes
 * entries: x, sigma_x, y, sigma_y, w, sigma_w, h, sigma_h, objectness, then
 * the classes (upstream's entry_gaussian_index).  The logistic runs on all
 * but w and h; scale_x_y scales x and y (not their sigmas).  The box loss is
 * the Gaussian negative log-likelihood gradient (MSE) or an IoU-family
 * gradient for x, y, w, h, plus the sigma gradients; box deltas accumulate
 * and are then divided by the cell's number of positive class deltas.
 * Truth rows and their stride are the [yolo]'s (AB_TRUTH_SIZE); the state is
 * ab_network_state.  As elsewhere nothing prints: the "Region %d Avg IOU"
 * line's values go to *l.stats; the forward returns a DN_E_* code before
 * touching any buffer where upstream would index outside its buffers.
 */

/* YOLO_POINT (include/darknet.h): where x, y of a box sit. */
#define AB_YOLO_CENTER 1
#define AB_YOLO_LEFT_TOP 2
#define AB_YOLO_RIGHT_BOTTOM 4

/* What upstream fprintf()s at the end of a training forward, as passed. */
typedef struct ab_gaussian_stats {
    float avg_iou;            /* avg_iou/count (GIoU sums for iou_loss != mse) */
    float avg_cat;            /* avg_cat/class_count */
    float avg_obj;            /* avg_obj/count */
    float avg_anyobj;         /* avg_anyobj/(w*h*n*batch) */
    float recall;             /* recall/count */
    float recall75;           /* recall75/count */
    int count;                /* assignments, as printed (0 stays 0: the averages are then NaN) */
    int class_count;
    float class_loss;         /* |delta without the 8 box entries|^2 / batch */
    float iou_loss;           /* (|delta without w, sigma_w, h, sigma_h|^2 - class part) / batch */
    float uc_loss;            /* (|delta|^2 - the previous) / batch */
    float total_loss;         /* |delta|^2 / batch */
} ab_gaussian_stats;

/* The fields of AlexeyAB's `layer` that forward_gaussian_yolo_layer reads. */
typedef struct ab_gaussian_yolo_layer {
    int batch;
    int w, h, c;              /* c = n*(classes + 8 + 1) */
    int n;                    /* anchors in this layer (len(mask), or num without a mask) */
    int total;                /* num= */
    int classes;
    int outputs, inputs;      /* per image: w*h*c */
    int max_boxes;            /* max= (200) */
    int truth_size;           /* AB_TRUTH_SIZE */
    int truths;               /* max_boxes*truth_size */
    const int *mask;          /* n indices into biases */
    const float *biases;      /* 2*total (0.5 where the cfg gives fewer) */
    const int *map;           /* NULL, or map_len entries */
    int map_len;
    const float *classes_multipliers; /* NULL, or classes values (ab_classes_multipliers) */

    float ignore_thresh;      /* .5 */
    float truth_thresh;       /* 1 */
    float iou_thresh;         /* 1 */
    int iou_thresh_kind;      /* AB_IOU, AB_GIOU, AB_DIOU, AB_CIOU */
    int iou_loss;             /* AB_MSE (AB_IOU, AB_GIOU, AB_DIOU, AB_CIOU) */
    float iou_normalizer;     /* .75 */
    float uc_normalizer;      /* 1 */
    float obj_normalizer;     /* 1 */
    float cls_normalizer;     /* 1 (acts only with classes_multipliers) */
    float max_delta;          /* FLT_MAX means unset */
    float scale_x_y;          /* 1 */
    float label_smooth_eps;   /* 0 */
    int objectness_smooth;    /* 0 */
    int yolo_point;           /* AB_YOLO_CENTER */

    float *output;            /* batch*outputs */
    float *delta;             /* batch*outputs */
    float *cost;              /* one float */
    ab_gaussian_stats *stats; /* may be NULL */
    int flavor;               /* AB_FLAVOR_ALEXEYAB (0, the init's) or AB_FLAVOR_HANKAI: HANK-G(n) in ab_gaussian_yolo_layer.c */
} ab_gaussian_yolo_layer;

/* Shape fields and parse_gaussian_yolo's defaults, no allocation. */
int ab_gaussian_yolo_layer_init(ab_gaussian_yolo_layer *l, int batch, int w, int h, int n, int total, int classes,
                                int max_boxes);
int ab_check_gaussian_yolo_layer(const ab_gaussian_yolo_layer *l);
/* The first truth row a training forward would refuse (DN_E_*), in
 * *bad_image, *bad_row (row -1: the layer or the state). */
int ab_check_gaussian_yolo_truths(const ab_gaussian_yolo_layer *l, ab_network_state state, int *bad_image,
                                  int *bad_row);
/* get_gaussian_yolo_box: x at entry 0, y at 2, w at 4, h at 6 (stride apart). */
box ab_get_gaussian_yolo_box(const float *x, const float *biases, int n, int index, int i, int j, int lw, int lh,
                             int w, int h, int stride, int yolo_point);
/* forward_gaussian_yolo_layer: checks, activation, the training loops, cost
 * and statistics.  0 or DN_E_*. */
int ab_forward_gaussian_yolo_layer(const ab_gaussian_yolo_layer l, ab_network_state state);
/* get_gaussian_yolo_detections on image 0 of l.output (as the forward leaves
 * it): dets must hold w*h*n entries, each prob with classes floats and
 * uc with 4.  Returns the count, or DN_E_LAYER. */
int ab_get_gaussian_yolo_detections(const ab_gaussian_yolo_layer l, int w, int h, int netw, int neth, float thresh,
                                    int relative, int letter, detection *dets, float *uc);

/* ---- the GPU build (darknet_src/cuda/) ----
 * Under GPU=1 upstream activates a loss layer's input on the device (the
 * float logistic kernel; [region]: also the mask coords, the softmax with its
 * int-truncated largest value, the tree softmax at temperature 1), pulls the
 * activated buffer and runs the CPU loss on it, its CPU activation compiled
 * out.  cuda/gpu.cu computes the device part when the library is built with
 * CUDA (PYDARKNET_LOSS_CUDA=1, make lib CUDA=1); built without, every
 * function here returns DN_E_NO_CUDA (dn_cuda_info: built = 0). */
#define DN_E_NO_CUDA -20         /* the library was built without CUDA */
#define DN_E_NO_DEVICE -21       /* built with CUDA, but the runtime sees no device (no GPU, no driver) */
#define DN_E_CUDA_RUNTIME -1000  /* a CUDA runtime call failed: the code is DN_E_CUDA_RUNTIME - its cudaError_t */
#define DN_E_NO_MEMORY -22       /* the host buffer for the device's activations could not be had */

typedef struct dn_cuda_device {
    int built;                /* 1: compiled with CUDA */
    int device_count;         /* devices the runtime sees (0 without a GPU or a driver) */
    int device;               /* the current device, when device_count > 0 */
    int cc_major, cc_minor;   /* its compute capability */
    int runtime_version;      /* CUDART_VERSION the library was built with, e.g. 13000 */
    int driver_version;       /* cudaDriverGetVersion, 0 without a driver */
    char name[256];           /* the device's name */
} dn_cuda_device;

int dn_cuda_info(dn_cuda_device *info);
/* A NUL-terminated description of a DN_E_NO_CUDA/NO_DEVICE/CUDA_RUNTIME code. */
int dn_cuda_error_text(int code, char *buf, int size);
/* output = input activated on the device as forward_yolo_layer_gpu /
 * forward_region_layer_gpu activate it (batch*outputs floats each; output may
 * not overlap input).  DN_OK, DN_E_LAYER, or a code above. */
int dn_cuda_activate_yolo(const layer *l, const float *input, float *output);
int dn_cuda_activate_region(const layer *l, const float *input, float *output);
/* forward_yolo_layer_gpu / forward_region_layer_gpu (gpu.c): the device
 * activation of net.input into l.output, then the CPU loss on it with
 * net.input_activated set, as upstream's GPU build runs a training forward
 * (and returns the pulled activations when !net.train).  DN_OK, a DN_E_*
 * code of the CPU forward's checks (nothing touched), or a code above. */
int forward_yolo_layer_gpu(const layer l, network net);
int forward_region_layer_gpu(const layer l, network net);
int forward_yolo_layer_gpu_opt(const layer l, network net, int threads, int path);
int forward_region_layer_gpu_opt(const layer l, network net, int threads, int path);
/* y[i] = the device logistic of x[i] (logistic_activate_kernel). */
int dn_cuda_logistic(const float *x, float *y, size_t n);
/* Every float32 bit pattern through the device logistic: *hash = the sum over
 * i < 2^32 of splitmix64(i << 32 | bits(logistic(i))) mod 2^64, *nans the NaN
 * results.  Another GPU architecture or CUDA version is checked against it. */
int dn_cuda_logistic_all(unsigned long long *hash, unsigned long long *nans);

#ifdef __cplusplus
}
#endif

#endif /* DARKNET_LOSS_H */
