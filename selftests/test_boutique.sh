#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The boutique example (examples/boutique): a chain whose only hop, the
# frontend, calls five services (spry_req_call), so requests branch out
# and come back through the router as CALL and REPLY descriptors.  Real
# spryd and router in a private network namespace; the frontend driven
# through `spry chain invoke` (no metadata: the page is op= in the body).
# Every page is checked byte for byte against prices converted by hand;
# two cart instances show that the user's sticky key keeps a cart on one
# instance.
#
# Runs in a private network namespace with its own pin directory, control
# socket and temporary directory; kills only what it started.

. "$(dirname "$0")/lib.sh"

require_root_bpf
spry_private_netns

BQ=$SPRY_OUT/examples/boutique
E2E=$SPRY_HELPERS/e2e_client
require_bins "$SPRY" "$SPRYD" "$BQ" "$E2E"
command -v jq >/dev/null || tap_skip_all "jq not installed"

spry_test_env boutique
FNS=()

# page BODY: the frontend's answer (the invoke must come back OK); each
# request counted in $TMP/count (pages run in subshells)
page() {
	echo >>"$TMP/count"
	spry chain invoke boutique data "$1" sock "$SOCK"
}

# expect NAME BODY EXPECTED: the page is exactly EXPECTED (plus a newline)
expect() {
	local name=$1 body=$2 want=$3 got
	got=$(page "$body")
	local rc=$?
	if [ $rc -ne 0 ] || [ "$got" != "$want" ]; then
		tap_diag "request: $body (invoke exit $rc)"
		tap_diag "expected: $(printf '%s' "$want" | sed -n l | tr '\n' ' ')"
		tap_diag "got:      $(printf '%s' "$got" | sed -n l | tr '\n' ' ')"
		tap_ok 1 "$name"
		return 1
	fi
	tap_ok 0 "$name"
}

seven_live() { [ "$(n_live boutique)" -eq 7 ]; }

# spryd's HTTP front, when this spryd has one: metadata path and query,
# and the @status/@content-type the frontend sets
HTTP_PORT=18081
HTTP_OPT=
if command -v curl >/dev/null && "$SPRYD" --help 2>&1 | grep -q -- '--http ADDR'; then
	HTTP_OPT="--http 127.0.0.1:$HTTP_PORT"
fi

tap_plan

setup() {
	spry load >/dev/null &&
	spry apply "$SPRY_DATA/boutique/boutique.yaml" >/dev/null &&
	start_spryd $HTTP_OPT
}
setup
tap_ok $? "setup: router loaded, boutique.yaml applied, spryd listening" || {
	tap_diag "$(cat "$TMP/spryd.log" 2>/dev/null)"
	tap_finish
}

# the cart twice: a user's cart must stay on one of them (sticky key)
for f in frontend catalog currency cart cart recommendation checkout; do
	start "$BQ" "$TMP/fn-$f-${#PIDS[@]}.log" --chain boutique --fn "$f" --sock "$SOCK"
	FNS+=("$LAST")
done
wait_for 5 seven_live
tap_ok $? "7 instances registered: frontend, catalog, currency, 2 x cart, recommendation, checkout"

# home in JPY: 1999 cents x 1.4950 = 2988.505 -> 2989 (half up)
got=$(page "op=home&currency=JPY")
lines=$(printf '%s\n' "$got" | wc -l)
[ "$lines" -eq 21 ] &&
[ "$(printf '%s\n' "$got" | sed -n 1p)" = "boutique JPY" ] &&
[ "$(printf '%s\n' "$got" | sed -n 2p)" = "P1 Sunglasses 2989" ] &&
[ "$(printf '%s\n' "$got" | sed -n 14p)" = "P13 City Bike 118104" ] &&
[ "$(printf '%s\n' "$got" | sed -n 21p)" = "P20 Bike Helmet 6876" ]
tap_ok $? "home page: 20 products, prices converted to JPY and rounded half up" ||
	tap_diag "$got"

