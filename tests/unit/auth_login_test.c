/* Unit tests for auth/auth and auth/localdir: the users file (format, errors with
 * lines), and the login path with the local backend: right, wrong and empty passwords,
 * unknown users, hostile usernames, throttling, a store-backed user source, the bound
 * on password checks at once. Waits have deadlines; alarm() ends a run that hangs. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "auth/localdir.h"
#include "auth/password.h"
#include "lib/log.h"

static const struct password_params cheap = {.pp_ln = 4, .pp_r = 8, .pp_p = 1};
static char alice_hash[PASSWORD_HASH_MAX], bob_hash[PASSWORD_HASH_MAX];

static const struct config_option options[] = {
    AUTH_CONFIG_OPTIONS(0),
    CONFIG_END,
};

static int setup(void **state)
{
	(void)state;
	log_init("auth_login_test", LOG_LEVEL_ERR, false);
	if (password_hash_with("alice-pw", &cheap, alice_hash, sizeof(alice_hash)) ||
	    password_hash_with("b*b)(pw\\", &cheap, bob_hash, sizeof(bob_hash)))
		return -1;
	return 0;
}

static char *users_text(void)
{
	char *text = NULL;

	if (asprintf(&text,
		     "; local users\n"
		     "[alice]\n"
		     "password = %s\n"
		     "display_name = Alice Example\n"
		     "mail = alice@example.com\n"
		     "groups = engineering, staff\n"
		     "\n"
		     "[bob]\n"
		     "password = %s\n"
		     "groups =\n",
		     alice_hash, bob_hash) < 0)
		return NULL;
	return text;
}

static void test_localdir(void **state)
{
	char err[256] = "", *text = users_text(), *hash;
	struct identity *id;
	struct localdir *dir;

	(void)state;
	dir = localdir_parse("users.ini", text, err, sizeof(err));
	assert_non_null(dir);
	assert_int_equal(localdir_count(dir), 2);
	assert_int_equal(localdir_lookup(dir, "ALICE", &id, &hash), 0);
	assert_string_equal(id->id_username, "alice");
	assert_string_equal(id->id_display_name, "Alice Example");
	assert_string_equal(id->id_mail, "alice@example.com");
	assert_int_equal(id->id_ngroups, 2);
	assert_string_equal(id->id_groups[0], "engineering");
	assert_string_equal(id->id_groups[1], "staff");
	assert_string_equal(hash, alice_hash);
	free(hash);
	identity_free(id);
	assert_int_equal(localdir_lookup(dir, "bob", &id, &hash), 0);
	assert_int_equal(id->id_ngroups, 0);
	assert_string_equal(id->id_display_name, "bob");
	free(hash);
	identity_free(id);
	assert_int_equal(localdir_lookup(dir, "carol", &id, &hash), -ENOENT);
	assert_null(id);
	/* listed in file order, without their hashes (the admin users list) */
	assert_int_equal(localdir_user_at(dir, 0, &id), 0);
	assert_string_equal(id->id_username, "alice");
	assert_int_equal(id->id_ngroups, 2);
	identity_free(id);
	assert_int_equal(localdir_user_at(dir, 1, &id), 0);
	assert_string_equal(id->id_username, "bob");
	identity_free(id);
	assert_int_equal(localdir_user_at(dir, 2, &id), -ENOENT);
	assert_null(id);
	localdir_free(dir);
	free(text);
}

static void expect_file_error(const char *text, const char *message)
{
	char err[256] = "";

	assert_null(localdir_parse("users.ini", text, err, sizeof(err)));
	if (strcmp(err, message))
		fail_msg("expected '%s', got '%s'", message, err);
}

