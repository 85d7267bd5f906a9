/* The LDAP / Active Directory login: connection with TLS that fails hard, service or
 * anonymous search for the user's entry, bind as the user, group collection with
 * nesting, and the [ldap] option checks. Every answer from the server is validated
 * before it goes into an identity. */
#include "auth/ldapdir.h"

#include <arpa/inet.h>
#include <errno.h>
#include <lber.h>
#include <ldap.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth/ldapfilter.h"
#include "auth/ldapvalue.h"
#include "lib/log.h"

/* Longest value kept from a directory answer, and group DNs per nested search. */
#define VALUE_MAX 1024
#define DN_MAX	  4096
#define BATCH	  32
/* After the user's entry is found, the rest of a login gets this many timeouts. */
#define WATCHDOG_OPERATIONS 6

const char *const ldapdir_server_types[] = {"openldap", "ad", NULL};
const char *const ldapdir_group_modes[] = {"memberof", "search", NULL};
const char *const ldapdir_member_attrs[] = {"member", "uniqueMember", "memberUid", NULL};

static const char *const default_user_filter[] = {
    "(&(objectClass=person)(uid=%s))",
    /* objectCategory=person: users, not computer accounts (also objectClass=user) */
    "(&(objectCategory=person)(objectClass=user)(sAMAccountName=%s))"};
static const char *const default_username_attr[] = {"uid", "sAMAccountName"};
static const char *const default_group_filter[] = {
    "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))",
    "(objectClass=group)"};

/* A login's connections: searches run as the service account (or anonymously) on one,
 * the user's bind on the other, so neither has to be bound again afterwards and both go
 * back to the pool. */
enum conn_kind { CONN_SEARCH, CONN_BIND, CONN_KINDS };

/* A connection to one directory server: in a login's hands or idle in the pool. */
struct ldapconn {
	LDAP *c_ld;
	struct ldap_conncb c_cb; /* lc_arg: this connection */
	struct login *c_owner;	 /* the login using it (its watchdog), NULL when idle */
	int c_fd;		 /* -1 until connected, and once closed */
	enum conn_kind c_kind;	 /* CONN_SEARCH: bound as the service account */
	bool c_tcp_up;		 /* a TCP connection was made (before any TLS) */
	bool c_broken;		 /* an operation failed on the client side: never reused */
	bool c_reused;		 /* taken from the pool for this login */
	uint64_t c_key;		 /* the settings it was made with (conn_key()) */
	char c_uri[512];
	time_t c_born, c_idle_since; /* CLOCK_MONOTONIC seconds */
	struct ldapconn *c_next;     /* in the pool */
};

/* One login in progress. */
struct login {
	const struct ldapdir_config *lg_cfg;
	const char *lg_uri; /* the one directory server this attempt asks */
	struct ldapconn *lg_conn[CONN_KINDS];
	LDAP *lg_ld; /* the search connection's handle */
	/* watchdog: shuts the connections down when the login overruns its deadline */
	pthread_t lg_wd_thread;
	pthread_mutex_t lg_wd_lock; /* also guards lg_conn and their c_fd */
	pthread_cond_t lg_wd_cond;
	struct timespec lg_wd_deadline; /* CLOCK_MONOTONIC */
	bool lg_wd_running, lg_wd_stop, lg_wd_fired;
	struct login *lg_next; /* in the list of logins under way (ldapdir_cancel()) */
	const char *lg_username;
	const struct ldapdir_hook *lg_hook; /* or NULL */
	const char *lg_new_password;	    /* a password change to this, not a login */
	bool lg_hook_called;		    /* the user was found: this server answered */
	char *lg_primary_group; /* AD: "(objectSid=...)" of the user's primary group, or NULL */
	char *lg_err;
	size_t lg_errlen;
	/* group DNs seen (normalised), in the order found: cycle detection and the frontier
	 * of each nesting level */
	char **lg_dns;
	size_t lg_ndns, lg_dns_cap;
	bool lg_groups_full;
};

