/* SQLite behind broker/store.h: one connection guarded by a recursive lock (a
 * transaction holds it from store_begin() to store_commit()), statements bound through
 * a small format string ('s' text or NULL, 'i' int64_t, 'b' bool), rows turned into
 * JSON objects by column name (and those into typed records, with the name table of
 * each enum), and the migrations as an ordered array of SQL steps. */
#include "broker/store.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/metrics.h"

struct store {
	sqlite3 *st_db;
	pthread_mutex_t st_lock; /* recursive: calls inside a transaction take it again */
	int st_depth;		 /* store_begin() nesting (0 or 1) */
	double st_began;	 /* monotonic: when store_begin() was called */
	struct metrics_histogram st_seconds; /* store_begin() to commit or rollback */
};

static const double transaction_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
					    0.05,   0.1,   0.25,   0.5,	  1};

/* Migration i takes the schema from version i to i + 1. Append; never edit one that
 * has shipped. */
static const char *const migrations[] = {
    /* 1: the first schema */
    "CREATE TABLE users ("
    "  username TEXT PRIMARY KEY COLLATE NOCASE,"
    "  password_hash TEXT NOT NULL,"
    "  display_name TEXT, mail TEXT,"
    "  groups TEXT NOT NULL DEFAULT '[]',"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE hosts ("
    "  id TEXT PRIMARY KEY, url TEXT NOT NULL, relay TEXT NOT NULL DEFAULT '',"
    "  enabled INTEGER NOT NULL DEFAULT 1, up INTEGER NOT NULL DEFAULT 0,"
    "  last_heartbeat INTEGER NOT NULL DEFAULT 0,"
    "  mem_free_mib INTEGER NOT NULL DEFAULT 0, vcpus_free INTEGER NOT NULL DEFAULT 0,"
    "  desktops INTEGER NOT NULL DEFAULT 0, max_desktops INTEGER NOT NULL DEFAULT 0,"
    "  capacity TEXT, created INTEGER NOT NULL);"
    "CREATE TABLE pools ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL,"
    "  kind TEXT NOT NULL CHECK (kind IN ('dedicated', 'floating')),"
    "  source TEXT NOT NULL CHECK (source IN ('automated', 'manual')),"
    "  enabled INTEGER NOT NULL DEFAULT 1,"
    "  min INTEGER NOT NULL DEFAULT 0, max INTEGER NOT NULL DEFAULT 0,"
    "  spare INTEGER NOT NULL DEFAULT 0,"
    "  memory_mib INTEGER NOT NULL DEFAULT 512, vcpus INTEGER NOT NULL DEFAULT 1,"
    "  disconnect_timeout INTEGER NOT NULL DEFAULT 3600,"
    "  logoff_action TEXT NOT NULL DEFAULT 'refresh'"
    "    CHECK (logoff_action IN ('refresh', 'destroy')),"
    "  template TEXT, networks TEXT NOT NULL DEFAULT '', windows TEXT NOT NULL DEFAULT '',"
    "  utc_offset INTEGER NOT NULL DEFAULT 0, hosts TEXT NOT NULL DEFAULT '',"
    "  deleting INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL);"
    "CREATE TABLE entitlements ("
    "  pool_id TEXT NOT NULL REFERENCES pools(id) ON DELETE CASCADE,"
    "  kind TEXT NOT NULL CHECK (kind IN ('user', 'group')),"
    "  name TEXT NOT NULL COLLATE NOCASE,"
    "  PRIMARY KEY (pool_id, kind, name));"
    "CREATE TABLE desktops ("
    "  id TEXT PRIMARY KEY,"
    "  pool_id TEXT NOT NULL REFERENCES pools(id) ON DELETE CASCADE,"
    "  host_id TEXT, address TEXT, vnc_password TEXT, owner TEXT COLLATE NOCASE,"
    "  state TEXT NOT NULL, host_state TEXT, on_host INTEGER NOT NULL DEFAULT 0,"
    "  since INTEGER NOT NULL, created INTEGER NOT NULL);"
    "CREATE INDEX desktops_pool ON desktops(pool_id);"
    "CREATE INDEX desktops_host ON desktops(host_id);"
    "CREATE TABLE sessions ("
    "  id TEXT PRIMARY KEY, username TEXT NOT NULL COLLATE NOCASE,"
    "  pool_id TEXT NOT NULL, desktop_id TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('connected', 'disconnected', 'logged_off')),"
    "  attached INTEGER NOT NULL DEFAULT 0, client_addr TEXT,"
    "  created INTEGER NOT NULL, since INTEGER NOT NULL);"
    /* The database itself refuses a second live session on one desktop. */
    "CREATE UNIQUE INDEX sessions_live_desktop ON sessions(desktop_id)"
    "  WHERE state <> 'logged_off';"
    "CREATE INDEX sessions_user ON sessions(username, state);"
    "CREATE TABLE tickets ("
    "  hash TEXT PRIMARY KEY, session_id TEXT NOT NULL, username TEXT NOT NULL,"
    "  desktop_id TEXT NOT NULL, created INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
    "  redeemed_at INTEGER);"
    "CREATE INDEX tickets_session ON tickets(session_id);"
    "CREATE TABLE web_sessions ("
    "  token_hash TEXT PRIMARY KEY, username TEXT NOT NULL, display_name TEXT,"
    "  groups TEXT NOT NULL DEFAULT '[]', admin INTEGER NOT NULL DEFAULT 0,"
    "  csrf TEXT NOT NULL, bearer INTEGER NOT NULL DEFAULT 0, client_addr TEXT,"
    "  created INTEGER NOT NULL, last_seen INTEGER NOT NULL, expires_at INTEGER NOT NULL);"
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, actor TEXT,"
    "  action TEXT NOT NULL, target TEXT, result TEXT NOT NULL, client_addr TEXT,"
    "  detail TEXT);",
    /* 2: why desktops failed, and each pool's run of failures (restart back-off) */
    "ALTER TABLE desktops ADD COLUMN failure TEXT;"
    "ALTER TABLE pools ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE pools ADD COLUMN retry_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE pools ADD COLUMN failure TEXT;",
    /* 3: why a pool's template could not be checked on a host */
    "ALTER TABLE pools ADD COLUMN template_warning TEXT;",
    /* 4: how a desktop's VMM ended and what its guest's console said last (JSON) */
    "ALTER TABLE desktops ADD COLUMN failure_detail TEXT;",
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* Columns holding 0/1 (JSON booleans) and JSON text (parsed). */
static const char *const bool_columns[] = {"enabled", "up",	"on_host",  "attached",
					   "admin",   "bearer", "deleting", "in_use"};
static const char *const json_columns[] = {"groups", "template", "capacity", "failure_detail"};

static bool in_list(const char *name, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(name, list[i]))
			return true;
	return false;
}

static void lock(struct store *s)
{
	pthread_mutex_lock(&s->st_lock);
}

static void unlock(struct store *s)
{
	pthread_mutex_unlock(&s->st_lock);
}

static int sqlite_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT: return -EEXIST;
	case SQLITE_NOMEM: return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return -EBUSY;
	default: return -EIO;
	}
}

/* Prepares sql and binds the arguments described by types. */
static sqlite3_stmt *prepare(struct store *s, const char *sql, const char *types, va_list ap)
{
	sqlite3_stmt *st;
	int i = 1, rc;

	rc = sqlite3_prepare_v2(s->st_db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		log_warnx("store: cannot prepare a statement: %s", sqlite3_errmsg(s->st_db));
		errno = EIO;
		return NULL;
	}
	for (const char *t = types; *t; t++, i++) {
		switch (*t) {
		case 's': {
			const char *v = va_arg(ap, const char *);

			rc = v ? sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT)
			       : sqlite3_bind_null(st, i);
			break;
		}
		case 'i': rc = sqlite3_bind_int64(st, i, va_arg(ap, int64_t)); break;
		case 'b': rc = sqlite3_bind_int(st, i, va_arg(ap, int) ? 1 : 0); break;
		default: rc = SQLITE_MISUSE;
		}
		if (rc != SQLITE_OK) {
			sqlite3_finalize(st);
			errno = EIO;
			return NULL;
		}
	}
	return st;
}

