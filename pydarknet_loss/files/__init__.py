"""Darknet's files: .cfg networks (per-darknet parse and shape rules), label files, softmax trees."""