# 10999 x 0.8903 = 9792.4097 -> 97.92; 1849 x 0.8903 = 1646.1647 -> 16.46
expect "cart: add P3, P7, P7 for alice, prices in EUR, recommendations exclude the cart" \
	"op=cart&user=alice&currency=EUR&add=P3,P7,P7" \
"cart alice EUR
P3 Watch 1 x 97.92 = 97.92
P7 Salt & Pepper Shakers 2 x 16.46 = 32.92
items 3 subtotal 130.84
recommended P1 P8 P9 P2"

# 6799 x 0.7715 = 5245.4285 -> 52.45 (line format: newlines instead of &)
expect "cart: bob adds P10 in GBP (parameters one per line)" \
	"$(printf 'op=cart\nuser=bob\ncurrency=GBP\nadd=P10\n')" \
"cart bob GBP
P10 Vintage Typewriter 1 x 52.45 = 52.45
items 1 subtotal 52.45
recommended P11 P12 P1 P2"

# eight users, each cart viewed four times: always the same instance
ok=0
for u in u1 u2 u3 u4 u5 u6 u7 u8; do
	page "op=cart&user=$u&add=P9" >/dev/null || ok=1
done
for i in 1 2 3 4; do
	for u in alice u1 u2 u3 u4 u5 u6 u7 u8; do
		got=$(page "op=cart&user=$u") || ok=1
		case $u in
		alice) want="items 3 subtotal 146.97" ;;
		*) want="items 1 subtotal 8.99" ;;
		esac
		[ "$(printf '%s\n' "$got" | grep '^items')" = "$want" ] || {
			ok=1
			tap_diag "round $i, $u: $(printf '%s' "$got" | tr '\n' '|')"
		}
	done
done
tap_ok $ok "sticky cart: 9 users x 4 views over 2 cart instances, every cart intact"

# both cart instances hold carts (the key spreads users)
json_check "$(spry -j stats)" '[.functions[] | select(.chain == "boutique" and .name == "cart")] |
	length == 1 and .[0].delivered > 0' "cart: called through the router"
json_eq "$(spry -j fn show chain boutique)" '[.[] | select(.name == "cart") | .instances[] |
	select(.listed)] | length' 2 "cart: 2 instances listed"

# checkout: 9792 + 2 x 1646 = 13084; tax (13084 x 8 + 50) / 100 = 1047;
# 3 items: free shipping; total 14131
expect "checkout alice in EUR: subtotal, tax, free shipping, total, order id" \
	"op=checkout&user=alice&currency=EUR" \
"order SPRY-000001 alice EUR
P3 Watch 1 x 97.92 = 97.92
P7 Salt & Pepper Shakers 2 x 16.46 = 32.92
items 3 subtotal 130.84 tax 10.47 shipping 0.00 total 141.31
recommended P1 P8 P9 P2"

expect "after checkout alice's cart is empty" "op=cart&user=alice&currency=EUR" \
"cart alice EUR
items 0 subtotal 0.00
recommended P1 P2 P3 P4"

# shipping 599 x 0.7715 = 462.1285 -> 4.62; tax (5245 x 8 + 50) / 100 = 420
expect "checkout bob in GBP: one item pays shipping; the next order id" \
	"op=checkout&user=bob&currency=GBP" \
"order SPRY-000002 bob GBP
P10 Vintage Typewriter 1 x 52.45 = 52.45
items 1 subtotal 52.45 tax 4.20 shipping 4.62 total 61.27
recommended P11 P12 P1 P2"

# 2245 x 0.8801 = 1975.8245 -> 19.76
expect "product page in CHF with recommendations from its category first" \
	"op=product&id=P16&currency=CHF" \
"product P16 Film Camera photography 19.76 CHF
recommended P17 P1 P2 P3"

expect "unknown product on the product page: 404" "op=product&id=P42" \
	"error 404: unknown product P42"

