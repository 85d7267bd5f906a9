/* The broker object: broker_open() opens the store, the authenticator (local users
 * from the store) and the client of the hosts; broker_close() stops the maintenance
 * thread and closes them. What the broker does is in the files named after each job
 * (broker/README.md). */
#include "broker/broker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/auth.h"
#include "broker/hostclient.h"
#include "broker/internal.h"

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
	pthread_cond_init(&b->b_wake, NULL);
	if (mkdir(cfg->bc_state_dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", cfg->bc_state_dir, strerror(errno));
		goto out_close;
	}
	snprintf(path, sizeof(path), "%s/broker.db", cfg->bc_state_dir);
	b->b_store = store_open(path, err, errlen);
	if (!b->b_store)
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
	hostclient_free(b->b_hosts);
	auth_close(b->b_auth);
	store_close(b->b_store);
	pthread_cond_destroy(&b->b_wake);
	pthread_mutex_destroy(&b->b_lock);
	free(b);
}
