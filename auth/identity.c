/* The authenticated identity and its group list, and the username syntax check shared
 * by every backend. */
#include "auth/identity.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int dup_field(char **slot, const char *value)
{
	if (!value)
		return 0;
	*slot = strdup(value);
	return *slot ? 0 : -ENOMEM;
}

struct identity *identity_new(const char *username, const char *dn, const char *display_name,
			      const char *mail)
{
	struct identity *id;

	if (!username)
		return NULL;
	id = calloc(1, sizeof(*id));
	if (!id)
		return NULL;
	if (dup_field(&id->id_username, username) < 0 || dup_field(&id->id_dn, dn) < 0 ||
	    dup_field(&id->id_display_name,
		      display_name && *display_name ? display_name : username) < 0 ||
	    dup_field(&id->id_mail, mail && *mail ? mail : NULL) < 0) {
		identity_free(id);
		return NULL;
	}
	return id;
}

void identity_free(struct identity *id)
{
	if (!id)
		return;
	for (size_t i = 0; i < id->id_ngroups; i++)
		free(id->id_groups[i]);
	free(id->id_groups);
	free(id->id_username);
	free(id->id_dn);
	free(id->id_display_name);
	free(id->id_mail);
	free(id);
}

bool identity_has_group(const struct identity *id, const char *group)
{
	for (size_t i = 0; i < id->id_ngroups; i++)
		if (!strcasecmp(id->id_groups[i], group))
			return true;
	return false;
}

int identity_add_group(struct identity *id, const char *group)
{
	char *copy;

	if (!group || !*group)
		return -EINVAL;
	if (identity_has_group(id, group))
		return 0;
	if (id->id_ngroups >= IDENTITY_MAX_GROUPS)
		return -E2BIG;
	if (id->id_ngroups == id->id_groups_cap) {
		size_t cap = id->id_groups_cap ? id->id_groups_cap * 2 : 8;
		char **groups = realloc(id->id_groups, cap * sizeof(*groups));

		if (!groups)
			return -ENOMEM;
		id->id_groups = groups;
		id->id_groups_cap = cap;
	}
	copy = strdup(group);
	if (!copy)
		return -ENOMEM;
	id->id_groups[id->id_ngroups++] = copy;
	return 0;
}

static json_t *string_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *identity_to_json(const struct identity *id)
{
	json_t *obj = json_object(), *groups = json_array();

	if (!obj || !groups)
		goto out_fail;
	for (size_t i = 0; i < id->id_ngroups; i++)
		if (json_array_append_new(groups, json_string(id->id_groups[i])) < 0)
			goto out_fail;
	if (json_object_set_new(obj, "username", string_or_null(id->id_username)) < 0 ||
	    json_object_set_new(obj, "dn", string_or_null(id->id_dn)) < 0 ||
	    json_object_set_new(obj, "display_name", string_or_null(id->id_display_name)) < 0 ||
	    json_object_set_new(obj, "mail", string_or_null(id->id_mail)) < 0)
		goto out_fail;
	if (json_object_set_new(obj, "groups", groups) < 0) { /* consumes groups */
		json_decref(obj);
		return NULL;
	}
	return obj;
out_fail:
	json_decref(groups);
	json_decref(obj);
	return NULL;
}

/* Length of the UTF-8 sequence at s (at most left bytes) and its code point in *cp,
 * or 0 when the sequence is invalid (overlong, surrogate, beyond U+10FFFF, cut short). */
static size_t utf8_next(const unsigned char *s, size_t left, uint32_t *cp)
{
	size_t n;
	uint32_t c, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	} else if ((s[0] & 0xe0) == 0xc0) {
		n = 2, c = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3, c = s[0] & 0x0f, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4, c = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

bool identity_valid_text(const char *text, size_t len, size_t max)
{
	const unsigned char *s = (const unsigned char *)text;

	if (!text || len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = utf8_next(s + i, len - i, &cp);

		if (n == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 ||
		    cp == 0x2029)
			return false;
		i += n;
	}
	return true;
}

bool identity_valid_username(const char *name, size_t len)
{
	if (!identity_valid_text(name, len, IDENTITY_USERNAME_MAX))
		return false;
	return name[0] != ' ' && name[len - 1] != ' ';
}