static json_t *column_value(sqlite3_stmt *st, int c)
{
	const char *name = sqlite3_column_name(st, c);

	switch (sqlite3_column_type(st, c)) {
	case SQLITE_NULL: return json_null();
	case SQLITE_INTEGER:
		if (in_list(name, bool_columns, sizeof(bool_columns) / sizeof(bool_columns[0])))
			return json_boolean(sqlite3_column_int64(st, c) != 0);
		return json_integer(sqlite3_column_int64(st, c));
	case SQLITE_FLOAT: return json_real(sqlite3_column_double(st, c));
	default: {
		const char *text = (const char *)sqlite3_column_text(st, c);
		json_t *v;

		if (in_list(name, json_columns, sizeof(json_columns) / sizeof(json_columns[0]))) {
			v = json_loads(text, 0, NULL);
			if (v)
				return v;
		}
		return json_string(text ? text : "");
	}
	}
}

/* Runs a query; returns its rows as an array of objects, or NULL with errno set. */
static json_t *rows(struct store *s, const char *sql, const char *types, ...)
{
	json_t *out = json_array();
	sqlite3_stmt *st;
	va_list ap;
	int rc;

	if (!out) {
		errno = ENOMEM;
		return NULL;
	}
	lock(s);
	va_start(ap, types);
	st = prepare(s, sql, types, ap);
	va_end(ap);
	if (!st)
		goto out_fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *row = json_object();

		for (int c = 0; row && c < sqlite3_column_count(st); c++)
			json_object_set_new(row, sqlite3_column_name(st, c), column_value(st, c));
		if (!row || json_array_append_new(out, row) < 0) {
			errno = ENOMEM;
			sqlite3_finalize(st);
			goto out_fail;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_warnx("store: query failed: %s", sqlite3_errmsg(s->st_db));
		errno = EIO;
		goto out_fail;
	}
	unlock(s);
	return out;

out_fail:
	unlock(s);
	json_decref(out);
	return NULL;
}

/* The first row of a query, or NULL with errno ENOENT (none) or another. */
static json_t *one(json_t *all)
{
	json_t *first;

	if (!all)
		return NULL;
	first = json_array_get(all, 0);
	if (first)
		json_incref(first);
	else
		errno = ENOENT;
	json_decref(all);
	return first;
}

/* Runs a statement; returns the rows it changed or a negative errno. */
static int run(struct store *s, const char *sql, const char *types, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc, r;

	lock(s);
	va_start(ap, types);
	st = prepare(s, sql, types, ap);
	va_end(ap);
	if (!st) {
		unlock(s);
		return -EIO;
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
		r = sqlite3_changes(s->st_db);
	} else {
		r = sqlite_errno(rc);
		if (r != -EEXIST)
			log_warnx("store: statement failed: %s", sqlite3_errmsg(s->st_db));
	}
	unlock(s);
	return r;
}

static int exec_plain(struct store *s, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->st_db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return sqlite_errno(rc);
	}
	return 0;
}

static int migrate(struct store *s, char *err, size_t errlen)
{
	char msg[400];
	int version;
	json_t *v;

	if (exec_plain(s, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);",
		       msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "cannot create schema_version: %s", msg);
		return -EIO;
	}
	v = one(rows(s, "SELECT version FROM schema_version", ""));
	if (!v) {
		if (run(s, "INSERT INTO schema_version (version) VALUES (0)", "") < 0) {
			snprintf(err, errlen, "cannot initialise schema_version");
			return -EIO;
		}
		version = 0;
	} else {
		version = (int)json_integer_value(json_object_get(v, "version"));
		json_decref(v);
	}
	if (version > NMIGRATIONS) {
		snprintf(err, errlen,
			 "the database has schema version %d; this vdi-broker knows up to %d",
			 version, NMIGRATIONS);
		return -EPROTO;
	}
	for (; version < NMIGRATIONS; version++) {
		char bump[96];

		snprintf(bump, sizeof(bump), "UPDATE schema_version SET version = %d;",
			 version + 1);
		if (exec_plain(s, "BEGIN IMMEDIATE", msg, sizeof(msg)) < 0 ||
		    exec_plain(s, migrations[version], msg, sizeof(msg)) < 0 ||
		    exec_plain(s, bump, msg, sizeof(msg)) < 0 ||
		    exec_plain(s, "COMMIT", msg, sizeof(msg)) < 0) {
			sqlite3_exec(s->st_db, "ROLLBACK", NULL, NULL, NULL);
			snprintf(err, errlen, "migration to schema version %d failed: %s",
				 version + 1, msg);
			return -EIO;
		}
		log_info("store: schema migrated to version %d", version + 1);
	}
	return 0;
}

struct store *store_open(const char *path, char *err, size_t errlen)
{
	struct store *s = calloc(1, sizeof(*s));
	pthread_mutexattr_t attr;
	char msg[1024];

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->st_seconds.mh_bounds = transaction_bounds;
	s->st_seconds.mh_nbounds = sizeof(transaction_bounds) / sizeof(transaction_bounds[0]);
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&s->st_lock, &attr);
	pthread_mutexattr_destroy(&attr);
	if (sqlite3_open_v2(path, &s->st_db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX |
				SQLITE_OPEN_NOFOLLOW, /* a symlink at path is refused */
			    NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path,
			 s->st_db ? sqlite3_errmsg(s->st_db) : "out of memory");
		goto out_close;
	}
	sqlite3_busy_timeout(s->st_db, 10000);
	if (exec_plain(s,
		       "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
		       "PRAGMA foreign_keys = ON;",
		       msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "%s: %s", path, msg);
		goto out_close;
	}
	if (migrate(s, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "%s: %s", path, msg);
		goto out_close;
	}
	return s;

out_close:
	store_close(s);
	return NULL;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	sqlite3_close(s->st_db);
	pthread_mutex_destroy(&s->st_lock);
	free(s);
}

int store_schema_version(struct store *s)
{
	json_t *v = one(rows(s, "SELECT version FROM schema_version", ""));
	int version = v ? (int)json_integer_value(json_object_get(v, "version")) : -1;

	json_decref(v);
	return version;
}

int store_schema_latest(void)
{
	return NMIGRATIONS;
}

struct metrics_histogram *store_transaction_seconds(struct store *s)
{
	return &s->st_seconds;
}

int store_begin(struct store *s)
{
	double began = monotonic_seconds();
	char msg[256];

	lock(s);
	if (s->st_depth) {
		unlock(s);
		log_warnx("store: nested transaction refused");
		return -EBUSY;
	}
	if (exec_plain(s, "BEGIN IMMEDIATE", msg, sizeof(msg)) < 0) {
		log_warnx("store: cannot begin a transaction: %s", msg);
		unlock(s);
		return -EIO;
	}
	s->st_depth = 1;
	s->st_began = began;
	return 0;
}

int store_commit(struct store *s)
{
	char msg[256];
	int r = 0;

	if (exec_plain(s, "COMMIT", msg, sizeof(msg)) < 0) {
		log_warnx("store: commit failed: %s", msg);
		sqlite3_exec(s->st_db, "ROLLBACK", NULL, NULL, NULL);
		r = -EIO;
	}
	s->st_depth = 0;
	metrics_histogram_observe(&s->st_seconds, monotonic_seconds() - s->st_began);
	unlock(s);
	return r;
}