static void test_localdir_errors(void **state)
{
	char text[512];

	(void)state;
	expect_file_error(
	    "[alice]\npassword = hunter2\n",
	    "users.ini:2: [alice] password: not a hash from vdi-passwd ($scrypt$...)");
	expect_file_error("[alice]\ndisplay_name = A\n",
			  "users.ini:1: [alice] password is required");
	snprintf(text, sizeof(text), "[alice]\npassword = %s\nshell = /bin/sh\n", alice_hash);
	expect_file_error(text, "users.ini:3: unknown option 'shell' in [alice]");
	snprintf(text, sizeof(text), "[alice]\npassword = %s\n[Alice]\npassword = %s\n", alice_hash,
		 alice_hash);
	expect_file_error(text, "users.ini:3: user 'Alice' is already defined as 'alice'");
	snprintf(text, sizeof(text), "[alice]\npassword = %s\npassword = %s\n", alice_hash,
		 alice_hash);
	expect_file_error(text, "users.ini:3: [alice] password is set twice");
	snprintf(text, sizeof(text), "[ alice]\npassword = %s\n", alice_hash);
	expect_file_error(text, "users.ini:1: [ alice] is not a valid username");
	snprintf(text, sizeof(text), "[a\x01lice]\npassword = %s\n", alice_hash);
	expect_file_error(text, "users.ini:1: [a\x01lice] is not a valid username");
	snprintf(text, sizeof(text), "[alice]\npassword = %s\ngroups = a,,b\n", alice_hash);
	expect_file_error(text, "users.ini:3: [alice] groups: empty or malformed group name");
	expect_file_error("password = x\n", "users.ini:1: 'password' outside a [username] section");
	expect_file_error("[alice\n",
			  "users.ini:1: syntax error (expected [username] or name = value)");
}

struct fixture {
	struct auth_config f_cfg;
	struct auth *f_auth;
	char f_path[64];
};

static struct auth *open_local(struct fixture *f, const char *extra)
{
	char err[256] = "", *text = users_text(), conf[512];
	int fd;

