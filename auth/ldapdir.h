/* Users from LDAP or Active Directory through OpenLDAP's libldap: the [ldap] options,
 * and one login = find the user's entry with a service account (or anonymously), bind
 * as the user with their password, collect their groups (nested ones too). Connections
 * are kept for the next login (pool_size idle ones per server and kind, for pool_idle):
 * searches run on connections bound as the service account, users' binds on others, so
 * a login costs the user's bind and the searches. Calls from several threads are
 * independent: each login has its connections to itself while it runs. With several
 * directory servers (uri = "ldaps://dc1 ldaps://dc2"), each is asked in turn under its
 * own deadlines until one answers; one that failed is asked last for a back-off
 * period and probed by ldapdir_probe() meanwhile. Not throttling (throttle.h) and not
 * what the user may use (policy/). */
#ifndef VDI_AUTH_LDAPDIR_H
#define VDI_AUTH_LDAPDIR_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "auth/identity.h"
#include "lib/config.h"

enum ldapdir_server { LDAPDIR_OPENLDAP, LDAPDIR_AD };
enum ldapdir_group_mode { LDAPDIR_GROUPS_MEMBEROF, LDAPDIR_GROUPS_SEARCH };
enum ldapdir_member_attr { LDAPDIR_MEMBER, LDAPDIR_UNIQUEMEMBER, LDAPDIR_MEMBERUID };

/* The [ldap] section. Strings are owned (config_free() with the options table frees
 * them); NULL means unset. ldapdir_config_finish() fills the server-type defaults. */
struct ldapdir_config {
	char *lc_uri;		/* "ldaps://dc1 ldaps://dc2": several are tried in turn */
	int lc_server_type;	/* enum ldapdir_server */
	char *lc_bind_dn;	/* service account; unset: search anonymously */
	char *lc_bind_password; /* secret */
	char *lc_base_dn;	/* where users are searched (subtree) */
	char *lc_user_filter;	/* "%s" is the escaped username */
	char *lc_username_attr; /* canonical username: uid / sAMAccountName */
	char *lc_name_attr;	/* display name, falling back to cn */
	char *lc_mail_attr;
	int lc_group_mode;	  /* enum ldapdir_group_mode */
	char *lc_group_base_dn;	  /* default: base_dn */
	char *lc_group_filter;	  /* what a group is, e.g. "(objectClass=groupOfNames)" */
	int lc_member_attr;	  /* enum ldapdir_member_attr, for group_mode = search */
	char *lc_group_name_attr; /* the group's name; default cn */
	bool lc_nested_groups;	  /* groups of groups count (AD: LDAP_MATCHING_RULE_IN_CHAIN) */
	int lc_max_nesting;	  /* levels above the direct groups followed */
	bool lc_start_tls;   /* StartTLS on ldap:// URIs; failure is an error, never clear text */
	bool lc_require_tls; /* refuse clear-text ldap:// to non-loopback hosts */
	char *lc_ca_file;    /* PEM CA bundle for the server certificate; unset: system CAs */
	char *lc_tls_name;   /* the name the certificate must bear; unset: the URI's host */
	int lc_timeout;	     /* seconds per LDAP operation */
	int lc_network_timeout; /* seconds to connect (TCP and TLS handshake) */
	int lc_pool_size;	/* idle connections kept per server, for searches and for binds */
	int lc_pool_idle;	/* seconds an idle connection is kept */
};

extern const char *const ldapdir_server_types[]; /* "openldap", "ad" */
extern const char *const ldapdir_group_modes[];	 /* "memberof", "search" */
extern const char *const ldapdir_member_attrs[]; /* "member", "uniqueMember", "memberUid" */

#define LDAPDIR_OPT_(base, name, type, field, ...)                                                 \
	{                                                                                          \
		.co_section = "ldap", .co_name = (name), .co_type = (type),                        \
		.co_offset = (base) + offsetof(struct ldapdir_config, field), __VA_ARGS__          \
	}

/* The [ldap] entries of a config_option table, for a struct ldapdir_config found at
 * byte offset base of the table's target, e.g.
 *   LDAPDIR_CONFIG_OPTIONS(offsetof(struct broker_config, bc_ldap)), ... CONFIG_END
 * After config_load(), call ldapdir_config_finish(). */
