/*
 * tree.c -- darknet's softmax hierarchy (src/tree.c): reading a tree file,
 * its group structure, and the probability of a class along its ancestry.
 *
 * A tree file has one node per line, "name parent", parent being the line
 * index of the parent or -1.  Consecutive lines with the same parent form a
 * group: one softmax runs over each group.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "darknet_loss.h"

/* Upstream reads the name with sscanf("%s") into a 256-byte buffer. */
#define TREE_NAME_MAX 255

int tree_init(tree *t, int n, int *parent, int *child, int *group, int *leaf,
              int *group_size, int *group_offset)
{
    int i;
    int last_parent = -1;
    int size = 0;
    int groups = 0;
    memset(t, 0, sizeof *t);
    if (n < 1) return DN_E_LAYER;
    for (i = 0; i < n; ++i) {
        /* Parents come first in every darknet tree; requiring it keeps every
         * walk up the tree finite and in bounds. */
        if (parent[i] < -1 || parent[i] >= i) return DN_E_LAYER;
    }
    /* read_tree's bookkeeping, line by line: a new group starts whenever the
     * parent changes, and the group just closed is recorded.  A first line
     * whose parent is not -1 therefore records an empty group 0, as upstream
     * does. */
    for (i = 0; i < n; ++i) {
        child[i] = -1;
        if (parent[i] != last_parent) {
            ++groups;
            group_offset[groups - 1] = i - size;
            group_size[groups - 1] = size;
            size = 0;
            last_parent = parent[i];
        }
        group[i] = groups;
        if (parent[i] >= 0) child[parent[i]] = groups;
        ++size;
    }
    ++groups;
    group_offset[groups - 1] = n - size;
    group_size[groups - 1] = size;
    for (i = 0; i < n; ++i) leaf[i] = 1;
    for (i = 0; i < n; ++i) {
        if (parent[i] >= 0) leaf[parent[i]] = 0;
    }
    t->n = n;
    t->groups = groups;
    t->parent = parent;
    t->child = child;
    t->group = group;
    t->leaf = leaf;
    t->group_size = group_size;
    t->group_offset = group_offset;
    return DN_OK;
}

void free_tree(tree *t)
{
    int i;
    if (!t) return;
    if (t->name) {
        for (i = 0; i < t->n; ++i) free(t->name[i]);
    }
    free(t->name);
    free(t->parent);
    free(t->child);
    free(t->group);
    free(t->leaf);
    free(t->group_size);
    free(t->group_offset);
    free(t);
}

/* Parses "name parent" as sscanf("%s %d") would; 0 on success. */
static int parse_line(const char *line, char *name, int *parent)
{
    const char *p = line;
    size_t len = 0;
    long v;
    char *end;
    while (isspace((unsigned char)*p)) ++p;
    while (p[len] && !isspace((unsigned char)p[len])) ++len;
    if (len == 0 || len > TREE_NAME_MAX) return 1;
    memcpy(name, p, len);
    name[len] = '\0';
    p += len;
    errno = 0;
    v = strtol(p, &end, 10);
    if (end == p || errno || v < INT_MIN || v > INT_MAX) return 1;
    *parent = (int)v;
    return 0;
}

/* Grows *buf to hold one more element of `size` bytes; 0 on success. */
static int grow(void **buf, int *cap, int need, size_t size)
{
    void *p;
    int c = *cap ? *cap : 64;
    if (need <= *cap) return 0;
    while (c < need) c *= 2;
    p = realloc(*buf, (size_t)c*size);
    if (!p) return 1;
    *buf = p;
    *cap = c;
    return 0;
}

tree *read_tree_checked(const char *filename, int *bad_line)
{
    FILE *fp = fopen(filename, "r");
    char *line = NULL;
    size_t line_cap = 0, len = 0;
    int n = 0, cap = 0, name_cap = 0, ch, err = 0;
    int *parent = NULL;
    char **names = NULL;
    tree *t = NULL;
    if (bad_line) *bad_line = 0;
    if (!fp) return NULL;
    line_cap = 256;
    line = malloc(line_cap);
    if (!line) {
        fclose(fp);
        return NULL;
    }
    for (;;) {
        ch = fgetc(fp);
        if (ch != EOF && ch != '\n') {
            if (len + 1 >= line_cap) {
                size_t c = line_cap*2;
                char *p = realloc(line, c);
                if (!p) { err = 1; break; }
                line = p;
                line_cap = c;
            }
            if (ch == '\0') {  /* would cut the line short as a C string: refused at once, not read on */
                if (bad_line) *bad_line = n + 1;
                err = 1;
                break;
            }
            line[len++] = (char)ch;
            continue;
        }
        if (ch == EOF && len == 0) break;  /* no line after a final newline */
        line[len] = '\0';
        if (grow((void **)&parent, &cap, n + 1, sizeof(int)) ||
            grow((void **)&names, &name_cap, n + 1, sizeof(char *))) { err = 1; break; }
        names[n] = malloc(TREE_NAME_MAX + 1);
        if (!names[n] || parse_line(line, names[n], &parent[n]) || parent[n] < -1 || parent[n] >= n) {
            free(names[n]);
            if (bad_line) *bad_line = n + 1;
            err = 1;
            break;
        }
        ++n;
        len = 0;
        if (ch == EOF) break;
    }
    fclose(fp);
    free(line);
    if (!err && n > 0) {
        t = calloc(1, sizeof *t);
        if (t) {
            int *child = malloc(sizeof(int)*n), *group = malloc(sizeof(int)*n), *leaf = malloc(sizeof(int)*n);
            int *gs = malloc(sizeof(int)*(n + 1)), *go = malloc(sizeof(int)*(n + 1));
            if (!child || !group || !leaf || !gs || !go ||
                tree_init(t, n, parent, child, group, leaf, gs, go) != DN_OK) {
                free(child); free(group); free(leaf); free(gs); free(go);
                free(t);
                t = NULL;
            }
        }
    }
    if (t) {
        t->name = names;
        return t;
    }
    while (n > 0) free(names[--n]);
    free(names);
    free(parent);
    return NULL;
}