void store_rollback(struct store *s)
{
	sqlite3_exec(s->st_db, "ROLLBACK", NULL, NULL, NULL);
	s->st_depth = 0;
	metrics_histogram_observe(&s->st_seconds, monotonic_seconds() - s->st_began);
	unlock(s);
}

static char *dump(const json_t *v)
{
	return v ? json_dumps(v, JSON_COMPACT) : strdup("[]");
}

/* ---- typed records from rows ---- */

/* A name table (an enum's names by value) and its size. */
#define NAMES(table) (table), sizeof(table) / sizeof((table)[0])

/* The name of value in names (n of them), or NULL. */
static const char *name_of(const char *const *names, size_t n, int value)
{
	return value >= 0 && (size_t)value < n ? names[value] : NULL;
}

/* The value named name in names (n of them), or -EINVAL. */
static int value_of(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; name && i < n; i++)
		if (!strcmp(name, names[i]))
			return (int)i;
	return -EINVAL;
}

static char *dup_or_null(const json_t *row, const char *key, bool *nomem)
{
	const char *v = json_string_value(json_object_get(row, key));
	char *copy = v ? strdup(v) : NULL;

	if (v && !copy)
		*nomem = true;
	return copy;
}

static json_t *string_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* The rows of a query (all, consumed) as records of size bytes each, filled by from_row
 * (which releases what it took when it fails), into a new array *recs of *n. Returns 0
 * or -errno; on failure *recs holds the *n records filled until then. */
static int records_of_rows(json_t *all, size_t size, int (*from_row)(const json_t *, void *),
			   void **recs, size_t *n)
{
	json_t *row;
	size_t i;
	int r = 0;

	*recs = NULL;
	*n = 0;
	if (!all)
		return errno == ENOMEM ? -ENOMEM : -EIO;
	*recs = calloc(json_array_size(all) + 1, size);
	if (!*recs)
		r = -ENOMEM;
	json_array_foreach (all, i, row) {
		if (r < 0 || (r = from_row(row, (char *)*recs + i * size)) < 0)
			break;
		(*n)++;
	}
	json_decref(all);
	return r;
}

/* The first row of a query (all, consumed) as a record of size bytes at out, filled by
 * from_row (out is zeroed otherwise). Returns 0, -ENOENT (no row) or -errno. */
static int record_of_rows(json_t *all, size_t size, int (*from_row)(const json_t *, void *),
			  void *out)
{
	json_t *row = one(all);
	int r;

	memset(out, 0, size);
	if (!row)
		return errno == ENOENT ? -ENOENT : errno == ENOMEM ? -ENOMEM : -EIO;
	r = from_row(row, out);
	json_decref(row);
	return r;
}

/* ---- users ---- */

json_t *store_user_get(struct store *s, const char *username)
{
	return one(rows(s, "SELECT * FROM users WHERE username = ?", "s", username));
}

json_t *store_users_list(struct store *s)
{
	return rows(s,
		    "SELECT username, display_name, mail, groups, created FROM users "
		    "ORDER BY username",
		    "");
}

json_t *store_users_seen(struct store *s)
{
	/* Successful logins are audited under the user's name (websession.c); web sessions
	 * and desktop sessions name users whose login row may have aged out. */
	return rows(s,
		    "SELECT username, MAX(login) AS last_login,"
		    "  (SELECT display_name FROM web_sessions w WHERE w.username = seen.username"
		    "    ORDER BY created DESC LIMIT 1) AS display_name,"
		    "  (SELECT groups FROM web_sessions w WHERE w.username = seen.username"
		    "    ORDER BY created DESC LIMIT 1) AS groups FROM ("
		    "  SELECT actor AS username, time AS login FROM audit"
		    "    WHERE action = 'login' AND result = 'success' AND actor IS NOT NULL"
		    "  UNION ALL SELECT username, created FROM web_sessions"
		    "  UNION ALL SELECT username, 0 FROM sessions"
		    ") AS seen GROUP BY username COLLATE NOCASE ORDER BY username COLLATE NOCASE",
		    "");
}

int store_user_add(struct store *s, const char *username, const char *password_hash,
		   const char *display_name, const char *mail, const json_t *groups, int64_t now)
{
	char *g = dump(groups);
	int r;

	if (!g)
		return -ENOMEM;
	r = run(s,
		"INSERT INTO users (username, password_hash, display_name, mail, groups, created) "
		"VALUES (?, ?, ?, ?, ?, ?)",
		"sssssi", username, password_hash, display_name, mail, g, now);
	free(g);
	return r < 0 ? r : 0;
}

int store_user_set_hash(struct store *s, const char *username, const char *password_hash)
{
	int r = run(s, "UPDATE users SET password_hash = ? WHERE username = ?", "ss", password_hash,
		    username);

	return r == 0 ? -ENOENT : r < 0 ? r : 0;
}

int store_user_delete(struct store *s, const char *username)
{
	int r = run(s, "DELETE FROM users WHERE username = ?", "s", username);

	return r == 0 ? -ENOENT : r < 0 ? r : 0;
}

/* ---- hosts ---- */

static const char *const host_states[] = {
    [HOST_DOWN] = "down",
    [HOST_UP] = "up",
};

const char *host_state_name(enum host_state state)
{
	return name_of(NAMES(host_states), state);
}

/* A hosts row into rec, a struct host_rec. Returns 0 or -ENOMEM. */
static int host_from_row(const json_t *row, void *rec)
{
	struct host_rec *h = rec;
	json_t *cap = json_object_get(row, "capacity");
	bool nomem = false;

	*h = (struct host_rec){
	    .hr_id = dup_or_null(row, "id", &nomem),
	    .hr_url = dup_or_null(row, "url", &nomem),
	    .hr_relay = dup_or_null(row, "relay", &nomem),
	    .hr_enabled = json_is_true(json_object_get(row, "enabled")),
	    .hr_state = json_is_true(json_object_get(row, "up")) ? HOST_UP : HOST_DOWN,
	    .hr_last_heartbeat = json_integer_value(json_object_get(row, "last_heartbeat")),
	    .hr_mem_free_mib = json_integer_value(json_object_get(row, "mem_free_mib")),
	    .hr_vcpus_free = (int)json_integer_value(json_object_get(row, "vcpus_free")),
	    .hr_desktops = (int)json_integer_value(json_object_get(row, "desktops")),
	    .hr_max_desktops = (int)json_integer_value(json_object_get(row, "max_desktops")),
	    .hr_capacity = json_is_null(cap) ? NULL : json_incref(cap),
	    .hr_created = json_integer_value(json_object_get(row, "created")),
	};
	if (nomem) {
		host_rec_release(h);
		return -ENOMEM;
	}
	return 0;
}

void host_rec_release(struct host_rec *h)
{
	free(h->hr_id);
	free(h->hr_url);
	free(h->hr_relay);
	json_decref(h->hr_capacity);
	memset(h, 0, sizeof(*h));
}

void host_list_free(struct host_list *l)
{
	for (size_t i = 0; i < l->hl_n; i++)
		host_rec_release(&l->hl_recs[i]);
	free(l->hl_recs);
	memset(l, 0, sizeof(*l));
}

json_t *host_rec_json(const struct host_rec *h)
{
	return json_pack(
	    "{s:o, s:o, s:o, s:b, s:b, s:I, s:I, s:i, s:i, s:i, s:O, s:I}", "id",
	    string_or_null(h->hr_id), "url", string_or_null(h->hr_url), "relay",
	    string_or_null(h->hr_relay), "enabled", h->hr_enabled, "up", h->hr_state == HOST_UP,
	    "last_heartbeat", (json_int_t)h->hr_last_heartbeat, "mem_free_mib",
	    (json_int_t)h->hr_mem_free_mib, "vcpus_free", h->hr_vcpus_free, "desktops",
	    h->hr_desktops, "max_desktops", h->hr_max_desktops, "capacity",
	    h->hr_capacity ? h->hr_capacity : json_null(), "created", (json_int_t)h->hr_created);
}