static void set_err(struct login *lg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pool_drop(const char *uri, int idle_at_least);

static void set_err(struct login *lg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(lg->lg_err, lg->lg_errlen, fmt, ap);
	va_end(ap);
	/* server diagnostics end up here: keep the log line one line */
	for (char *p = lg->lg_err; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
}

static void err_clear(struct login *lg)
{
	lg->lg_err[0] = '\0';
}

/* ldap_err2string plus the diagnostic message of ld's server, if any. */
static void ldap_reason(struct login *lg, LDAP *ld, int rc, const char *what)
{
	char *diag = NULL;

	if (ld)
		ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
	if (diag && *diag)
		set_err(lg, "%s: %s (%.200s)", what, ldap_err2string(rc), diag);
	else
		set_err(lg, "%s: %s", what, ldap_err2string(rc));
	ldap_memfree(diag);
}

static int errno_of(int rc)
{
	switch (rc) {
	case LDAP_SUCCESS: return 0;
	case LDAP_TIMEOUT:
	case LDAP_TIMELIMIT_EXCEEDED: return -ETIMEDOUT;
	case LDAP_SERVER_DOWN: return -EHOSTDOWN;
	case LDAP_NO_MEMORY: return -ENOMEM;
	default: return -EIO;
	}
}

static bool is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (!host || !*host || !strcasecmp(host, "localhost"))
		return true; /* an empty host is the library's default: localhost */
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

static int finish_error(char *err, size_t errlen, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int finish_error(char *err, size_t errlen, const char *file, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s: [ldap] %s", file, msg);
	return -EINVAL;
}

static int default_string(char **slot, const char *value)
{
	if (*slot && **slot)
		return 0;
	free(*slot);
	*slot = strdup(value);
	return *slot ? 0 : -ENOMEM;
}

static int check_uris(const struct ldapdir_config *c, const char *file, char *err, size_t errlen)
{
	char *list = strdup(c->lc_uri), *save = NULL;
	int r = 0, count = 0;

	if (!list)
		return -ENOMEM;
	for (char *u = strtok_r(list, " \t,", &save); u && !r; u = strtok_r(NULL, " \t,", &save)) {
		LDAPURLDesc *lud = NULL;

		count++;
		if (ldap_url_parse(u, &lud) != LDAP_URL_SUCCESS) {
			r = finish_error(err, errlen, file, "uri: '%s' is not an LDAP URL", u);
			break;
		}
		if (!strcasecmp(lud->lud_scheme, "ldaps")) {
			if (c->lc_start_tls)
				r = finish_error(err, errlen, file,
						 "uri: '%s' already uses TLS; start_tls is for "
						 "ldap:// URIs",
						 u);
		} else if (!strcasecmp(lud->lud_scheme, "ldap")) {
			if (!c->lc_start_tls && c->lc_require_tls && !is_loopback(lud->lud_host))
				r = finish_error(
				    err, errlen, file,
				    "uri: '%s' would send passwords in clear text: use "
				    "ldaps://, start_tls = yes, or require_tls = no",
				    u);
		} else if (strcasecmp(lud->lud_scheme, "ldapi")) {
			r = finish_error(err, errlen, file, "uri: unsupported scheme in '%s'", u);
		}
		ldap_free_urldesc(lud);
	}
	free(list);
	if (!r && count == 0)
		r = finish_error(err, errlen, file, "uri is required");
	return r;
}

static bool dn_valid(const char *dn)
{
	LDAPDN parsed = NULL;
	int rc = ldap_str2dn(dn, &parsed, LDAP_DN_FORMAT_LDAPV3);

	ldap_dnfree(parsed);
	return rc == LDAP_SUCCESS;
}

int ldapdir_config_finish(struct ldapdir_config *c, const char *file, char *err, size_t errlen)
{
	int type = c->lc_server_type == LDAPDIR_AD ? 1 : 0, r;

	if (!c->lc_uri || !*c->lc_uri)
		return finish_error(err, errlen, file, "uri is required");
	r = check_uris(c, file, err, errlen);
	if (r)
		return r;
	if (!c->lc_base_dn || !*c->lc_base_dn)
		return finish_error(err, errlen, file, "base_dn is required");
	if (!dn_valid(c->lc_base_dn))
		return finish_error(err, errlen, file, "base_dn: '%s' is not a DN", c->lc_base_dn);
	if (c->lc_bind_dn && *c->lc_bind_dn) {
		if (!dn_valid(c->lc_bind_dn))
			return finish_error(err, errlen, file, "bind_dn: '%s' is not a DN",
					    c->lc_bind_dn);
		if (!c->lc_bind_password || !*c->lc_bind_password)
			return finish_error(err, errlen, file,
					    "bind_dn is set but bind_password is empty (an "
					    "unauthenticated bind)");
	} else if (c->lc_bind_password && *c->lc_bind_password) {
		return finish_error(err, errlen, file, "bind_password is set without bind_dn");
	}
	if (default_string(&c->lc_user_filter, default_user_filter[type]) < 0 ||
	    default_string(&c->lc_username_attr, default_username_attr[type]) < 0 ||
	    default_string(&c->lc_group_filter, default_group_filter[type]) < 0 ||
	    default_string(&c->lc_group_base_dn, c->lc_base_dn) < 0 ||
	    default_string(&c->lc_name_attr, "displayName") < 0 ||
	    default_string(&c->lc_mail_attr, "mail") < 0 ||
	    default_string(&c->lc_group_name_attr, "cn") < 0) {
		snprintf(err, errlen, "%s: out of memory", file);
		return -ENOMEM;
	}
	if (!ldapfilter_template_valid(c->lc_user_filter, true))
		return finish_error(err, errlen, file,
				    "user_filter: '%s' must be one parenthesised filter with %%s "
				    "for the username",
				    c->lc_user_filter);
	if (!ldapfilter_template_valid(c->lc_group_filter, false))
		return finish_error(
		    err, errlen, file,
		    "group_filter: '%s' must be one parenthesised filter without %%",
		    c->lc_group_filter);
	if (!dn_valid(c->lc_group_base_dn))
		return finish_error(err, errlen, file, "group_base_dn: '%s' is not a DN",
				    c->lc_group_base_dn);
	if (!ldapfilter_attr_valid(c->lc_username_attr) ||
	    !ldapfilter_attr_valid(c->lc_name_attr) || !ldapfilter_attr_valid(c->lc_mail_attr) ||
	    !ldapfilter_attr_valid(c->lc_group_name_attr))
		return finish_error(err, errlen, file,
				    "username_attr, name_attr, mail_attr and group_name_attr must "
				    "be attribute names");
	if (c->lc_ca_file && *c->lc_ca_file && access(c->lc_ca_file, R_OK) < 0)
		return finish_error(err, errlen, file, "ca_file: %s: %s", c->lc_ca_file,
				    strerror(errno));
	return 0;
}

static bool use_in_chain(const struct ldapdir_config *c)
{
	return c->lc_server_type == LDAPDIR_AD && c->lc_nested_groups &&
	       c->lc_member_attr != LDAPDIR_MEMBERUID;
}

char *ldapdir_user_filter(const struct ldapdir_config *c, const char *username)
{
	const char *user = username;

	if (c->lc_server_type == LDAPDIR_AD) {
		/* user@example.com: the userPrincipalName; DOMAIN\user: the user part */
		if (strchr(username, '@'))
			return ldapfilter_format("(&(objectCategory=person)(objectClass=user)"
						 "(userPrincipalName=%s))",
						 username, strlen(username));
		if (strchr(username, '\\') && strchr(username, '\\')[1])
			user = strchr(username, '\\') + 1;
	}
	return ldapfilter_format(c->lc_user_filter, user, strlen(user));
}

char *ldapdir_group_filter(const struct ldapdir_config *c, const char *dn, const char *username)
{
	const char *value = c->lc_member_attr == LDAPDIR_MEMBERUID ? username : dn;

	if (c->lc_group_mode == LDAPDIR_GROUPS_MEMBEROF && !use_in_chain(c)) {
		errno = ENOENT;
		return NULL;
	}
	return ldapfilter_membership(c->lc_group_filter, ldapdir_member_attrs[c->lc_member_attr],
				     use_in_chain(c), &value, 1);
}

/* The watchdog: libldap bounds connect() by LDAP_OPT_NETWORK_TIMEOUT and each answer by
 * LDAP_OPT_TIMEOUT, but the TLS handshake (GnuTLS under libldap 2.5) retries a silent
 * socket forever, so a server that accepts and never speaks would hold the login. A
 * thread per login shuts its connections down at a deadline; every libldap wait then ends
 * with an error. A new socket is known through libldap's connection callbacks. */
static void *watchdog_main(void *arg)
{
	struct login *lg = arg;
	int rc = 0;

	pthread_setname_np(pthread_self(), "ldap-watchdog");
	pthread_mutex_lock(&lg->lg_wd_lock);
	while (!lg->lg_wd_stop) {
		rc = pthread_cond_timedwait(&lg->lg_wd_cond, &lg->lg_wd_lock, &lg->lg_wd_deadline);
		if (rc == ETIMEDOUT && !lg->lg_wd_stop) {
			struct timespec now;

			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec < lg->lg_wd_deadline.tv_sec ||
			    (now.tv_sec == lg->lg_wd_deadline.tv_sec &&
			     now.tv_nsec < lg->lg_wd_deadline.tv_nsec))
				continue; /* the deadline moved */
			lg->lg_wd_fired = true;
			for (int k = 0; k < CONN_KINDS; k++)
				if (lg->lg_conn[k] && lg->lg_conn[k]->c_fd >= 0)
					shutdown(lg->lg_conn[k]->c_fd, SHUT_RDWR);
			while (!lg->lg_wd_stop)
				pthread_cond_wait(&lg->lg_wd_cond, &lg->lg_wd_lock);
		}
	}
	pthread_mutex_unlock(&lg->lg_wd_lock);
	return NULL;
}

/* (Re)sets the deadline to seconds from now. */
static void watchdog_arm(struct login *lg, int seconds)
{
	pthread_mutex_lock(&lg->lg_wd_lock);
	clock_gettime(CLOCK_MONOTONIC, &lg->lg_wd_deadline);
	lg->lg_wd_deadline.tv_sec += seconds;
	pthread_cond_signal(&lg->lg_wd_cond);
	pthread_mutex_unlock(&lg->lg_wd_lock);
}

static int watchdog_start(struct login *lg, int seconds)
{
	pthread_condattr_t attr;

	pthread_mutex_init(&lg->lg_wd_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&lg->lg_wd_cond, &attr);
	pthread_condattr_destroy(&attr);
	clock_gettime(CLOCK_MONOTONIC, &lg->lg_wd_deadline);
	lg->lg_wd_deadline.tv_sec += seconds;
	if (pthread_create(&lg->lg_wd_thread, NULL, watchdog_main, lg)) {
		pthread_cond_destroy(&lg->lg_wd_cond);
		pthread_mutex_destroy(&lg->lg_wd_lock);
		return -ENOMEM;
	}
	lg->lg_wd_running = true;
	return 0;
}

/* Stops the watchdog thread; true if it fired. */
static bool watchdog_stop(struct login *lg)
{
	if (!lg->lg_wd_running)
		return false;
	pthread_mutex_lock(&lg->lg_wd_lock);
	lg->lg_wd_stop = true;
	pthread_cond_signal(&lg->lg_wd_cond);
	pthread_mutex_unlock(&lg->lg_wd_lock);
	pthread_join(lg->lg_wd_thread, NULL);
	lg->lg_wd_running = false;
	return lg->lg_wd_fired;
}

/* After the connection is gone (the callbacks use the lock until then). */
static void watchdog_free(struct login *lg)
{
	pthread_cond_destroy(&lg->lg_wd_cond);
	pthread_mutex_destroy(&lg->lg_wd_lock);
}

/* ---- the directory servers: failover, back-off, cancellation ---- */

#define MAX_URIS       16
#define DC_RETRY_MIN_S 5
#define DC_RETRY_MAX_S 300

/* What the process remembers of each directory server between logins: one that failed
 * is asked last until its back-off is over (5 s doubling to 5 min), and maintenance
 * probes it meanwhile (ldapdir_probe()). */
struct dc_health {
	char dh_uri[512];
	time_t dh_retry_at; /* CLOCK_MONOTONIC seconds; asked last until then */
	int dh_backoff;	    /* seconds; 0: answering */
	char dh_error[256]; /* why it last failed */
};

static struct dc_health dcs[MAX_URIS];
static struct login *under_way; /* logins in progress, for ldapdir_cancel() */
static bool cancelled;
static pthread_mutex_t dcs_lock = PTHREAD_MUTEX_INITIALIZER;

static time_t monotonic_s(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec;
}

/* The health slot of uri (dcs_lock held), made when missing; NULL when the table is full. */
static struct dc_health *dc_slot(const char *uri)
{
	struct dc_health *free_slot = NULL;

	for (size_t i = 0; i < MAX_URIS; i++) {
		if (!strcmp(dcs[i].dh_uri, uri))
			return &dcs[i];
		if (!dcs[i].dh_uri[0] && !free_slot)
			free_slot = &dcs[i];
	}
	if (free_slot)
		snprintf(free_slot->dh_uri, sizeof(free_slot->dh_uri), "%s", uri);
	return free_slot;
}

static void dc_failed(const char *uri, const char *why)
{
	struct dc_health *h;

	pthread_mutex_lock(&dcs_lock);
	h = dc_slot(uri);
	if (h) {
		bool first = h->dh_backoff == 0;

		h->dh_backoff = first ? DC_RETRY_MIN_S
				      : (h->dh_backoff * 2 > DC_RETRY_MAX_S ? DC_RETRY_MAX_S
									    : h->dh_backoff * 2);
		h->dh_retry_at = monotonic_s() + h->dh_backoff;
		snprintf(h->dh_error, sizeof(h->dh_error), "%s", why);
		if (first)
			log_warnx("ldap: directory server %s failed: %s; asked last for %d s", uri,
				  why, h->dh_backoff);
	}
	pthread_mutex_unlock(&dcs_lock);
	pool_drop(uri, 0); /* its idle connections are likely dead too */
}

static void dc_answered(const char *uri)
{
	struct dc_health *h;

	pthread_mutex_lock(&dcs_lock);
	h = dc_slot(uri);
	if (h && h->dh_backoff) {
		log_info("ldap: directory server %s answers again", uri);
		h->dh_backoff = 0;
		h->dh_retry_at = 0;
		h->dh_error[0] = '\0';
	}
	pthread_mutex_unlock(&dcs_lock);
}

/* The configured URIs into uris (pointers into buf), the ones answering first in their
 * order, then those in back-off, soonest due first. Returns how many. */
static size_t dc_order(const struct ldapdir_config *c, char *buf, size_t buflen, const char **uris)
{
	time_t due[MAX_URIS], now = monotonic_s();
	char *save = NULL;
	size_t n = 0;

	snprintf(buf, buflen, "%s", c->lc_uri ? c->lc_uri : "");
	pthread_mutex_lock(&dcs_lock);
	for (char *u = strtok_r(buf, " \t,", &save); u && n < MAX_URIS;
	     u = strtok_r(NULL, " \t,", &save)) {
		struct dc_health *h = dc_slot(u);

		uris[n] = u;
		due[n++] = h && h->dh_retry_at > now ? h->dh_retry_at : 0;
	}
	pthread_mutex_unlock(&dcs_lock);
	for (size_t i = 1; i < n; i++) /* stable: equal keys keep their order */
		for (size_t j = i; j > 0 && due[j - 1] > due[j]; j--) {
			time_t t = due[j];
			const char *u = uris[j];

			due[j] = due[j - 1], uris[j] = uris[j - 1];
			due[j - 1] = t, uris[j - 1] = u;
		}
	return n;
}

size_t ldapdir_servers(const struct ldapdir_config *c, struct ldapdir_server_health *out,
		       size_t max)
{
	char buf[1024], *save = NULL;
	time_t now = monotonic_s();
	size_t n = 0;

	snprintf(buf, sizeof(buf), "%s", c->lc_uri ? c->lc_uri : "");
	pthread_mutex_lock(&dcs_lock);
	for (char *u = strtok_r(buf, " \t,", &save); u && n < max;
	     u = strtok_r(NULL, " \t,", &save)) {
		struct dc_health *h = dc_slot(u);
		struct ldapdir_server_health *o = &out[n++];

		memset(o, 0, sizeof(*o));
		snprintf(o->sh_uri, sizeof(o->sh_uri), "%s", u);
		if (h && h->dh_backoff) {
			o->sh_failing = true;
			o->sh_retry_in = h->dh_retry_at > now ? (int)(h->dh_retry_at - now) : 0;
			snprintf(o->sh_error, sizeof(o->sh_error), "%s", h->dh_error);
		}
	}
	pthread_mutex_unlock(&dcs_lock);
	return n;
}

/* Whether an attempt's result says the server failed (rather than answering, even
 * "no"): it could not be reached, did not answer in time, its TLS failed, or it broke
 * off, before it said anything about the user. */
static bool dc_failure(const struct login *lg, int r)
{
	if (r == -ETIMEDOUT || r == -EHOSTDOWN || r == -EPROTO)
		return true;
	return r == -EIO && !lg->lg_hook_called;
}

static void under_way_add(struct login *lg)
{
	pthread_mutex_lock(&dcs_lock);
	lg->lg_next = under_way;
	under_way = lg;
	pthread_mutex_unlock(&dcs_lock);
}

static void under_way_remove(struct login *lg)
{
	pthread_mutex_lock(&dcs_lock);
	for (struct login **p = &under_way; *p; p = &(*p)->lg_next)
		if (*p == lg) {
			*p = lg->lg_next;
			break;
		}
	pthread_mutex_unlock(&dcs_lock);
}

void ldapdir_cancel(void)
{
	pthread_mutex_lock(&dcs_lock);
	cancelled = true;
	for (struct login *lg = under_way; lg; lg = lg->lg_next)
		watchdog_arm(lg, 0); /* fires at once: every wait of that login ends */
	pthread_mutex_unlock(&dcs_lock);
	pool_drop(NULL, 0);
}

static bool is_cancelled(void)
{
	bool c;

	pthread_mutex_lock(&dcs_lock);
	c = cancelled;
	pthread_mutex_unlock(&dcs_lock);
	return c;
}

static int on_connect(LDAP *ld, Sockbuf *sb, LDAPURLDesc *srv, struct sockaddr *addr,
		      struct ldap_conncb *ctx)
{
	struct ldapconn *conn = ctx->lc_arg;
	struct login *lg = conn->c_owner;
	ber_socket_t fd;

	(void)ld;
	(void)srv;
	(void)addr;
	if (!lg || ber_sockbuf_ctrl(sb, LBER_SB_OPT_GET_FD, &fd) != 1)
		return LDAP_SUCCESS;
	pthread_mutex_lock(&lg->lg_wd_lock);
	conn->c_fd = fd;
	conn->c_tcp_up = true;
	if (lg->lg_wd_fired) /* the deadline passed while connecting */
		shutdown(fd, SHUT_RDWR);
	pthread_mutex_unlock(&lg->lg_wd_lock);
	return LDAP_SUCCESS;
}

static void on_disconnect(LDAP *ld, Sockbuf *sb, struct ldap_conncb *ctx)
{
	struct ldapconn *conn = ctx->lc_arg;
	struct login *lg = conn->c_owner;

	(void)ld;
	(void)sb;
	if (lg)
		pthread_mutex_lock(&lg->lg_wd_lock);
	conn->c_fd = -1;
	if (lg)
		pthread_mutex_unlock(&lg->lg_wd_lock);
}

/* With tls_name, libldap is told to take any certificate (it would check the URI's
 * host) and the certificate is checked here before anything is sent: the chain against
 * ca_file (or the system's CAs) for a TLS server, and the name against tls_name. */
static int check_peer_certificate(struct login *lg, struct ldapconn *conn)
{
	const struct ldapdir_config *c = lg->lg_cfg;
	struct berval der = {0};
	const unsigned char *p;
	X509_STORE_CTX *ctx = NULL;
	X509_STORE *store = NULL;
	X509 *cert = NULL;
	int r = -EPROTO, ok;

	if (ldap_get_option(conn->c_ld, LDAP_OPT_X_TLS_PEERCERT, &der) != LDAP_OPT_SUCCESS ||
	    !der.bv_val) {
		set_err(lg, "TLS with %s: no server certificate to check", lg->lg_uri);
		return -EPROTO;
	}
	p = (const unsigned char *)der.bv_val;
	cert = d2i_X509(NULL, &p, (long)der.bv_len);
	store = X509_STORE_new();
	ctx = X509_STORE_CTX_new();
	if (!cert || !store || !ctx) {
		set_err(lg, "TLS with %s: cannot read the server certificate", lg->lg_uri);
		goto out;
	}
	ok = c->lc_ca_file && *c->lc_ca_file ? X509_STORE_load_locations(store, c->lc_ca_file, NULL)
					     : X509_STORE_set_default_paths(store);
	if (ok != 1 || X509_STORE_CTX_init(ctx, store, cert, NULL) != 1) {
		set_err(lg, "TLS with %s: cannot load the CA certificates", lg->lg_uri);
		goto out;
	}
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
	X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx), c->lc_tls_name, 0);
	if (X509_verify_cert(ctx) != 1) {
		set_err(lg,
			"TLS with %s: the server certificate is not trusted for the name '%s': %s",
			lg->lg_uri, c->lc_tls_name,
			X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		goto out;
	}
	r = 0;
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(cert);
	ber_memfree(der.bv_val);
	return r;
}

/* What a failed TLS connection is said to be: a TLS failure (certificate, name,
 * handshake) once TCP was up, never "cannot contact the server". */
static int tls_failed(struct login *lg, struct ldapconn *conn, int rc, const char *what)
{
	const char *name = lg->lg_cfg->lc_tls_name;

	if (!conn->c_tcp_up || lg->lg_wd_fired) {
		ldap_reason(lg, conn->c_ld, rc, what);
		return errno_of(rc);
	}
	set_err(lg,
		"TLS with %s failed: the handshake broke off or the server certificate was not "
		"accepted (not signed by a CA of ca_file, or not for the name '%s'%s)",
		lg->lg_uri, name && *name ? name : "in the URI",
		name && *name ? "" : "; tls_name sets another");
	return -EPROTO;
}

static bool uses_tls(const struct login *lg)
{
	return lg->lg_cfg->lc_start_tls || !strncasecmp(lg->lg_uri, "ldaps://", 8);
}

/* Connection, options and TLS on conn (c_ld unset). StartTLS failure ends the login:
 * no clear-text retry. */
static int connect_server(struct login *lg, struct ldapconn *conn)
{
	const struct ldapdir_config *c = lg->lg_cfg;
	struct timeval net = {.tv_sec = c->lc_network_timeout};
	struct timeval op = {.tv_sec = c->lc_timeout};
	bool own_check = c->lc_tls_name && *c->lc_tls_name;
	int version = LDAP_VERSION3,
	    demand = own_check ? LDAP_OPT_X_TLS_ALLOW : LDAP_OPT_X_TLS_DEMAND;
	int tls_min = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2, zero = 0, rc;
	LDAP *ld;

	rc = ldap_initialize(&conn->c_ld, lg->lg_uri);
	if (rc != LDAP_SUCCESS) {
		ldap_reason(lg, NULL, rc, "ldap_initialize"); /* a config problem, not the user's */
		return -EIO;
	}
	ld = conn->c_ld;
	conn->c_cb.lc_add = on_connect;
	conn->c_cb.lc_del = on_disconnect;
	conn->c_cb.lc_arg = conn;
	if (ldap_set_option(ld, LDAP_OPT_CONNECT_CB, &conn->c_cb) ||
	    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version) ||
	    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) ||
	    ldap_set_option(ld, LDAP_OPT_RESTART, LDAP_OPT_ON) ||
	    ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &net) ||
	    ldap_set_option(ld, LDAP_OPT_TIMEOUT, &op) ||
	    ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand) ||
	    ldap_set_option(ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &tls_min) ||
	    (c->lc_ca_file && *c->lc_ca_file &&
	     ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, c->lc_ca_file))) {
		set_err(lg, "cannot set LDAP connection options");
		return -EIO;
	}
	rc = ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
	if (rc != LDAP_SUCCESS) {
		ldap_reason(lg, ld, rc, "TLS setup (ca_file?)");
		return -EPROTO;
	}
	if (!c->lc_start_tls) {
		/* connect now (ldaps://: shake hands too), so the certificate is known to be
		 * right before any password is sent */
		rc = ldap_connect(ld);
		if (rc != LDAP_SUCCESS)
			return uses_tls(lg) ? tls_failed(lg, conn, rc, "connect")
					    : (ldap_reason(lg, ld, rc, "connect"), errno_of(rc));
		return own_check && uses_tls(lg) ? check_peer_certificate(lg, conn) : 0;
	}
	rc = ldap_start_tls_s(ld, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		ldap_reason(lg, ld, rc, "StartTLS failed, not continuing in clear text");
		return rc == LDAP_TIMEOUT ? -ETIMEDOUT : -EPROTO;
	}
	if (!ldap_tls_inplace(ld)) {
		set_err(lg, "StartTLS reported success without TLS in place");
		return -EPROTO;
	}
	return own_check ? check_peer_certificate(lg, conn) : 0;
}

