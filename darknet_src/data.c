/*
 * data.c -- darknet label files and the deterministic part of
 * fill_truth_detection (src/data.c): reading "class x y w h" lines,
 * correct_boxes, and packing the truth rows.
 *
 * Left out on purpose: the random shuffle of the boxes (randomize_boxes) and
 * the random augmentation parameters, which the caller passes instead.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "darknet_loss.h"

box_label box_label_from(int id, float x, float y, float w, float h)
{
    box_label b;
    b.id = id;
    b.x = x;
    b.y = y;
    b.w = w;
    b.h = h;
    /* read_boxes: float arithmetic, w/2 in float. */
    b.left = x - w/2;
    b.right = x + w/2;
    b.top = y - h/2;
    b.bottom = y + h/2;
    return b;
}

/* One line: "%d %f %f %f %f" and nothing else.  Returns 0, or
 * DN_LABEL_MALFORMED / DN_LABEL_RANGE. */
static int parse_label(char *line, box_label *out)
{
    char *p = line, *end;
    long id;
    float v[4];
    int k;
    errno = 0;
    id = strtol(p, &end, 10);
    if (end == p || errno || (*end != ' ' && *end != '\t')) return DN_LABEL_MALFORMED;
    p = end;
    for (k = 0; k < 4; ++k) {
        errno = 0;
        /* fscanf("%f") converts straight to float, as strtof does. */
        v[k] = strtof(p, &end);
        if (end == p) return DN_LABEL_MALFORMED;
        p = end;
    }
    while (*p == ' ' || *p == '\t' || *p == '\r') ++p;
    if (*p) return DN_LABEL_MALFORMED;
    if (id < 0 || id > 0x7fffffffL) return DN_LABEL_RANGE;
    for (k = 0; k < 4; ++k) {
        if (!(v[k] >= 0 && v[k] <= 1)) return DN_LABEL_RANGE;
    }
    *out = box_label_from((int)id, v[0], v[1], v[2], v[3]);
    return 0;
}

box_label *read_boxes_checked(const char *filename, int *n, int *bad_line, int *why)
{
    FILE *fp = fopen(filename, "r");
    box_label *boxes = NULL;
    char *line = NULL;
    size_t len = 0, cap = 0;
    int count = 0, size = 0, nu = 0, ch;
    *n = 0;
    *bad_line = 0;
    *why = 0;
    if (!fp) {
        *why = DN_LABEL_UNREADABLE;
        return NULL;
    }
    cap = 256;
    line = malloc(cap);
    size = 64;
    boxes = malloc(sizeof(box_label)*size);
    if (!line || !boxes) goto fail;
    do {
        ch = fgetc(fp);
        if (ch != EOF && ch != '\n') {
            if (len + 1 >= cap) {
                char *p = realloc(line, cap*2);
                if (!p) goto fail;
                line = p;
                cap *= 2;
            }
            /* A NUL would end the C string early: the line would look blank
             * or shorter than it is.  Refused at once, without reading on
             * (a huge or sparse file of NULs costs nothing). */
            if (ch == '\0') {
                *bad_line = nu + 1;
                *why = DN_LABEL_NUL;
                goto fail;
            }
            line[len++] = (char)ch;
            continue;
        }
        if (ch == EOF && len == 0) break;
        ++nu;
        line[len] = '\0';
        len = 0;
        {
            const char *q = line;
            int err;
            while (*q == ' ' || *q == '\t' || *q == '\r') ++q;
            if (!*q) continue;  /* blank lines: fscanf skips whitespace too */
            if (count == size) {
                box_label *nb = realloc(boxes, sizeof(box_label)*size*2);
                if (!nb) goto fail;
                boxes = nb;
                size *= 2;
            }
            err = parse_label(line, &boxes[count]);
            if (err) {
                *bad_line = nu;
                *why = err;
                goto fail;
            }
            ++count;
        }
    } while (ch != EOF);
    fclose(fp);
    free(line);
    *n = count;
    return boxes;
fail:
    if (!*why) *why = DN_LABEL_UNREADABLE;
    fclose(fp);
    free(line);
    free(boxes);
    return NULL;
}

void free_boxes(box_label *boxes)
{
    free(boxes);
}

static float constrain(float min, float max, float a)
{
    if (a < min) return min;
    if (a > max) return max;
    return a;
}

void correct_boxes(box_label *boxes, int n, float dx, float dy, float sx, float sy, int flip)
{
    int i;
    for (i = 0; i < n; ++i) {
        /* Upstream's marker for a box at the origin: pushed far away. */
        if (boxes[i].x == 0 && boxes[i].y == 0) {
            boxes[i].x = 999999;
            boxes[i].y = 999999;
            boxes[i].w = 999999;
            boxes[i].h = 999999;
            continue;
        }
        boxes[i].left = boxes[i].left*sx - dx;
        boxes[i].right = boxes[i].right*sx - dx;
        boxes[i].top = boxes[i].top*sy - dy;
        boxes[i].bottom = boxes[i].bottom*sy - dy;

        if (flip) {
            /* 1. - right: in double, rounded back to float. */
            float swap = boxes[i].left;
            boxes[i].left = (float)(1. - boxes[i].right);
            boxes[i].right = (float)(1. - swap);
        }

        boxes[i].left = constrain(0, 1, boxes[i].left);
        boxes[i].right = constrain(0, 1, boxes[i].right);
        boxes[i].top = constrain(0, 1, boxes[i].top);
        boxes[i].bottom = constrain(0, 1, boxes[i].bottom);

        boxes[i].x = (boxes[i].left + boxes[i].right)/2;
        boxes[i].y = (boxes[i].top + boxes[i].bottom)/2;
        boxes[i].w = (boxes[i].right - boxes[i].left);
        boxes[i].h = (boxes[i].bottom - boxes[i].top);

        boxes[i].w = constrain(0, 1, boxes[i].w);
        boxes[i].h = constrain(0, 1, boxes[i].h);
    }
}

int fill_truth_detection_boxes(box_label *boxes, int count, int num_boxes, float *truth,
                               float dx, float dy, float sx, float sy, int flip)
{
    int i, sub = 0;
    correct_boxes(boxes, count, dx, dy, sx, sy, flip);
    /* Truncation comes before the small boxes are dropped, so fewer than
     * num_boxes rows may be written although more boxes exist. */
    if (count > num_boxes) count = num_boxes;
    for (i = 0; i < count; ++i) {
        if (boxes[i].w < .001 || boxes[i].h < .001) {
            ++sub;
            continue;
        }
        truth[(i - sub)*5 + 0] = boxes[i].x;
        truth[(i - sub)*5 + 1] = boxes[i].y;
        truth[(i - sub)*5 + 2] = boxes[i].w;
        truth[(i - sub)*5 + 3] = boxes[i].h;
        truth[(i - sub)*5 + 4] = (float)boxes[i].id;
    }
    return count - sub;
}
