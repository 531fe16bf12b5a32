# smsdist: PGXS build of the extension, its tests and its demo.
#
#   make && make install      build and install smsdist.so, the SQL scripts and
#                             the client agent (smsdist-agent, in pg_config --bindir,
#                             a link to it in /usr/bin: AGENT_LINK_DIR, and its
#                             man page in /usr/share/man/man1: AGENT_MAN_DIR)
#   make test                 every test (pg_regress, pgTAP, multi-server TAP);
#                             prints "N passed, N failed" as its last line
#   make demo                 the demo on a throwaway local cluster
#   make bench                the benchmarks (figures in docs/benchmarks.md)

EXTENSION    = smsdist
EXTVERSION   = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" smsdist.control)
MODULE_big   = smsdist
# The server library: every C file of its layers (src/core, src/package,
# src/link, src/formats, src/components) and the entry point above them
# (src/module.c); the agent is built apart below.
SRC_DIRS     = src/core src/package src/link src/formats src/components
OBJS         = src/module.o $(patsubst %.c,%.o,$(wildcard $(addsuffix /*.c,$(SRC_DIRS))))
# The extension scripts.  The current version's base script is built from
# sql/smsdist.sql and each unreleased update script from its source in
# sql/updates/, by expanding their include lines (\ir <file>) with the
# files of sql/schema, sql/functions and sql/views (tools/expand-sql).  The
# scripts of released versions are installed as they shipped.
SQL_BASE     = sql/$(EXTENSION)--$(EXTVERSION).sql
SQL_UPDATES  = $(patsubst sql/updates/%,sql/%,$(wildcard sql/updates/$(EXTENSION)--*.sql))
DATA_built   = $(SQL_BASE) $(SQL_UPDATES)
DATA         = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*.sql))
SQL_SOURCES  = $(wildcard sql/$(EXTENSION).sql sql/schema/*.sql sql/functions/*.sql sql/views/*.sql)

# pg_regress: run against a temporary instance that preloads the library.
REGRESS      = schema validation roles wakeup
REGRESS_OPTS = --inputdir=test/regress --outputdir=test/regress \
               --temp-instance=./tmp_regress --temp-config=test/regress/regress.conf \
               --load-extension=smsdist

PG_CPPFLAGS  = -DSMSDIST_VERSION='"$(EXTVERSION)"' -Wall -Wextra -Werror \
               -Wno-unused-parameter -Wno-missing-field-initializers \
               -Isrc $(addprefix -I,$(SRC_DIRS)) -I$(libpq_srcdir)
# each object's headers, from the compiler (<object>.d); the bitcode files
# (.bc, for JIT) follow their object
PG_CFLAGS    = -MMD -MP
SHLIB_LINK_INTERNAL = $(libpq)
SHLIB_LINK   = -larchive -ldeflate -lisal -lz -lcrypto

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs)
EXTRA_CLEAN  = src/agent/smsdist-agent $(addsuffix .tmp,$(DATA_built)) $(OBJS:.o=.d) test/regress/results test/regress/regression.diffs test/regress/regression.out
include $(PGXS)

# The client agent: a plain C program over the shared format library and
# libpq (no server headers), installed next to the PostgreSQL programs.
AGENT        = src/agent/smsdist-agent
all: $(AGENT)
# Every C file of src/agent and src/formats; headers found the same way.
AGENT_SRC    = $(wildcard src/agent/*.c src/formats/*.c)
AGENT_HDR    = $(wildcard src/agent/*.h src/formats/*.h)
$(AGENT): $(AGENT_SRC) $(AGENT_HDR) smsdist.control
	$(CC) -O2 -g -std=gnu99 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-format-truncation \
		-DSMSDIST_VERSION='"$(EXTVERSION)"' -Isrc/agent -Isrc/formats -I$(includedir) -o $@ \
		$(AGENT_SRC) -L$(libdir) -lpq -lcrypto
# The agent is run by administrators and by its systemd unit
# (contrib/smsdist-agent.service) as /usr/bin/smsdist-agent: a symbolic link
# there to the program in bindir puts it on PATH (none when bindir is that
# directory; AGENT_LINK_DIR= installs no link).  The link's target is the
# installed path, without DESTDIR, so that packages built with DESTDIR work.
AGENT_LINK_DIR ?= /usr/bin
# its man page, where man finds it (AGENT_MAN_DIR= installs none)
AGENT_MAN_DIR ?= /usr/share/man/man1
install: install-agent
uninstall: uninstall-agent
.PHONY: install-agent uninstall-agent
install-agent: $(AGENT)
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) $(AGENT) '$(DESTDIR)$(bindir)/smsdist-agent'
	if [ -n '$(AGENT_LINK_DIR)' ] && [ '$(AGENT_LINK_DIR)' != '$(bindir)' ]; then \
		$(MKDIR_P) '$(DESTDIR)$(AGENT_LINK_DIR)' && \
		ln -sfn '$(bindir)/smsdist-agent' '$(DESTDIR)$(AGENT_LINK_DIR)/smsdist-agent'; \
	fi
	if [ -n '$(AGENT_MAN_DIR)' ]; then \
		$(MKDIR_P) '$(DESTDIR)$(AGENT_MAN_DIR)' && \
		$(INSTALL_DATA) docs/smsdist-agent.1 '$(DESTDIR)$(AGENT_MAN_DIR)/smsdist-agent.1'; \
	fi
uninstall-agent:
	rm -f '$(DESTDIR)$(bindir)/smsdist-agent'
	if [ -n '$(AGENT_LINK_DIR)' ] && [ -L '$(DESTDIR)$(AGENT_LINK_DIR)/smsdist-agent' ]; then \
		rm -f '$(DESTDIR)$(AGENT_LINK_DIR)/smsdist-agent'; \
	fi
	if [ -n '$(AGENT_MAN_DIR)' ]; then rm -f '$(DESTDIR)$(AGENT_MAN_DIR)/smsdist-agent.1'; fi

.PHONY: test demo bench deps
deps:
	bash tools/ensure-deps

test:
	bash test/run-all

demo:
	bash tools/demo

bench:
	bash bench/run-all

# (written to a temporary file first: a failed expansion leaves no script)
$(SQL_BASE): sql/$(EXTENSION).sql $(SQL_SOURCES) tools/expand-sql smsdist.control
	perl tools/expand-sql $< >$@.tmp && mv $@.tmp $@
$(SQL_UPDATES): sql/%: sql/updates/% $(SQL_SOURCES) tools/expand-sql
	perl tools/expand-sql $< >$@.tmp && mv $@.tmp $@

# The version is compiled in (PGXS does not know): rebuild when it changes.
# Each object's headers come from the compiler (-MMD: <object>.d).
$(OBJS) $(OBJS:.o=.bc): smsdist.control
$(OBJS:.o=.bc): %.bc: %.o
-include $(wildcard $(OBJS:.o=.d))