/* The rows of a hosts query into out. */
static int hosts_of_rows(json_t *all, struct host_list *out)
{
	void *recs;
	int r = records_of_rows(all, sizeof(*out->hl_recs), host_from_row, &recs, &out->hl_n);

	out->hl_recs = recs;
	if (r < 0)
		host_list_free(out);
	return r;
}

int store_hosts_list(struct store *s, struct host_list *out)
{
	return hosts_of_rows(rows(s, "SELECT * FROM hosts ORDER BY id", ""), out);
}

int store_host_get(struct store *s, const char *id, struct host_rec *out)
{
	return record_of_rows(rows(s, "SELECT * FROM hosts WHERE id = ?", "s", id), sizeof(*out),
			      host_from_row, out);
}

int store_host_add(struct store *s, const char *id, const char *url, const char *relay, int64_t now)
{
	int r = run(s, "INSERT INTO hosts (id, url, relay, created) VALUES (?, ?, ?, ?)", "sssi",
		    id, url, relay ? relay : "", now);

	return r < 0 ? r : 0;
}

int store_host_set_enabled(struct store *s, const char *id, bool enabled)
{
	int r = run(s, "UPDATE hosts SET enabled = ? WHERE id = ?", "is", (int64_t)enabled, id);

	return r == 0 ? -ENOENT : r < 0 ? r : 0;
}

int store_host_delete(struct store *s, const char *id)
{
	int r = run(s, "DELETE FROM hosts WHERE id = ?", "s", id);

	return r == 0 ? -ENOENT : r < 0 ? r : 0;
}

int store_host_heartbeat(struct store *s, const char *id, int64_t now, int64_t mem_free_mib,
			 int vcpus_free, int desktops, int max_desktops, const json_t *capacity)
{
	char *cap = capacity ? json_dumps(capacity, JSON_COMPACT) : NULL;
	struct host_rec h;
	bool was_up;
	int r;

	lock(s);
	if (store_host_get(s, id, &h) < 0) {
		unlock(s);
		free(cap);
		return -ENOENT;
	}
	was_up = h.hr_state == HOST_UP;
	host_rec_release(&h);
	r = run(s,
		"UPDATE hosts SET up = 1, last_heartbeat = ?, mem_free_mib = ?, vcpus_free = ?, "
		"desktops = ?, max_desktops = ?, capacity = ? WHERE id = ?",
		"iiiiiss", now, mem_free_mib, (int64_t)vcpus_free, (int64_t)desktops,
		(int64_t)max_desktops, cap, id);
	unlock(s);
	free(cap);
	return r < 0 ? r : was_up ? 0 : 1;
}

int store_hosts_expire(struct store *s, int64_t before, struct host_list *out)
{
	struct host_list silent;
	int r;

	memset(out, 0, sizeof(*out));
	lock(s);
	r = hosts_of_rows(
	    rows(s, "SELECT * FROM hosts WHERE up = 1 AND last_heartbeat < ?", "i", before),
	    &silent);
	out->hl_recs = silent.hl_recs;
	for (size_t i = 0; r == 0 && i < silent.hl_n; i++) {
		if (run(s, "UPDATE hosts SET up = 0 WHERE id = ?", "s", silent.hl_recs[i].hr_id) >
		    0)
			out->hl_recs[out->hl_n++] = silent.hl_recs[i];
		else
			host_rec_release(&silent.hl_recs[i]);
	}
	unlock(s);
	return r;
}

/* ---- pools ---- */

static json_t *with_entitlements(struct store *s, json_t *pools)
{
	size_t i;
	json_t *p;

	if (!pools)
		return NULL;
	json_array_foreach (pools, i, p) {
		json_t *e = rows(s,
				 "SELECT kind, name FROM entitlements WHERE pool_id = ? "
				 "ORDER BY kind, name",
				 "s", json_string_value(json_object_get(p, "id")));

		if (!e) {
			json_decref(pools);
			return NULL;
		}
		json_object_set_new(p, "entitlements", e);
	}
	return pools;
}

static const char *const pool_kinds[] = {
    [POOL_DEDICATED] = "dedicated",
    [POOL_FLOATING] = "floating",
};

static const char *const pool_sources[] = {
    [POOL_AUTOMATED] = "automated",
    [POOL_MANUAL] = "manual",
};

static const char *const pool_logoff_actions[] = {
    [POOL_LOGOFF_REFRESH] = "refresh",
    [POOL_LOGOFF_DESTROY] = "destroy",
};

static const char *const entitlement_kinds[] = {
    [ENTITLEMENT_USER] = "user",
    [ENTITLEMENT_GROUP] = "group",
};

const char *pool_kind_name(enum pool_kind kind)
{
	return name_of(NAMES(pool_kinds), kind);
}

const char *pool_source_name(enum pool_source source)
{
	return name_of(NAMES(pool_sources), source);
}

const char *pool_logoff_action_name(enum pool_logoff_action action)
{
	return name_of(NAMES(pool_logoff_actions), action);
}

const char *entitlement_kind_name(enum entitlement_kind kind)
{
	return name_of(NAMES(entitlement_kinds), kind);
}

int pool_kind_parse(const char *name, enum pool_kind *kind)
{
	int v = value_of(NAMES(pool_kinds), name);

	if (v >= 0)
		*kind = (enum pool_kind)v;
	return v < 0 ? v : 0;
}

int pool_source_parse(const char *name, enum pool_source *source)
{
	int v = value_of(NAMES(pool_sources), name);

	if (v >= 0)
		*source = (enum pool_source)v;
	return v < 0 ? v : 0;
}

int pool_logoff_action_parse(const char *name, enum pool_logoff_action *action)
{
	int v = value_of(NAMES(pool_logoff_actions), name);

	if (v >= 0)
		*action = (enum pool_logoff_action)v;
	return v < 0 ? v : 0;
}

int entitlement_kind_parse(const char *name, enum entitlement_kind *kind)
{
	int v = value_of(NAMES(entitlement_kinds), name);

	if (v >= 0)
		*kind = (enum entitlement_kind)v;
	return v < 0 ? v : 0;
}

/* The entitlements of a pool row ([{kind, name}]) into p. Returns 0 or -ENOMEM. */
static int entitlements_from_row(const json_t *row, struct pool_rec *p, bool *nomem)
{
	const json_t *ents = json_object_get(row, "entitlements"), *e;
	size_t i;

	p->pr_ents = calloc(json_array_size(ents) + 1, sizeof(*p->pr_ents));
	if (!p->pr_ents) {
		*nomem = true;
		return -ENOMEM;
	}
	json_array_foreach ((json_t *)ents, i, e) {
		struct entitlement_rec *er = &p->pr_ents[p->pr_nents++];

		if (entitlement_kind_parse(json_string_value(json_object_get(e, "kind")),
					   &er->er_kind) < 0)
			er->er_kind = ENTITLEMENT_USER; /* the table's CHECK allows no other */
		er->er_name = dup_or_null(e, "name", nomem);
	}
	return *nomem ? -ENOMEM : 0;
}