#define LDAPDIR_CONFIG_OPTIONS(base)                                                               \
	LDAPDIR_OPT_(base, "uri", CONFIG_STRING, lc_uri, .co_max = 1024,                           \
		     .co_help = "LDAP server URIs (ldaps://, ldap:// with start_tls, ldapi://)"),  \
	    LDAPDIR_OPT_(base, "server_type", CONFIG_ENUM, lc_server_type,                         \
			 .co_default = "openldap", .co_choices = ldapdir_server_types,             \
			 .co_help = "openldap or ad (Active Directory)"),                          \
	    LDAPDIR_OPT_(base, "bind_dn", CONFIG_STRING, lc_bind_dn, .co_max = 1024,               \
			 .co_help = "service account DN; unset: anonymous search"),                \
	    LDAPDIR_OPT_(base, "bind_password", CONFIG_STRING, lc_bind_password, .co_max = 1024,   \
			 .co_secret = true, .co_help = "service account password"),                \
	    LDAPDIR_OPT_(base, "base_dn", CONFIG_STRING, lc_base_dn, .co_max = 1024,               \
			 .co_help = "subtree searched for users"),                                 \
	    LDAPDIR_OPT_(base, "user_filter", CONFIG_STRING, lc_user_filter, .co_max = 1024,       \
			 .co_help = "user search filter, %s = escaped username"),                  \
	    LDAPDIR_OPT_(base, "username_attr", CONFIG_STRING, lc_username_attr, .co_max = 128,    \
			 .co_help = "attribute holding the canonical username"),                   \
	    LDAPDIR_OPT_(base, "name_attr", CONFIG_STRING, lc_name_attr, .co_max = 128,            \
			 .co_default = "displayName", .co_help = "display name attribute"),        \
	    LDAPDIR_OPT_(base, "mail_attr", CONFIG_STRING, lc_mail_attr, .co_max = 128,            \
			 .co_default = "mail", .co_help = "mail attribute"),                       \
	    LDAPDIR_OPT_(base, "group_mode", CONFIG_ENUM, lc_group_mode, .co_default = "search",   \
			 .co_choices = ldapdir_group_modes,                                        \
			 .co_help =                                                                \
			     "memberof (user's memberOf) or search (groups naming the user)"),     \
	    LDAPDIR_OPT_(base, "group_base_dn", CONFIG_STRING, lc_group_base_dn, .co_max = 1024,   \
			 .co_help = "subtree searched for groups; default base_dn"),               \
	    LDAPDIR_OPT_(base, "group_filter", CONFIG_STRING, lc_group_filter, .co_max = 1024,     \
			 .co_help = "filter selecting group entries"),                             \
	    LDAPDIR_OPT_(base, "group_member_attr", CONFIG_ENUM, lc_member_attr,                   \
			 .co_default = "member", .co_choices = ldapdir_member_attrs,               \
			 .co_help = "member, uniqueMember (DN values) or memberUid (usernames)"),  \
	    LDAPDIR_OPT_(base, "group_name_attr", CONFIG_STRING, lc_group_name_attr,               \
			 .co_max = 128, .co_default = "cn", .co_help = "group name attribute"),    \
	    LDAPDIR_OPT_(base, "nested_groups", CONFIG_BOOL, lc_nested_groups,                     \
			 .co_default = "yes",                                                      \
			 .co_help = "follow groups that are members of groups"),                   \
	    LDAPDIR_OPT_(base, "max_nesting", CONFIG_INT, lc_max_nesting, .co_default = "8",       \
			 .co_min = 0, .co_max = 64, .co_help = "nesting levels followed"),         \
	    LDAPDIR_OPT_(base, "start_tls", CONFIG_BOOL, lc_start_tls, .co_default = "no",         \
			 .co_help = "StartTLS on ldap:// URIs (failure is an error)"),             \
	    LDAPDIR_OPT_(base, "require_tls", CONFIG_BOOL, lc_require_tls, .co_default = "yes",    \
			 .co_help = "refuse clear text to non-loopback servers"),                  \
	    LDAPDIR_OPT_(base, "ca_file", CONFIG_STRING, lc_ca_file, .co_max = 4096,               \
			 .co_help = "CA certificates (PEM) for the server; default system CAs"),   \
	    LDAPDIR_OPT_(base, "tls_name", CONFIG_STRING, lc_tls_name, .co_max = 255,              \
			 .co_help =                                                                \
			     "name the server certificate must bear; default the URI's host"),     \
	    LDAPDIR_OPT_(base, "timeout", CONFIG_DURATION, lc_timeout, .co_default = "5s",         \
			 .co_min = 1, .co_max = 300, .co_help = "limit per LDAP operation"),       \
	    LDAPDIR_OPT_(base, "network_timeout", CONFIG_DURATION, lc_network_timeout,             \
			 .co_default = "3s", .co_min = 1, .co_max = 300,                           \
			 .co_help = "limit to connect, TLS handshake included"),                   \
	    LDAPDIR_OPT_(base, "pool_size", CONFIG_INT, lc_pool_size, .co_default = "4",           \
			 .co_min = 1, .co_max = 64,                                                \
			 .co_help =                                                                \
			     "idle connections kept per server for searches, and for binds"),      \
	    LDAPDIR_OPT_(base, "pool_idle", CONFIG_DURATION, lc_pool_idle, .co_default = "60s",    \
			 .co_min = 1, .co_max = 3600,                                              \
			 .co_help = "an idle connection is closed after this long")

