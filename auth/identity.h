/* Who a user is once authenticated: canonical username, directory DN, display name,
 * mail and group names, whichever backend (LDAP, local users) produced it; plus the
 * username syntax every backend accepts. Not what the user may use (policy/). */
#ifndef VDI_AUTH_IDENTITY_H
#define VDI_AUTH_IDENTITY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Longest username in bytes; most groups one identity carries. */
#define IDENTITY_USERNAME_MAX 256
#define IDENTITY_MAX_GROUPS   1024

struct identity {
	char *id_username;     /* canonical spelling from the directory */
	char *id_dn;	       /* LDAP distinguished name; NULL for local users */
	char *id_display_name; /* never NULL: falls back to the username */
	char *id_mail;	       /* NULL when unknown */
	char **id_groups;      /* group names (LDAP: CNs), nested ones included, no duplicates */
	size_t id_ngroups;
	size_t id_groups_cap;
};

/* Returns a new identity with copies of the strings (dn, display_name, mail may be
 * NULL) or NULL when out of memory. Free with identity_free(). */
struct identity *identity_new(const char *username, const char *dn, const char *display_name,
			      const char *mail);
void identity_free(struct identity *id);

/* Adds a copy of group unless an ASCII-case-insensitively equal name is present.
 * Returns 0, -E2BIG beyond IDENTITY_MAX_GROUPS, -EINVAL for an empty name, -ENOMEM. */
int identity_add_group(struct identity *id, const char *group);
/* True when the identity holds group (ASCII case-insensitive). */
bool identity_has_group(const struct identity *id, const char *group);

/* {"username","dn","display_name","mail","groups":[...]} with null for absent fields.
 * Returns a new reference or NULL. */
json_t *identity_to_json(const struct identity *id);

/* True when the len bytes at name are an acceptable username: 1..IDENTITY_USERNAME_MAX
 * bytes of valid UTF-8 without NUL, control characters (C0, DEL, C1) or leading or
 * trailing spaces. Lengths are explicit so a NUL inside a JSON string is refused
 * rather than silently cutting the name short. Characters special to LDAP are allowed
 * here: the LDAP module escapes them. */
bool identity_valid_username(const char *name, size_t len);

/* True when the len bytes at text are 1..max bytes of valid UTF-8 without control
 * characters: what a display name, mail address or group name from a directory must
 * be before it is kept (and later shown or serialised). */
bool identity_valid_text(const char *text, size_t len, size_t max);

#endif
