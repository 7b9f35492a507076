__version__ = "0.1.0"

#: The upstream darknet commit whose arithmetic is reproduced.
UPSTREAM_COMMIT = "f6afaabcdf85f77e7aff2ec55c020c0e297c77f9"
