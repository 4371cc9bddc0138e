#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# `make install` as a package would run it (DESTDIR=staging, PREFIX=/usr)
# from the build under test, then everything from the staging tree alone:
# the file list, libspry's soname, links and exported symbols, headers that
# compile on their own, licences, pkg-config, man pages, bash completion,
# systemd units; a function built with pkg-config only (examples/upper.c,
# shared, and one written here, static) runs in a chain under the
# installed spry and spryd, the latter with the capability bounding set of
# the installed spryd.service; `make uninstall` removes exactly what
# install put.
#
# Runs in a private network namespace with its own pin directory, control
# socket and temporary directory (DESTDIR inside it); kills only what it
# started.

. "$(dirname "$0")/lib.sh"

require_root_bpf
[ -f "$SPRY_SRC/Makefile" ] && [ -f "$SPRY_SRC/Kbuild" ] ||
	tap_skip_all "needs spry's source tree (make install), not found at $SPRY_SRC"
for t in make cc c++ pkg-config readelf nm ldd groff man setpriv; do
	command -v "$t" >/dev/null || tap_skip_all "needs $t"
done
command -v jq >/dev/null || tap_skip_all "jq not installed"
spry_private_netns
require_bins "$SPRY" "$SPRYD" "$SPRY_OUT/libspry.so"

# The install under test is of the build under test: nothing of the make
# that runs this test (`make check` passes its flags down) nor of the
# environment may leak in.
unset MAKEFLAGS MFLAGS MAKELEVEL O V DESTDIR EXEC_PREFIX SBINDIR LIBDIR MULTIARCH \
	INCLUDEDIR DATAROOTDIR MANDIR PKGCONFIGDIR BASHCOMPDIR SYSTEMDUNITDIR SYSCONFDIR
# A sanitized build (make SAN=1) stays one, and so must what links it.
SANFLAGS=
if nm -u "$SPRY_OUT/spry" 2>/dev/null | grep -q __asan_init; then
	export SAN=1
	SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
else
	unset SAN
fi

spry_test_env install
chmod 755 "$TMP"
DEST=$TMP/dest
LIB=$DEST/usr/lib
INC=$DEST/usr/include
LICENCE='(LGPL-2.1 OR BSD-2-Clause)'

# the installed programs, spryd started like spryd.service starts it
# (spryd-unit, below)
SPRY=$DEST/usr/sbin/spry
SPRYD=$TMP/spryd-unit

# pc ARGS...: pkg-config on the staging tree only
pc() {
	PKG_CONFIG_SYSROOT_DIR=$DEST PKG_CONFIG_LIBDIR=$LIB/pkgconfig PKG_CONFIG_PATH= \
		pkg-config "$@"
}

# unit_value UNIT KEY: the value of KEY= in the installed unit
unit_value() {
	sed -n "s/^$2=//p" "$DEST/usr/lib/systemd/system/$1"
}

installed_list() {
	(cd "$DEST" && find . \( -type f -o -type l \) | sed 's|^\.||' | sort)
}

tap_plan 19

# 1
make -C "$SPRY_SRC" O="$SPRY_OUT" install DESTDIR="$DEST" PREFIX=/usr >"$TMP/make.log" 2>&1
tap_ok $? "make install DESTDIR=... PREFIX=/usr from the build" || {
	tap_diag "$(tail -5 "$TMP/make.log")"
	tap_finish
}

# 2: exactly these files, and the same list as `make print-installed`
ver=$(sed -n 's/^#define LIBSPRY_\(MAJOR\|MINOR\|PATCH\)_VERSION[[:space:]]*\([0-9]*\)$/\2/p' \
	"$INC/spry/spry.h" | paste -sd.)