/* A simple bind on conn; a failure of the client side (connection lost, no answer in
 * time) leaves conn broken. */
static int bind_simple(struct ldapconn *conn, const char *dn, const char *password)
{
	struct berval cred = {.bv_len = password ? strlen(password) : 0,
			      .bv_val = (char *)(password ? password : "")};
	int rc =
	    ldap_sasl_bind_s(conn->c_ld, dn ? dn : "", LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);

	if (rc < 0)
		conn->c_broken = true;
	return rc;
}

/* Binds conn as the service account, or anonymously when none is configured (a fresh
 * connection is anonymous already). */
static int bind_service(struct login *lg, struct ldapconn *conn)
{
	const struct ldapdir_config *c = lg->lg_cfg;
	bool anonymous = !c->lc_bind_dn || !*c->lc_bind_dn;
	int rc;

	if (anonymous)
		return 0;
	rc = bind_simple(conn, c->lc_bind_dn, c->lc_bind_password);
	if (rc == LDAP_SUCCESS)
		return 0;
	ldap_reason(lg, conn->c_ld, rc, "service account bind (bind_dn)");
	return rc == LDAP_INVALID_CREDENTIALS ? -EIO : errno_of(rc);
}

/* Runs a search; partial results after a size limit are kept (with a warning). Returns
 * 0 with *res set (ldap_msgfree() it), or a negative errno with err set. */
