/* Values from directory answers, checked (see ldapvalue.h). */
#include "auth/ldapvalue.h"

#include <ldap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/identity.h"

char *ldapvalue_text(const char *value, size_t len, size_t max)
{
	char *s;

	if (!value || !identity_valid_text(value, len, max))
		return NULL;
	s = malloc(len + 1);
	if (!s)
		return NULL;
	memcpy(s, value, len);
	s[len] = '\0';
	return s;
}

char *ldapvalue_rdn(const char *dn, size_t max)
{
	LDAPDN parsed = NULL;
	char *name = NULL;

	if (ldap_str2dn(dn, &parsed, LDAP_DN_FORMAT_LDAPV3) == LDAP_SUCCESS && parsed &&
	    parsed[0] && parsed[0][0] && (parsed[0][0]->la_flags & LDAP_AVA_STRING))
		name = ldapvalue_text(parsed[0][0]->la_value.bv_val, parsed[0][0]->la_value.bv_len,
				      max);
	ldap_dnfree(parsed);
	return name;
}

char *ldapvalue_normalise_dn(const char *dn, size_t max)
{
	char *norm = NULL, *copy;

	if (strlen(dn) > max)
		return NULL;
	if (ldap_dn_normalize(dn, LDAP_DN_FORMAT_LDAPV3, &norm, LDAP_DN_FORMAT_LDAPV3) !=
		LDAP_SUCCESS ||
	    !norm)
		return strdup(dn);
	copy = strdup(norm);
	ldap_memfree(norm);
	return copy;
}

char *ldapvalue_primary_group_filter(const void *sid, size_t sid_len, const char *rid_text)
{
	const unsigned char *b = sid;
	unsigned long rid;
	size_t count;
	char *filter, *p, *end;

	if (!sid || !rid_text || sid_len < 8)
		return NULL;
	count = b[1];
	rid = strtoul(rid_text, &end, 10);
	if (b[0] != 1 || count < 1 || count > 15 || sid_len != 8 + 4 * count || *end ||
	    end == rid_text || *rid_text < '0' || *rid_text > '9' || rid == 0 || rid > 0xFFFFFFFFul)
		return NULL;
	filter = malloc(sizeof("(objectSid=)") + 3 * sid_len);
	if (!filter)
		return NULL;
	p = filter + sprintf(filter, "(objectSid=");
	for (size_t i = 0; i < sid_len; i++) {
		unsigned char v = b[i];

		if (i >= sid_len - 4) /* the last sub-authority, little-endian: the group's RID */
			v = (unsigned char)(rid >> (8 * (i - (sid_len - 4))));
		p += sprintf(p, "\\%02x", v);
	}
	strcpy(p, ")");
	return filter;
}

unsigned ldapvalue_ad_data_code(const char *diagnostic)
{
	const char *data = diagnostic ? strstr(diagnostic, "data ") : NULL;
	unsigned code = 0;
	char *end;
	unsigned long v;

	if (!data)
		return 0;
	v = strtoul(data + 5, &end, 16);
	if (end != data + 5 && v <= 0xffffffffUL)
		code = (unsigned)v;
	return code;
}

unsigned ldapvalue_ad_error_code(const char *diagnostic)
{
	unsigned code = 0;

	if (!diagnostic)
		return 0;
	for (int i = 0; i < 8; i++) {
		char c = diagnostic[i];
		unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
			     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
			     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
						    : 16;

		if (d == 16)
			return 0;
		code = code << 4 | d;
	}
	return diagnostic[8] == ':' ? code : 0;
}
