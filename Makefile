# Convenience targets over the scripts. `make install PREFIX=/usr/local` installs the
# `reparo` command-line tool, libreparo.so, reparo.h and a pkg-config file, so that
#   cc app.c $(pkg-config --cflags --libs reparo)
# builds against the installed copy.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
# The version is REPARO_VERSION_STRING of the header (the one place it is written).
VERSION := $(shell sed -n 's/^\#define REPARO_VERSION_STRING "\([^"]*\)".*/\1/p' include/reparo.h)

.PHONY: all build test reproduce install uninstall

all: build

build:
	bash scripts/build.sh

test:
	bash scripts/test.sh

reproduce:
	bash scripts/reproduce.sh

install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 0755 .build-release/release/reparo $(DESTDIR)$(BINDIR)/reparo
	install -m 0755 .build-release/release/libreparo.so $(DESTDIR)$(LIBDIR)/libreparo.so
	install -m 0644 include/reparo.h $(DESTDIR)$(INCLUDEDIR)/reparo.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' scripts/reparo.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/reparo.pc

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/reparo $(DESTDIR)$(LIBDIR)/libreparo.so $(DESTDIR)$(INCLUDEDIR)/reparo.h $(DESTDIR)$(PKGCONFIGDIR)/reparo.pc