static int search(struct login *lg, const char *base, int scope, const char *filter, char **attrs,
		  int sizelimit, LDAPMessage **res)
{
	struct timeval tv = {.tv_sec = lg->lg_cfg->lc_timeout};
	int rc;

	*res = NULL;
	rc = ldap_search_ext_s(lg->lg_ld, base, scope, filter, attrs, 0, NULL, NULL, &tv, sizelimit,
			       res);
	if (rc < 0)
		lg->lg_conn[CONN_SEARCH]->c_broken = true;
	if (rc == LDAP_SUCCESS || rc == LDAP_SIZELIMIT_EXCEEDED)
		return 0;
	if (rc == LDAP_NO_SUCH_OBJECT && scope == LDAP_SCOPE_BASE)
		return 0; /* a dangling DN: an empty answer */
	ldap_msgfree(*res);
	*res = NULL;
	if (rc == LDAP_REFERRAL) {
		set_err(lg, "search under '%s' returned a referral; referrals are not followed",
			base);
		return -EIO;
	}
	ldap_reason(lg, lg->lg_ld, rc, "search");
	return errno_of(rc);
}

static char *text_of(const struct berval *bv, size_t max)
{
	return bv ? ldapvalue_text(bv->bv_val, bv->bv_len, max) : NULL;
}

/* The first acceptable value of attr, preferring one equal (ASCII case-insensitive) to
 * prefer when given. */
static char *value_of(LDAP *ld, LDAPMessage *entry, const char *attr, const char *prefer)
{
	struct berval **vals = ldap_get_values_len(ld, entry, attr);
	char *best = NULL;

	for (size_t i = 0; vals && vals[i]; i++) {
		char *v = text_of(vals[i], VALUE_MAX);

		if (!v)
			continue;
		if (prefer && !strcasecmp(v, prefer)) {
			free(best);
			best = v;
			break;
		}
		if (best)
			free(v);
		else
			best = v;
	}
	ldap_value_free_len(vals);
	return best;
}

/* Records group dn unless seen before. Returns 1 when new, 0 when seen, <0 on error. */
static int remember_dn(struct login *lg, const char *dn)
{
	char *norm = ldapvalue_normalise_dn(dn, DN_MAX);

	if (!norm)
		return strlen(dn) > DN_MAX ? 0 : -ENOMEM;
	for (size_t i = 0; i < lg->lg_ndns; i++)
		if (!strcasecmp(lg->lg_dns[i], norm)) {
			free(norm);
			return 0;
		}
	if (lg->lg_ndns == lg->lg_dns_cap) {
		size_t cap = lg->lg_dns_cap ? lg->lg_dns_cap * 2 : 16;
		char **dns = realloc(lg->lg_dns, cap * sizeof(*dns));

		if (!dns) {
			free(norm);
			return -ENOMEM;
		}
		lg->lg_dns = dns;
		lg->lg_dns_cap = cap;
	}
	lg->lg_dns[lg->lg_ndns++] = norm;
	return 1;
}

/* Adds a group known by its DN (and maybe its name) to the identity if new. */
static int add_group(struct login *lg, struct identity *id, const char *dn, char *name)
{
	int r;

	if (lg->lg_groups_full) {
		free(name);
		return 0;
	}
	r = remember_dn(lg, dn);
	if (r <= 0) {
		free(name);
		return r;
	}
	if (!name)
		name = ldapvalue_rdn(dn, VALUE_MAX);
	if (name) {
		r = identity_add_group(id, name);
		free(name);
		if (r == -E2BIG) {
			log_warnx("ldap: user=%s is in more than %d groups; the rest are ignored",
				  lg->lg_username, IDENTITY_MAX_GROUPS);
			lg->lg_groups_full = true;
			return 0;
		}
	}
	return r < 0 ? r : 0;
}

/* Groups from a search with filter: each entry's DN and name are added. */
static int groups_from_search(struct login *lg, struct identity *id, const char *filter)
{
	const struct ldapdir_config *c = lg->lg_cfg;
	char *attrs[] = {c->lc_group_name_attr, NULL};
	LDAPMessage *res, *e;
	int r;

	r = search(lg, c->lc_group_base_dn, LDAP_SCOPE_SUBTREE, filter, attrs, IDENTITY_MAX_GROUPS,
		   &res);
	if (r < 0)
		return r;
	for (e = ldap_first_entry(lg->lg_ld, res); e && r == 0; e = ldap_next_entry(lg->lg_ld, e)) {
		char *dn = ldap_get_dn(lg->lg_ld, e);

		if (!dn)
			continue;
		r = add_group(lg, id, dn, value_of(lg->lg_ld, e, c->lc_group_name_attr, NULL));
		ldap_memfree(dn);
	}
	ldap_msgfree(res);
	return r;
}

