/* Local users for the embedded default and demos: an INI users file, one section per
 * user with a scrypt hash from password_hash() (vdi-passwd), display name, mail and
 * groups. Read once, then read-only (safe to share between threads). Not LDAP. */
#ifndef VDI_AUTH_LOCALDIR_H
#define VDI_AUTH_LOCALDIR_H

#include <stddef.h>

#include "auth/identity.h"

/* File format (unknown keys and malformed values are errors, "file:line: message"):
 *   [alice]
 *   password = $scrypt$ln=15,r=8,p=1$...$...   (required)
 *   display_name = Alice Example
 *   mail = alice@example.com
 *   groups = engineering, staff               (comma-separated, nested ones listed)
 * Section names are usernames (identity_valid_username()), unique ignoring ASCII case. */

/* Returns the users of path, or NULL with the reason in err. Free with localdir_free(). */
struct localdir *localdir_load(const char *path, char *err, size_t errlen);
/* The same from text, name standing for the file in messages. */
struct localdir *localdir_parse(const char *name, const char *text, char *err, size_t errlen);
void localdir_free(struct localdir *dir);

size_t localdir_count(const struct localdir *dir);
/* The i-th user (i < localdir_count()), in file order: 0 with a new identity (free with
 * identity_free()), -ENOENT past the end, -ENOMEM. */
int localdir_user_at(const struct localdir *dir, size_t i, struct identity **id);

/* Finds username (ASCII case-insensitive). Returns 0 with a new identity (free with
 * identity_free()) and a copy of the stored hash (free()), -ENOENT for an unknown user,
 * -ENOMEM. Verifying the password is the caller's job (auth_login does it). */
int localdir_lookup(const struct localdir *dir, const char *username, struct identity **id,
		    char **password_hash);

#endif
