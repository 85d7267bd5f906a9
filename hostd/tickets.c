/* The ticket table: a small array under a mutex (a host has at most a few
 * hundred desktops and tickets live seconds), holding SHA-256 digests compared
 * in constant time. */
#include "hostd/tickets.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIGEST_LEN 32

struct ticket {
	unsigned char tk_digest[DIGEST_LEN];
	char tk_desktop[DESKTOP_ID_MAX + 1];
	long long tk_expires;
	bool tk_view_only;
};

struct tickets {
	pthread_mutex_t t_lock;
	struct ticket *t_items;
	size_t t_count;
};

struct tickets *tickets_create(void)
{
	struct tickets *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->t_items = calloc(TICKETS_MAX, sizeof(*t->t_items));
	if (!t->t_items) {
		free(t);
		return NULL;
	}
	pthread_mutex_init(&t->t_lock, NULL);
	return t;
}

void tickets_free(struct tickets *t)
{
	if (!t)
		return;
	OPENSSL_cleanse(t->t_items, TICKETS_MAX * sizeof(*t->t_items));
	free(t->t_items);
	pthread_mutex_destroy(&t->t_lock);
	free(t);
}

bool tickets_valid(const char *ticket)
{
	size_t n = strlen(ticket);

	if (n < TICKET_MIN_LEN || n > TICKET_MAX_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = ticket[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return false;
	}
	return true;
}

static int digest(const char *ticket, unsigned char out[DIGEST_LEN])
{
	unsigned int len = 0;

	if (!EVP_Digest(ticket, strlen(ticket), out, &len, EVP_sha256(), NULL) || len != DIGEST_LEN)
		return -EIO;
	return 0;
}

static void remove_at(struct tickets *t, size_t i)
{
	t->t_items[i] = t->t_items[--t->t_count];
	OPENSSL_cleanse(&t->t_items[t->t_count], sizeof(t->t_items[0]));
}

static ssize_t find(struct tickets *t, const unsigned char d[DIGEST_LEN])
{
	ssize_t found = -1;

	/* Every entry is compared, in constant time, whatever matches. */
	for (size_t i = 0; i < t->t_count; i++)
		if (!CRYPTO_memcmp(t->t_items[i].tk_digest, d, DIGEST_LEN))
			found = (ssize_t)i;
	return found;
}

static void drop_expired_and(struct tickets *t, const char *desktop_id, long long now)
{
	for (size_t i = t->t_count; i-- > 0;)
		if (t->t_items[i].tk_expires <= now ||
		    (desktop_id && !strcmp(t->t_items[i].tk_desktop, desktop_id)))
			remove_at(t, i);
}

int tickets_add(struct tickets *t, const char *ticket, const char *desktop_id, long long expires,
		bool view_only, long long now)
{
	unsigned char d[DIGEST_LEN];
	struct ticket *tk;
	int r = 0;

	if (!tickets_valid(ticket) || !desktop_id_valid(desktop_id))
		return -EINVAL;
	if (digest(ticket, d) < 0)
		return -EIO;
	pthread_mutex_lock(&t->t_lock);
	if (find(t, d) >= 0) {
		r = -EEXIST;
		goto out_unlock;
	}
	drop_expired_and(t, desktop_id, now);
	if (t->t_count == TICKETS_MAX) {
		r = -ENOSPC;
		goto out_unlock;
	}
	tk = &t->t_items[t->t_count++];
	memcpy(tk->tk_digest, d, DIGEST_LEN);
	snprintf(tk->tk_desktop, sizeof(tk->tk_desktop), "%s", desktop_id);
	tk->tk_expires = expires;
	tk->tk_view_only = view_only;
out_unlock:
	pthread_mutex_unlock(&t->t_lock);
	OPENSSL_cleanse(d, sizeof(d));
	return r;
}

int tickets_redeem(struct tickets *t, const char *ticket, long long now,
		   char desktop_id[DESKTOP_ID_MAX + 1], bool *view_only)
{
	unsigned char d[DIGEST_LEN];
	ssize_t i;
	int r = -ENOENT;

	if (!tickets_valid(ticket) || digest(ticket, d) < 0)
		return -ENOENT;
	pthread_mutex_lock(&t->t_lock);
	i = find(t, d);
	if (i >= 0) {
		struct ticket *tk = &t->t_items[i];

		r = tk->tk_expires > now ? 0 : -ETIMEDOUT;
		if (!r) {
			memcpy(desktop_id, tk->tk_desktop, DESKTOP_ID_MAX + 1);
			*view_only = tk->tk_view_only;
		}
		remove_at(t, (size_t)i);
	}
	pthread_mutex_unlock(&t->t_lock);
	OPENSSL_cleanse(d, sizeof(d));
	return r;
}

void tickets_revoke(struct tickets *t, const char *desktop_id)
{
	pthread_mutex_lock(&t->t_lock);
	for (size_t i = t->t_count; i-- > 0;)
		if (!strcmp(t->t_items[i].tk_desktop, desktop_id))
			remove_at(t, i);
	pthread_mutex_unlock(&t->t_lock);
}

size_t tickets_count(struct tickets *t)
{
	size_t n;

	pthread_mutex_lock(&t->t_lock);
	n = t->t_count;
	pthread_mutex_unlock(&t->t_lock);
	return n;
}