/* Completes and checks a loaded [ldap] section: fills user_filter, username_attr and
 * group_filter from server_type ("(&(objectClass=person)(uid=%s))" and uid for
 * openldap, "(&(objectCategory=person)(objectClass=user)(sAMAccountName=%s))" and sAMAccountName
 * for ad), group_base_dn from base_dn; refuses a missing uri or base_dn, a bind_dn without a
 * password (that would be an unauthenticated bind), malformed filters or attribute
 * names, ldaps:// with start_tls, and clear-text ldap:// to a non-loopback host while
 * require_tls is on. Returns 0 or -EINVAL / -ENOMEM with "file: [ldap] ..." in err. */
int ldapdir_config_finish(struct ldapdir_config *cfg, const char *file, char *err, size_t errlen);

/* What the directory says of an account it will not let in now, although it knows it
 * (Active Directory's account states, from the "data" code of its bind refusal). Not a
 * wrong password: the caller does not count them as failed guesses. */
#define LDAPDIR_PASSWORD_CHANGE	 (-EKEYEXPIRED) /* must change it (773) or it expired (532) */
#define LDAPDIR_ACCOUNT_DISABLED (-EKEYREVOKED) /* 533 */
#define LDAPDIR_ACCOUNT_EXPIRED	 (-ETIME)	/* 701 */
#define LDAPDIR_ACCOUNT_LOCKED	 (-ENOLCK)	/* 775 */
/* A password change the directory's password policy refused (its old password right). */
#define LDAPDIR_PASSWORD_REJECTED (-EKEYREJECTED)

/* Authenticates username (valid per identity_valid_username()) with password against
 * the directory. An empty password is refused before any bind. On success stores a new
 * identity in *out (free with identity_free()): the directory's spelling of the
 * username, DN, display name, mail, and group names (group_name_attr, or the first RDN
 * value for memberOf DNs), nested groups included up to max_nesting levels (cycles are
 * followed once). Asks the directory servers in turn (see above) until one answers:
 * a server's "no" (wrong password, unknown user) is the answer, whatever others failed
 * before it. An idle connection the server closed meanwhile is replaced without
 * counting as the server's failure. Blocks for a bounded time per server: each libldap
 * wait is limited by timeout / network_timeout, and a watchdog thread shuts the
 * login's connections down if connecting, TLS and finding the user take longer than
 * network_timeout + timeout per step, or the rest longer than 6 x timeout (libldap's TLS
 * handshake has no timeout of its own). SIGPIPE from a broken connection is blocked in
 * the calling thread while it runs and never reaches the process.
 * Returns 0, or:
 *   -EACCES     unknown user, wrong or empty password, account refused by the server
 *   LDAPDIR_PASSWORD_CHANGE, _ACCOUNT_DISABLED, _ACCOUNT_EXPIRED, _ACCOUNT_LOCKED
 *               (server_type = ad) the account's state, err naming it
 *   -EINVAL     username not acceptable
 *   -ENOTUNIQ   the filter matches several entries (a directory or filter problem)
 *   -EPROTO     StartTLS or certificate verification failed (nothing sent in clear)
 *   -ETIMEDOUT  the server did not answer in time
 *   -EHOSTDOWN  no server could be reached
 *   -ECANCELED  ldapdir_cancel() was called
 *   -ENOMEM, -EIO  other failures (service account refused, referral, ...)
 * err receives a one-line reason for the log (never the password); callers should show
 * users a generic message for -EACCES. */
