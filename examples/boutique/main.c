// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * boutique: one program for the shop's six functions.
 *
 *   boutique [--service NAME] --chain C --fn F [--sock PATH] [--batch N] [--quiet]
 *
 * NAME: frontend, catalog, currency, cart, recommendation or checkout
 * (default: the function name).
 *
 *   boutique --service cart-session --chain APP --fn proc [--sock PATH]
 *
 * runs the cart as an app's process (docs/PROCESS.md): one cart per
 * process, in its state; functions add, get, empty (cart.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "examples/boutique/boutique.h"

int bq_split(char *s, char **words, int max)
{
	int n = 0;

	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
			s++;
		if (!*s)
			return n;
		if (n == max)
			return -E2BIG;
		words[n++] = s;
		while (*s && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			s++;
		if (*s)
			*s++ = '\0';
	}
}

int bq_payload_str(struct spry_req *req, char *buf, size_t size)
{
	size_t len;
	const char *p = spry_req_data(req, &len);

	if (len >= size)
		return -EMSGSIZE;
	memcpy(buf, p, len);
	buf[len] = '\0';
	if (strlen(buf) != len)
		return -EINVAL;		/* a NUL inside */
	return 0;
}

int bq_user_ok(const char *user)
{
	size_t i, n = strlen(user);

	if (!n || n >= BQ_USER_LEN)
		return 0;
	for (i = 0; i < n; i++)
		if (!((user[i] >= 'a' && user[i] <= 'z') ||
		      (user[i] >= '0' && user[i] <= '9') || user[i] == '_' ||
		      user[i] == '-'))
			return 0;
	return 1;
}

int bq_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	return spry_parse_u64(s, strlen(s), 0, max, out);
}

static const struct {
	const char	*name;
	spry_handler_t	handler;
} services[] = {
	{ "frontend",		bq_frontend },
	{ "catalog",		bq_catalog },
	{ "currency",		bq_currency },
	{ "cart",		bq_cart },
	{ "recommendation",	bq_recommendation },
	{ "checkout",		bq_checkout },
};

int main(int argc, char **argv)
{
	struct spry_fn_opts opts = {};
	const char *service = NULL;
	spry_handler_t handler = NULL;
	char **args;
	size_t i;
	int n = 0, ret;

	/* Take --service out; the rest is the common function command line. */
	args = calloc(argc + 1, sizeof(*args));
	if (!args)
		return 1;
	for (i = 0; i < (size_t)argc; i++) {
		if (i && !strcmp(argv[i], "--service") && i + 1 < (size_t)argc)
			service = argv[++i];
		else if (i && !strncmp(argv[i], "--service=", 10))
			service = argv[i] + 10;
		else
			args[n++] = argv[i];
	}
	if (service && !strcmp(service, "cart-session")) {
		ret = spry_app_main(n, args, bq_cart_session_fns, bq_cart_session_nfns, NULL);
		free(args);
		return ret;
	}
	if (spry_fn_opts_parse(&opts, n, args)) {
		fprintf(stderr, "usage: %s [--service NAME] --chain NAME --fn NAME [--sock PATH] [--batch N] [--quiet]\n",
			argv[0]);
		free(args);
		return 2;
	}
	if (!service)
		service = opts.fn;
	for (i = 0; i < sizeof(services) / sizeof(services[0]); i++)
		if (!strcmp(services[i].name, service))
			handler = services[i].handler;
	if (!handler) {
		fprintf(stderr, "%s: unknown service '%s' (frontend, catalog, currency, cart, recommendation, checkout, cart-session)\n",
			argv[0], service);
		free(args);
		return 2;
	}
	ret = spry_fn_run(&opts, handler, NULL);
	free(args);
	if (ret) {
		fprintf(stderr, "%s: %s\n", argv[0], strerror(-ret));
		return 1;
	}
	return 0;
}
