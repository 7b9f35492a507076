/*
 * checks.c -- refuse what upstream would turn into out-of-bounds reads or
 * writes, before any buffer is touched.
 *
 * Upstream trusts its input: a truth at x == 1.0 indexes column w (the next
 * row, anchor plane or image, or past the buffer), a class id of `classes`
 * writes into the next anchor's entries, a mask index >= total reads past the
 * anchors.  The oracle refuses those inputs instead of reproducing the spill.
 * Behaviour upstream *defines* (the x == 0 terminator, int truncation of
 * class ids and cells, a slightly negative x landing in cell 0) is accepted.
 */
#include <limits.h>
#include <math.h>

#include "dn_internal.h"

static int fits_int(long long v)
{
    return v >= 0 && v <= INT_MAX;
}

const char *tree_problem(const tree *t)
{
    long long count;
    int i, g;
    if (!t) return "the tree is NULL";
    if (t->n < 1 || t->groups < 1) return "the tree has no nodes or no groups";
    if (!t->parent || !t->child || !t->group || !t->leaf || !t->group_size || !t->group_offset) {
        return "one of the tree's arrays (parent, child, group, leaf, group_size, group_offset) is NULL";
    }
    count = 0;
    for (g = 0; g < t->groups; ++g) {
        if (t->group_size[g] < 0 || t->group_offset[g] < 0) return "a group_size or group_offset is negative";
        if ((long long)t->group_offset[g] + t->group_size[g] > t->n) {
            return "a group reaches past the last node (group_offset + group_size > n)";
        }
        count += t->group_size[g];
    }
    if (count != t->n) return "the group sizes do not add up to the number of nodes";
    for (i = 0; i < t->n; ++i) {
        /* Parents come first in a darknet tree file; demanding it keeps every
         * walk up the tree finite and in bounds. */
        if (t->parent[i] < -1 || t->parent[i] >= i) return "a parent is not -1 or an earlier node";
        g = t->group[i];
        if (g < 0 || g >= t->groups) return "a group index lies outside [0, groups)";
        if (i < t->group_offset[g] || i >= t->group_offset[g] + t->group_size[g]) {
            return "a node lies outside the group its group index names";
        }
        /* read_tree numbers a node's child group after the node's own group;
         * hierarchy_top_prediction indexes the groups with it. */
        if (t->child[i] != -1 && (t->child[i] <= g || t->child[i] >= t->groups)) {
            return "a child index is not -1 or a later group in [0, groups)";
        }
    }
    return NULL;
}

int check_tree(const tree *t)
{
    return tree_problem(t) ? DN_E_LAYER : DN_OK;
}

static const char *layer_tree_problem(const layer *l)
{
    const tree *t = l->softmax_tree;
    long long count, g, last;
    const char *why = tree_problem(t);
    if (why) return why;
    /* One tree node per class: the softmax covers the groups, and truth
     * classes walk parent[] from any id in [0, classes). */
    if (t->n != l->classes) return "the tree's node count differs from classes";
    /* The CPU forward softmaxes each group at element offsets g = 0 ..
     * n*w*h-1 (upstream's group_offset bug), reaching element
     * coords+1 + (sum of group sizes) + n*w*h*group_size - 1 of each image at
     * most.  It must stay inside the image. */
    last = 0;
    count = l->coords + 1;
    for (g = 0; g < t->groups; ++g) {
        long long reach = count + (long long)t->group_size[g]*l->n*l->w*l->h - 1;
        if (t->group_size[g] > 0 && reach > last) last = reach;
        count += t->group_size[g];
    }
    if (last >= l->inputs) return "the CPU tree softmax (offset per element, upstream's bug) would reach past the image";
    return NULL;
}

const char *layer_problem(const layer l, int forward)
{
    long long c, outputs;
    int k;
    if (l.type != DN_YOLO && l.type != DN_REGION) return "the layer type is neither DN_YOLO nor DN_REGION";
    if (l.batch < 1 || l.w < 1 || l.h < 1 || l.n < 1 || l.classes < 1) {
        return "batch, w, h, n and classes must be >= 1";
    }
    if (l.coords < 4 || (l.type == DN_YOLO && l.coords != 4)) return "coords must be 4 ([yolo]) or >= 4 ([region])";
    if (!l.biases || !l.output) return "biases or output is NULL";
    if (forward && (!l.delta || !l.cost)) return "delta or cost is NULL";
    c = (long long)l.n*((long long)l.coords + 1 + l.classes);
    outputs = c*l.w*l.h;
    if (!fits_int(c) || !fits_int(outputs) || !fits_int(outputs*l.batch)) {
        return "n*(coords+1+classes)*w*h*batch does not fit an int";
    }
    if (l.c != c || l.outputs != outputs || l.inputs != l.outputs) return "c, outputs or inputs disagree with the sizes";
    if (l.map && l.map_len < 1) return "map is set but map_len < 1";
    if (l.type == DN_YOLO) {
        if (l.total < 1 || !l.mask) return "[yolo] needs total >= 1 and a mask";
        if (l.truths != DN_YOLO_MAX_TRUTHS*5 || !fits_int((long long)l.truths*l.batch)) {
            return "truths must be 90*5 and truths*batch must fit an int";
        }
        /* More than 90 would read the next image's truths. */
        if (l.max_boxes < 0 || l.max_boxes > DN_YOLO_MAX_TRUTHS) return "max_boxes must lie in [0, 90]";
        for (k = 0; k < l.n; ++k) {
            if (l.mask[k] < 0 || l.mask[k] >= l.total) return "a mask index lies outside [0, total)";
        }
        if (l.softmax_tree) return "[yolo] has no softmax tree";
        return NULL;
    }
    if ((long long)l.truths != (long long)DN_REGION_MAX_TRUTHS*((long long)l.coords + 1) ||
        !fits_int((long long)l.truths*l.batch)) {
        return "truths must be 30*(coords+1) and truths*batch must fit an int";
    }
    if (l.softmax_tree) return layer_tree_problem(&l);
    return NULL;
}

