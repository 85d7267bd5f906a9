/* The broker object: broker_open() opens the store, the authenticator (local users
 * from the store) and the client of the hosts; broker_close() stops the maintenance
 * thread and closes them. What the broker does is in the files named after each job
 * (broker/README.md). */
#include "broker/broker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "broker/hostclient.h"
#include "broker/internal.h"
#include "lib/file.h"

/* The state directory (0700) and the database with its WAL files (0600) are the
 * broker's alone, also when they were made before under a looser umask: existing modes
 * are tightened, and a symlink or another user's file is refused. The database is made
 * here, 0600, before SQLite opens it (SQLite gives its WAL files the database's mode).
 * Returns 0 or -1 with err set. */
static int private_files(const char *dir, const char *db, char *err, size_t errlen)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	char path[4200];
	int fd, r;

	if ((r = file_make_private(dir, 0700)) < 0) {
		snprintf(err, errlen, "%s: %s", dir,
			 r == -ELOOP   ? "a symbolic link: refused"
			 : r == -EPERM ? "belongs to another user: refused"
				       : strerror(-r));
		return -1;
	}
	fd = open(db, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", db,
			 errno == ELOOP ? "a symbolic link: refused" : strerror(errno));
		return -1;
	}
	close(fd);
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", db, suffixes[i]);
		r = file_make_private(path, 0600);
		if (r < 0 && r != -ENOENT) {
			snprintf(err, errlen, "%s: %s", path,
				 r == -ELOOP   ? "a symbolic link: refused"
				 : r == -EPERM ? "belongs to another user: refused"
					       : strerror(-r));
			return -1;
		}
	}
	return 0;
}

struct broker *broker_open(const struct broker_config *cfg, char *err, size_t errlen)
{
	struct broker *b = calloc(1, sizeof(*b));
	struct auth_user_source source = {0};
	char path[4200];

	if (!b) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	b->b_cfg = cfg;
	pthread_mutex_init(&b->b_lock, NULL);
	pthread_mutex_init(&b->b_tally_lock, NULL);
	pthread_cond_init(&b->b_wake, NULL);
	pthread_mutex_init(&b->b_alerts_lock, NULL);
	b->b_host_alerts = json_object();
	if (!b->b_host_alerts) {
		snprintf(err, errlen, "out of memory");
		goto out_close;
	}
	if (mkdir(cfg->bc_state_dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", cfg->bc_state_dir, strerror(errno));
		goto out_close;
	}
	snprintf(path, sizeof(path), "%s/broker.db", cfg->bc_state_dir);
	if (private_files(cfg->bc_state_dir, path, err, errlen) < 0)
		goto out_close;
	b->b_store = store_open(path, err, errlen);
	if (!b->b_store || private_files(cfg->bc_state_dir, path, err, errlen) < 0)
		goto out_close;
	source.aus_lookup = websession_lookup_user;
	source.aus_set_hash = websession_set_user_hash;
	source.aus_ctx = b;
	b->b_auth = auth_open(&cfg->bc_auth, &source, err, errlen);
	if (!b->b_auth)
		goto out_close;
	if (cfg->bc_host_cert[0]) {
		b->b_hosts = hostclient_new(cfg->bc_host_cert, cfg->bc_host_key, cfg->bc_host_ca,
					    cfg->bc_host_request_timeout);
		if (!b->b_hosts) {
			snprintf(err, errlen, "out of memory");
			goto out_close;
		}
	}
	return b;

out_close:
	broker_close(b);
	return NULL;
}

void broker_close(struct broker *b)
{
	if (!b)
		return;
	broker_stop(b);
	if (b->b_store)
		audit_flush(b, (int64_t)time(NULL), true);
	free(b->b_tallies);
	pthread_mutex_destroy(&b->b_tally_lock);
	hostclient_free(b->b_hosts);
	auth_close(b->b_auth);
	store_close(b->b_store);
	pthread_cond_destroy(&b->b_wake);
	pthread_mutex_destroy(&b->b_lock);
	json_decref(b->b_host_alerts);
	pthread_mutex_destroy(&b->b_alerts_lock);
	free(b);
}
