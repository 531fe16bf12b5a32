# smsdist: PGXS build of the extension, its tests and its demo.
#
#   make && make install      build and install smsdist.so, the SQL scripts and
#                             the client agent (smsdist-agent, in pg_config --bindir)
#   make test                 every test (pg_regress, pgTAP, multi-server TAP);
#                             prints "N passed, N failed" as its last line
#   make demo                 the demo on a throwaway local cluster
#   make bench                the benchmarks (figures in docs/benchmarks.md)

EXTENSION    = smsdist
EXTVERSION   = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" smsdist.control)
MODULE_big   = smsdist
OBJS         = src/smsdist.o src/wakeup.o src/validate.o src/status.o \
               src/worker.o src/supervisor.o src/scheduler.o \
               src/package_archive.o src/package_extract.o src/publish.o \
               src/compress.o src/inflate.o src/package_builder.o src/despooler.o \
               src/receiver.o src/sender.o src/sha256.o src/package_delta.o \
               src/query_rule.o src/collection_evaluator.o \
               src/pcm_writer.o src/formats/sms_formats.o src/offer_manager.o \
               src/site_link.o src/replication_manager.o src/job_control.o src/status_manager.o \
               src/early_extract.o src/source_roots.o src/site_key.o src/formats/sms_signature.o
DATA         = $(wildcard sql/smsdist--*.sql)

# pg_regress: run against a temporary instance that preloads the library.
REGRESS      = schema validation roles wakeup
REGRESS_OPTS = --inputdir=test/regress --outputdir=test/regress \
               --temp-instance=./tmp_regress --temp-config=test/regress/regress.conf \
               --load-extension=smsdist

PG_CPPFLAGS  = -DSMSDIST_VERSION='"$(EXTVERSION)"' -Wall -Wextra -Werror \
               -Wno-unused-parameter -Wno-missing-field-initializers \
               -I$(libpq_srcdir)
SHLIB_LINK_INTERNAL = $(libpq)
SHLIB_LINK   = -larchive -lz -lcrypto

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs)
EXTRA_CLEAN  = src/agent/smsdist-agent test/regress/results test/regress/regression.diffs test/regress/regression.out
include $(PGXS)

# The client agent: a plain C program over the shared format library and
# libpq (no server headers), installed next to the PostgreSQL programs.
AGENT        = src/agent/smsdist-agent
all: $(AGENT)
AGENT_SRC    = src/agent/smsdist-agent.c src/agent/download_cache.c src/formats/sms_formats.c \
               src/formats/sms_signature.c
$(AGENT): $(AGENT_SRC) src/agent/download_cache.h src/formats/sms_formats.h src/formats/sms_signature.h smsdist.control
	$(CC) -O2 -g -std=gnu99 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-format-truncation \
		-DSMSDIST_VERSION='"$(EXTVERSION)"' -Isrc/formats -I$(includedir) -o $@ \
		$(AGENT_SRC) -L$(libdir) -lpq -lcrypto
install: install-agent
.PHONY: install-agent
install-agent: $(AGENT)
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) $(AGENT) '$(DESTDIR)$(bindir)/smsdist-agent'

.PHONY: test demo bench deps
deps:
	bash tools/ensure-deps

test:
	bash test/run-all

demo:
	bash tools/demo

bench:
	bash bench/run-all

# The version is compiled in, and every file shares the headers: rebuild
# when either changes (PGXS knows neither).
$(OBJS) $(OBJS:.o=.bc): smsdist.control $(wildcard src/*.h src/formats/*.h)
