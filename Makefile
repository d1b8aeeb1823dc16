# Lean VMM build. Sources are picked up by directory so that adding a file
# needs no edit here:
#   vmm/*.c                 -> build/bin/vmm (vmm/main.c holds main())
#   devices/virtio-iommu/*.c, iommufd/*.c, acpi/*.c, vmm/*.c (not main.c)
#                           -> build/libvmmcore.a (what tests link)
#   acpi/*.asl              -> compiled by iasl into C arrays
#   tests/unit/test_*.c     -> build/tests/test_* (cmocka), one per file
#   tests/fuzz/fuzz_*.c     -> build/fuzz/fuzz_* (clang libFuzzer, `make fuzz`)
#   tests/l1/*.c            -> build/l1/* (static programs run inside the L1)
#   tests/runner/*.c        -> build/runner/* (host helpers of the nested runner)
#
#   make                 the vmm binary (static too: build/bin/vmm-static)
#   make check           unit tests, then the same under ASan+UBSan
#   make SAN=1 ...       the sanitizer build into build-san/
#
# uAPI headers (iommufd, vfio cdev, virtio-iommu) come from the 6.12 kernel
# source via scripts/build-kernel.sh --headers (the distribution's are 6.1).

KHDR ?= $(shell scripts/build-kernel.sh --print)/headers
KSRC ?= $(shell scripts/build-kernel.sh --print)/src

CC ?= cc
O ?= build
CFLAGS_BASE := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wshadow -Wstrict-prototypes -Wmissing-prototypes -fno-strict-aliasing \
	-D_GNU_SOURCE -MMD -MP -isystem $(KHDR)/include \
	-Ivmm -Iacpi -Iiommufd -Idevices/virtio-iommu -I$(O)/gen
ifeq ($(SAN),1)
O := build-san
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif
CFLAGS += $(CFLAGS_BASE)
LDLIBS := -laio -lfdt -llz4 -lpthread

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

CORE_SRCS := $(filter-out vmm/main.c,$(wildcard vmm/*.c)) \
	$(wildcard devices/virtio-iommu/*.c) $(wildcard iommufd/*.c) \
	$(wildcard acpi/*.c)
ASL_SRCS := $(wildcard acpi/*.asl)
ASL_GEN := $(patsubst acpi/%.asl,$(O)/gen/%_aml.c,$(ASL_SRCS))
CORE_OBJS := $(patsubst %.c,$(O)/%.o,$(CORE_SRCS)) $(ASL_GEN:.c=.o)
TEST_SRCS := $(wildcard tests/unit/test_*.c)
TESTS := $(patsubst tests/unit/%.c,$(O)/tests/%,$(TEST_SRCS))
L1_SRCS := $(wildcard tests/l1/*.c)
L1_BINS := $(patsubst tests/l1/%.c,$(O)/l1/%,$(L1_SRCS))
RUNNER_SRCS := $(wildcard tests/runner/*.c)
RUNNER_BINS := $(patsubst tests/runner/%.c,$(O)/runner/%,$(RUNNER_SRCS))

all: $(O)/bin/vmm $(O)/bin/vmm-static $(L1_BINS) $(RUNNER_BINS)

$(KHDR)/include/linux/iommufd.h:
	scripts/build-kernel.sh --headers >/dev/null

$(O)/%.o: %.c $(KHDR)/include/linux/iommufd.h $(ASL_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(O)/vmm/main.o: CFLAGS += -DVMM_VERSION='"$(VERSION)"'

# iasl -tc writes a C array named <file>_aml_code; rename to <name>_aml.
$(O)/gen/%_aml.c: acpi/%.asl
	@mkdir -p $(O)/gen/tmp
	iasl -p $(O)/gen/tmp/$* -tc $< >$(O)/gen/tmp/$*.log 2>&1 || (cat $(O)/gen/tmp/$*.log; exit 1)
	{ echo '#include <stddef.h>'; \
	  sed -e 's/unsigned char [A-Za-z0-9_]*\[\]/const unsigned char $*_aml[]/' $(O)/gen/tmp/$*.hex; \
	  echo 'const size_t $*_aml_len = sizeof($*_aml);'; } >$@

$(O)/gen/%_aml.o: $(O)/gen/%_aml.c
	$(CC) -O2 -c -o $@ $<

$(O)/libvmmcore.a: $(CORE_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(O)/bin/vmm: $(O)/vmm/main.o $(O)/libvmmcore.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(O)/bin/vmm-static: $(O)/vmm/main.o $(O)/libvmmcore.a
	@mkdir -p $(dir $@)
	$(CC) -static $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(O)/tests/%: $(O)/tests/unit/%.o $(O)/libvmmcore.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LDLIBS) -lm

$(O)/l1/%: $(O)/tests/l1/%.o $(O)/libvmmcore.a
	@mkdir -p $(dir $@)
	$(CC) -static $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(O)/tests/l1/%.o: CFLAGS += -I$(KSRC)/drivers/iommu/iommufd

$(O)/runner/%: tests/runner/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

tests: $(TESTS)

# Unit tests, plain and under sanitizers. Prints "N passed, N failed" per run.
check: tests
	scripts/run-unit-tests.sh $(O)/tests
	$(MAKE) SAN=1 tests
	scripts/run-unit-tests.sh build-san/tests

FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_CORE := $(filter-out vmm/main.c,$(CORE_SRCS))
fuzz: $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRCS))
build-fuzz/%: tests/fuzz/%.c $(FUZZ_CORE) $(ASL_GEN)
	@mkdir -p build-fuzz
	clang $(CFLAGS_BASE) -Wno-unused-command-line-argument -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=all \
		-o $@ $< $(FUZZ_CORE) $(ASL_GEN) $(LDLIBS)

clean:
	rm -rf build build-san build-fuzz

.PHONY: all tests check fuzz clean
-include $(shell find $(O) -name '*.d' 2>/dev/null)
