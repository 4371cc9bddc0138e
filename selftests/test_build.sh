#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The build itself: an out-of-tree build (O=) from the Kbuild lists makes
# every output and writes nothing into the source tree; quiet output by
# default, commands with V=1; `make help`; libspry as a static and a shared
# library whose one public header is enough to write a function.
. "$(dirname "$0")/lib.sh"

command -v make >/dev/null && command -v cc >/dev/null && command -v clang >/dev/null ||
	tap_skip_all "needs make, cc and clang"
[ -r /sys/kernel/btf/vmlinux ] || tap_skip_all "needs kernel BTF (/sys/kernel/btf/vmlinux)"

# The build under test is the plain one, whatever make ran this test
# (`make SAN=1 check` passes SAN=1 down through MAKEFLAGS and the
# environment).
unset MAKEFLAGS MFLAGS MAKELEVEL SAN O V

tap_plan
tmp=$(mktemp -d /tmp/spry-test-build.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

snapshot() {
	git -C "$SPRY_SRC" status --porcelain --ignored 2>/dev/null | grep -v '^!! build' | sort
}
before=$(snapshot)

make -C "$SPRY_SRC" O="$tmp/out" -j2 all >"$tmp/log" 2>&1
tap_ok $? "make O=DIR all succeeds"

missing=0
for f in $(make -s -C "$SPRY_SRC" O="$tmp/out" print-outputs); do
	[ -s "$f" ] || { tap_diag "missing output $f"; missing=1; }
done
tap_ok $missing "every output listed by Kbuild exists under O="

# Quiet: only "  TAG       path" lines, no compiler command lines.
bad=$(grep -vE '^  [A-Z-]+ +[^ ]+$' "$tmp/log" | grep -v '^make' | head -3)
[ -z "$bad" ]
tap_ok $? "quiet output is one tagged line per step${bad:+ (got: $bad)}"

touch "$SPRY_SRC/examples/upper.c"
make -C "$SPRY_SRC" O="$tmp/out" V=1 all >"$tmp/logv" 2>&1 &&
	grep -qE '(^| )(cc|gcc|clang)( .*)? -Wall -Wextra -Werror .*examples/upper\.c' "$tmp/logv"
tap_ok $? "V=1 shows the compiler command lines"

[ "$(snapshot)" = "$before" ]
tap_ok $? "an O= build writes nothing into the source tree"

make -s -C "$SPRY_SRC" help >"$tmp/help" 2>&1 &&
	grep -q 'O=DIR' "$tmp/help" && grep -q 'V=1' "$tmp/help" && grep -q 'check' "$tmp/help"
tap_ok $? "make help lists targets and variables"

# libspry.so exports the public API and nothing else.
extra=$(nm -D --defined-only "$tmp/out/libspry.so" | awk '{print $3}' | grep -v '^spry_' | head -3)
nm -D --defined-only "$tmp/out/libspry.so" | grep -q ' T spry_fn_run$' && [ -z "$extra" ]
tap_ok $? "libspry.so exports only spry_* symbols${extra:+ (also: $extra)}"

members=$(ar t "$tmp/out/libspry.a")
lacks=0
for o in pool.o runtime.o proto.o client.o; do
	printf '%s\n' "$members" | grep -qx "$o" || { tap_diag "libspry.a lacks $o"; lacks=1; }
done
tap_ok $lacks "libspry.a holds the pool, runtime, protocol and client"

# A function needs only the public header and the library.
cat >"$tmp/fn.c" <<'C'
#include <spry/spry.h>
#include <string.h>
static int echo(struct spry_req *req, void *user)
{
	size_t len;
	(void)user;
	(void)spry_req_data(req, &len);
	return spry_req_set_len(req, len);
}
int main(int argc, char **argv)
{
	struct spry_fn_opts o;
	memset(&o, 0, sizeof(o));
	if (spry_fn_opts_parse(&o, argc, argv))
		return 2;
	return spry_fn_run(&o, echo, NULL) ? 1 : 0;
}
C
cc -Wall -Wextra -Werror -I"$SPRY_SRC/include" -I"$SPRY_SRC" "$tmp/fn.c" \
	-L"$tmp/out" -lspry -o "$tmp/fn-shared" 2>"$tmp/cc1" &&
	LD_LIBRARY_PATH="$tmp/out" "$tmp/fn-shared" --bogus >/dev/null 2>&1
[ $? -eq 2 ]
tap_ok $? "a function links against libspry.so with the public header alone"

cc -Wall -Wextra -Werror -I"$SPRY_SRC/include" -I"$SPRY_SRC" "$tmp/fn.c" \
	"$tmp/out/libspry.a" -pthread -o "$tmp/fn-static" 2>"$tmp/cc2"
tap_ok $? "a function links against libspry.a"

tap_finish
