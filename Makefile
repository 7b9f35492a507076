# pydarknet_loss -- common tasks.  `make help` lists them.
PYTHON ?= python3
CC ?= cc
# The same flags as build_ffi.py (tests/test_c_api.py checks they agree);
# never -ffast-math, -Ofast or -march=native.
STRICT_CFLAGS = -std=c99 -O2 -fno-fast-math -ffp-contract=off -fno-semantic-interposition \
                -fno-wrapv -falign-functions=64 -falign-loops=64
SRC = $(wildcard darknet_src/*.c)
OBJ = $(patsubst darknet_src/%.c,build/obj/%.o,$(SRC))

.PHONY: help install test demo lib bench clean

help:
	@echo "make install  pip install the package (builds the C core)"
	@echo "make test     install with the test extra, then run the test suite"
	@echo "make demo     run the built-in example"
	@echo "make lib      build/libdarknet_loss.{so,a} + build/include/darknet_loss.h for C/C++ users"
	@echo "make bench    benchmarks/bench_yolo.py (YOLOv3 workload, B = 1, 16, 64; BENCH_ARGS=... for more)"
	@echo "make clean    remove build products"

install:
	$(PYTHON) -m pip install .

test:
	$(PYTHON) -m pip install '.[test]'
	cd tests && $(PYTHON) -c "import sys, pytest; sys.exit(pytest.main(['-q']))"

demo:
	$(PYTHON) -m pydarknet_loss demo

# Against upstream's own strict builds (outside this repository) in the same run:
#   make bench BENCH_ARGS="--other /path/bench_pj_strict --region-other /path/bench_pj_region_strict \
#                          --truths 20 90 --torch"
BENCH_ARGS ?=
bench:
	cd benchmarks && $(PYTHON) bench_yolo.py $(BENCH_ARGS)

lib: build/libdarknet_loss.so build/libdarknet_loss.a build/include/darknet_loss.h

build/obj/%.o: darknet_src/%.c darknet_src/darknet_loss.h darknet_src/dn_internal.h
	@mkdir -p build/obj
	$(CC) $(STRICT_CFLAGS) -fPIC -Wall -Wextra -c $< -o $@

build/libdarknet_loss.so: $(OBJ)
	$(CC) -shared -o $@ $(OBJ) -lm -pthread

build/libdarknet_loss.a: $(OBJ)
	$(AR) rcs $@ $(OBJ)

build/include/darknet_loss.h: darknet_src/darknet_loss.h
	@mkdir -p build/include
	cp $< $@

clean:
	rm -rf build dist *.egg-info pydarknet_loss/_core.c pydarknet_loss/_core*.so pydarknet_loss/*.o
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
