# utilix: PGXS build.  The version lives in utilix.control only.
EXTENSION    = utilix
EXTVERSION   = $(shell sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" utilix.control)
MODULE_big   = utilix
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
SQL_PARTS    = $(sort $(wildcard src/sql/[0-9]*.sql))
DATA_built   = utilix--$(EXTVERSION).sql
DATA         = $(filter-out $(wildcard src/sql/[0-9]*.sql),$(wildcard src/sql/utilix--*--*.sql))
EXTRA_CLEAN  = utilix--$(EXTVERSION).sql results/ regression.diffs regression.out

PG_CONFIG   ?= pg_config
PG_CPPFLAGS  = -I$(srcdir)/src -DUTILIX_VERSION='"$(EXTVERSION)"'
PG_CFLAGS    = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers $(UTILIX_CFLAGS)
SHLIB_LINK   = -lcrypto $(UTILIX_LDFLAGS)

REGRESS      = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --dbname=utilix_regression

# no JIT bitcode: it would need clang on every machine that builds us
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

utilix--$(EXTVERSION).sql: $(SQL_PARTS) utilix.control
	cat $(SQL_PARTS) > $@

$(OBJS): src/utilix.h
src/accesslog.o src/spill.o src/context.o: src/accesslog.h

.PHONY: deps test test-asan demo bench fuzz meta-check
# Installs the Debian packages the build, tests, demo and benchmarks need.
deps:
	@test/deps.sh

test: deps
	$(MAKE) all
	$(MAKE) install
	test/run-all.sh

# pg_regress and pgTAP against a build with AddressSanitizer and UBSan
# (test/asan.sh); make test runs it too, after the other suites.
test-asan: deps
	$(MAKE) all
	$(MAKE) install
	test/asan.sh

demo: deps
	$(MAKE) all
	$(MAKE) install
	demo/run.sh

bench: deps
	$(MAKE) all
	$(MAKE) install
	test/bench/run.sh

# every libFuzzer harness of test/fuzz/, FUZZ_SECONDS each (100 by default)
fuzz: deps
	bash test/fuzz/run.sh
