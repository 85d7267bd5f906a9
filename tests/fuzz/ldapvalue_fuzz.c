/* Fuzz target: what a directory server answers, as auth/ldapvalue.c takes it apart
 * before it reaches an identity or a filter: attribute values as text, memberOf DNs
 * (first RDN value, normalised form for cycle detection), Active Directory's objectSid
 * and primaryGroupID (the primary group's filter), and the "data" code of a refused
 * bind. The first byte picks the function; the rest is the server's bytes.
 * Invariants (abort on violation): text has no control characters and keeps its
 * bound; a primary-group filter is "(objectSid=" + 3 characters per SID byte + ")"
 * with the SID's bytes but the last four, and parses as a filter. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/ldapfilter.h"
#include "auth/ldapvalue.h"

#define MAX 1024

static void check_text(const char *s, size_t max)
{
	if (!s)
		return;
	if (strlen(s) > max)
		abort();
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, *t, *f;
	size_t n;

	if (size < 1)
		return 0;
	n = size - 1;
	s = malloc(n + 1);
	if (!s)
		return 0;
	memcpy(s, data + 1, n);
	s[n] = '\0';
	switch (data[0] % 4) {
	case 0: /* a value: text, with embedded NULs and any bytes */
		t = ldapvalue_text((const char *)data + 1, n, 64);
		check_text(t, 64);
		if (t && (strlen(t) != n || memcmp(t, data + 1, n)))
			abort();
		free(t);
		break;
	case 1: /* a memberOf DN */
		t = ldapvalue_rdn(s, MAX);
		check_text(t, MAX);
		free(t);
		t = ldapvalue_normalise_dn(s, MAX);
		if (n <= MAX && !t)
			abort();
		if (t) {
			char *again = ldapvalue_normalise_dn(t, 4 * MAX);

			free(again); /* normalising the normal form must not crash either */
		}
		free(t);
		break;
	case 2: { /* objectSid: a length byte, the SID's bytes; then primaryGroupID as text */
		size_t sid_len = n ? data[1] : 0;
		const uint8_t *sid = data + 2;

		if (n < 1 || sid_len > n - 1)
			break;
		f = ldapvalue_primary_group_filter(sid, sid_len, s + 1 + sid_len);
		if (f) {
			size_t len = strlen(f);

			if (len != strlen("(objectSid=)") + 3 * sid_len ||
			    strncmp(f, "(objectSid=", 11) || f[len - 1] != ')')
				abort();
			for (size_t i = 0; i + 4 < sid_len; i++) {
				char hex[4];

				snprintf(hex, sizeof(hex), "\\%02x", sid[i]);
				if (memcmp(f + 11 + 3 * i, hex, 3))
					abort();
			}
			if (!ldapfilter_template_valid(f, false))
				abort();
			free(f);
		}
		break;
	}
	default: /* a bind refusal's diagnostic message */ (void)ldapvalue_ad_data_code(s); break;
	}
	free(s);
	return 0;
}
