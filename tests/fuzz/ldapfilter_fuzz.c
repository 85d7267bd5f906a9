/* libFuzzer harness for LDAP filter construction (auth/ldapfilter.c). The first byte
 * chooses options, the rest is cut at the first NUL into a template (or base filter) and a
 * value. Checked: ldapfilter_escape() into exactly 3 * len + 1 bytes always succeeds, its
 * output holds no '*', '(', ')', NUL, control or non-ASCII byte and no '\' but as
 * "\xx" (lowercase hex), and unescapes to the value; into a smaller buffer it gives the
 * same or -ENOSPC with an empty string. ldapfilter_format() succeeds exactly for valid
 * templates, and its result is the template with each "%s" replaced by the escaped value
 * and "%%" by "%", so the value adds no parenthesis. ldapfilter_membership() with values
 * cut from the value at '\n' gives a filter whose parentheses balance and that holds each
 * escaped value, or NULL for an invalid attribute or base. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/ldapfilter.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Checks escaped is a safe escaping of value[0..len). */
static void check_escaped(const char *escaped, const char *value, size_t len)
{
	size_t k = 0;

	for (const char *p = escaped; *p; p++, k++) {
		unsigned char c = (unsigned char)*p;

		if (c == '*' || c == '(' || c == ')' || c < 0x20 || c >= 0x7f)
			abort();
		if (c == '\\') {
			int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);

			if (hi < 0 || lo < 0)
				abort();
			c = (unsigned char)(hi << 4 | lo);
			p += 2;
		}
		if (k >= len || (unsigned char)value[k] != c)
			abort();
	}
	if (k != len)
		abort();
}

static bool balanced(const char *s)
{
	long depth = 0;

	for (; *s; s++) {
		if (*s == '(')
			depth++;
		else if (*s == ')' && --depth < 0)
			return false;
	}
	return depth == 0;
}

static void check_format(const char *tmpl, const char *value, size_t len, const char *escaped)
{
	bool valid = ldapfilter_template_valid(tmpl, true);
	char *out, *want, *o;

	errno = 0;
	out = ldapfilter_format(tmpl, value, len);
	if (!valid) {
		if (out || errno != EINVAL)
			abort();
		return;
	}
	if (!out || tmpl[0] != '(' || tmpl[strlen(tmpl) - 1] != ')' || !balanced(tmpl))
		abort();
	want = o = malloc(strlen(tmpl) * (strlen(escaped) + 1) + 1);
	if (!want)
		abort();
	for (const char *p = tmpl; *p; p++) {
		if (p[0] == '%' && p[1] == 's')
			o = stpcpy(o, escaped), p++;
		else if (p[0] == '%' && p[1] == '%')
			*o++ = '%', p++;
		else
			*o++ = *p;
	}
	*o = '\0';
	if (strcmp(out, want) || !balanced(out))
		abort();
	free(want);
	free(out);
}

static void check_membership(const char *base, const char *attr, bool in_chain, char *values_text)
{
	const char *values[8];
	size_t n = 0;
	char *out;
	bool valid;

	for (char *p = values_text; n < 8; n++) {
		values[n] = p;
		p = strchr(p, '\n');
		if (!p) {
			n++;
			break;
		}
		*p++ = '\0';
	}
	valid = ldapfilter_attr_valid(attr) && (!*base || ldapfilter_template_valid(base, false));
	errno = 0;
	out = ldapfilter_membership(base, attr, in_chain, values, n);
	if (!valid) {
		if (out || errno != EINVAL)
			abort();
		return;
	}
	if (!out || strncmp(out, "(&", 2) || out[strlen(out) - 1] != ')' || !balanced(out))
		abort();
	for (size_t i = 0; i < n; i++) {
		size_t vl = strlen(values[i]);
		char *e = malloc(3 * vl + 1);

		if (!e || ldapfilter_escape(values[i], vl, e, 3 * vl + 1) < 0 || !strstr(out, e))
			abort();
		free(e);
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const attrs[] = {"member", "memberUid", "uniqueMember",
					    "1.2.840.113556.1.2.102"};
	const char *tmpl, *value, *attr;
	char *text, *escaped, *small, *copy;
	size_t tlen, len, outlen;
	int r, r2;

	if (size < 1)
		return 0;
	text = malloc(size);
	if (!text)
		abort();
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	tlen = strlen(text);
	tmpl = text;
	/* the value: the bytes after the template's NUL, NULs and all */
	value = tlen + 1 < size ? text + tlen + 1 : text + tlen;
	len = tlen + 1 < size ? size - 1 - tlen - 1 : 0;

	escaped = malloc(3 * len + 1);
	if (!escaped)
		abort();
	r = ldapfilter_escape(value, len, escaped, 3 * len + 1);
	if (r < 0 || (size_t)r != strlen(escaped) || (size_t)r > 3 * len)
		abort();
	check_escaped(escaped, value, len);

	outlen = data[0] % (3 * len + 2);
	small = malloc(outlen ? outlen : 1);
	if (!small)
		abort();
	r2 = ldapfilter_escape(value, len, small, outlen);
	if ((size_t)r < outlen ? r2 != r || strcmp(small, escaped)
			       : r2 != -ENOSPC || (outlen && small[0] != '\0'))
		abort();
	free(small);

	check_format(tmpl, value, len, escaped);

	/* membership: the template as the base, values from the value (up to a NUL) */
	attr = data[0] & 4 ? attrs[data[0] >> 3 & 3] : tmpl;
	copy = strndup(value, len);
	if (!copy)
		abort();
	check_membership(data[0] & 4 ? tmpl : "", attr, data[0] & 1, copy);
	if (data[0] & 2)
		check_membership(tmpl, "member", data[0] & 1, copy);
	free(copy);
	free(escaped);
	free(text);
	return 0;
}
