/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The lot's permit and block list (parking-search): 50 plates, sorted.
 *   resident          parks free
 *   staff             pays half the tariff
 *   blocked:REASON    refused at the gate (stolen, unpaid, banned)
 * A plate not listed is a visitor (permit=none) and pays the tariff.
 */
#ifndef SPRY_EXAMPLES_PERMITS_H
#define SPRY_EXAMPLES_PERMITS_H

static const struct permit {
	const char	*plate;
	const char	*type;
} permits[] = {
	{ "AC338WA", "staff" },
	{ "BH056JC", "resident" },
	{ "BH105CT", "resident" },
	{ "BL666CK", "blocked:stolen" },
	{ "BV805BB", "resident" },
	{ "BY106LD", "staff" },
	{ "CF191YH", "staff" },
	{ "DB801HF", "blocked:unpaid" },
	{ "DY656PR", "staff" },
	{ "DY819PB", "staff" },
	{ "DY845DK", "resident" },
	{ "EE782JT", "blocked:stolen" },
	{ "ET710DE", "staff" },
	{ "FJ731RU", "staff" },
	{ "FM534ZY", "blocked:banned" },
	{ "GL116DM", "resident" },
	{ "GV537NX", "staff" },
	{ "GZ103KC", "staff" },
	{ "HD647XM", "staff" },
	{ "HG387EP", "staff" },
	{ "HH150VU", "resident" },
	{ "HJ738EV", "resident" },
	{ "HV117CU", "resident" },
	{ "HV301ZX", "blocked:stolen" },
	{ "JA265JE", "resident" },
	{ "JV696MH", "resident" },
	{ "MF880WL", "resident" },
	{ "MW407UD", "staff" },
	{ "NA647KP", "blocked:stolen" },
	{ "NC849MV", "blocked:unpaid" },
	{ "ND939WB", "staff" },
	{ "NY578RD", "resident" },
	{ "PF704TF", "staff" },
	{ "PS736BF", "resident" },
	{ "RE423UU", "blocked:stolen" },
	{ "RN483YL", "resident" },
	{ "RS100AA", "resident" },
	{ "SA154HB", "resident" },
	{ "ST200BB", "staff" },
	{ "TD489GE", "blocked:unpaid" },
	{ "UG863RV", "staff" },
	{ "VS376GD", "resident" },
	{ "VS882BT", "resident" },
	{ "WC699TL", "staff" },
	{ "WP383ZK", "blocked:banned" },
	{ "WR848AY", "resident" },
	{ "XC928HF", "staff" },
	{ "XD043HE", "blocked:unpaid" },
	{ "XF691NN", "resident" },
	{ "ZU723KG", "resident" },
};

#define N_PERMITS	(sizeof(permits) / sizeof(permits[0]))

#endif /* SPRY_EXAMPLES_PERMITS_H */