/* A pools row with its entitlements into rec, a struct pool_rec. Returns 0 or -ENOMEM. */
static int pool_from_row(const json_t *row, void *rec)
{
	struct pool_rec *p = rec;
	json_t *tpl = json_object_get(row, "template");
	bool nomem = false;

	*p = (struct pool_rec){
	    .pr_id = dup_or_null(row, "id", &nomem),
	    .pr_name = dup_or_null(row, "name", &nomem),
	    .pr_enabled = json_is_true(json_object_get(row, "enabled")),
	    .pr_min = (int)json_integer_value(json_object_get(row, "min")),
	    .pr_max = (int)json_integer_value(json_object_get(row, "max")),
	    .pr_spare = (int)json_integer_value(json_object_get(row, "spare")),
	    .pr_memory_mib = (int)json_integer_value(json_object_get(row, "memory_mib")),
	    .pr_vcpus = (int)json_integer_value(json_object_get(row, "vcpus")),
	    .pr_disconnect_timeout =
		(int)json_integer_value(json_object_get(row, "disconnect_timeout")),
	    .pr_template = json_is_null(tpl) ? NULL : json_incref(tpl),
	    .pr_networks = dup_or_null(row, "networks", &nomem),
	    .pr_windows = dup_or_null(row, "windows", &nomem),
	    .pr_hosts = dup_or_null(row, "hosts", &nomem),
	    .pr_utc_offset = (int)json_integer_value(json_object_get(row, "utc_offset")),
	    .pr_deleting = json_is_true(json_object_get(row, "deleting")),
	    .pr_created = json_integer_value(json_object_get(row, "created")),
	    .pr_failures = (int)json_integer_value(json_object_get(row, "failures")),
	    .pr_retry_at = json_integer_value(json_object_get(row, "retry_at")),
	    .pr_failure = dup_or_null(row, "failure", &nomem),
	    .pr_template_warning = dup_or_null(row, "template_warning", &nomem),
	};
	/* the table's CHECKs allow no other names */
	if (pool_kind_parse(json_string_value(json_object_get(row, "kind")), &p->pr_kind) < 0)
		p->pr_kind = POOL_FLOATING;
	if (pool_source_parse(json_string_value(json_object_get(row, "source")), &p->pr_source) < 0)
		p->pr_source = POOL_AUTOMATED;
	if (pool_logoff_action_parse(json_string_value(json_object_get(row, "logoff_action")),
				     &p->pr_logoff_action) < 0)
		p->pr_logoff_action = POOL_LOGOFF_REFRESH;
	if (entitlements_from_row(row, p, &nomem) < 0 || nomem) {
		pool_rec_release(p);
		return -ENOMEM;
	}
	return 0;
}

void pool_rec_release(struct pool_rec *p)
{
	free(p->pr_id);
	free(p->pr_name);
	json_decref(p->pr_template);
	free(p->pr_networks);
	free(p->pr_windows);
	free(p->pr_hosts);
	free(p->pr_failure);
	free(p->pr_template_warning);
	for (size_t i = 0; i < p->pr_nents; i++)
		free(p->pr_ents[i].er_name);
	free(p->pr_ents);
	memset(p, 0, sizeof(*p));
}

void pool_list_free(struct pool_list *l)
{
	for (size_t i = 0; i < l->pl_n; i++)
		pool_rec_release(&l->pl_recs[i]);
	free(l->pl_recs);
	memset(l, 0, sizeof(*l));
}

json_t *pool_rec_json(const struct pool_rec *p)
{
	json_t *ents = json_array();

	for (size_t i = 0; ents && i < p->pr_nents; i++) {
		if (json_array_append_new(
			ents, json_pack("{s:s, s:o}", "kind",
					entitlement_kind_name(p->pr_ents[i].er_kind), "name",
					string_or_null(p->pr_ents[i].er_name))) < 0) {
			json_decref(ents);
			return NULL;
		}
	}
	if (!ents)
		return NULL;
	return json_pack(
	    "{s:o, s:o, s:s, s:s, s:b, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:O, s:o, "
	    "s:o, s:i, s:o, s:b, s:I, s:o, s:i, s:I, s:o, s:o}",
	    "id", string_or_null(p->pr_id), "name", string_or_null(p->pr_name), "kind",
	    pool_kind_name(p->pr_kind), "source", pool_source_name(p->pr_source), "enabled",
	    p->pr_enabled, "min", p->pr_min, "max", p->pr_max, "spare", p->pr_spare, "memory_mib",
	    p->pr_memory_mib, "vcpus", p->pr_vcpus, "disconnect_timeout", p->pr_disconnect_timeout,
	    "logoff_action", pool_logoff_action_name(p->pr_logoff_action), "template",
	    p->pr_template ? p->pr_template : json_null(), "networks",
	    string_or_null(p->pr_networks), "windows", string_or_null(p->pr_windows), "utc_offset",
	    p->pr_utc_offset, "hosts", string_or_null(p->pr_hosts), "deleting", p->pr_deleting,
	    "created", (json_int_t)p->pr_created, "entitlements", ents, "failures", p->pr_failures,
	    "retry_at", (json_int_t)p->pr_retry_at, "failure", string_or_null(p->pr_failure),
	    "template_warning", string_or_null(p->pr_template_warning));
}

int store_pools_list(struct store *s, struct pool_list *out)
{
	void *recs;
	int r;

	lock(s);
	r = records_of_rows(
	    with_entitlements(s, rows(s, "SELECT * FROM pools WHERE deleting = 0 ORDER BY id", "")),
	    sizeof(*out->pl_recs), pool_from_row, &recs, &out->pl_n);
	unlock(s);
	out->pl_recs = recs;
	if (r < 0)
		pool_list_free(out);
	return r;
}

int store_pool_get(struct store *s, const char *id, struct pool_rec *out)
{
	int r;

	lock(s);
	r = record_of_rows(
	    with_entitlements(s, rows(s, "SELECT * FROM pools WHERE id = ?", "s", id)),
	    sizeof(*out), pool_from_row, out);
	unlock(s);
	return r;
}

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int64_t num(const json_t *o, const char *key)
{
	return (int64_t)json_integer_value(json_object_get(o, key));
}

int store_pool_put(struct store *s, const json_t *p, bool create, int64_t now)
{
	char *tpl = json_object_get(p, "template") && !json_is_null(json_object_get(p, "template"))
			? json_dumps(json_object_get(p, "template"), JSON_COMPACT)
			: NULL;
	int r;

	if (create)
		r = run(s,
			"INSERT INTO pools (id, name, kind, source, enabled, min, max, spare, "
			"memory_mib, vcpus, disconnect_timeout, logoff_action, template, networks, "
			"windows, utc_offset, hosts, created, template_warning) "
			"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			"ssssbiiiiiissssisis", str(p, "id"), str(p, "name"), str(p, "kind"),
			str(p, "source"), (int)json_is_true(json_object_get(p, "enabled")),
			num(p, "min"), num(p, "max"), num(p, "spare"), num(p, "memory_mib"),
			num(p, "vcpus"), num(p, "disconnect_timeout"), str(p, "logoff_action"), tpl,
			str(p, "networks"), str(p, "windows"), num(p, "utc_offset"),
			str(p, "hosts"), now, str(p, "template_warning"));
	else
		r = run(
		    s,
		    "UPDATE pools SET name = ?, kind = ?, source = ?, enabled = ?, min = ?, "
		    "max = ?, spare = ?, memory_mib = ?, vcpus = ?, disconnect_timeout = ?, "
		    "logoff_action = ?, template = ?, networks = ?, windows = ?, utc_offset = ?, "
		    "hosts = ?, template_warning = ?, failures = 0, retry_at = 0 WHERE id = ? AND "
		    "deleting = 0",
		    "sssbiiiiiissssisss", str(p, "name"), str(p, "kind"), str(p, "source"),
		    (int)json_is_true(json_object_get(p, "enabled")), num(p, "min"), num(p, "max"),
		    num(p, "spare"), num(p, "memory_mib"), num(p, "vcpus"),
		    num(p, "disconnect_timeout"), str(p, "logoff_action"), tpl, str(p, "networks"),
		    str(p, "windows"), num(p, "utc_offset"), str(p, "hosts"),
		    str(p, "template_warning"), str(p, "id"));
	free(tpl);
	if (r == 0)
		return -ENOENT;
	return r < 0 ? r : 0;
}