/* Adds the groups whose DNs are the memberOf values of entry dn (a base search). */
static int groups_from_memberof(struct login *lg, struct identity *id, const char *dn)
{
	char *attrs[] = {"memberOf", NULL};
	struct berval **vals;
	LDAPMessage *res, *e;
	int r;

	r = search(lg, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 1, &res);
	if (r < 0)
		return r;
	e = res ? ldap_first_entry(lg->lg_ld, res) : NULL;
	vals = e ? ldap_get_values_len(lg->lg_ld, e, "memberOf") : NULL;
	for (size_t i = 0; vals && vals[i] && r == 0; i++) {
		char *gdn = text_of(vals[i], DN_MAX);

		if (gdn)
			r = add_group(lg, id, gdn, NULL);
		free(gdn);
	}
	ldap_value_free_len(vals);
	ldap_msgfree(res);
	return r;
}

/* Follows nesting from the groups found so far: level by level, each level the groups
 * that contain one found at the level before; DNs seen before are not followed again. */
static int nested_groups(struct login *lg, struct identity *id)
{
	const struct ldapdir_config *c = lg->lg_cfg;
	const char *attr = ldapdir_member_attrs[c->lc_member_attr];
	size_t level_start = 0, level_end = lg->lg_ndns;
	int r = 0;

	for (int depth = 1; level_start < level_end && !lg->lg_groups_full; depth++) {
		if (depth > c->lc_max_nesting) {
			log_warnx("ldap: user=%s: groups nested deeper than max_nesting=%d are "
				  "ignored",
				  lg->lg_username, c->lc_max_nesting);
			break;
		}
		for (size_t i = level_start; i < level_end && r == 0;) {
			if (c->lc_group_mode == LDAPDIR_GROUPS_MEMBEROF) {
				r = groups_from_memberof(lg, id, lg->lg_dns[i++]);
				continue;
			}
			size_t n = level_end - i < BATCH ? level_end - i : BATCH;
			char *filter =
			    ldapfilter_membership(c->lc_group_filter, attr, false,
						  (const char *const *)&lg->lg_dns[i], n);

			if (!filter)
				return -ENOMEM;
			r = groups_from_search(lg, id, filter);
			free(filter);
			i += n;
		}
		if (r < 0)
			return r;
		level_start = level_end;
		level_end = lg->lg_ndns;
	}
	return 0;
}

/* AD: the user's primary group, and with in-chain nesting the groups that hold it. */
static int primary_group(struct login *lg, struct identity *id)
{
	const struct ldapdir_config *c = lg->lg_cfg;
	size_t before = lg->lg_ndns;
	char *filter;
	int r;

	if (!lg->lg_primary_group)
		return 0;
	filter = malloc(strlen(c->lc_group_filter) + strlen(lg->lg_primary_group) + 4);
	if (!filter)
		return -ENOMEM;
	sprintf(filter, "(&%s%s)", c->lc_group_filter, lg->lg_primary_group);
	r = groups_from_search(lg, id, filter);
	free(filter);
	if (r < 0 || lg->lg_ndns == before || !use_in_chain(c))
		return r; /* without in-chain, nested_groups() follows it like the others */
	filter = ldapdir_group_filter(c, lg->lg_dns[before], id->id_username);
	if (!filter)
		return -ENOMEM;
	r = groups_from_search(lg, id, filter);
	free(filter);
	return r;
}

static int collect_groups(struct login *lg, struct identity *id, char **memberof, size_t n)
{
	const struct ldapdir_config *c = lg->lg_cfg;
	char *filter;
	int r = 0;

	if (c->lc_group_mode == LDAPDIR_GROUPS_MEMBEROF && !use_in_chain(c)) {
		for (size_t i = 0; i < n && r == 0; i++)
			r = add_group(lg, id, memberof[i], NULL);
	} else {
		filter = ldapdir_group_filter(c, id->id_dn, id->id_username);
		if (!filter)
			return -ENOMEM;
		r = groups_from_search(lg, id, filter);
		free(filter);
		if (use_in_chain(c))
			return r < 0 ? r : primary_group(lg, id); /* the server followed nesting */
	}
	if (r == 0)
		r = primary_group(lg, id);
	if (r == 0 && c->lc_nested_groups && c->lc_member_attr != LDAPDIR_MEMBERUID)
		r = nested_groups(lg, id);
	if (r < 0 && !*lg->lg_err)
		set_err(lg, "group lookup: %s", strerror(-r));
	return r;
}

