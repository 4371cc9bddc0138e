# SPDX-License-Identifier: GPL-2.0-only
#
# spry's build.  What is built from which sources is listed in Kbuild; this
# file only knows how.  `make help` lists the targets.
#
#   make            build everything into build/ (O=DIR: elsewhere)
#   make V=1        show every command
#   make SAN=1      build with ASan+UBSan (into build-san/ unless O= is set)

include Kbuild

SRC	:= $(CURDIR)
ifeq ($(SAN),1)
OUT	:= $(abspath $(if $(O),$(O),build-san))
else
OUT	:= $(abspath $(if $(O),$(O),build))
endif

ifeq ($(V),1)
Q	:=
msg	=
else
Q	:= @
msg	= @printf '  %-9s %s\n' "$(1)" "$(patsubst $(OUT)/%,%,$(2))";
MAKEFLAGS += --no-print-directory
endif

.DELETE_ON_ERROR:
.SUFFIXES:

CC	?= cc
CLANG	?= clang
BPFTOOL	?= bpftool
AR	?= ar
ARCH	:= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

CFLAGS	?= -O2 -g
WFLAGS	:= -Wall -Wextra -Werror
# (a literal comma would end $(if)'s then-part: spell it $(comma))
comma	:= ,
SANFLAGS := $(if $(filter 1,$(SAN)),-fsanitize=address$(comma)undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
ALL_CFLAGS := $(CFLAGS) $(WFLAGS) $(SANFLAGS) -std=gnu11 -D_GNU_SOURCE -pthread \
	-I$(SRC)/include -I$(SRC) -I$(OUT)/bpf $(EXTRA_CFLAGS)
ALL_LDFLAGS := $(LDFLAGS) $(SANFLAGS) -pthread
BPF_CFLAGS := -g -O2 --target=bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-I$(OUT)/bpf -I$(SRC)/bpf -I$(SRC)/include -I$(SRC)

# Userspace objects mirror the source tree under $(OUT)/obj (and /pic for
# the shared library).
obj = $(patsubst %.c,$(OUT)/obj/%.o,$(1))
pic = $(patsubst %.c,$(OUT)/pic/%.o,$(1))

# Our libraries named in <prog>-libs become archives; the rest pass through.
ourlibs = $(foreach l,$(1),$(if $(filter $(l),$(libs-y)),$(OUT)/$(l).a))
syslibs = $(filter-out $(libs-y),$(1))
skels   = $(foreach s,$(1),$(OUT)/bpf/$(s).skel.h)

BPF_OBJS   := $(foreach b,$(bpf-y),$(OUT)/bpf/$(b).bpf.o)
BPF_SKELS  := $(call skels,$(bpf-y))
# libspry's version, from its header: libspry.so.MAJOR.MINOR.PATCH, soname
# libspry.so.MAJOR.
hash	:= \#
libspry_ver = $(shell sed -n 's/^$(hash)define[[:space:]]\+LIBSPRY_$(1)_VERSION[[:space:]]\+\([0-9]\+\)$$/\1/p' \
	$(SRC)/include/spry/spry.h)
SPRY_SOVERSION  := $(call libspry_ver,MAJOR)
LIBSPRY_VERSION := $(SPRY_SOVERSION).$(call libspry_ver,MINOR).$(call libspry_ver,PATCH)
$(if $(filter 3,$(words $(subst ., ,$(LIBSPRY_VERSION)))),,\
	$(error include/spry/spry.h lacks LIBSPRY_{MAJOR,MINOR,PATCH}_VERSION))
LIBS       := $(foreach l,$(libs-y),$(OUT)/$(l).a) $(OUT)/libspry.so.$(LIBSPRY_VERSION) \
	      $(OUT)/libspry.so.$(SPRY_SOVERSION) $(OUT)/libspry.so
PROGS      := $(foreach p,$(progs-y),$(OUT)/$(p))
EXAMPLES   := $(foreach e,$(examples-y),$(OUT)/examples/$(e))
SELFTESTS  := $(foreach t,$(selftests-y),$(OUT)/selftests/$(t))
BENCHES    := $(foreach b,$(benches-y),$(OUT)/bench/$(b))
FUZZERS    := $(foreach f,$(fuzzers-y),$(OUT)/fuzz/$(f))
# clang's libFuzzer runtime present?  (selftests builds the fuzzers if so)
HAVE_FUZZER := $(if $(filter /%,$(shell $(CLANG) -print-file-name=libclang_rt.fuzzer-$(shell uname -m).a 2>/dev/null)),1)

.PHONY: all bpf libs progs examples selftests bench-progs check check-san \
	bench demo clean help deps print-outputs fuzz install uninstall print-installed FORCE
all: bpf libs progs examples

bpf: $(BPF_OBJS) $(BPF_SKELS)
libs: $(LIBS)
progs: $(PROGS)
examples: $(EXAMPLES)
selftests: all $(SELFTESTS) $(if $(HAVE_FUZZER),$(FUZZERS))
fuzz: $(FUZZERS)
bench-progs: all $(BENCHES)

# --- BPF --------------------------------------------------------------------
$(OUT)/bpf/vmlinux.h:
	$(call msg,GEN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

BPF_HDRS := $(wildcard $(SRC)/bpf/*.h) $(SRC)/include/spry/abi.h

define bpf_rule
$(OUT)/bpf/$(1).bpf.o: $(SRC)/$($(1)-y) $(BPF_HDRS) $(OUT)/bpf/vmlinux.h
	$$(call msg,BPF,$$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $$< -o $$@
$(OUT)/bpf/$(1).skel.h: $(OUT)/bpf/$(1).bpf.o
	$$(call msg,GEN-SKEL,$$@)
	$(Q)$(BPFTOOL) gen skeleton $$< name $(1) > $$@
endef
$(foreach b,$(bpf-y),$(eval $(call bpf_rule,$(b))))

# --- userspace objects -----------------------------------------------------
# Every object may include any skeleton: they are cheap, and this keeps
# the dependency lists in Kbuild alone.
$(OUT)/obj/%.o: $(SRC)/%.c | $(BPF_SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(OUT)/pic/%.o: $(SRC)/%.c
	$(call msg,CC-PIC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -DSPRY_BUILD_SHARED -MMD -MP -c $< -o $@

define lib_rule
$(OUT)/$(1).a: $(call obj,$($(1)-y))
	$$(call msg,AR,$$@)
	$(Q)rm -f $$@ && $(AR) rcs $$@ $$^
endef
$(foreach l,$(libs-y),$(eval $(call lib_rule,$(l))))

$(OUT)/libspry.so.$(LIBSPRY_VERSION): $(call pic,$(libspry-y))
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -shared -Wl,-soname,libspry.so.$(SPRY_SOVERSION) $^ -o $@

# the soname link (what programs load) and the link `-lspry` finds
$(OUT)/libspry.so.$(SPRY_SOVERSION): $(OUT)/libspry.so.$(LIBSPRY_VERSION)
	$(call msg,LN,$@)
	$(Q)ln -sf $(<F) $@

$(OUT)/libspry.so: $(OUT)/libspry.so.$(SPRY_SOVERSION)
	$(call msg,LN,$@)
	$(Q)ln -sf $(<F) $@

# prog_rule(name, output path)
define prog_rule
$(2): $(call obj,$($(1)-y)) $(call ourlibs,$($(1)-libs)) | $(call skels,$($(1)-skel))
	$$(call msg,LD,$$@)
	$(Q)mkdir -p $$(@D)
	$(Q)$(CC) $(ALL_LDFLAGS) $(call obj,$($(1)-y)) $(call ourlibs,$($(1)-libs)) \
		$(call syslibs,$($(1)-libs)) -o $$@
endef
$(foreach p,$(progs-y),$(eval $(call prog_rule,$(p),$(OUT)/$(p))))
$(foreach e,$(examples-y),$(eval $(e)-libs ?= libspry))
$(foreach e,$(examples-y),$(eval $(call prog_rule,$(e),$(OUT)/examples/$(e))))
$(foreach t,$(selftests-y),$(eval $(call prog_rule,$(t),$(OUT)/selftests/$(t))))
$(foreach b,$(benches-y),$(eval $(call prog_rule,$(b),$(OUT)/bench/$(b))))

# --- fuzzers -----------------------------------------------------------------
# Every source of a fuzzer is compiled with clang and the fuzzer's
# instrumentation into $(OUT)/fuzz/obj, apart from the normal objects.
FUZZ_SAN    := -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer \
	       -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -O1 -g $(WFLAGS) $(FUZZ_SAN) -std=gnu11 -D_GNU_SOURCE -pthread \
	-I$(SRC)/include -I$(SRC) -I$(OUT)/bpf $(EXTRA_CFLAGS)
fuzzobj = $(patsubst %.c,$(OUT)/fuzz/obj/%.o,$(1))

$(OUT)/fuzz/obj/%.o: $(SRC)/%.c
	$(call msg,CC-FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

# fuzz_rule(name)
define fuzz_rule
$(OUT)/fuzz/$(1): $(call fuzzobj,$($(1)-y))
	$$(call msg,LD-FUZZ,$$@)
	$(Q)$(CLANG) $(FUZZ_SAN) -pthread $(call fuzzobj,$($(1)-y)) $($(1)-libs) -o $$@
endef
$(foreach f,$(fuzzers-y),$(eval $(call fuzz_rule,$(f))))

-include $(shell find $(OUT)/obj $(OUT)/pic $(OUT)/fuzz/obj -name '*.d' 2>/dev/null)

# --- install -----------------------------------------------------------------
# make install [DESTDIR=STAGING] [PREFIX=/usr/local] [MULTIARCH=1]: spry and
# spryd into SBINDIR; libspry (.a, .so with soname) into LIBDIR, its public
# headers into INCLUDEDIR/spry, libspry.pc; man pages; bash completion;
# systemd units.  Every directory below may be set on its own; MULTIARCH=1
# puts the library in Debian's multiarch directory (lib/x86_64-linux-gnu).
# `make uninstall` with the same variables removes exactly what install put.
PREFIX		?= /usr/local
EXEC_PREFIX	?= $(PREFIX)
SBINDIR		?= $(EXEC_PREFIX)/sbin
LIBDIR		?= $(EXEC_PREFIX)/lib$(if $(filter 1,$(MULTIARCH)),/$(shell $(CC) -print-multiarch))
INCLUDEDIR	?= $(PREFIX)/include
DATAROOTDIR	?= $(PREFIX)/share
MANDIR		?= $(DATAROOTDIR)/man
PKGCONFIGDIR	?= $(LIBDIR)/pkgconfig
BASHCOMPDIR	?= $(DATAROOTDIR)/bash-completion/completions
SYSTEMDUNITDIR	?= $(PREFIX)/lib/systemd/system
SYSCONFDIR	?= /etc
INSTALL		?= install

SPRY_HEADERS	:= $(SRC)/include/spry/spry.h $(SRC)/include/spry/abi.h $(SRC)/include/spry/state.h
SPRY_MAN8	:= spry.8 spryd.8
SPRY_MAN3	:= libspry.3
SPRY_UNITS	:= spryd.service spry-apply.service
# .in files: @VAR@ -> the value (libdir and includedir relative to the
# prefix in libspry.pc, so PKG_CONFIG_SYSROOT_DIR works)
SUBST	= sed -e 's|@PREFIX@|$(PREFIX)|g' \
	  -e 's|@EXEC_PREFIX@|$(patsubst $(PREFIX)%,$${prefix}%,$(EXEC_PREFIX))|g' \
	  -e 's|@LIBDIR@|$(patsubst $(EXEC_PREFIX)/%,$${exec_prefix}/%,$(LIBDIR))|g' \
	  -e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|g' \
	  -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	  -e 's|@LIBSPRY_VERSION@|$(LIBSPRY_VERSION)|g'

# What install puts, without DESTDIR (uninstall removes these).
INSTALLED := $(addprefix $(SBINDIR)/,$(progs-y)) \
	$(addprefix $(LIBDIR)/,libspry.a libspry.so.$(LIBSPRY_VERSION) \
		libspry.so.$(SPRY_SOVERSION) libspry.so) \
	$(addprefix $(INCLUDEDIR)/spry/,$(notdir $(SPRY_HEADERS))) \
	$(PKGCONFIGDIR)/libspry.pc \
	$(addprefix $(MANDIR)/man8/,$(SPRY_MAN8)) $(addprefix $(MANDIR)/man3/,$(SPRY_MAN3)) \
	$(BASHCOMPDIR)/spry \
	$(addprefix $(SYSTEMDUNITDIR)/,$(SPRY_UNITS))

$(OUT)/pkg/%: $(SRC)/%.in FORCE
	$(call msg,GEN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(SUBST) $< > $@

install: progs libs $(OUT)/pkg/libspry.pc $(addprefix $(OUT)/pkg/systemd/,$(SPRY_UNITS))
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/spry \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man3 \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(SYSTEMDUNITDIR)
	$(Q)$(INSTALL) -m 0755 $(addprefix $(OUT)/,$(progs-y)) $(DESTDIR)$(SBINDIR)
	$(Q)$(INSTALL) -m 0644 $(OUT)/libspry.a $(DESTDIR)$(LIBDIR)
	$(Q)$(INSTALL) -m 0755 $(OUT)/libspry.so.$(LIBSPRY_VERSION) $(DESTDIR)$(LIBDIR)
	$(Q)ln -sfn libspry.so.$(LIBSPRY_VERSION) $(DESTDIR)$(LIBDIR)/libspry.so.$(SPRY_SOVERSION)
	$(Q)ln -sfn libspry.so.$(SPRY_SOVERSION) $(DESTDIR)$(LIBDIR)/libspry.so
	$(Q)$(INSTALL) -m 0644 $(SPRY_HEADERS) $(DESTDIR)$(INCLUDEDIR)/spry
	$(Q)$(INSTALL) -m 0644 $(OUT)/pkg/libspry.pc $(DESTDIR)$(PKGCONFIGDIR)
	$(Q)$(INSTALL) -m 0644 $(addprefix $(SRC)/man/,$(SPRY_MAN8)) $(DESTDIR)$(MANDIR)/man8
	$(Q)$(INSTALL) -m 0644 $(addprefix $(SRC)/man/,$(SPRY_MAN3)) $(DESTDIR)$(MANDIR)/man3
	$(Q)$(INSTALL) -m 0644 $(SRC)/bash-completion/spry $(DESTDIR)$(BASHCOMPDIR)
	$(Q)$(INSTALL) -m 0644 $(addprefix $(OUT)/pkg/systemd/,$(SPRY_UNITS)) $(DESTDIR)$(SYSTEMDUNITDIR)

uninstall:
	$(call msg,UNINSTALL,$(DESTDIR)$(PREFIX))
	$(Q)rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	$(Q)rmdir $(DESTDIR)$(INCLUDEDIR)/spry 2>/dev/null || true

# Every file `make install` puts, one per line, without DESTDIR.
print-installed:
	@printf '%s\n' $(INSTALLED)

FORCE:

# --- top-level jobs ----------------------------------------------------------
deps:
	$(Q)$(SRC)/scripts/install-deps.sh

# The whole suite with the default HTTP front, then the tests that serve
# HTTP again with the io_uring one (spryd --front uring), and the front's
# own tests once more with its second thread (--sqpoll any) and with the
# requests' descriptors sent through its ring (--desc-send ring).  In the plain
# build, test_kselftest runs every installed test and run_tests.sh reports
# those from its run instead of running them twice.
# (test_http, spryd/http.c on byte buffers, has no front: it runs once)
URING_TESTS := test_gateway test_http_hostile test_spryd test_e2e
SQPOLL_TESTS := test_gateway test_http_hostile
# (not again under ASan+UBSan: test_desc_send runs the ring's path there)
RING_TESTS := test_gateway test_http_hostile
# Not run under ASan+UBSan (SAN=1: check-san), each for its reason; all of
# them run in the plain `make check`:
#   test_fuzz       the fuzzers are built with ASan+UBSan in either build
#                   (FUZZ_SAN): check-san would run the same binaries again
#   test_build      checks the plain build (it unsets SAN)
#   test_kselftest  the kernel's kselftest install of the plain build
#   test_install    packaging: what `make install` puts where, and that an
#                   installed spry starts (every other test runs it)
#   test_rooms      reads spryd's sources, runs no program of ours
SAN_SKIP := test_fuzz test_build test_kselftest test_install test_rooms
check: selftests
	$(Q)OUT=$(OUT) $(SRC)/selftests/run_tests.sh \
		$(if $(filter 1,$(SAN)),$(addprefix -x ,$(SAN_SKIP))); a=$$?; \
	OUT=$(OUT) $(SRC)/selftests/run_tests.sh -f uring $(addprefix -t ,$(URING_TESTS)); \
	b=$$?; \
	OUT=$(OUT) $(SRC)/selftests/run_tests.sh -f uring-sqpoll $(addprefix -t ,$(SQPOLL_TESTS)); \
	c=$$?; e=0; \
	$(if $(filter 1,$(SAN)),:,OUT=$(OUT) $(SRC)/selftests/run_tests.sh -f uring-ring \
		$(addprefix -t ,$(RING_TESTS)) || e=$$?); \
	[ $$a -eq 0 ] && [ $$b -eq 0 ] && [ $$c -eq 0 ] && [ $$e -eq 0 ]

check-san:
	$(Q)$(MAKE) SAN=1 check

bench: bench-progs
	$(Q)OUT=$(OUT) $(SRC)/bench/run.sh

demo: all
	$(Q)OUT=$(OUT) $(SRC)/scripts/demo.sh

# Every file `make all` produces, one per line (used by selftests/test_build.sh).
print-outputs:
	@printf '%s\n' $(BPF_OBJS) $(BPF_SKELS) $(LIBS) $(PROGS) $(EXAMPLES)

clean:
	$(call msg,CLEAN,$(OUT))
	$(Q)rm -rf $(OUT)

help:
	@echo 'spry build targets (what is built from what: Kbuild)'
	@echo '  all          BPF objects + skeletons, libspry (.a/.so), spry, spryd, examples'
	@echo '  bpf libs progs examples   parts of all'
	@echo '  selftests    build the selftests (and the fuzzers, with clang'"'"'s libFuzzer)'
	@echo '  fuzz         build the libFuzzer harnesses into $(OUT)/fuzz (fuzz/run.sh runs them)'
	@echo '  check        build and run the selftests (TAP); as root'
	@echo '  check-san    the same under ASan+UBSan'
	@echo '  bench        build and run the benchmarks under bench/'
	@echo '  demo         load spry, start spryd and a demo chain'
	@echo '  deps         install the Debian packages spry needs'
	@echo '  install      spry, spryd, libspry (.a, .so), headers, libspry.pc, man pages,'
	@echo '               bash completion, systemd units (PREFIX=/usr/local, DESTDIR=)'
	@echo '  uninstall    remove what install put (the same variables)'
	@echo '  clean        remove $(OUT)'
	@echo '  print-outputs  list the files `make all` produces'
	@echo 'variables: V=1 verbose, O=DIR out-of-tree, SAN=1 sanitizers, CC, CLANG, BPFTOOL'
	@echo '  install: DESTDIR PREFIX EXEC_PREFIX SBINDIR LIBDIR (MULTIARCH=1: lib/<triplet>)'
	@echo '  INCLUDEDIR DATAROOTDIR MANDIR PKGCONFIGDIR BASHCOMPDIR SYSTEMDUNITDIR SYSCONFDIR'