int store_pool_failed(struct store *s, const char *id, const char *cause, int64_t now)
{
	json_t *row;
	int failures, r;
	int64_t delay;

	row = one(rows(s, "SELECT failures FROM pools WHERE id = ?", "s", id));
	if (!row)
		return errno == ENOENT ? -ENOENT : -EIO;
	failures = (int)json_integer_value(json_object_get(row, "failures")) + 1;
	json_decref(row);
	if (failures > 1000)
		failures = 1000;
	delay = failures > 9 ? POOL_RETRY_MAX_S : (int64_t)1 << (failures - 1);
	if (delay > POOL_RETRY_MAX_S)
		delay = POOL_RETRY_MAX_S;
	r = run(s, "UPDATE pools SET failures = ?, retry_at = ?, failure = ? WHERE id = ?", "iiss",
		(int64_t)failures, now + delay, cause, id);
	return r < 0 ? r : failures;
}

int store_pool_healthy(struct store *s, const char *id)
{
	return run(s,
		   "UPDATE pools SET failures = 0, retry_at = 0, failure = NULL "
		   "WHERE id = ? AND failures > 0",
		   "s", id);
}

int store_desktop_set_failure(struct store *s, const char *id, const char *cause,
			      const json_t *detail)
{
	char *text = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
	int r = run(s, "UPDATE desktops SET failure = ?, failure_detail = ? WHERE id = ?", "sss",
		    cause, text, id);

	free(text);
	return r == 0 ? -ENOENT : r < 0 ? r : 0;
}

int store_pool_set_template_warning(struct store *s, const char *id, const char *warning)
{
	int r = run(s, "UPDATE pools SET template_warning = ? WHERE id = ?", "ss", warning, id);

	return r == 0 ? -ENOENT : r < 0 ? r : 0;
}

int store_pool_mark_deleting(struct store *s, const char *id)
{
	int r = run(s, "UPDATE pools SET deleting = 1, enabled = 0 WHERE id = ?", "s", id);

	return r == 0 ? -ENOENT : r < 0 ? r : 0;
}

int store_pool_delete(struct store *s, const char *id)
{
	int r = run(s, "DELETE FROM pools WHERE id = ?", "s", id);

	return r == 0 ? -ENOENT : r < 0 ? r : 0;
}

int store_entitlement_add(struct store *s, const char *pool, const char *kind, const char *name)
{
	int r = run(s, "INSERT INTO entitlements (pool_id, kind, name) VALUES (?, ?, ?)", "sss",
		    pool, kind, name);

	return r < 0 ? r : 0;
}

int store_entitlement_remove(struct store *s, const char *pool, const char *kind, const char *name)
{
	int r = run(s, "DELETE FROM entitlements WHERE pool_id = ? AND kind = ? AND name = ?",
		    "sss", pool, kind, name);

	return r == 0 ? -ENOENT : r < 0 ? r : 0;
}

/* ---- desktops ---- */

static const char *const desktop_states[] = {
    [DESKTOP_PROVISIONING] = "provisioning",
    [DESKTOP_READY] = "ready",
    [DESKTOP_STOPPED] = "stopped",
    [DESKTOP_REFRESHING] = "refreshing",
    [DESKTOP_DELETING] = "deleting",
    [DESKTOP_ERROR] = "error",
    [DESKTOP_LOST] = "lost",
};

const char *desktop_state_name(enum desktop_state state)
{
	return name_of(NAMES(desktop_states), state);
}

int desktop_state_parse(const char *name, enum desktop_state *state)
{
	int v = value_of(NAMES(desktop_states), name);

	if (v >= 0)
		*state = (enum desktop_state)v;
	return v < 0 ? v : 0;
}

/* A desktops row (as rows() returns it) into rec, a struct desktop_rec. Returns 0 or
 * -ENOMEM. */
static int desktop_from_row(const json_t *row, void *rec)
{
	struct desktop_rec *d = rec;
	bool nomem = false;

	*d = (struct desktop_rec){
	    .dr_id = dup_or_null(row, "id", &nomem),
	    .dr_pool = dup_or_null(row, "pool_id", &nomem),
	    .dr_host = dup_or_null(row, "host_id", &nomem),
	    .dr_address = dup_or_null(row, "address", &nomem),
	    .dr_vnc_password = dup_or_null(row, "vnc_password", &nomem),
	    .dr_owner = dup_or_null(row, "owner", &nomem),
	    .dr_host_state = dup_or_null(row, "host_state", &nomem),
	    .dr_failure = dup_or_null(row, "failure", &nomem),
	    .dr_failure_detail = json_is_object(json_object_get(row, "failure_detail"))
				     ? json_incref(json_object_get(row, "failure_detail"))
				     : NULL,
	    .dr_on_host = json_is_true(json_object_get(row, "on_host")),
	    .dr_in_use = json_is_true(json_object_get(row, "in_use")),
	    .dr_since = json_integer_value(json_object_get(row, "since")),
	    .dr_created = json_integer_value(json_object_get(row, "created")),
	};
	if (desktop_state_parse(json_string_value(json_object_get(row, "state")), &d->dr_state) < 0)
		d->dr_state = DESKTOP_ERROR; /* only the broker writes states */
	if (nomem) {
		desktop_rec_release(d);
		return -ENOMEM;
	}
	return 0;
}

void desktop_rec_release(struct desktop_rec *d)
{
	free(d->dr_id);
	free(d->dr_pool);
	free(d->dr_host);
	free(d->dr_address);
	if (d->dr_vnc_password)
		explicit_bzero(d->dr_vnc_password, strlen(d->dr_vnc_password));
	free(d->dr_vnc_password);
	free(d->dr_owner);
	free(d->dr_host_state);
	free(d->dr_failure);
	json_decref(d->dr_failure_detail);
	memset(d, 0, sizeof(*d));
}

void desktop_list_free(struct desktop_list *l)
{
	for (size_t i = 0; i < l->dl_n; i++)
		desktop_rec_release(&l->dl_recs[i]);
	free(l->dl_recs);
	memset(l, 0, sizeof(*l));
}

enum desktop_life desktop_rec_life(const struct desktop_rec *d)
{
	enum desktop_life vmm =
	    d->dr_on_host ? desktop_life_of_vmm(d->dr_host_state) : LIFE_PLACING;
	bool live = vmm == LIFE_BOOTING || vmm == LIFE_READY || vmm == LIFE_STOPPING;

	switch (d->dr_state) {
	case DESKTOP_PROVISIONING:
		if (!d->dr_on_host || vmm == LIFE_FAILED)
			return vmm;
		return LIFE_BOOTING; /* ready once the broker has seen it running */
	case DESKTOP_READY:
		if (vmm == LIFE_READY || vmm == LIFE_PLACING) /* PLACING: not heard of yet */
			return d->dr_in_use ? LIFE_IN_USE : LIFE_READY;
		return vmm;
	case DESKTOP_STOPPED:
	case DESKTOP_REFRESHING:
	case DESKTOP_DELETING: return live ? LIFE_STOPPING : LIFE_STOPPED;
	case DESKTOP_ERROR:
	case DESKTOP_LOST: return LIFE_FAILED;
	default: return LIFE_PLACING;
	}
}

json_t *desktop_rec_json(const struct desktop_rec *d)
{
	return json_pack(
	    "{s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:s, s:o, s:b, s:I, s:I, s:b, s:o, s:o}", "id",
	    string_or_null(d->dr_id), "pool_id", string_or_null(d->dr_pool), "host_id",
	    string_or_null(d->dr_host), "address", string_or_null(d->dr_address), "vnc_password",
	    string_or_null(d->dr_vnc_password), "owner", string_or_null(d->dr_owner), "state",
	    desktop_state_name(d->dr_state), "life", desktop_life_name(desktop_rec_life(d)),
	    "host_state", string_or_null(d->dr_host_state), "on_host", d->dr_on_host, "since",
	    (json_int_t)d->dr_since, "created", (json_int_t)d->dr_created, "in_use", d->dr_in_use,
	    "failure", string_or_null(d->dr_failure), "failure_detail",
	    d->dr_failure_detail ? json_incref(d->dr_failure_detail) : json_null());
}