	memset(f, 0, sizeof(*f));
	snprintf(f->f_path, sizeof(f->f_path), "/tmp/vdi-auth-test-XXXXXX");
	fd = mkstemp(f->f_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	free(text);
	snprintf(conf, sizeof(conf), "[auth]\nbackend = local\nusers_file = %s\n%s", f->f_path,
		 extra);
	assert_int_equal(config_load_string("t.conf", conf, options, &f->f_cfg, err, sizeof(err)),
			 0);
	assert_int_equal(auth_config_finish(&f->f_cfg, "t.conf", err, sizeof(err)), 0);
	f->f_auth = auth_open(&f->f_cfg, NULL, err, sizeof(err));
	assert_non_null(f->f_auth);
	return f->f_auth;
}

static void close_local(struct fixture *f)
{
	auth_close(f->f_auth);
	config_free(options, &f->f_cfg);
	unlink(f->f_path);
}

static int login(struct auth *a, const char *user, size_t ulen, const char *pw, size_t plen,
		 const char *addr, int64_t now, struct identity **id, int *retry)
{
	struct auth_request req = {
	    .ar_username = user,
	    .ar_username_len = ulen,
	    .ar_password = pw,
	    .ar_password_len = plen,
	    .ar_client_addr = addr,
	    .ar_now = now,
	};
	char err[256];

	return auth_login(a, &req, id, retry, err, sizeof(err));
}

#define LOGIN(a, u, p, addr, now)                                                                  \
	login((a), (u), strlen(u), (p), strlen(p), (addr), (now), &id, &retry)

static void test_login_local(void **state)
{
	struct identity *id = NULL;
	struct fixture f;
	struct auth *a = open_local(&f, "");
	int retry;

	(void)state;
	assert_int_equal(LOGIN(a, "alice", "alice-pw", "10.0.0.1", 100), 0);
	assert_string_equal(id->id_username, "alice");
	assert_true(identity_has_group(id, "staff"));
	identity_free(id);
	/* case-insensitive name, canonical spelling returned */
	assert_int_equal(LOGIN(a, "Alice", "alice-pw", "10.0.0.1", 100), 0);
	assert_string_equal(id->id_username, "alice");
	identity_free(id);
	assert_int_equal(LOGIN(a, "bob", "b*b)(pw\\", "10.0.0.1", 100), 0);
	identity_free(id);
	assert_int_equal(LOGIN(a, "alice", "alice-PW", "10.0.0.1", 100), -EACCES);
	assert_null(id);
	assert_int_equal(LOGIN(a, "alice", "", "10.0.0.1", 100), -EACCES);
	assert_int_equal(LOGIN(a, "mallory", "alice-pw", "10.0.0.2", 100), -EACCES);
	assert_int_equal(LOGIN(a, "*", "alice-pw", "10.0.0.2", 100), -EACCES);
	/* a NUL inside the name or password is refused, not cut short to "alice" */
	assert_int_equal(login(a, "alice\0x", 7, "alice-pw", 8, "10.0.0.3", 100, &id, &retry),
			 -EINVAL);
	assert_int_equal(login(a, "alice", 5, "alice-pw\0x", 10, "10.0.0.3", 100, &id, &retry),
			 -EINVAL);
	assert_int_equal(LOGIN(a, "ali\nce", "alice-pw", "10.0.0.3", 100), -EINVAL);
	assert_null(id);
	close_local(&f);
}

static void test_login_throttled(void **state)
{
	struct identity *id = NULL;
	struct fixture f;
	struct auth *a = open_local(&f, "max_user_failures = 3\nmax_address_failures = 5\n"
					"lockout = 10s\nlockout_max = 1m\n");
	int retry = -1;

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(LOGIN(a, "alice", "guess", "10.0.0.1", 100 + i), -EACCES);
	/* now even the right password waits there: the answer does not reveal it */
	assert_int_equal(LOGIN(a, "alice", "alice-pw", "10.0.0.1", 103), -EAGAIN);
	assert_int_equal(retry, 9);
	assert_null(id);
	/* ...but the guesses from one address do not lock alice out elsewhere */
	assert_int_equal(LOGIN(a, "alice", "alice-pw", "10.0.0.9", 103), 0);
	assert_int_equal(retry, 0);
	identity_free(id);
	assert_int_equal(LOGIN(a, "alice", "guess", "10.0.0.1", 104), -EAGAIN);
	assert_int_equal(LOGIN(a, "alice", "alice-pw", "10.0.0.1", 112), 0);
	assert_int_equal(retry, 0);
	identity_free(id);
	/* the success reset the account */
	assert_int_equal(LOGIN(a, "alice", "guess", "10.0.0.9", 113), -EACCES);
	assert_int_equal(LOGIN(a, "alice", "alice-pw", "10.0.0.9", 113), 0);
	identity_free(id);
	/* one address guessing many names is stopped too, invalid names included */
	assert_int_equal(LOGIN(a, "u1", "x", "192.0.2.1", 200), -EACCES);
	assert_int_equal(LOGIN(a, "u2", "x", "192.0.2.1", 200), -EACCES);
	assert_int_equal(LOGIN(a, "u\t3", "x", "192.0.2.1", 200), -EINVAL);
	assert_int_equal(LOGIN(a, "u4", "", "192.0.2.1", 200), -EACCES);
	assert_int_equal(LOGIN(a, "u5", "x", "192.0.2.1", 200), -EACCES);
	assert_int_equal(LOGIN(a, "bob", "b*b)(pw\\", "192.0.2.1", 201), -EAGAIN);
	assert_int_equal(retry, 9);
	assert_int_equal(LOGIN(a, "bob", "b*b)(pw\\", "192.0.2.2", 201), 0);
	identity_free(id);
	close_local(&f);
}

/* The broker's store as the source of local users. */
static int store_lookup(void *ctx, const char *username, struct identity **id, char **hash)
{
	int *calls = ctx;

	(*calls)++;
	if (strcmp(username, "dora"))
		return strcmp(username, "broken") ? -ENOENT : -EIO;
	*id = identity_new("dora", NULL, "Dora", NULL);
	*hash = strdup(alice_hash);
	identity_add_group(*id, "sales");
	return 0;
}

/* What the store was asked to keep: the upgraded hash of a weak one. */
static char stored_hash[PASSWORD_HASH_MAX];

static int store_set_hash(void *ctx, const char *username, const char *hash)
{
	(void)ctx;
	assert_string_equal(username, "dora");
	snprintf(stored_hash, sizeof(stored_hash), "%s", hash);
	return 0;
}

static void test_user_source(void **state)
{
	struct auth_config cfg;
	struct identity *id = NULL;
	char err[256];
	int calls = 0, retry;
	struct auth_user_source src = {
	    .aus_lookup = store_lookup, .aus_set_hash = store_set_hash, .aus_ctx = &calls};
	struct auth *a;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(config_load_string("t.conf", "", options, &cfg, err, sizeof(err)), 0);
	assert_null(auth_open(&cfg, NULL, err, sizeof(err)));
	assert_string_equal(err, "[auth] backend = local needs users_file");
	a = auth_open(&cfg, &src, err, sizeof(err));
	assert_non_null(a);
	assert_true(password_needs_rehash(alice_hash)); /* a cheap test hash */
	assert_int_equal(LOGIN(a, "dora", "alice-pw", NULL, 1), 0);
	assert_true(identity_has_group(id, "sales"));
	identity_free(id);
	/* the login upgraded the weak hash to one of today's cost for the same password */
	assert_false(password_needs_rehash(stored_hash));
	assert_int_equal(password_verify("alice-pw", stored_hash), 0);
	stored_hash[0] = '\0';
	assert_int_equal(LOGIN(a, "dora", "nope", NULL, 1), -EACCES);
	assert_string_equal(stored_hash, ""); /* not after a wrong password */
	assert_int_equal(LOGIN(a, "eve", "nope", NULL, 1), -EACCES);
	/* a store failure is an error of the service, not a failed login */
	assert_int_equal(LOGIN(a, "broken", "nope", NULL, 1), -EIO);
	assert_int_equal(calls, 4);
	auth_close(a);
	config_free(options, &cfg);
}

static struct auth *open_source(struct auth_config *cfg, const char *conf,
				struct auth_user_source *src)
{
	char err[256] = "";
	struct auth *a;