static void free_strings(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Active Directory keeps a user's primary group (Domain Users, usually) out of the
 * group's member list: only its RID is on the user, as primaryGroupID. The group's SID
 * is the user's with that RID as the last sub-authority. Returns a filter matching it,
 * "(objectSid=\\01\\05...)", or NULL when the entry has no usable pair. */
static char *primary_group_filter(LDAP *ld, LDAPMessage *e)
{
	struct berval **sid = ldap_get_values_len(ld, e, "objectSid");
	char *rid = value_of(ld, e, "primaryGroupID", NULL), *filter = NULL;

	if (sid && sid[0])
		filter = ldapvalue_primary_group_filter(sid[0]->bv_val, sid[0]->bv_len, rid);
	ldap_value_free_len(sid);
	free(rid);
	return filter;
}

/* Finds the user's entry. Returns 0 with a new identity (no groups yet) and the
 * memberOf DNs when group_mode = memberof. */
static int find_user(struct login *lg, struct identity **out, char ***memberof, size_t *nmemberof)
{
	const struct ldapdir_config *c = lg->lg_cfg;
	char *attrs[] = {c->lc_username_attr, c->lc_name_attr,	"cn",	    c->lc_mail_attr,
			 "objectSid",	      "primaryGroupID", "memberOf", NULL};
	char *filter, *dn = NULL, *username = NULL, *name = NULL, *mail = NULL;
	struct berval **vals = NULL;
	LDAPMessage *res, *e;
	size_t n;
	int r, count;

	if (c->lc_group_mode != LDAPDIR_GROUPS_MEMBEROF)
		attrs[6] = NULL;
	filter = ldapdir_user_filter(c, lg->lg_username);
	if (!filter)
		return -ENOMEM;
	r = search(lg, c->lc_base_dn, LDAP_SCOPE_SUBTREE, filter, attrs, 2, &res);
	free(filter);
	if (r < 0)
		return r;
	count = ldap_count_entries(lg->lg_ld, res);
	if (count == 0) {
		set_err(lg, "no such user under %s", c->lc_base_dn);
		r = -EACCES;
		goto out_free;
	}
	if (count > 1) {
		set_err(lg, "user_filter matches several entries");
		r = -ENOTUNIQ;
		goto out_free;
	}
	e = ldap_first_entry(lg->lg_ld, res);
	dn = ldap_get_dn(lg->lg_ld, e);
	if (!dn || !*dn || strlen(dn) > DN_MAX) {
		set_err(lg, "entry without a usable DN");
		r = -EIO;
		goto out_free;
	}
	username = value_of(lg->lg_ld, e, c->lc_username_attr, lg->lg_username);
	if (username && !identity_valid_username(username, strlen(username))) {
		free(username);
		username = NULL;
	}
	name = value_of(lg->lg_ld, e, c->lc_name_attr, NULL);
	if (!name)
		name = value_of(lg->lg_ld, e, "cn", NULL);
	mail = value_of(lg->lg_ld, e, c->lc_mail_attr, NULL);
	if (c->lc_server_type == LDAPDIR_AD)
		lg->lg_primary_group = primary_group_filter(lg->lg_ld, e);
	*out = identity_new(username ? username : lg->lg_username, dn, name, mail);
	if (!*out) {
		r = -ENOMEM;
		goto out_free;
	}
	if (c->lc_group_mode == LDAPDIR_GROUPS_MEMBEROF)
		vals = ldap_get_values_len(lg->lg_ld, e, "memberOf");
	n = vals ? (size_t)ldap_count_values_len(vals) : 0;
	if (n > IDENTITY_MAX_GROUPS)
		n = IDENTITY_MAX_GROUPS;
	*memberof = n ? calloc(n, sizeof(char *)) : NULL;
	if (n && !*memberof) {
		r = -ENOMEM;
		goto out_free;
	}
	for (size_t i = 0; i < n; i++)
		if (((*memberof)[*nmemberof] = text_of(vals[i], DN_MAX)))
			(*nmemberof)++;
out_free:
	ldap_value_free_len(vals);
	free(username);
	free(name);
	free(mail);
	ldap_memfree(dn);
	ldap_msgfree(res);
	return r;
}

/* Active Directory's reason for refusing a bind, from the "data" code of its
 * diagnostic message ("80090308: LdapErr: ..., data 773, v4563"): the account's state,
 * or 0 when the code says nothing more than a wrong password. */
static int ad_account_state(struct login *lg, LDAP *ld)
{
	static const struct {
		unsigned code;
		int state;
		const char *what;
	} states[] = {
	    {0x773, LDAPDIR_PASSWORD_CHANGE, "the password must be changed"},
	    {0x532, LDAPDIR_PASSWORD_CHANGE, "the password has expired"},
	    {0x533, LDAPDIR_ACCOUNT_DISABLED, "the account is disabled"},
	    {0x701, LDAPDIR_ACCOUNT_EXPIRED, "the account has expired"},
	    {0x775, LDAPDIR_ACCOUNT_LOCKED, "the account is locked out"},
	};
	char *diag = NULL;
	unsigned code;
	int state = 0;

	if (lg->lg_cfg->lc_server_type != LDAPDIR_AD)
		return 0;
	ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
	code = ldapvalue_ad_data_code(diag);
	if (code)
		for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
			if (states[i].code == code) {
				set_err(lg, "user bind refused: %s (Active Directory data %x)",
					states[i].what, code);
				state = states[i].state;
			}
	ldap_memfree(diag);
	return state;
}

/* The user's bind, on the login's bind connection. */
static int bind_user(struct login *lg, const char *dn, const char *password)
{
	struct ldapconn *conn = lg->lg_conn[CONN_BIND];
	int rc = bind_simple(conn, dn, password), state;

	switch (rc) {
	case LDAP_SUCCESS: return 0;
	case LDAP_INVALID_CREDENTIALS:
		state = ad_account_state(lg, conn->c_ld);
		if (state)
			return state;
		ldap_reason(lg, conn->c_ld, rc, "user bind refused");
		return -EACCES;
	case LDAP_INAPPROPRIATE_AUTH:
	case LDAP_UNWILLING_TO_PERFORM:
	case LDAP_CONSTRAINT_VIOLATION:
	case LDAP_INSUFFICIENT_ACCESS:
		ldap_reason(lg, conn->c_ld, rc, "user bind refused");
		return -EACCES;
	default: ldap_reason(lg, conn->c_ld, rc, "user bind"); return errno_of(rc);
	}
}

/* ---- the pool of idle connections ---- */

#define POOL_MAX      64  /* idle connections in all */
#define CONN_LIFETIME 900 /* seconds a connection is used at most */

static struct ldapconn *pool; /* idle, most recently used first */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

/* What a connection was made with: one made for other settings is not reused. */
static uint64_t conn_key(const struct ldapdir_config *c)
{
	const char *parts[] = {c->lc_bind_dn, c->lc_bind_password, c->lc_ca_file, c->lc_tls_name};
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		for (const char *p = parts[i] ? parts[i] : ""; *p; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ULL;
		h = (h ^ 0xff) * 1099511628211ULL;
	}
	h = (h ^ (uint64_t)c->lc_start_tls) * 1099511628211ULL;
	h = (h ^ (uint64_t)c->lc_timeout) * 1099511628211ULL;
	return (h ^ (uint64_t)c->lc_network_timeout) * 1099511628211ULL;
}

/* Closes conn, idle or detached from its login. */
static void conn_close(struct ldapconn *conn)
{
	if (!conn)
		return;
	conn->c_owner = NULL;
	if (conn->c_ld)
		ldap_unbind_ext_s(conn->c_ld, NULL, NULL);
	free(conn);
}

static void close_list(struct ldapconn *list)
{
	while (list) {
		struct ldapconn *next = list->c_next;

		conn_close(list);
		list = next;
	}
}

/* An idle connection to lg's server of the kind asked for, or NULL. Idle ones past
 * pool_idle are closed first. */
static struct ldapconn *pool_take(struct login *lg, enum conn_kind kind)
{
	uint64_t key = conn_key(lg->lg_cfg);
	struct ldapconn **p, *found = NULL;

	pool_drop(NULL, lg->lg_cfg->lc_pool_idle);
	pthread_mutex_lock(&pool_lock);
	for (p = &pool; *p; p = &(*p)->c_next) {
		struct ldapconn *c = *p;

		if (c->c_kind == kind && c->c_key == key && !strcmp(c->c_uri, lg->lg_uri)) {
			*p = c->c_next;
			found = c;
			break;
		}
	}
	pthread_mutex_unlock(&pool_lock);
	return found;
}

/* Keeps conn for the next login, unless it is not fit to be reused or the pool has
 * pool_size of its kind for that server (then the least recently used goes). */
static void pool_put(const struct ldapdir_config *cfg, struct ldapconn *conn)
{
	struct ldapconn **p, *evict = NULL;
	time_t now = monotonic_s();
	size_t same = 0, all = 0;

	conn->c_owner = NULL;
	if (conn->c_broken || !conn->c_ld || now - conn->c_born >= CONN_LIFETIME) {
		conn_close(conn);
		return;
	}
	conn->c_idle_since = now;
	conn->c_reused = false;
	if (is_cancelled()) {
		conn_close(conn);
		return;
	}
	pthread_mutex_lock(&pool_lock);
	conn->c_next = pool;
	pool = conn;
	for (p = &pool; *p;) {
		struct ldapconn *c = *p;
		bool alike = c->c_kind == conn->c_kind && c->c_key == conn->c_key &&
			     !strcmp(c->c_uri, conn->c_uri);

		same += alike;
		all++;
		if ((alike && same > (size_t)cfg->lc_pool_size) || all > POOL_MAX) {
			*p = c->c_next;
			c->c_next = evict;
			evict = c;
			continue;
		}
		p = &c->c_next;
	}
	pthread_mutex_unlock(&pool_lock);
	close_list(evict);
}

/* Closes the idle connections to uri (NULL: to any server) idle for idle_at_least
 * seconds or longer (0: all). */
static void pool_drop(const char *uri, int idle_at_least)
{
	struct ldapconn **p = &pool, *drop = NULL;
	time_t now = monotonic_s();

	pthread_mutex_lock(&pool_lock);
	while (*p) {
		struct ldapconn *c = *p;

		if ((!uri || !strcmp(c->c_uri, uri)) && now - c->c_idle_since >= idle_at_least) {
			*p = c->c_next;
			c->c_next = drop;
			drop = c;
		} else {
			p = &c->c_next;
		}
	}
	pthread_mutex_unlock(&pool_lock);
	close_list(drop);
}

/* Hands conn to lg as its connection of conn's kind, under lg's watchdog. */
static void conn_attach(struct login *lg, struct ldapconn *conn)
{
	pthread_mutex_lock(&lg->lg_wd_lock);
	conn->c_owner = lg;
	lg->lg_conn[conn->c_kind] = conn;
	if (conn->c_kind == CONN_SEARCH)
		lg->lg_ld = conn->c_ld;
	if (lg->lg_wd_fired && conn->c_fd >= 0)
		shutdown(conn->c_fd, SHUT_RDWR);
	pthread_mutex_unlock(&lg->lg_wd_lock);
}

/* Takes lg's connection of kind away from it: back to the pool when keep, closed
 * otherwise or when the watchdog fired (it may have shut the socket). */
static void conn_release(struct login *lg, enum conn_kind kind, bool keep)
{
	struct ldapconn *conn;

	pthread_mutex_lock(&lg->lg_wd_lock);
	conn = lg->lg_conn[kind];
	lg->lg_conn[kind] = NULL;
	if (kind == CONN_SEARCH)
		lg->lg_ld = NULL;
	if (conn)
		conn->c_owner = NULL;
	keep = keep && !lg->lg_wd_fired;
	pthread_mutex_unlock(&lg->lg_wd_lock);
	if (!conn)
		return;
	if (keep)
		pool_put(lg->lg_cfg, conn);
	else
		conn_close(conn);
}

/* Gives lg a connection of kind to its server: an idle one from the pool unless fresh,
 * else a new one (connected, TLS checked, and for searches bound as the service
 * account), each step under its own deadline. */
static int conn_open(struct login *lg, enum conn_kind kind, bool fresh)
{
	const struct ldapdir_config *cfg = lg->lg_cfg;
	struct ldapconn *conn = fresh ? NULL : pool_take(lg, kind);
	int r;

	if (conn) {
		conn->c_reused = true;
		conn_attach(lg, conn);
		return 0;
	}
	conn = calloc(1, sizeof(*conn));
	if (!conn) {
		set_err(lg, "out of memory");
		return -ENOMEM;
	}
	conn->c_fd = -1;
	conn->c_kind = kind;
	conn->c_key = conn_key(cfg);
	conn->c_born = monotonic_s();
	snprintf(conn->c_uri, sizeof(conn->c_uri), "%s", lg->lg_uri);
	conn_attach(lg, conn);
	watchdog_arm(lg, cfg->lc_network_timeout + cfg->lc_timeout);
	r = connect_server(lg, conn);
	if (kind == CONN_SEARCH)
		lg->lg_ld = conn->c_ld;
	if (r == 0 && kind == CONN_SEARCH) {
		watchdog_arm(lg, cfg->lc_network_timeout + cfg->lc_timeout);
		r = bind_service(lg, conn);
	}
	if (r < 0)
		conn->c_broken = true;
	return r;
}

/* Whether r, a failure on lg's connection of kind, is that of an idle connection the
 * server had closed meanwhile (an idle timeout, a restart): then the step is tried
 * once more on a new connection, and the server has not failed. */
static bool went_stale(struct login *lg, enum conn_kind kind, int r)
{
	struct ldapconn *conn = lg->lg_conn[kind];

	if (r >= 0 || !conn || !conn->c_reused || !conn->c_broken || lg->lg_wd_fired)
		return false;
	log_debug("ldap: an idle connection to %s was closed by the server; connecting again",
		  lg->lg_uri);
	conn_release(lg, kind, false);
	err_clear(lg);
	return true;
}

/* One attempt on lg's server: its watchdog armed for the first step, and known to
 * ldapdir_cancel(). */
static int attempt_begin(struct login *lg)
{
	const struct ldapdir_config *cfg = lg->lg_cfg;
	int r = watchdog_start(lg, cfg->lc_network_timeout + cfg->lc_timeout);

	if (r < 0) {
		set_err(lg, "cannot start the LDAP watchdog thread");
		return r;
	}
	under_way_add(lg);
	return 0;
}

/* Ends the attempt begun by attempt_begin() with result r: a failure after the watchdog
 * fired is a timeout. The connections go back to the pool when the server answered
 * everything asked on them. Returns the result. */
static int attempt_end(struct login *lg, int r)
{
	under_way_remove(lg);
	if (watchdog_stop(lg) && r < 0) {
		set_err(lg, "no complete answer from the LDAP server in time");
		r = -ETIMEDOUT;
	}
	for (int k = 0; k < CONN_KINDS; k++)
		conn_release(lg, k, !dc_failure(lg, r));
	watchdog_free(lg);
	return r;
}

/* The user's bind on a bind connection of lg's, a new one if the pooled one went stale. */
static int user_bind(struct login *lg, const char *dn, const char *password)
{
	const struct ldapdir_config *cfg = lg->lg_cfg;
	int r;

	for (bool fresh = false;; fresh = true) {
		r = conn_open(lg, CONN_BIND, fresh);
		if (r < 0)
			return r;
		watchdog_arm(lg, cfg->lc_network_timeout + cfg->lc_timeout);
		r = bind_user(lg, dn, password);
		if (!went_stale(lg, CONN_BIND, r))
			return r;
	}
}

/* A password as Active Directory's unicodePwd takes it: in double quotes, UTF-16LE.
 * Returns 0 with a new buffer in out->bv_val, or -EINVAL (not UTF-8) / -ENOMEM. */
static int unicode_pwd(const char *utf8, struct berval *out)
{
	size_t n = strlen(utf8), o = 0;
	const unsigned char *p = (const unsigned char *)utf8;
	unsigned char *buf = malloc(4 * n + 8);

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i <= n + 1; i++) {
		uint32_t c;
		int more;

		if (i == 0 || i == n + 1) { /* the quotes */
			c = '"';
			more = 0;
		} else if (p[i - 1] < 0x80) {
			c = p[i - 1], more = 0;
		} else if ((p[i - 1] & 0xe0) == 0xc0) {
			c = p[i - 1] & 0x1f, more = 1;
		} else if ((p[i - 1] & 0xf0) == 0xe0) {
			c = p[i - 1] & 0x0f, more = 2;
		} else if ((p[i - 1] & 0xf8) == 0xf0) {
			c = p[i - 1] & 0x07, more = 3;
		} else {
			goto bad;
		}
		for (; more; more--) {
			if (i >= n || (p[i] & 0xc0) != 0x80)
				goto bad;
			c = c << 6 | (p[i++] & 0x3f);
		}
		if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			goto bad;
		if (c >= 0x10000) { /* a surrogate pair */
			uint32_t v = c - 0x10000, hi = 0xd800 | v >> 10, lo = 0xdc00 | (v & 0x3ff);

			buf[o++] = hi & 0xff, buf[o++] = hi >> 8;
			buf[o++] = lo & 0xff, buf[o++] = lo >> 8;
		} else {
			buf[o++] = c & 0xff, buf[o++] = c >> 8;
		}
	}
	out->bv_val = (char *)buf;
	out->bv_len = o;
	return 0;
bad:
	free(buf);
	return -EINVAL;
}