major=${ver%%.*}
expected=$(sort <<EOF
/usr/sbin/spry
/usr/sbin/spryd
/usr/lib/libspry.a
/usr/lib/libspry.so
/usr/lib/libspry.so.$major
/usr/lib/libspry.so.$ver
/usr/include/spry/spry.h
/usr/include/spry/abi.h
/usr/include/spry/state.h
/usr/lib/pkgconfig/libspry.pc
/usr/share/man/man8/spry.8
/usr/share/man/man8/spryd.8
/usr/share/man/man3/libspry.3
/usr/share/bash-completion/completions/spry
/usr/lib/systemd/system/spryd.service
/usr/lib/systemd/system/spry-apply.service
EOF
)
got=$(installed_list)
listed=$(make -s -C "$SPRY_SRC" O="$SPRY_OUT" print-installed PREFIX=/usr | sort)
[ "$got" = "$expected" ] && [ "$listed" = "$expected" ]
tap_ok $? "installed files: sbin, lib (.a, .so, .so.$major, .so.$ver), headers, .pc, man, completion, units" ||
	diff <(echo "$expected") <(echo "$got") | sed 's/^/# /'

# 3: libspry.so -> .so.MAJOR -> .so.MAJOR.MINOR.PATCH (a file, soname .so.MAJOR)
soname=$(readelf -d "$LIB/libspry.so.$ver" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$(readlink "$LIB/libspry.so")" = "libspry.so.$major" ] &&
	[ "$(readlink "$LIB/libspry.so.$major")" = "libspry.so.$ver" ] &&
	[ -f "$LIB/libspry.so.$ver" ] && [ ! -L "$LIB/libspry.so.$ver" ] &&
	[ "$soname" = "libspry.so.$major" ] && [ -x "$DEST/usr/sbin/spry" ] &&
	[ "$(stat -c %a "$INC/spry/spry.h")" = 644 ]
tap_ok $? "libspry.so -> libspry.so.$major -> libspry.so.$ver, soname '$soname'; modes"

# 4: the exported symbols are the functions the headers declare SPRY_API
exported=$(nm -D --defined-only "$LIB/libspry.so.$ver" | awk '{ print $3 }' | sort)
declared=$(cat "$INC"/spry/*.h | tr '\n' ' ' | grep -o 'SPRY_API [^;(]*(' |
	sed 's/.*[ *]\([a-z_0-9]*\)($/\1/' | grep '^spry_[a-z_0-9]*$' | sort)
[ -n "$exported" ] && [ "$exported" = "$declared" ]
tap_ok $? "libspry.so exports exactly the $(echo "$declared" | wc -l) functions spry.h and state.h declare" ||
	diff <(echo "$declared") <(echo "$exported") | sed 's/^/# /'

# 5: every installed header compiles alone, C and C++, with the staging
# include directory only; none reaches for a kernel header but linux/types.h
bad=
for h in "$INC"/spry/*.h; do
	rel=${h#"$INC"/}
	echo "#include <$rel>" >"$TMP/hdr.c"
	cc -Wall -Wextra -Werror -std=gnu11 -I"$INC" -c "$TMP/hdr.c" -o /dev/null 2>>"$TMP/hdr.err" &&
		cc -Wall -Wextra -Werror -std=c11 -pedantic -I"$INC" -c "$TMP/hdr.c" -o /dev/null 2>>"$TMP/hdr.err" &&
		c++ -x c++ -Wall -Wextra -Werror -I"$INC" -c "$TMP/hdr.c" -o /dev/null 2>>"$TMP/hdr.err" ||
		bad="$bad $rel"
	grep -E '^#[[:space:]]*include' "$h" | grep -vE '<(std[a-z]*|sys/types|linux/types)\.h>|"(abi|spry)\.h"' |
		grep -q . && bad="$bad $rel(includes)"
done
[ -z "$bad" ]
tap_ok $? "each installed header compiles alone (C11, gnu11, C++) from -I\$DESTDIR/usr/include${bad:+: not$bad}" ||
	sed 's/^/# /' "$TMP/hdr.err" | head -5

# 6: libspry's licence on every file compiled into it and every installed header
srcs=$(make -s --no-print-directory -f "$SPRY_SRC/Kbuild" -f - print <<'MK'
print: ; @echo $(libspry-y)
MK
)
deps=$(cd "$SPRY_SRC" && for s in $srcs; do
	cc -MM -I include -I . "$s" | tr ' \\' '\n\n' | grep -E '\.[ch]$'
done | grep -v '^/' | sort -u)
wrong=
for f in $deps "$INC"/spry/*.h; do
	case $f in /*) ;; *) f=$SPRY_SRC/$f ;; esac
	sed -n '1,2p' "$f" | grep -qF "SPDX-License-Identifier: $LICENCE" || wrong="$wrong ${f#"$SPRY_SRC"/}"
done
[ -n "$srcs" ] && [ -z "$wrong" ]
tap_ok $? "$LICENCE on Kbuild's libspry-y, what they include, the installed headers${wrong:+: not$wrong}"

# 7: pkg-config finds it in the staging tree only (words compared: pkgconf
# ends its lines with a space)
[ "$(pc --modversion libspry)" = "$ver" ] &&
	[ "$(echo $(pc --cflags libspry))" = "-I$INC" ] &&
	[ "$(echo $(pc --libs libspry))" = "-L$LIB -lspry" ] &&
	[ "$(echo $(pc --static --libs libspry))" = "-L$LIB -lspry -pthread" ]
tap_ok $? "pkg-config: libspry $(pc --modversion libspry), $(pc --cflags --libs libspry)"

# 8: examples/upper.c against the installed header and libspry.so, by
# pkg-config alone (its own transforms.h sits beside it)
cc -Wall -Wextra -Werror $SANFLAGS "$SPRY_SRC/examples/upper.c" $(pc --cflags --libs libspry) \
	-o "$TMP/upper" 2>"$TMP/cc-upper.err" &&
	readelf -d "$TMP/upper" | grep -q 'NEEDED.*\[libspry\.so\.'"$major"'\]' &&
	LD_LIBRARY_PATH=$LIB ldd "$TMP/upper" | grep -q "libspry\.so\.$major => $LIB/libspry\.so\.$major "
tap_ok $? "examples/upper.c builds with pkg-config only; NEEDED libspry.so.$major, ldd resolves it in DESTDIR" ||
	sed 's/^/# /' "$TMP/cc-upper.err" | head -5

# 9: a function written here, static (pkg-config --static)
cat >"$TMP/rev.c" <<'C'
#include <spry/spry.h>

/* reverse the payload's bytes in place */
static int rev(struct spry_req *req, void *user)
{
	unsigned char *p, t;
	size_t len, i;

	(void)user;
	p = spry_req_data(req, &len);
	for (i = 0; i < len / 2; i++) {
		t = p[i];
		p[i] = p[len - 1 - i];
		p[len - 1 - i] = t;
	}
	return 0;
}

int main(int argc, char **argv)
{
	return spry_fn_main(argc, argv, rev, NULL);
}
C
cc -Wall -Wextra -Werror $SANFLAGS "$TMP/rev.c" $(pc --cflags libspry) \
	$(pc --static --libs libspry | sed 's/-lspry/-l:libspry.a/') -o "$TMP/rev" 2>"$TMP/cc-rev.err" &&
	! readelf -d "$TMP/rev" | grep -q 'NEEDED.*libspry'
tap_ok $? "a function links libspry.a statically with pkg-config --static" ||
	sed 's/^/# /' "$TMP/cc-rev.err" | head -5

# 10: spryd as the unit runs it: its capability bounding set, no new privs
bset=$(unit_value spryd.service CapabilityBoundingSet | tr ' ' '\n' |
	sed -n 's/^CAP_\(.*\)/+\L\1/p' | paste -sd,)
cat >"$SPRYD" <<EOF
#!/bin/sh
exec setpriv --bounding-set -all,$bset --no-new-privs "$DEST/usr/sbin/spryd" "\$@"
EOF
chmod 755 "$SPRYD"
spry load >/dev/null && spry chain add inst hops upper,rev >/dev/null && start_spryd
tap_ok $? "installed spry loads, adds a chain; installed spryd starts with bounding set $bset" || {
	tap_diag "$(tail -3 "$TMP/spryd.log" 2>/dev/null)"
	tap_finish
}

# 11: the chain runs, byte for byte
LD_LIBRARY_PATH=$LIB start "$TMP/upper" "$TMP/upper.log" --chain inst --fn upper --sock "$SOCK"
UP=$LAST
start "$TMP/rev" "$TMP/rev.log" --chain inst --fn rev --sock "$SOCK"
RV=$LAST
live2() { [ "$(n_live inst)" = 2 ]; }
printf 'hello, install\n\001\377' >"$TMP/in"
printf '\377\001\nLLATSNI ,OLLEH' >"$TMP/want"
wait_for 5 live2 && timeout 10 "$SPRY" -P "$PIN" chain invoke inst file "$TMP/in" sock "$SOCK" >"$TMP/out" &&
	cmp -s "$TMP/out" "$TMP/want"
tap_ok $? "upper (libspry.so from DESTDIR) then rev (static) answer byte-exact through spryd" || {
	tap_diag "got: $(od -c "$TMP/out" | head -2)"
	tap_diag "$(tail -2 "$TMP/upper.log" "$TMP/rev.log" "$TMP/spryd.log" 2>/dev/null)"
}

# 12
grep -q "^$LIB/libspry\.so\.$ver\$" <(awk '{ print $6 }' "/proc/$UP/maps") &&
	! grep -q 'libspry' <(awk '{ print $6 }' "/proc/$RV/maps")
tap_ok $? "upper runs on DESTDIR's libspry.so.$ver, rev on no shared libspry"

# 13: bash completion, sourced from DESTDIR and driven like bash does
complete_words() {
	(
		. "$DEST/usr/share/bash-completion/completions/spry" || exit 1
		COMP_WORDS=("$@")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMPREPLY=()
		_spry
		printf '%s\n' "${COMPREPLY[@]}" | sort | paste -sd' '
	)
}
c1=$(complete_words "$SPRY" ch)
c2=$(complete_words "$SPRY" chain "")
c3=$(complete_words "$SPRY" -P "$PIN" chain invoke "")
c4=$(complete_words "$SPRY" -P "$PIN" auth allow chain inst from "")
c5=$(complete_words "$SPRY" -P "$PIN" chain add x hops a,b "")
c6=$(complete_words "$SPRY" --pin-dir = "$PIN" fn show chain i)
[ "$c1" = chain ] && [ "$c2" = "add del help invoke show" ] && [ "$c3" = inst ] &&
	[ "$c4" = "origin rev upper" ] &&
	[ "$c5" = "buffer-size buffers calls cpus deadline functions http idempotent invoke max-inflight next user" ] &&
	[ "$c6" = inst ]
tap_ok $? "completion: objects, commands, keywords, chain and function names from the pins" || {
	tap_diag "ch -> '$c1'; chain -> '$c2'; invoke -> '$c3'"
	tap_diag "from -> '$c4'; add x hops a,b -> '$c5'; fn show chain i -> '$c6'"
}
# 13b: spry mesh, and chain add's invoke lists and http switch
m1=$(complete_words "$SPRY" me)
m2=$(complete_words "$SPRY" mesh "")
m3=$(complete_words "$SPRY" mesh deny "")
m4=$(complete_words "$SPRY" mesh set default allow "")
i1=$(complete_words "$SPRY" chain add x hops a,b invoke users root invoke "")
i2=$(complete_words "$SPRY" chain add x hops a,b invoke groups root,roo)
i3=$(complete_words "$SPRY" chain add x hops a,b http "")
[ "$m1" = mesh ] && [ "$m2" = "allow attach del deny detach help set show" ] &&
	[ "$m3" = "cgroup port prefix" ] && [ "$m4" = max-queued ] &&
	[ "$i1" = groups ] && [ "$i2" = root,root ] && [ "$i3" = "off on" ]
tap_ok $? "completion: mesh commands and rules, chain add invoke users|groups and http on|off" || {
	tap_diag "me -> '$m1'; mesh -> '$m2'; mesh deny -> '$m3'; set default allow -> '$m4'"
	tap_diag "invoke users root invoke -> '$i1'; invoke groups root,roo -> '$i2'; http -> '$i3'"
}

# 14: man pages render without a warning, and name what they document
warn=
for m in man8/spry.8 man8/spryd.8 man3/libspry.3; do
	f=$DEST/usr/share/man/$m
	groff -man -ww -z "$f" 2>&1 | grep -q . && warn="$warn $m(groff)"
	MANWIDTH=80 man -l --warnings "$f" 2>&1 >"$TMP/man.txt" | grep -q . && warn="$warn $m(man)"
	grep -q '^NAME' "$TMP/man.txt" || warn="$warn $m(no NAME)"
done
MANWIDTH=80 man -l "$DEST/usr/share/man/man8/spry.8" 2>/dev/null | grep -q 'spry chain invoke' &&
	MANWIDTH=80 man -l "$DEST/usr/share/man/man8/spryd.8" 2>/dev/null | grep -q -- '--pin-dir' &&
	MANWIDTH=80 man -l "$DEST/usr/share/man/man3/libspry.3" 2>/dev/null | grep -q 'spry_fn_main' &&
	MANWIDTH=80 man -l "$DEST/usr/share/man/man8/spry.8" 2>/dev/null | grep -q 'spry mesh attach' &&
	MANWIDTH=80 man -l "$DEST/usr/share/man/man8/spryd.8" 2>/dev/null |
		grep -q 'spry_invoke_refused_total' &&
	MANWIDTH=80 man -l "$DEST/usr/share/man/man3/libspry.3" 2>/dev/null | grep -q 'SPRY_EXIT_GONE' &&
	MANWIDTH=80 man -l "$DEST/usr/share/man/man3/libspry.3" 2>/dev/null | grep -q 'spry_state_swap_out' ||
	warn="$warn (content)"
[ -z "$warn" ]
tap_ok $? "man pages spry(8), spryd(8), libspry(3) render without warnings${warn:+:$warn}"

# 15: the units point at the installed programs and /etc/spry
[ "$(unit_value spryd.service ExecStart)" = '/usr/sbin/spryd $SPRYD_OPTS' ] &&
	[ "$(unit_value spryd.service ExecStartPre)" = '+/usr/sbin/spry load' ] &&
	[ "$(unit_value spry-apply.service ExecStart)" = '/usr/sbin/spry apply /etc/spry/chains.yaml' ] &&
	[ "$(unit_value spry-apply.service Type)" = oneshot ]
tap_ok $? "spryd.service (spry load first) and spry-apply.service (/etc/spry/chains.yaml)"

# 16: systemd-analyze verify, the programs' paths pointed into DESTDIR
if command -v systemd-analyze >/dev/null; then
	mkdir -p "$TMP/units"
	for u in spryd.service spry-apply.service; do
		sed "s|/usr/sbin/|$DEST/usr/sbin/|g" "$DEST/usr/lib/systemd/system/$u" >"$TMP/units/$u"
	done
	MANPATH=$DEST/usr/share/man systemd-analyze verify --man=yes "$TMP"/units/*.service \
		>"$TMP/verify.log" 2>&1 && ! grep -q . "$TMP/verify.log"
	tap_ok $? "systemd-analyze verify: no complaint" || sed 's/^/# /' "$TMP/verify.log" | head -5
else
	tap_skip "systemd-analyze verify" "systemd-analyze not installed (package systemd)"
fi

# 17: uninstall removes exactly what install put, from another staging tree
D2=$TMP/dest2
make -C "$SPRY_SRC" O="$SPRY_OUT" install DESTDIR="$D2" PREFIX=/usr >"$TMP/make2.log" 2>&1 &&
	touch "$D2/usr/lib/libother.so" "$D2/usr/include/other.h" &&
	make -C "$SPRY_SRC" O="$SPRY_OUT" uninstall DESTDIR="$D2" PREFIX=/usr >>"$TMP/make2.log" 2>&1 &&
	[ "$(cd "$D2" && find . \( -type f -o -type l \) | sort | paste -sd' ')" = \
	  "./usr/include/other.h ./usr/lib/libother.so" ] && [ ! -e "$D2/usr/include/spry" ]
tap_ok $? "make uninstall removes what install put, and nothing else" ||
	tap_diag "left: $(cd "$D2" && find . \( -type f -o -type l \) | paste -sd' ')"

# 18
term_all "$UP" "$RV" && kill_wait "$SPRYD_PID" && proc_gone "$SPRYD_PID"
tap_ok $? "the functions exit 0 on SIGTERM; spryd stops"

tap_finish
