/* RFC 4515 filter construction for the LDAP client: everything that comes from a user
 * or a directory answer is escaped on its way into a filter. */
#include "auth/ldapfilter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ldapfilter_escape(const char *value, size_t len, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (outlen == 0)
		return -ENOSPC;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)value[i];
		bool special =
		    c == '*' || c == '(' || c == ')' || c == '\\' || c < 0x20 || c >= 0x7f;

		if (o + (special ? 3 : 1) >= outlen) {
			out[0] = '\0';
			return -ENOSPC;
		}
		if (special) {
			out[o++] = '\\';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return (int)o;
}

bool ldapfilter_template_valid(const char *tmpl, bool need_value)
{
	size_t len, depth = 0, values = 0;

	if (!tmpl || tmpl[0] != '(')
		return false;
	len = strlen(tmpl);
	for (size_t i = 0; i < len; i++) {
		if (tmpl[i] == '%') {
			if (tmpl[i + 1] == 's')
				values++;
			else if (tmpl[i + 1] != '%')
				return false;
			i++;
		} else if (tmpl[i] == '(') {
			depth++;
		} else if (tmpl[i] == ')') {
			if (depth == 0)
				return false;
			if (--depth == 0 && i != len - 1)
				return false;
		}
	}
	return depth == 0 && (need_value ? values > 0 : values == 0);
}

char *ldapfilter_format(const char *tmpl, const char *value, size_t len)
{
	size_t nvalues = 0, size, o = 0;
	char *escaped, *out;
	int elen;

	if (!ldapfilter_template_valid(tmpl, true) || len > (1u << 20)) {
		errno = EINVAL;
		return NULL;
	}
	escaped = malloc(3 * len + 1);
	if (!escaped)
		return NULL;
	elen = ldapfilter_escape(value, len, escaped, 3 * len + 1);
	for (const char *p = strstr(tmpl, "%s"); p; p = strstr(p + 2, "%s"))
		nvalues++;
	size = strlen(tmpl) + nvalues * (size_t)elen + 1;
	out = malloc(size);
	if (!out) {
		free(escaped);
		return NULL;
	}
	for (const char *p = tmpl; *p; p++) {
		if (*p == '%' && p[1] == 's') {
			memcpy(out + o, escaped, (size_t)elen);
			o += (size_t)elen;
			p++;
		} else if (*p == '%' && p[1] == '%') {
			out[o++] = '%';
			p++;
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
	free(escaped);
	return out;
}

bool ldapfilter_attr_valid(const char *name)
{
	bool oid;

	if (!name || !*name || strlen(name) > 128)
		return false;
	oid = name[0] >= '0' && name[0] <= '9';
	for (const char *p = name; *p; p++) {
		char c = *p;

		if (oid ? !((c >= '0' && c <= '9') || (c == '.' && p[1] && p[1] != '.'))
			: !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (p != name && ((c >= '0' && c <= '9') || c == '-'))))
			return false;
	}
	return true;
}

/* Appends s to the buffer at *out (capacity *cap, used *len), growing it. */
static int append(char **out, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t ncap = (*len + n + 1) * 2;
		char *p = realloc(*out, ncap);

		if (!p)
			return -ENOMEM;
		*out = p;
		*cap = ncap;
	}
	memcpy(*out + *len, s, n);
	*len += n;
	(*out)[*len] = '\0';
	return 0;
}

#define APPEND(s) append(&out, &len, &cap, (s), strlen(s))

char *ldapfilter_membership(const char *base, const char *attr, bool in_chain,
			    const char *const *values, size_t n)
{
	size_t len = 0, cap = 0;
	char *out = NULL;
	int r = 0;

	if (n == 0 || !ldapfilter_attr_valid(attr) ||
	    (base && *base && !ldapfilter_template_valid(base, false))) {
		errno = EINVAL;
		return NULL;
	}
	r |= APPEND("(&");
	if (base)
		r |= APPEND(base);
	if (n > 1)
		r |= APPEND("(|");
	for (size_t i = 0; i < n && r == 0; i++) {
		size_t vlen = strlen(values[i]);
		char *escaped = malloc(3 * vlen + 1);

		if (!escaped) {
			r = -ENOMEM;
			break;
		}
		ldapfilter_escape(values[i], vlen, escaped, 3 * vlen + 1);
		r |= APPEND("(");
		r |= APPEND(attr);
		r |= APPEND(in_chain ? ":" LDAPFILTER_IN_CHAIN ":=" : "=");
		r |= APPEND(escaped);
		r |= APPEND(")");
		free(escaped);
	}
	if (n > 1)
		r |= APPEND(")");
	r |= APPEND(")");
	if (r) {
		free(out);
		errno = ENOMEM;
		return NULL;
	}
	return out;
}
