# PGXS build of db_virtuoso.
#   make && make install            build and install into the server found by pg_config
#   scripts/test.sh                 every test suite (see README)
EXTENSION   = db_virtuoso
EXTVERSION  = 0.5.0
MODULE_big  = db_virtuoso

# The install script is assembled from one fragment per capability (src/<capability>/*.sql,
# in name order), between the schema set-up and the privileges that must come last.
SQL_PARTS = src/pg/schema.sql src/pg/runner.sql \
            $(filter-out src/pg/%,$(sort $(wildcard src/*/*.sql))) \
            src/pg/privileges.sql
DATA_built = $(EXTENSION)--$(EXTVERSION).sql
# Released install scripts are frozen and kept, with one update script per release step.
DATA       = $(filter-out $(DATA_built),$(wildcard $(EXTENSION)--*.sql)) $(wildcard $(EXTENSION)--*.control)

SRCS = $(sort $(wildcard src/*/*.cpp))
OBJS = $(SRCS:.cpp=.o)
HEADERS = $(wildcard include/db_virtuoso/*/*.hpp)

# `make installcheck`: the regression schedule of test/schedule, run by pg_regress in a
# temporary instance of the installed server that preloads the library (test/regress.conf).
REGRESS      = $(shell sed -n 's/^test: *//p' test/schedule)
REGRESS_OPTS = --temp-instance=./tmp_check --temp-config=./test/regress.conf
EXTRA_CLEAN  = tmp_check results regression.diffs regression.out

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -I$(CURDIR)/include -DVIRTUOSO_VERSION=\"$(EXTVERSION)\"
SHLIB_LINK += -lfmt -lstdc++

# Debian builds the server with LLVM JIT; bitcode for C++ sources is not worth it here.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

override CXXFLAGS += -std=c++17 -fPIC -Wno-register -Wno-missing-field-initializers -Werror=return-type

# `make SANITIZE=1` (used by scripts/sanitize.sh in a separate build tree): AddressSanitizer
# and UndefinedBehaviorSanitizer, and every UBSan finding aborts instead of printing only.
# The server itself stays uninstrumented; it runs with libasan preloaded (see scripts).
ifdef SANITIZE
SANITIZE_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
override CXXFLAGS += $(SANITIZE_FLAGS) -O1
SHLIB_LINK += $(SANITIZE_FLAGS)
endif

$(OBJS): $(HEADERS)
# The library's version is compiled in: a new release must rebuild it.
src/pg/version.o: Makefile

$(DATA_built): $(SQL_PARTS)
	{ echo '-- db_virtuoso $(EXTVERSION): generated from $(SQL_PARTS); edit those files'; \
	  printf '%s\n' '\echo Use "CREATE EXTENSION $(EXTENSION)" to load this file. \quit'; \
	  for f in $(SQL_PARTS); do echo; echo "-- ==== $$f"; cat $$f; done; } > $@

all: $(DATA_built)