tree *read_tree(const char *filename)
{
    return read_tree_checked(filename, NULL);
}

/* The product of the class's probability and its ancestors', in float. */
float get_hierarchy_probability(const float *x, const tree *hier, int c, int stride)
{
    float p = 1;
    while (c >= 0) {
        p = p * x[c*stride];
        c = hier->parent[c];
    }
    return p;
}

void hierarchy_predictions(float *predictions, int n, const tree *hier, int only_leaves, int stride)
{
    int j;
    for (j = 0; j < n; ++j) {
        int parent = hier->parent[j];
        if (parent >= 0) {
            predictions[j*stride] *= predictions[parent*stride];
        }
    }
    if (only_leaves) {
        for (j = 0; j < n; ++j) {
            if (!hier->leaf[j]) predictions[j*stride] = 0;
        }
    }
}

/*
 * darknet's hierarchy_top_prediction: descend from group 0 while p * (best
 * of the group) beats thresh and return the deepest node reached (or the
 * root group's best).
 *
 * Upstream's loop is unbounded, and it never ends for some input (a hang
 * that SIGINT does not stop).  Here it is bounded, and the bound changes no
 * result upstream returns:
 *
 *   - `max` starts at 0 and `max_i` at 0; only val > max moves them.  So
 *     either some val > 0 (then max_i is a node of the group and
 *     child[max_i], if any, is a later group: read_tree numbers a node's
 *     children's group after the node's own), or none is (every val <= 0 or
 *     NaN: then max = 0 and max_i = 0, whatever group this is).
 *   - p >= 0 throughout (or +inf).  While max > 0 the group index strictly
 *     grows, so that lasts at most `groups` rounds.  A round with max = 0
 *     goes on only if p*0 > thresh, i.e. thresh < 0 (p*0 is 0, or NaN when
 *     p = inf, which ends the loop); it sets p = 0 and moves to child[0].
 *   - From p = 0 on (still thresh < 0) the next group depends on the group
 *     alone, so within `groups` more rounds either the loop returns or a
 *     group repeats, and then it repeats forever (upstream hangs: with
 *     tree_thresh < 0, e.g. at temperature 0 where every probability is NaN).
 *
 * So wherever upstream returns, it returns within 2*groups + 1 rounds; the
 * checked version runs 2*groups + 2 and reports DN_E_TREE_LOOP after that
 * (pydarknet_loss refuses such input).  An index outside the tree
 * (predictions are read for nodes 0..n-1) is DN_E_LAYER.
 */
int hierarchy_top_prediction_checked(const float *predictions, const tree *hier, float thresh, int stride,
                                     int *top)
{
    float p = 1;
    int group = 0;
    int i, round;
    const long long rounds = 2*(long long)hier->groups + 2;
    *top = 0;
    for (round = 0; round < rounds; ++round) {
        float max = 0;
        int max_i = 0;
        int size, offset;
        if (group < 0 || group >= hier->groups) return DN_E_LAYER;
        size = hier->group_size[group];
        offset = hier->group_offset[group];
        if (size < 0 || offset < 0 || (long long)offset + size > hier->n) return DN_E_LAYER;
        for (i = 0; i < size; ++i) {
            int index = i + offset;
            float val = predictions[(i + offset)*stride];
            if (val > max) {
                max_i = index;
                max = val;
            }
        }
        if (p*max > thresh) {
            p = p*max;
            group = hier->child[max_i];
            if (hier->child[max_i] < 0) {
                *top = max_i;
                return DN_OK;
            }
        } else if (group == 0) {
            *top = max_i;
            return DN_OK;
        } else {
            int parent = hier->parent[offset];
            if (parent < 0 || parent >= hier->n) return DN_E_LAYER;
            *top = parent;
            return DN_OK;
        }
    }
    return DN_E_TREE_LOOP;
}

/* Upstream's result wherever upstream returns; where it would loop forever
 * (or the tree's indices are out of range), node 0: the node whose child
 * group every endless loop keeps coming back to.  Callers that must know use
 * hierarchy_top_prediction_checked() or check_tree_top(). */
int hierarchy_top_prediction(const float *predictions, const tree *hier, float thresh, int stride)
{
    int top;
    if (hierarchy_top_prediction_checked(predictions, hier, thresh, stride, &top) != DN_OK) return 0;
    return top;
}
