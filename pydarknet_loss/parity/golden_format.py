"""The golden case format: what a ``.npz`` of :mod:`pydarknet_loss.parity.golden` holds.

This page ships with the package (``help(pydarknet_loss.parity.golden_format)``);
it is the format ``pydarknet-loss golden export`` and ``pdl.fuzz(..., out=)``
write, and the format of the golden set computed by upstream darknet itself
that the package's tests use.

Files and folders
=================

One compressed ``.npz`` per case (``numpy.load(path, allow_pickle=False)``
reads it: every key is a plain array, strings are 0-d str arrays, JSON
values are str arrays holding JSON).  A folder of cases carries a
``MANIFEST.json``: ``{"cases": [{"file", "kind", "shape", "train", "tags",
"cost", ...}], "seed", "profile", "provenance", ...}``.  The files are
byte-reproducible: the same seed writes the same bytes.

Keys of a training-forward case
===============================

``kind``
    ``"yolo"`` (pjreddie's YOLOv3 ``[yolo]``), ``"region"`` (pjreddie's
    YOLOv2 ``[region]``) or ``"yolo_ab"`` (AlexeyAB's ``[yolo]``).
``params``
    JSON: the layer's settings, under ``parse_yolo``'s / ``parse_region``'s
    names, floats being the exact float32 values written as doubles, plus
    the geometry ``w``, ``h``, ``batch``.

    * ``yolo``: ``classes, total, mask, anchors, ignore_thresh,
      truth_thresh, max_boxes, net_w, net_h, net_index``, ``map`` when set.
    * ``region``: ``classes, coords, num, anchors, softmax, background,
      rescore, bias_match, thresh, coord_scale, object_scale,
      noobject_scale, class_scale, mask_scale, max_boxes``, the fields
      upstream parses but never reads (``log, sqrt, absolute, classfix``),
      and ``map``, ``tree`` (a tree file, relative to the case's folder or
      its parent), ``temperature`` when set.
    * ``yolo_ab``: every setting of :class:`pydarknet_loss.alexeyab.YoloLayer`
      (``iou_loss``, the normalizers, ``scale_x_y``, ``iou_thresh`` ...),
      ``n``, ``net_w, net_h, net_index``.
``input``
    float32 ``(B, C, H, W)``: the layer's raw input, darknet's layout
    ``[b][anchor][entry][row][col]``, ``C = n * (coords + 1 + classes)``.
``truth``
    float32: darknet's truth buffer.  ``yolo``: ``(B, 90, 5)``;
    ``region``: ``(B, 30, coords + 1)``; rows ``x, y, w, h, class``,
    zero-padded, an image's list ending at the first ``x == 0``.
    ``yolo_ab``: ``(B, max_boxes, 6)``, rows ``x, y, w, h, class_id,
    track_id`` (``truth_cols``).
``train``
    bool: a training forward (``False``: inference, zero delta, cost 0).
``seen``
    int64, ``region`` only: ``*net.seen`` (the ``seen < 12800`` prior rule).
``output``, ``delta``
    float32 ``(B, C, H, W)``: ``l.output`` and ``l.delta`` after the call.
``cost``
    float32: ``*l.cost``.
``stats``
    float64: the printed statistics, exact (``yolo``: avg IoU, class, obj,
    no obj, .5R, .75R; ``region``: avg IoU, class, obj, no obj, recall;
    ``yolo_ab``: the values of its ``v3 (...)`` line, named by
    ``stats_names``); empty when ``train`` is False.
``count``
    int64: the printed count (-1 when ``train`` is False).
``text``
    str: what upstream printed, character for character.
``tags``
    JSON list: what the case exercises (``dup_cell_hit``,
    ``x0_terminator_mid``, ``mag_n20``, ``profile_realistic``, ``fuzz``,
    ``cause_overwrite_order`` ...); ``pydarknet-loss check`` and the
    pytest plugin summarise results per tag.
``provenance``
    JSON, in cases this package writes: what computed the case (package
    version, upstream commit, core flags, seed and draw).
``yolo_ab`` only
    ``stats_names``, ``labels`` and ``class_ids`` (int32 ``(B, n, H, W)``:
    ``l.labels``, ``l.class_ids``), ``total_bbox`` and ``rewritten_bbox``
    (int64), ``counters_racy`` (bool: B > 1, where upstream's own counters
    race), ``truth_cols``.

Comparing
=========

Compare float32 bit patterns (``np.array_equal(a.view(np.uint32),
b.view(np.uint32))``, NaN matching NaN of any payload) for a bit-exact
port; another implementation is judged with
``GoldenCase.check(actual)`` / ``pydarknet-loss check``, under the default
``tolerance="float32"`` (darknet's own rounding of each element).

Reading and writing
===================

:class:`pydarknet_loss.parity.golden.GoldenCase` reads a case (a file that
is not one is a :class:`~pydarknet_loss.parity.golden.GoldenError` that
names it); ``pydarknet-loss golden export --cfg your.cfg --out golden/``
writes cases for your cfg's loss layers; the pytest plugin's
``darknet_golden_case`` fixture yields them (``--darknet-golden golden/``).
"""

#: Keys every training-forward case has.
REQUIRED_KEYS = ("kind", "params", "input", "truth", "train", "output", "delta", "cost")
