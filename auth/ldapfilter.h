/* LDAP search filters built from outside input: RFC 4515 value escaping, user filter
 * templates with "%s", and group membership filters (including Active Directory's
 * LDAP_MATCHING_RULE_IN_CHAIN). Pure string functions; no LDAP connection here. */
#ifndef VDI_AUTH_LDAPFILTER_H
#define VDI_AUTH_LDAPFILTER_H

#include <stdbool.h>
#include <stddef.h>

/* Active Directory's transitive membership matching rule. */
#define LDAPFILTER_IN_CHAIN "1.2.840.113556.1.4.1941"

/* Escapes the len bytes at value for the inside of a filter assertion: '*', '(', ')',
 * '\', NUL, control characters and every byte >= 0x80 become "\xx" (lowercase hex);
 * other bytes are copied. Writes a NUL-terminated string into out and returns its
 * length, or -ENOSPC (out then holds an empty string). 3 * len + 1 bytes always fit. */
int ldapfilter_escape(const char *value, size_t len, char *out, size_t outlen);

/* Returns tmpl with every "%s" replaced by the escaped value and "%%" by "%", as a new
 * string (free()), or NULL with errno EINVAL (tmpl is not valid as a user filter
 * template, see below) or ENOMEM. */
char *ldapfilter_format(const char *tmpl, const char *value, size_t len);

/* True when tmpl looks like one parenthesised filter: starts with '(', its matching ')'
 * is the last character, no '%' other than "%s" and "%%", and at least one "%s" when
 * need_value (user filters) or none at all when not (group filters). */
bool ldapfilter_template_valid(const char *tmpl, bool need_value);

/* True when name is an attribute description a filter may use: a letter followed by
 * letters, digits and '-', or a numeric OID. */
bool ldapfilter_attr_valid(const char *name);

/* The filter that finds groups holding any of the n values in attr:
 * "(&<base>(<attr>=<v>))" for one value, "(&<base>(|(<attr>=<v1>)(<attr>=<v2>)...))"
 * for several, and with in_chain "(<attr>:1.2.840.113556.1.4.1941:=<v>)" for each
 * assertion. base (a filter such as "(objectClass=group)") may be NULL or empty.
 * Values are escaped here. Returns a new string or NULL (errno EINVAL or ENOMEM). */
char *ldapfilter_membership(const char *base, const char *attr, bool in_chain,
			    const char *const *values, size_t n);

#endif