	memset(cfg, 0, sizeof(*cfg));
	assert_int_equal(config_load_string("t.conf", conf, options, cfg, err, sizeof(err)), 0);
	assert_int_equal(auth_config_finish(cfg, "t.conf", err, sizeof(err)), 0);
	a = auth_open(cfg, src, err, sizeof(err));
	assert_non_null(a);
	return a;
}

/* A directory that, like LDAP's string preparation, matches compatibility spellings
 * of a name: "\ufb01" (the fi ligature) is "fi", fullwidth letters are ASCII, case is
 * ignored. It knows "fiona" (password "alice-pw") and counts its lookups. */
static int folding_lookup(void *ctx, const char *username, struct identity **id, char **hash)
{
	char folded[64];
	size_t o = 0;
	int *calls = ctx;

	(*calls)++;
	for (const unsigned char *p = (const unsigned char *)username;
	     *p && o + 2 < sizeof(folded);) {
		if (!memcmp(p, "\xef\xac\x81", 3)) { /* U+FB01 */
			folded[o++] = 'f';
			folded[o++] = 'i';
			p += 3;
		} else if (p[0] == 0xef && p[1] == 0xbc && p[2] >= 0xa1 && p[2] <= 0xba) {
			folded[o++] = (char)('a' + p[2] - 0xa1); /* U+FF21.. */
			p += 3;
		} else if (p[0] == 0xef && p[1] == 0xbd && p[2] >= 0x81 && p[2] <= 0x9a) {
			folded[o++] = (char)('a' + p[2] - 0x81); /* U+FF41.. */
			p += 3;
		} else {
			folded[o++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
			p++;
		}
	}
	folded[o] = '\0';
	if (strcmp(folded, "fiona"))
		return -ENOENT;
	*id = identity_new("fiona", NULL, "Fiona", NULL);
	*hash = strdup(alice_hash);
	return 0;
}

/* Throttling follows the account, not the spelling typed: locked "fiona" gets no fresh
 * attempts as "FIONA", in fullwidth, or as a spelling only the directory folds. */
static void test_throttle_canonical(void **state)
{
	int calls = 0;
	struct auth_user_source src = {.aus_lookup = folding_lookup, .aus_ctx = &calls};
	struct auth_config cfg;
	struct identity *id = NULL;
	int retry = -1;
	struct auth *a = open_source(&cfg,
				     "[auth]\nmax_user_failures = 3\nmax_address_failures = 100\n"
				     "lockout = 10s\nlockout_max = 1m\n",
				     &src);

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(LOGIN(a, "fiona", "guess", "10.0.0.1", 100), -EACCES);
	assert_int_equal(LOGIN(a, "fiona", "alice-pw", "10.0.0.1", 100), -EAGAIN);
	/* other case, fullwidth: refused before the directory is asked */
	calls = 0;
	assert_int_equal(LOGIN(a, "FIONA", "alice-pw", "10.0.0.1", 100), -EAGAIN);
	assert_int_equal(LOGIN(a, "\uff26\uff49\uff4f\uff4e\uff41", "alice-pw", "10.0.0.1", 100),
			 -EAGAIN);
	assert_int_equal(retry, 10);
	assert_null(id);
	assert_int_equal(calls, 0);
	/* a compatibility form (the ligature fi): NFKC_Casefold folds it too, so it is
	 * refused before the directory is asked as well */
	assert_int_equal(LOGIN(a, "\ufb01ona", "alice-pw", "10.0.0.1", 100), -EAGAIN);
	assert_int_equal(retry, 10);
	assert_null(id);
	assert_int_equal(calls, 0);
	/* guesses under such spellings count for the account */
	for (int i = 0; i < 3; i++)
		assert_int_equal(LOGIN(a, "\ufb01ONA", "guess", "10.0.0.2", 100), -EACCES);
	assert_int_equal(LOGIN(a, "fiona", "alice-pw", "10.0.0.2", 100), -EAGAIN);
	/* elsewhere the account is not delayed, and the canonical name is returned */
	assert_int_equal(LOGIN(a, "\ufb01ona", "alice-pw", "10.0.0.3", 100), 0);
	assert_string_equal(id->id_username, "fiona");
	identity_free(id);
	auth_close(a);
	config_free(options, &cfg);
}

/* A user source whose lookup of "slow" blocks until the test opens it, so the test,
 * not timing, decides how long the one password check slot stays taken. Every user
 * has the password "alice-pw". */
struct blocker {
	pthread_mutex_t b_lock;
	pthread_cond_t b_cond;
	bool b_entered, b_open;
	struct auth *b_auth;
	int b_result;
};

static void deadline_in(struct timespec *ts, int seconds)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += seconds;
}

static int blocking_lookup(void *ctx, const char *username, struct identity **id, char **hash)
{
	struct blocker *b = ctx;
	struct timespec deadline;

	if (!strcmp(username, "slow")) {
		deadline_in(&deadline, 10);
		pthread_mutex_lock(&b->b_lock);
		b->b_entered = true;
		pthread_cond_broadcast(&b->b_cond);
		while (!b->b_open &&
		       pthread_cond_timedwait(&b->b_cond, &b->b_lock, &deadline) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&b->b_lock);
	}
	*id = identity_new(username, NULL, NULL, NULL);
	*hash = strdup(alice_hash);
	return 0;
}

static void *slow_login(void *arg)
{
	struct blocker *b = arg;
	struct identity *id = NULL;
	int retry;

	b->b_result = LOGIN(b->b_auth, "slow", "alice-pw", "10.0.0.1", 100);
	identity_free(id);
	return NULL;
}

/* Starts a login of "slow" in a thread and returns once it holds the check slot. */
static void hold_slot(struct blocker *b, struct auth *a, pthread_t *th)
{
	struct timespec deadline;

	pthread_mutex_init(&b->b_lock, NULL);
	pthread_cond_init(&b->b_cond, NULL);
	b->b_entered = b->b_open = false;
	b->b_auth = a;
	b->b_result = 1;
	assert_int_equal(pthread_create(th, NULL, slow_login, b), 0);
	deadline_in(&deadline, 10);
	pthread_mutex_lock(&b->b_lock);
	while (!b->b_entered &&
	       pthread_cond_timedwait(&b->b_cond, &b->b_lock, &deadline) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&b->b_lock);
	assert_true(b->b_entered);
}

/* Lets the held login finish; it must have succeeded. */
static void release_slot(struct blocker *b, pthread_t th)
{
	pthread_mutex_lock(&b->b_lock);
	b->b_open = true;
	pthread_cond_broadcast(&b->b_cond);
	pthread_mutex_unlock(&b->b_lock);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(b->b_result, 0);
	pthread_cond_destroy(&b->b_cond);
	pthread_mutex_destroy(&b->b_lock);
}

static void test_checks_bounded(void **state)
{
	struct blocker b;
	struct auth_user_source src = {.aus_lookup = blocking_lookup, .aus_ctx = &b};
	struct auth_config cfg;
	struct identity *id = NULL;
	int retry = -1;
	pthread_t th;
	struct auth *a = open_source(&cfg,
				     "[auth]\nmax_password_checks = 1\npassword_check_queue = 0\n"
				     "max_user_failures = 2\nmax_address_failures = 3\n",
				     &src);

	(void)state;
	hold_slot(&b, a, &th);
	/* the one slot is taken and nobody may wait: busy at once, with a time to retry */
	for (int i = 0; i < 10; i++) {
		retry = -1;
		assert_int_equal(LOGIN(a, "dora", "wrong", "10.0.0.5", 100), -EBUSY);
		assert_null(id);
		assert_true(retry >= 1 && retry <= 10);
	}
	release_slot(&b, th);
	/* ten busy answers counted as no failures, of the account or of the address */
	assert_int_equal(LOGIN(a, "dora", "alice-pw", "10.0.0.5", 101), 0);
	assert_int_equal(retry, 0);
	identity_free(id);
	/* the slot is free again: a wrong password is a failed login as ever */
	assert_int_equal(LOGIN(a, "dora", "wrong", "10.0.0.5", 102), -EACCES);
	auth_close(a);
	config_free(options, &cfg);
}

static void test_check_wait_bounded(void **state)
{
	struct blocker b;
	struct auth_user_source src = {.aus_lookup = blocking_lookup, .aus_ctx = &b};
	struct auth_config cfg;
	struct identity *id = NULL;
	struct timespec t0, t1;
	int retry = -1;
	pthread_t th;
	struct auth *a = open_source(&cfg,
				     "[auth]\nmax_password_checks = 1\npassword_check_queue = 1\n"
				     "password_check_wait = 1s\n",
				     &src);
	double waited;

	(void)state;
	hold_slot(&b, a, &th);
	/* room in the queue: this login waits its second, then gives up busy */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(LOGIN(a, "dora", "alice-pw", "10.0.0.5", 100), -EBUSY);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	waited = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(waited >= 0.9 && waited < 5);
	assert_int_equal(retry, 1);
	release_slot(&b, th);
	assert_int_equal(LOGIN(a, "dora", "alice-pw", "10.0.0.5", 101), 0);
	identity_free(id);
	auth_close(a);
	config_free(options, &cfg);
}

/* An unknown user's password is checked against a dummy at the configured cost. */
static void test_dummy_cost(void **state)
{
	struct auth_user_source src = {.aus_lookup = store_lookup, .aus_ctx = &(int){0}};
	struct password_params pp;
	struct auth_config cfg;
	struct identity *id = NULL;
	char err[256];
	int retry;
	struct auth *a;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(config_load_string("t.conf", "", options, &cfg, err, sizeof(err)), 0);
	cfg.ac_password_cost = 11; /* what the broker sets from [broker] password_cost */
	a = auth_open(&cfg, &src, err, sizeof(err));
	assert_non_null(a);
	assert_int_equal(password_params_of(auth_dummy_hash(a), &pp), 0);
	assert_int_equal(pp.pp_ln, 11);
	assert_int_equal(pp.pp_r, password_default_params.pp_r);
	assert_int_equal(pp.pp_p, password_default_params.pp_p);
	assert_int_equal(LOGIN(a, "eve", "nope", NULL, 1), -EACCES);
	auth_close(a);
	/* unset: the cost new hashes get by default */
	cfg.ac_password_cost = 0;
	a = auth_open(&cfg, &src, err, sizeof(err));
	assert_non_null(a);
	assert_int_equal(password_params_of(auth_dummy_hash(a), &pp), 0);
	assert_int_equal(pp.pp_ln, password_default_params.pp_ln);
	assert_int_equal(pp.pp_r, password_default_params.pp_r);
	assert_int_equal(pp.pp_p, password_default_params.pp_p);
	auth_close(a);
	config_free(options, &cfg);
}

static void test_config(void **state)
{
	struct auth_config cfg;
	char err[256];

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(config_load_string("t.conf", "[auth]\nbackend = ldap\n", options, &cfg,
					    err, sizeof(err)),
			 0);
	assert_int_equal(cfg.ac_user_failures, 5);
	assert_int_equal(cfg.ac_account_failures, 50);
	assert_int_equal(cfg.ac_failure_window, 900);
	assert_int_equal(cfg.ac_max_checks, 0);
	assert_int_equal(cfg.ac_check_queue, 64);
	assert_int_equal(cfg.ac_check_wait, 10);
	assert_int_equal(auth_config_finish(&cfg, "t.conf", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.conf: [ldap] uri is required");
	/* checked at once: an LDAP login mostly waits for the directory, 8 per online CPU */
	assert_int_equal(cfg.ac_max_checks, 8 * (int)sysconf(_SC_NPROCESSORS_ONLN));
	config_free(options, &cfg);
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(config_load_string("t.conf", "[auth]\nlockout = 5m\nlockout_max = 1m\n",
					    options, &cfg, err, sizeof(err)),
			 0);
	assert_int_equal(auth_config_finish(&cfg, "t.conf", err, sizeof(err)), -EINVAL);
	config_free(options, &cfg);
	/* scrypt keeps a CPU busy: one check per online CPU */
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(config_load_string("t.conf", "[auth]\nbackend = local\n", options, &cfg,
					    err, sizeof(err)),
			 0);
	assert_int_equal(auth_config_finish(&cfg, "t.conf", err, sizeof(err)), 0);
	assert_int_equal(cfg.ac_max_checks, (int)sysconf(_SC_NPROCESSORS_ONLN));
	config_free(options, &cfg);
	/* the service password never appears in printed configuration */
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(config_load_string("t.conf", "[ldap]\nbind_password = s3cret-pw\n",
					    options, &cfg, err, sizeof(err)),
			 0);
	char *out = NULL;
	size_t outlen = 0;
	FILE *fp = open_memstream(&out, &outlen);
	config_print(fp, options, &cfg);
	fclose(fp);
	assert_null(strstr(out, "s3cret-pw"));
	assert_non_null(strstr(out, "[ldap]\nuri = \n"));
	free(out);
	config_free(options, &cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_localdir),	       cmocka_unit_test(test_localdir_errors),
	    cmocka_unit_test(test_login_local),	       cmocka_unit_test(test_login_throttled),
	    cmocka_unit_test(test_user_source),	       cmocka_unit_test(test_checks_bounded),
	    cmocka_unit_test(test_check_wait_bounded), cmocka_unit_test(test_throttle_canonical),
	    cmocka_unit_test(test_dummy_cost),	       cmocka_unit_test(test_config),
	};

	alarm(120); /* a login that hangs fails the run instead of blocking the build */
	return cmocka_run_group_tests_name("auth_login", tests, setup, NULL);
}