/* What a refused password change means, from the result code and (AD) the error code
 * leading the diagnostic message. */
static int change_refused(struct login *lg, LDAP *ld, int rc)
{
	char *diag = NULL;
	unsigned code;

	int state = ad_account_state(lg, ld);

	if (state && state != LDAPDIR_PASSWORD_CHANGE)
		return state; /* locked, disabled, expired: as a login says it */
	ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
	code = ldapvalue_ad_error_code(diag);
	ldap_memfree(diag);
	if (rc == LDAP_INVALID_CREDENTIALS || code == 0x56) { /* ERROR_INVALID_PASSWORD */
		ldap_reason(lg, ld, rc, "password change refused: the old password is wrong");
		return -EACCES;
	}
	if (rc == LDAP_CONSTRAINT_VIOLATION || code == 0x52d) { /* ERROR_PASSWORD_RESTRICTION */
		ldap_reason(lg, ld, rc, "password change refused by the password policy");
		return LDAPDIR_PASSWORD_REJECTED;
	}
	if (rc == LDAP_INSUFFICIENT_ACCESS || rc == LDAP_UNWILLING_TO_PERFORM ||
	    rc == LDAP_STRONG_AUTH_REQUIRED || rc == LDAP_CONFIDENTIALITY_REQUIRED) {
		ldap_reason(lg, ld, rc, "password change not allowed");
		return -EPERM;
	}
	ldap_reason(lg, ld, rc, "password change");
	return errno_of(rc);
}

/* Changes the user's password from old to lg_new_password. Active Directory: its own
 * change (the old value deleted, the new one added, in one modify of unicodePwd), on
 * the search connection: the directory checks the old password and its policy, and
 * anyone who knows the old password may make it, so the user need not be able to bind
 * (as one whose password must be changed cannot). Others: RFC 3062's password modify
 * as the user, after their bind. */
static int change_password(struct login *lg, const char *dn, const char *old)
{
	const char *new = lg->lg_new_password;
	LDAP *ld;
	int r, rc;

	watchdog_arm(lg, WATCHDOG_OPERATIONS * lg->lg_cfg->lc_timeout);
	if (lg->lg_cfg->lc_server_type == LDAPDIR_AD) {
		struct berval oldv = {0}, newv = {0}, *oldvals[] = {&oldv, NULL},
			      *newvals[] = {&newv, NULL};
		LDAPMod del = {.mod_op = LDAP_MOD_DELETE | LDAP_MOD_BVALUES,
			       .mod_type = "unicodePwd",
			       .mod_bvalues = oldvals};
		LDAPMod add = {.mod_op = LDAP_MOD_ADD | LDAP_MOD_BVALUES,
			       .mod_type = "unicodePwd",
			       .mod_bvalues = newvals};
		LDAPMod *mods[] = {&del, &add, NULL};

		if (!uses_tls(lg)) {
			set_err(lg, "password changes need TLS (ldaps:// or start_tls)");
			return -EPERM;
		}
		r = unicode_pwd(old, &oldv);
		if (r == 0)
			r = unicode_pwd(new, &newv);
		if (r == 0) {
			ld = lg->lg_ld;
			rc = ldap_modify_ext_s(ld, dn, mods, NULL, NULL);
			if (rc < 0)
				lg->lg_conn[CONN_SEARCH]->c_broken = true;
			r = rc == LDAP_SUCCESS ? 0 : change_refused(lg, ld, rc);
		} else {
			set_err(lg, "a password is not valid UTF-8");
		}
		if (oldv.bv_val)
			OPENSSL_cleanse(oldv.bv_val, oldv.bv_len);
		if (newv.bv_val)
			OPENSSL_cleanse(newv.bv_val, newv.bv_len);
		free(oldv.bv_val);
		free(newv.bv_val);
		return r;
	}
	r = user_bind(lg, dn, old);
	if (r < 0)
		return r;
	{
		struct berval id = {.bv_val = (char *)dn, .bv_len = strlen(dn)};
		struct berval oldv = {.bv_val = (char *)old, .bv_len = strlen(old)};
		struct berval newv = {.bv_val = (char *)new, .bv_len = strlen(new)};
		struct berval generated = {0};

		ld = lg->lg_conn[CONN_BIND]->c_ld;
		rc = ldap_passwd_s(ld, &id, &oldv, &newv, &generated, NULL, NULL);
		ber_memfree(generated.bv_val);
		if (rc < 0)
			lg->lg_conn[CONN_BIND]->c_broken = true;
		return rc == LDAP_SUCCESS ? 0 : change_refused(lg, ld, rc);
	}
}