#define DESKTOP_COLUMNS                                                                            \
	"d.*, EXISTS (SELECT 1 FROM sessions x WHERE x.desktop_id = d.id AND "                     \
	"x.state <> 'logged_off') AS in_use"

/* The rows of a desktops query into out. */
static int desktops_of_rows(json_t *all, struct desktop_list *out)
{
	void *recs;
	int r = records_of_rows(all, sizeof(*out->dl_recs), desktop_from_row, &recs, &out->dl_n);

	out->dl_recs = recs;
	if (r < 0)
		desktop_list_free(out);
	return r;
}

int store_desktops_list(struct store *s, const char *pool, const char *host,
			struct desktop_list *out)
{
	return desktops_of_rows(rows(s,
				     "SELECT " DESKTOP_COLUMNS " FROM desktops d "
				     "WHERE (?1 IS NULL OR d.pool_id = ?1) AND "
				     "(?2 IS NULL OR d.host_id = ?2) "
				     "ORDER BY d.state <> 'ready', d.created, d.id",
				     "ss", pool, host),
				out);
}

int store_desktop_get(struct store *s, const char *id, struct desktop_rec *out)
{
	return record_of_rows(
	    rows(s, "SELECT " DESKTOP_COLUMNS " FROM desktops d WHERE d.id = ?", "s", id),
	    sizeof(*out), desktop_from_row, out);
}

int store_desktop_add(struct store *s, const char *id, const char *pool, const char *host,
		      const char *address, const char *vnc_password, const char *owner,
		      enum desktop_state state, int64_t now)
{
	int r = run(s,
		    "INSERT INTO desktops (id, pool_id, host_id, address, vnc_password, owner, "
		    "state, since, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		    "sssssssii", id, pool, host, address, vnc_password, owner,
		    desktop_state_name(state), now, now);

	return r < 0 ? r : 0;
}

int store_desktop_set_state(struct store *s, const char *id, enum desktop_state from,
			    enum desktop_state to, int64_t now)
{
	return run(s,
		   "UPDATE desktops SET state = ?1, since = ?2 WHERE id = ?3 AND "
		   "(?4 IS NULL OR state = ?4)",
		   "siss", desktop_state_name(to), now, id, desktop_state_name(from));
}

int store_desktop_set_error(struct store *s, const char *id, enum desktop_state from,
			    const char *cause, int64_t now)
{
	return run(s,
		   "UPDATE desktops SET state = 'error', since = ?1, failure = ?2 WHERE id = ?3 "
		   "AND state = ?4",
		   "isss", now, cause, id, desktop_state_name(from));
}

int store_pool_replace_failed(struct store *s, const char *pool, int64_t now)
{
	return run(s,
		   "UPDATE desktops SET state = 'deleting', since = ?1 "
		   "WHERE pool_id = ?2 AND state = 'error'",
		   "is", now, pool);
}

int store_desktop_set_owner(struct store *s, const char *id, const char *owner)
{
	int r = run(s, "UPDATE desktops SET owner = ? WHERE id = ?", "ss", owner, id);

	return r == 0 ? -ENOENT : r < 0 ? r : 0;
}

int store_desktop_set_host_state(struct store *s, const char *id, const char *host_state)
{
	int r = run(s, "UPDATE desktops SET host_state = ? WHERE id = ?", "ss", host_state, id);

	return r == 0 ? -ENOENT : r < 0 ? r : 0;
}

int store_desktop_set_on_host(struct store *s, const char *id, bool on_host)
{
	int r = run(s, "UPDATE desktops SET on_host = ? WHERE id = ?", "bs", (int)on_host, id);

	return r == 0 ? -ENOENT : r < 0 ? r : 0;
}

int store_desktop_delete(struct store *s, const char *id)
{
	int r = run(s, "DELETE FROM desktops WHERE id = ?", "s", id);

	return r == 0 ? -ENOENT : r < 0 ? r : 0;
}

/* ---- sessions ---- */

static const char *const session_states[] = {
    [SESSION_CONNECTED] = "connected",
    [SESSION_DISCONNECTED] = "disconnected",
    [SESSION_LOGGED_OFF] = "logged_off",
};

const char *session_state_name(enum session_state state)
{
	return name_of(NAMES(session_states), state);
}

int session_state_parse(const char *name, enum session_state *state)
{
	int v = value_of(NAMES(session_states), name);

	if (v >= 0)
		*state = (enum session_state)v;
	return v < 0 ? v : 0;
}

/* A sessions row into rec, a struct session_rec. Returns 0 or -ENOMEM. */
static int session_from_row(const json_t *row, void *rec)
{
	struct session_rec *r = rec;
	bool nomem = false;

	*r = (struct session_rec){
	    .sr_id = dup_or_null(row, "id", &nomem),
	    .sr_user = dup_or_null(row, "username", &nomem),
	    .sr_pool = dup_or_null(row, "pool_id", &nomem),
	    .sr_desktop = dup_or_null(row, "desktop_id", &nomem),
	    .sr_client_addr = dup_or_null(row, "client_addr", &nomem),
	    .sr_attached = json_is_true(json_object_get(row, "attached")),
	    .sr_since = json_integer_value(json_object_get(row, "since")),
	    .sr_created = json_integer_value(json_object_get(row, "created")),
	};
	if (session_state_parse(json_string_value(json_object_get(row, "state")), &r->sr_state) < 0)
		r->sr_state = SESSION_LOGGED_OFF; /* the table's CHECK allows no other */
	if (nomem) {
		session_rec_release(r);
		return -ENOMEM;
	}
	return 0;
}

void session_rec_release(struct session_rec *r)
{
	free(r->sr_id);
	free(r->sr_user);
	free(r->sr_pool);
	free(r->sr_desktop);
	free(r->sr_client_addr);
	memset(r, 0, sizeof(*r));
}

void session_list_free(struct session_list *l)
{
	for (size_t i = 0; i < l->sl_n; i++)
		session_rec_release(&l->sl_recs[i]);
	free(l->sl_recs);
	memset(l, 0, sizeof(*l));
}

json_t *session_rec_json(const struct session_rec *r)
{
	return json_pack(
	    "{s:o, s:o, s:o, s:o, s:s, s:b, s:o, s:I, s:I}", "id", string_or_null(r->sr_id),
	    "username", string_or_null(r->sr_user), "pool_id", string_or_null(r->sr_pool),
	    "desktop_id", string_or_null(r->sr_desktop), "state", session_state_name(r->sr_state),
	    "attached", r->sr_attached, "client_addr", string_or_null(r->sr_client_addr), "created",
	    (json_int_t)r->sr_created, "since", (json_int_t)r->sr_since);
}

/* The rows of a sessions query into out. */
static int sessions_of_rows(json_t *all, struct session_list *out)
{
	void *recs;
	int r = records_of_rows(all, sizeof(*out->sl_recs), session_from_row, &recs, &out->sl_n);

	out->sl_recs = recs;
	if (r < 0)
		session_list_free(out);
	return r;
}

int store_sessions_list(struct store *s, const char *user, const char *pool, bool live,
			struct session_list *out)
{
	return sessions_of_rows(
	    rows(s,
		 "SELECT * FROM sessions WHERE (?1 IS NULL OR username = ?1) AND "
		 "(?2 IS NULL OR pool_id = ?2) AND (?3 = 0 OR state <> "
		 "'logged_off') ORDER BY state = 'connected', since DESC, id",
		 "ssb", user, pool, (int)live),
	    out);
}

