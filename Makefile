# pydarknet_loss -- common tasks.  `make help` lists them.
PYTHON ?= python3
CC ?= cc
# The same flags as build_ffi.py (tests/test_c_api.py checks they agree);
# never -ffast-math, -Ofast or -march=native.
STRICT_CFLAGS = -std=c99 -O2 -fno-fast-math -ffp-contract=off -fno-semantic-interposition \
                -fno-wrapv -falign-functions=64 -falign-loops=64
SRC = $(wildcard darknet_src/*.c)
OBJ = $(patsubst darknet_src/%.c,build/obj/%.o,$(SRC))

# make lib CUDA=1: the GPU build's device code (darknet_src/cuda/gpu.cu) with
# nvcc's defaults (no -use_fast_math), as build_ffi.py compiles it for
# PYDARKNET_LOSS_CUDA=1; without it, cuda/no_cuda.c answers DN_E_NO_CUDA.
CUDA ?= 0
NVCC ?= nvcc
CUDA_ARCHS ?= 75 80 86 89 90 100 120
NVCC_DEVICE_FLAGS = -O3 -fmad=true -prec-div=true -prec-sqrt=true -ftz=false
GENCODE = $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
          -gencode arch=compute_$(lastword $(CUDA_ARCHS)),code=compute_$(lastword $(CUDA_ARCHS))
ifeq ($(CUDA),1)
CUDA_LIBDIR ?= $(shell $(NVCC) --dryrun -c -x cu /dev/null -o /dev/null 2>&1 | grep -o '"-L[^"]*"' | tr -d '"' | sed 's/^-L//' | grep -v stubs | head -1)
OBJ += build/obj/gpu.o
LINK_CUDA = -L$(CUDA_LIBDIR) -lcudart_static -lrt -ldl -lpthread -lstdc++ -Wl,--no-undefined
else
OBJ += build/obj/no_cuda.o
LINK_CUDA =
endif

.PHONY: help install test demo lib bench clean fuzz sanitize docs

help:
	@echo "make install  pip install the package (builds the C core)"
	@echo "make test     install with the test extra, then run the test suite"
	@echo "make demo     run the built-in example"
	@echo "make lib      build/libdarknet_loss.{so,a} + build/include/darknet_loss.h for C/C++ users"
	@echo "              (make lib CUDA=1: with the GPU build's device code, needs nvcc)"
	@echo "make bench    benchmarks/bench_yolo.py (YOLOv3 workload, B = 1, 16, 64; BENCH_ARGS=... for more,"
	@echo "              e.g. --ab for AlexeyAB's [yolo] on yolov4.cfg's heads)"
	@echo "make fuzz     the long fuzz run (FUZZ_CASES=100000 cases, forked children; the package installed)"
	@echo "make sanitize the core under ASan + UBSan: test suite and bounded fuzz (.ci/sanitize)"
	@echo "make docs     the API reference from the docstrings (needs the [docs] extra), warnings as errors:"
	@echo "              build/docs/index.html"
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
#                          --truths 20 90 --torch --ab-other /path/bench_ab_strict"
# (--ab-other: AlexeyAB's [yolo] on yolov4.cfg's heads, benchmarks/bench_ab.py)
BENCH_ARGS ?=
bench:
	cd benchmarks && $(PYTHON) bench_yolo.py $(BENCH_ARGS)

FUZZ_CASES ?= 100000
fuzz:
	cd tests && $(PYTHON) -m fuzz --cases $(FUZZ_CASES)

sanitize:
	bash .ci/sanitize

docs:
	cd docs && $(PYTHON) -m sphinx -E -W --keep-going -b html . ../build/docs

lib: build/libdarknet_loss.so build/libdarknet_loss.a build/include/darknet_loss.h

build/obj/%.o: darknet_src/%.c darknet_src/darknet_loss.h darknet_src/dn_internal.h darknet_src/ab_internal.h
	@mkdir -p build/obj
	$(CC) $(STRICT_CFLAGS) -fPIC -Wall -Wextra -c $< -o $@

build/obj/no_cuda.o: darknet_src/cuda/no_cuda.c darknet_src/darknet_loss.h
	@mkdir -p build/obj
	$(CC) $(STRICT_CFLAGS) -fPIC -Wall -Wextra -c $< -o $@

build/obj/gpu.o: darknet_src/cuda/gpu.cu darknet_src/darknet_loss.h
	@mkdir -p build/obj
	$(NVCC) -c $< -o $@ -Xcompiler -fPIC $(NVCC_DEVICE_FLAGS) $(GENCODE)

build/libdarknet_loss.so: $(OBJ)
	$(CC) -shared -o $@ $(OBJ) -lm -pthread $(LINK_CUDA)

build/libdarknet_loss.a: $(OBJ)
	$(AR) rcs $@ $(OBJ)

build/include/darknet_loss.h: darknet_src/darknet_loss.h
	@mkdir -p build/include
	cp $< $@

clean:
	rm -rf build dist *.egg-info pydarknet_loss/_core.c pydarknet_loss/_core*.so pydarknet_loss/*.o
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
