"""The loss layers, one module per darknet: pjreddie.py (YOLOv2 [region], YOLOv3 [yolo]), and
what both share at inference (detections, NMS, box arithmetic)."""