int store_session_get(struct store *s, const char *id, struct session_rec *out)
{
	return record_of_rows(rows(s, "SELECT * FROM sessions WHERE id = ?", "s", id), sizeof(*out),
			      session_from_row, out);
}

int store_session_add(struct store *s, const char *id, const char *user, const char *pool,
		      const char *desktop, enum session_state state, const char *client_addr,
		      int64_t now)
{
	int r = run(s,
		    "INSERT INTO sessions (id, username, pool_id, desktop_id, state, client_addr, "
		    "created, since) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		    "ssssssii", id, user, pool, desktop, session_state_name(state), client_addr,
		    now, now);

	return r < 0 ? r : 0;
}

int store_session_set_state(struct store *s, const char *id, enum session_state state, int64_t now)
{
	int r = run(s, "UPDATE sessions SET state = ?, since = ? WHERE id = ?", "sis",
		    session_state_name(state), now, id);

	return r == 0 ? -ENOENT : r < 0 ? r : 0;
}

int store_session_set_attached(struct store *s, const char *id, bool attached)
{
	int r = run(s, "UPDATE sessions SET attached = ? WHERE id = ?", "bs", (int)attached, id);

	return r == 0 ? -ENOENT : r < 0 ? r : 0;
}

/* ---- tickets ---- */

int store_ticket_add(struct store *s, const char *hash, const char *session, const char *user,
		     const char *desktop, int64_t now, int64_t expires_at)
{
	int r = run(s,
		    "INSERT INTO tickets (hash, session_id, username, desktop_id, created, "
		    "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
		    "ssssii", hash, session, user, desktop, now, expires_at);

	return r < 0 ? r : 0;
}

/* A tickets row into rec, a struct ticket_rec. Returns 0 or -ENOMEM. */
static int ticket_from_row(const json_t *row, void *rec)
{
	struct ticket_rec *t = rec;
	bool nomem = false;

	*t = (struct ticket_rec){
	    .tr_hash = dup_or_null(row, "hash", &nomem),
	    .tr_session = dup_or_null(row, "session_id", &nomem),
	    .tr_user = dup_or_null(row, "username", &nomem),
	    .tr_desktop = dup_or_null(row, "desktop_id", &nomem),
	    .tr_created = json_integer_value(json_object_get(row, "created")),
	    .tr_expires_at = json_integer_value(json_object_get(row, "expires_at")),
	    .tr_redeemed_at = json_integer_value(json_object_get(row, "redeemed_at")),
	};
	if (nomem) {
		ticket_rec_release(t);
		return -ENOMEM;
	}
	return 0;
}

void ticket_rec_release(struct ticket_rec *t)
{
	free(t->tr_hash);
	free(t->tr_session);
	free(t->tr_user);
	free(t->tr_desktop);
	memset(t, 0, sizeof(*t));
}

int store_ticket_redeem(struct store *s, const char *hash, int64_t now, struct ticket_rec *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	lock(s);
	r = run(s,
		"UPDATE tickets SET redeemed_at = ?1 WHERE hash = ?2 AND redeemed_at IS NULL AND "
		"expires_at > ?1",
		"is", now, hash);
	if (r == 1)
		r = record_of_rows(rows(s, "SELECT * FROM tickets WHERE hash = ?", "s", hash),
				   sizeof(*out), ticket_from_row, out);
	else if (r >= 0)
		r = -EACCES;
	unlock(s);
	return r;
}

int store_tickets_live(struct store *s, const char *session, int64_t now)
{
	json_t *v = one(rows(s,
			     "SELECT count(*) AS n FROM tickets WHERE session_id = ? AND "
			     "redeemed_at IS NULL AND expires_at > ?",
			     "si", session, now));
	int n = v ? (int)json_integer_value(json_object_get(v, "n")) : -EIO;

	json_decref(v);
	return n;
}

/* ---- web sessions ---- */

int store_websession_add(struct store *s, const char *token_hash, const char *username,
			 const char *display_name, const json_t *groups, bool admin,
			 const char *csrf, bool bearer, const char *client_addr, int64_t now,
			 int64_t expires_at)
{
	char *g = dump(groups);
	int r;

	if (!g)
		return -ENOMEM;
	r = run(s,
		"INSERT INTO web_sessions (token_hash, username, display_name, groups, admin, "
		"csrf, bearer, client_addr, created, last_seen, expires_at) "
		"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		"ssssbsbsiii", token_hash, username, display_name, g, (int)admin, csrf, (int)bearer,
		client_addr, now, now, expires_at);
	free(g);
	return r < 0 ? r : 0;
}

json_t *store_websession_get(struct store *s, const char *token_hash, int64_t now,
			     int64_t idle_before)
{
	json_t *w = one(rows(s,
			     "SELECT * FROM web_sessions WHERE token_hash = ? AND expires_at > ? "
			     "AND last_seen >= ?",
			     "sii", token_hash, now, idle_before));

	if (w && num(w, "last_seen") + 60 <= now)
		run(s, "UPDATE web_sessions SET last_seen = ? WHERE token_hash = ?", "is", now,
		    token_hash);
	return w;
}

json_t *store_websession_users(struct store *s, int64_t now)
{
	return rows(s,
		    "SELECT DISTINCT username FROM web_sessions WHERE expires_at > ? "
		    "ORDER BY username",
		    "i", now);
}

json_t *store_websessions_of_user(struct store *s, const char *username, int64_t now)
{
	return rows(s,
		    "SELECT substr(token_hash, 1, 16) AS id, client_addr, bearer, admin, created, "
		    "last_seen, expires_at FROM web_sessions WHERE username = ? AND expires_at > ? "
		    "ORDER BY created DESC",
		    "si", username, now);
}

int store_websessions_set_user(struct store *s, const char *username, const json_t *groups,
			       bool admin)
{
	char *g = dump(groups);
	int r;

	if (!g)
		return -ENOMEM;
	r = run(s, "UPDATE web_sessions SET groups = ?, admin = ? WHERE username = ?", "sbs", g,
		(int)admin, username);
	free(g);
	return r < 0 ? r : 0;
}

int store_websessions_delete_user(struct store *s, const char *username)
{
	return run(s, "DELETE FROM web_sessions WHERE username = ?", "s", username);
}

int store_websession_delete(struct store *s, const char *token_hash)
{
	int r = run(s, "DELETE FROM web_sessions WHERE token_hash = ?", "s", token_hash);

	return r == 0 ? -ENOENT : r < 0 ? r : 0;
}

int store_purge(struct store *s, int64_t now, int64_t before, int64_t audit_before)
{
	int a = run(s, "DELETE FROM web_sessions WHERE expires_at <= ?", "i", now);
	int b = run(s, "DELETE FROM tickets WHERE expires_at < ?", "i", before);
	int c = run(s, "DELETE FROM audit WHERE time < ?", "i", audit_before);

	return a < 0 ? a : b < 0 ? b : c < 0 ? c : a + b + c;
}

/* ---- audit ---- */

int store_audit(struct store *s, int64_t now, const char *actor, const char *action,
		const char *target, const char *result, const char *client_addr, const char *detail)
{
	int r = run(s,
		    "INSERT INTO audit (time, actor, action, target, result, client_addr, detail) "
		    "VALUES (?, ?, ?, ?, ?, ?, ?)",
		    "issssss", now, actor, action, target, result, client_addr, detail);

	return r < 0 ? r : 0;
}

json_t *store_audit_list(struct store *s, int limit, int64_t before)
{
	return rows(s, "SELECT * FROM audit WHERE (?1 <= 0 OR id < ?1) ORDER BY id DESC LIMIT ?2",
		    "ii", before, (int64_t)limit);
}