int ldapdir_login(const struct ldapdir_config *cfg, const char *username, const char *password,
		  struct identity **out, char *err, size_t errlen);

struct ldapdir_hook;

/* Changes username's password from old_password to new_password, as the directory
 * allows (servers in turn as for a login; hook as for ldapdir_login_hooked()). Active
 * Directory: the user's unicodePwd changed in one modify that deletes the old value
 * and adds the new one, on the service account's connection, over TLS only; the
 * directory checks the old password and its password policy, and a user whose
 * password must be changed can do it. Other servers: RFC 3062 password modify after
 * the user's bind (the server's access rules must let users write their password).
 * Returns 0, or:
 *   -EACCES     unknown user, wrong or empty old password (a failed guess)
 *   LDAPDIR_PASSWORD_REJECTED  the new password is empty, or the directory's
 *               password policy refused it (too short, too simple, used before,
 *               changed too recently)
 *   -EPERM      the directory does not let users change their password this way
 *               (access rules; AD over a connection without TLS)
 *   LDAPDIR_ACCOUNT_DISABLED, _EXPIRED, _LOCKED  as for a login
 *   and ldapdir_login()'s failures of the directory. err as for a login. */
int ldapdir_change_password(const struct ldapdir_config *cfg, const char *username,
			    const char *old_password, const char *new_password,
			    const struct ldapdir_hook *hook, char *err, size_t errlen);

/* Ends every login and lookup under way within moments (they return -ECANCELED) and
 * refuses new ones: for a process that is stopping. */
void ldapdir_cancel(void);

/* What the process knows of one directory server of the configuration. */
struct ldapdir_server_health {
	char sh_uri[512];
	bool sh_failing;    /* it failed last time it was asked */
	int sh_retry_in;    /* seconds until it is asked in its turn again (failing) */
	char sh_error[256]; /* why it failed ("TLS with ... failed: ..."), or "" */
};

/* The servers of cfg in their configured order, at most max into out. Returns how many. */
size_t ldapdir_servers(const struct ldapdir_config *cfg, struct ldapdir_server_health *out,
		       size_t max);

/* Asks each directory server of cfg whose back-off is over whether it answers again
 * (connect, TLS, service bind); one that does is asked in its turn again, one that does
 * not waits longer. For a maintenance thread. Returns how many were asked. */
int ldapdir_probe(const struct ldapdir_config *cfg);

/* Called by ldapdir_login_hooked() once the user's entry is found, before the user's
 * bind: with the directory's spelling of the username (username_attr). A negative
 * errno ends the login there and is returned. */
struct ldapdir_hook {
	int (*lh_found)(void *ctx, const char *username);
	void *lh_ctx;
};

/* ldapdir_login() with a hook (NULL: none), so the caller can throttle the account
 * under its canonical name whatever spelling was typed. */
int ldapdir_login_hooked(const struct ldapdir_config *cfg, const char *username,
			 const char *password, const struct ldapdir_hook *hook,
			 struct identity **out, char *err, size_t errlen);

/* The user's entry and groups as the service account (or an anonymous bind) sees them,
 * without the user's password: whether a signed-in user still exists and what groups
 * they have now. Returns 0 with a new identity, -ENOENT when the directory no longer
 * has the user, or ldapdir_login()'s other errors. */
int ldapdir_lookup(const struct ldapdir_config *cfg, const char *username, struct identity **out,
		   char *err, size_t errlen);

/* The filters ldapdir_login() would send, as new strings (free()) or NULL (errno):
 * the user search for username, and the first group search for a user entry (dn,
 * username): with server_type = ad and nested_groups the LDAP_MATCHING_RULE_IN_CHAIN
 * form, (&<group_filter>(member:1.2.840.113556.1.4.1941:=<dn>)); NULL with errno
 * ENOENT when group_mode = memberof needs no group search. For tests and
 * troubleshooting. */
char *ldapdir_user_filter(const struct ldapdir_config *cfg, const char *username);
char *ldapdir_group_filter(const struct ldapdir_config *cfg, const char *dn, const char *username);

#endif