# nothing of a refused add reaches the cart
page "op=cart&user=carol&add=P1,P99" >"$TMP/p99" &&
[ "$(cat "$TMP/p99")" = "error 404: unknown product P99" ] &&
[ "$(page "op=cart&user=carol" | grep '^items')" = "items 0 subtotal 0.00" ]
tap_ok $? "adding an unknown product: 404, and the cart stays empty" ||
	tap_diag "$(cat "$TMP/p99")"

ok=0
for c in "op=cart|error 400: user= is required" \
	 "op=home&currency=XYZ|error 400: unknown currency XYZ" \
	 "op=checkout&user=alice|error 400: the cart is empty" \
	 "op=cart&user=Alice!|error 400: bad user name" \
	 "op=shop|error 400: unknown page 'shop'" \
	 "hello|error 400: expected key=value" \
	 "op=home&add=P1|error 400: add= belongs to the cart page" \
	 "op=product&id=X1|error 400: bad product id"; do
	got=$(page "${c%%|*}")
	[ "$got" = "${c#*|}" ] || { ok=1; tap_diag "${c%%|*}: got '$got'"; }
done
tap_ok $ok "bad requests: 400 with the reason"

# through HTTP: the page from the path, parameters from the query
# and a POST body
http_ok() {
	local got
	got=$(curl -s --max-time 10 -o "$TMP/h.body" -w '%{http_code} %{content_type}' \
		"http://127.0.0.1:$HTTP_PORT/boutique/product?id=P42") &&
	[ "$got" = "404 text/plain; charset=utf-8" ] &&
	[ "$(cat "$TMP/h.body")" = "error 404: unknown product P42" ] || {
		tap_diag "GET product P42: $got $(cat "$TMP/h.body" 2>/dev/null)"
		return 1
	}
	got=$(curl -s --max-time 10 -o "$TMP/h.body" -w '%{http_code} %{content_type}' \
		--data 'user=dave&add=P1' "http://127.0.0.1:$HTTP_PORT/boutique/cart?currency=USD") &&
	[ "$got" = "200 text/plain; charset=utf-8" ] &&
	[ "$(cat "$TMP/h.body")" = "cart dave USD
P1 Sunglasses 1 x 19.99 = 19.99
items 1 subtotal 19.99
recommended P3 P2 P4 P5" ] || {
		tap_diag "POST cart: $got $(cat "$TMP/h.body" 2>/dev/null)"
		return 1
	}
	got=$(curl -s --max-time 10 -o "$TMP/h.body" -w '%{http_code}' \
		"http://127.0.0.1:$HTTP_PORT/boutique/nowhere") &&
	[ "$got" = "404" ] &&
	[ "$(cat "$TMP/h.body")" = "error 404: no page nowhere" ] || {
		tap_diag "GET nowhere: $got $(cat "$TMP/h.body" 2>/dev/null)"
		return 1
	}
}
if [ -n "$HTTP_OPT" ]; then
	printf '\n\n\n' >>"$TMP/count"	# three more requests
	http_ok
	tap_ok $? "HTTP: 404 and 200 with text/plain set by the frontend; path, query and POST body read"
else
	tap_skip "HTTP front" "spryd has no --http or curl is missing"
fi

N_INVOKE=$(wc -l <"$TMP/count")
json_check "$(spry -j stats)" '
	.verdicts.call > 0 and .verdicts.call == .verdicts.reply and
	.verdicts.done == $n and .verdicts.forward == $n and .verdicts.error == 0 and
	(.verdicts | to_entries | map(select(.key | test("^drop_|^fallback$|^no_"))) |
	 all(.value == 0)) and
	(.functions | all(.dropped == 0))' \
	"router: CALL = REPLY verdicts, $N_INVOKE requests done, no drops, no errors" \
	--argjson n "$N_INVOKE"

wait_for 3 all_idle boutique 7 && wait_for 3 pool_whole boutique
tap_ok $? "all 7 instances idle, every pool buffer free (${POOL:-pool not found})"

term_all "${FNS[@]}"
ok=$?
tap_ok $ok "SIGTERM: all 7 instances exit 0"

tap_finish