int check_layer(const layer l)
{
    return layer_problem(l, 1) ? DN_E_LAYER : DN_OK;
}

int check_tree_top(const layer l, float thresh, int *bad_index)
{
    const int wh = l.w*l.h;
    int i, n, top, err;
    if (bad_index) *bad_index = -1;
    if (layer_problem(l, 0) || !l.softmax_tree) return DN_E_LAYER;
    for (i = 0; i < wh; ++i) {
        for (n = 0; n < l.n; ++n) {
            int class_index = entry_index(&l, 0, n*wh + i, l.coords + !l.background);
            err = hierarchy_top_prediction_checked(l.output + class_index, l.softmax_tree, thresh, wh, &top);
            if (err != DN_OK) {
                if (bad_index) *bad_index = n*wh + i;
                return err;
            }
        }
    }
    return DN_OK;
}

/* Upstream reads a class id as (int)truth[coords] and then, when a map is
 * set, map[class].  Both steps must stay in range. */
static int check_class(const layer *l, float c, int use_map)
{
    int cls;
    int limit = (use_map && l->map) ? l->map_len : l->classes;
    if (!(c > -1 && c < limit)) return (use_map && l->map) ? DN_E_MAP_INDEX : DN_E_TRUTH_CLASS;
    cls = (int)c;
    if (use_map && l->map) cls = l->map[cls];
    if (cls < 0 || cls >= l->classes) return DN_E_TRUTH_CLASS;
    return DN_OK;
}

static int check_row(const layer *l, const float *row)
{
    int k, err;
    float fx, fy;
    for (k = 0; k <= l->coords; ++k) {
        if (!isfinite(row[k])) return DN_E_TRUTH_VALUE;
    }
    if (l->type == DN_REGION && l->softmax_tree && is_onlyclass_row(row)) {
        /* Classification-only label: its class goes to the tree unmapped. */
        return check_class(l, row[l->coords], 0);
    }
    if (!(row[2] > 0 && row[3] > 0)) return DN_E_TRUTH_SIZE;
    /* The cell is (int)(truth.x * l.w) with the product in float. */
    fx = row[0]*l->w;
    fy = row[1]*l->h;
    if (!(fx > -1 && fx < l->w && fy > -1 && fy < l->h)) return DN_E_TRUTH_CELL;
    err = check_class(l, row[l->coords], 1);
    return err;
}

int check_truths(const layer l, const float *truth, int *bad_image, int *bad_row)
{
    int b, t, err;
    int rows = l.type == DN_YOLO ? l.max_boxes : DN_REGION_MAX_TRUTHS;
    int cols = l.coords + 1;
    if (bad_image) *bad_image = -1;
    if (bad_row) *bad_row = -1;
    for (b = 0; b < l.batch; ++b) {
        for (t = 0; t < rows; ++t) {
            const float *row = truth + b*l.truths + t*cols;
            if (!row[0]) break;  /* upstream: if(!truth.x) break; */
            err = check_row(&l, row);
            if (err != DN_OK) {
                if (bad_image) *bad_image = b;
                if (bad_row) *bad_row = t;
                return err;
            }
            /* The tree path stops at the first classification-only row. */
            if (l.type == DN_REGION && l.softmax_tree && is_onlyclass_row(row)) break;
        }
    }
    return DN_OK;
}

int dn_check_forward(const layer *l, const network *net, int type)
{
    if (check_layer(*l) != DN_OK || l->type != type || !net->input) return DN_E_LAYER;
    if (!net->train) return DN_OK;
    /* [yolo] divides anchors by the network size. */
    if (!net->truth || (type == DN_YOLO && (net->w < 1 || net->h < 1))) return DN_E_LAYER;
    return check_truths(*l, net->truth, NULL, NULL);
}