/* The login proper, once the request is known to be acceptable; with no password, the
 * lookup: the user's entry and groups as the service account sees them, no user bind. */
static int run_login(struct login *lg, const char *password, struct identity **out)
{
	const struct ldapdir_config *cfg = lg->lg_cfg;
	struct identity *id = NULL;
	char **memberof = NULL;
	size_t nmemberof = 0;
	int r;

	/* Each of the first steps may have to connect, shake hands and wait for one
	 * answer: network_timeout + timeout each. The rest of the login gets a few
	 * timeouts. */
	r = attempt_begin(lg);
	if (r < 0)
		return r;
	for (bool fresh = false;; fresh = true) {
		r = conn_open(lg, CONN_SEARCH, fresh);
		if (r < 0)
			goto out_end;
		watchdog_arm(lg, cfg->lc_network_timeout + cfg->lc_timeout);
		r = find_user(lg, &id, &memberof, &nmemberof);
		if (!went_stale(lg, CONN_SEARCH, r))
			break;
	}
	if (r < 0)
		goto out_end;
	/* The caller's say on this account (throttled?) before its password is sent. */
	lg->lg_hook_called = true;
	if (lg->lg_hook && (r = lg->lg_hook->lh_found(lg->lg_hook->lh_ctx, id->id_username)) < 0) {
		set_err(lg, "refused after the user was found");
		goto out_end;
	}
	if (lg->lg_new_password) {
		r = change_password(lg, id->id_dn, password);
		goto out_end;
	}
	r = password ? user_bind(lg, id->id_dn, password) : 0;
	if (r < 0)
		goto out_end;
	watchdog_arm(lg, WATCHDOG_OPERATIONS * cfg->lc_timeout);
	r = collect_groups(lg, id, memberof, nmemberof);
	if (r < 0)
		goto out_end;
	log_debug("ldap: user=%s dn=%s groups=%zu", id->id_username, id->id_dn, id->id_ngroups);
	*out = id;
	id = NULL;
out_end:
	r = attempt_end(lg, r);
	free_strings(lg->lg_dns, lg->lg_ndns);
	free(lg->lg_primary_group);
	free_strings(memberof, nmemberof);
	identity_free(id);
	return r;
}

/* Whether lg's server answers: a new connection (TLS checked) and a bind as the service
 * account (or an anonymous one), under the same watchdog as a login; the connection
 * then serves logins. 0 or a negative errno, err set. */
static int probe_server(struct login *lg)
{
	int r = attempt_begin(lg);

	if (r < 0)
		return r;
	r = conn_open(lg, CONN_SEARCH, true);
	if (r == 0 && (!lg->lg_cfg->lc_bind_dn || !*lg->lg_cfg->lc_bind_dn)) {
		int rc = bind_simple(lg->lg_conn[CONN_SEARCH], NULL, NULL);

		if (rc != LDAP_SUCCESS) {
			ldap_reason(lg, lg->lg_ld, rc, "anonymous bind");
			r = errno_of(rc);
		}
	}
	return attempt_end(lg, r);
}

/* libldap writes to its socket with write(): on a connection the server (or the
 * watchdog) closed, that raises SIGPIPE, which would kill a process that has not
 * ignored it. The login runs with SIGPIPE blocked in its thread and discards one it
 * raised itself. */
static void sigpipe_block(sigset_t *old, bool *was_pending)
{
	sigset_t pipe_set, pending;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigpending(&pending);
	*was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, old);
}

static void sigpipe_restore(const sigset_t *old, bool was_pending)
{
	struct timespec zero = {0, 0};
	sigset_t pipe_set, pending;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigpending(&pending);
	if (!was_pending && sigismember(&pending, SIGPIPE))
		while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
			;
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

int ldapdir_login(const struct ldapdir_config *cfg, const char *username, const char *password,
		  struct identity **out, char *err, size_t errlen)
{
	return ldapdir_login_hooked(cfg, username, password, NULL, out, err, errlen);
}

/* A login (password) or a lookup (no password) from start to end: each directory
 * server in turn (dc_order()) until one answers. */
static int run(const struct ldapdir_config *cfg, const char *username, const char *password,
	       const char *new_password, const struct ldapdir_hook *hook, struct identity **out,
	       char *err, size_t errlen)
{
	char list[1024], last[512] = "";
	const char *uris[MAX_URIS];
	size_t n, failed = 0;
	bool was_pending;
	sigset_t old;
	int r = -EHOSTDOWN;

	*out = NULL;
	err[0] = '\0';
	if (!identity_valid_username(username, strlen(username))) {
		snprintf(err, errlen, "invalid username");
		return -EINVAL;
	}
	n = dc_order(cfg, list, sizeof(list), uris);
	sigpipe_block(&old, &was_pending);
	for (size_t i = 0; i < n; i++) {
		struct login lg = {.lg_cfg = cfg,
				   .lg_uri = uris[i],
				   .lg_username = username,
				   .lg_hook = hook,
				   .lg_new_password = new_password,
				   .lg_err = err,
				   .lg_errlen = errlen};

		if (is_cancelled()) {
			r = -ECANCELED;
			snprintf(err, errlen, "the broker is stopping");
			break;
		}
		err[0] = '\0';
		r = run_login(&lg, password, out);
		if (!dc_failure(&lg, r)) {
			dc_answered(uris[i]);
			break;
		}
		if (is_cancelled()) {
			r = -ECANCELED;
			snprintf(err, errlen, "the broker is stopping");
			break;
		}
		dc_failed(uris[i], err);
		snprintf(last, sizeof(last), "%s: %s", uris[i], err);
		failed++;
	}
	sigpipe_restore(&old, was_pending);
	if (failed == n && n > 0) /* no server answered: say so, with the last one's reason */
		snprintf(err, errlen, "%s%s", last,
			 n > 1 ? "; every other directory server failed too" : "");
	return r;
}

int ldapdir_probe(const struct ldapdir_config *cfg)
{
	char list[1024], err[512];
	const char *uris[MAX_URIS];
	size_t n = dc_order(cfg, list, sizeof(list), uris);
	time_t now = monotonic_s();
	int probed = 0;
	bool was_pending;
	sigset_t old;

	sigpipe_block(&old, &was_pending);
	pool_drop(NULL, cfg->lc_pool_idle); /* idle too long, even with no login since */
	for (size_t i = 0; i < n; i++) {
		struct login lg = {
		    .lg_cfg = cfg, .lg_uri = uris[i], .lg_err = err, .lg_errlen = sizeof(err)};
		bool due = false;
		int r;

		pthread_mutex_lock(&dcs_lock);
		for (size_t j = 0; j < MAX_URIS; j++)
			if (!strcmp(dcs[j].dh_uri, uris[i]))
				due = dcs[j].dh_backoff && dcs[j].dh_retry_at <= now;
		pthread_mutex_unlock(&dcs_lock);
		if (!due || is_cancelled())
			continue;
		probed++;
		r = probe_server(&lg);
		if (r == 0)
			dc_answered(uris[i]);
		else
			dc_failed(uris[i], err);
	}
	sigpipe_restore(&old, was_pending);
	return probed;
}

int ldapdir_login_hooked(const struct ldapdir_config *cfg, const char *username,
			 const char *password, const struct ldapdir_hook *hook,
			 struct identity **out, char *err, size_t errlen)
{
	if (!password || !*password) {
		/* RFC 4513 5.1.2: a DN with an empty password is an unauthenticated bind,
		 * which many servers answer with success. Never send one. */
		*out = NULL;
		snprintf(err, errlen, "empty password refused");
		return -EACCES;
	}
	return run(cfg, username, password, NULL, hook, out, err, errlen);
}

int ldapdir_lookup(const struct ldapdir_config *cfg, const char *username, struct identity **out,
		   char *err, size_t errlen)
{
	int r = run(cfg, username, NULL, NULL, NULL, out, err, errlen);

	return r == -EACCES ? -ENOENT : r; /* no bind was tried: not found */
}

int ldapdir_change_password(const struct ldapdir_config *cfg, const char *username,
			    const char *old_password, const char *new_password,
			    const struct ldapdir_hook *hook, char *err, size_t errlen)
{
	struct identity *id = NULL;
	int r;

	if (!old_password || !*old_password || !new_password || !*new_password) {
		snprintf(err, errlen, "empty password refused");
		return !old_password || !*old_password ? -EACCES : LDAPDIR_PASSWORD_REJECTED;
	}
	r = run(cfg, username, old_password, new_password, hook, &id, err, errlen);
	identity_free(id);
	return r;
}
