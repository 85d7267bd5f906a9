/* Login throttling: a fixed table of counters keyed by a digest of the account name,
 * the client address, or the pair of both, chained hash buckets and an LRU list, all
 * under one mutex. Eviction
 * prefers entries that are not currently locked out, so flooding the table with new
 * addresses does not easily unlock an account under attack. */
#include "auth/throttle.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unicase.h>
#include <unistr.h>

#define NONE	     UINT32_MAX
#define KEY_LEN	     16
#define EVICT_SCAN   16
#define NAME_MAX_LEN 1024

struct throttle_entry {
	uint8_t te_key[KEY_LEN];
	uint32_t te_failures;
	int64_t te_last_failure;
	int64_t te_blocked_until;
	uint32_t te_prev, te_next; /* LRU list, most recent first; te_next links the free list */
	uint32_t te_hnext;	   /* hash chain */
};

struct throttle {
	struct throttle_config t_cfg;
	pthread_mutex_t t_lock;
	struct throttle_entry *t_entries;
	uint32_t *t_buckets;
	uint32_t t_nbuckets; /* power of two */
	uint32_t t_head, t_tail, t_free;
};

struct throttle *throttle_new(const struct throttle_config *cfg)
{
	struct throttle *t;
	uint32_t n;

	if (cfg->tc_user_failures < 1 || cfg->tc_account_failures < 1 ||
	    cfg->tc_addr_failures < 1 || cfg->tc_window < 1 || cfg->tc_base_delay < 1 ||
	    cfg->tc_max_delay < cfg->tc_base_delay || cfg->tc_entries < 1 ||
	    cfg->tc_entries > (1 << 24)) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->t_cfg = *cfg;
	n = (uint32_t)cfg->tc_entries;
	for (t->t_nbuckets = 1; t->t_nbuckets < n; t->t_nbuckets <<= 1)
		;
	t->t_entries = calloc(n, sizeof(*t->t_entries));
	t->t_buckets = malloc(t->t_nbuckets * sizeof(*t->t_buckets));
	if (!t->t_entries || !t->t_buckets) {
		throttle_free(t);
		errno = ENOMEM;
		return NULL;
	}
	for (uint32_t i = 0; i < t->t_nbuckets; i++)
		t->t_buckets[i] = NONE;
	for (uint32_t i = 0; i < n; i++)
		t->t_entries[i].te_next = i + 1 < n ? i + 1 : NONE;
	t->t_free = 0;
	t->t_head = t->t_tail = NONE;
	pthread_mutex_init(&t->t_lock, NULL);
	return t;
}

void throttle_free(struct throttle *t)
{
	if (!t)
		return;
	if (t->t_entries && t->t_buckets)
		pthread_mutex_destroy(&t->t_lock);
	free(t->t_entries);
	free(t->t_buckets);
	free(t);
}

/* Appends the address in binary: an IPv6 address reduced to its /64, an IPv4-mapped
 * one to IPv4; anything else (a name, "-") as text. */
static size_t put_addr(const char *addr, unsigned char *buf, size_t len, size_t cap)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	uint8_t a6[16];

	if (inet_pton(AF_INET, addr, buf + len) == 1)
		return len + 4;
	if (inet_pton(AF_INET6, addr, a6) == 1) {
		if (!memcmp(a6, mapped, sizeof(mapped))) {
			memcpy(buf + len, a6 + 12, 4);
			return len + 4;
		}
		memcpy(buf + len, a6, 8);
		return len + 8;
	}
	for (const char *p = addr; *p && len < cap; p++)
		buf[len++] = (unsigned char)*p;
	return len;
}

/* Appends the account name folded the way directories compare names: Unicode's
 * NFKC_Casefold (compatibility forms such as fullwidth letters to their plain ones, then
 * full case folding), so that no other spelling of a name the directory takes for the
 * same account gets fresh attempts. A name that is not UTF-8 is used as it is. */
static size_t put_user(const char *user, unsigned char *buf, size_t len, size_t cap)
{
	size_t n = strlen(user), folded_len = 0;
	uint8_t *folded =
	    u8_check((const uint8_t *)user, n)
		? NULL
		: u8_casefold((const uint8_t *)user, n, NULL, UNINORM_NFKC, NULL, &folded_len);
	const unsigned char *p = folded ? folded : (const unsigned char *)user;
	size_t m = folded ? folded_len : n;

	for (size_t i = 0; i < m && len < cap; i++)
		buf[len++] = p[i];
	free(folded);
	return len;
}

/* Digest of the kind and what it names: 'u' an account, 'a' an address, 'p' an account
 * as tried from one address (name, NUL, address). */
static bool make_key(char kind, const char *user, const char *addr, uint8_t key[KEY_LEN])
{
	unsigned char buf[2 + NAME_MAX_LEN + 1 + 64], md[EVP_MAX_MD_SIZE];
	size_t len = 2, cap = 2 + NAME_MAX_LEN;
	unsigned int mdlen;

	buf[0] = (unsigned char)kind;
	buf[1] = ':';
	if (kind != 'a')
		len = put_user(user, buf, len, cap);
	if (kind == 'p')
		buf[len++] = '\0';
	if (kind != 'u')
		len = put_addr(addr ? addr : "-", buf, len, sizeof(buf) - 16);
	if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		return false;
	memcpy(key, md, KEY_LEN);
	return true;
}

static uint32_t bucket_of(const struct throttle *t, const uint8_t key[KEY_LEN])
{
	uint32_t h;

	memcpy(&h, key, sizeof(h));
	return h & (t->t_nbuckets - 1);
}

static void lru_unlink(struct throttle *t, uint32_t i)
{
	struct throttle_entry *e = &t->t_entries[i];

	if (e->te_prev != NONE)
		t->t_entries[e->te_prev].te_next = e->te_next;
	else
		t->t_head = e->te_next;
	if (e->te_next != NONE)
		t->t_entries[e->te_next].te_prev = e->te_prev;
	else
		t->t_tail = e->te_prev;
}

static void lru_push_front(struct throttle *t, uint32_t i)
{
	struct throttle_entry *e = &t->t_entries[i];

	e->te_prev = NONE;
	e->te_next = t->t_head;
	if (t->t_head != NONE)
		t->t_entries[t->t_head].te_prev = i;
	t->t_head = i;
	if (t->t_tail == NONE)
		t->t_tail = i;
}

static uint32_t find(struct throttle *t, const uint8_t key[KEY_LEN])
{
	for (uint32_t i = t->t_buckets[bucket_of(t, key)]; i != NONE; i = t->t_entries[i].te_hnext)
		if (!memcmp(t->t_entries[i].te_key, key, KEY_LEN))
			return i;
	return NONE;
}

static void remove_entry(struct throttle *t, uint32_t i)
{
	struct throttle_entry *e = &t->t_entries[i];
	uint32_t *link = &t->t_buckets[bucket_of(t, e->te_key)];

	while (*link != i)
		link = &t->t_entries[*link].te_hnext;
	*link = e->te_hnext;
	lru_unlink(t, i);
	memset(e, 0, sizeof(*e));
	e->te_next = t->t_free;
	t->t_free = i;
}

static uint32_t insert(struct throttle *t, const uint8_t key[KEY_LEN], int64_t now)
{
	struct throttle_entry *e;
	uint32_t i, b;

	if (t->t_free == NONE) {
		uint32_t victim = t->t_tail;

		i = t->t_tail;
		for (int n = 0; i != NONE && n < EVICT_SCAN; n++, i = t->t_entries[i].te_prev)
			if (t->t_entries[i].te_blocked_until <= now) {
				victim = i;
				break;
			}
		remove_entry(t, victim);
	}
	i = t->t_free;
	e = &t->t_entries[i];
	t->t_free = e->te_next;
	memcpy(e->te_key, key, KEY_LEN);
	b = bucket_of(t, key);
	e->te_hnext = t->t_buckets[b];
	t->t_buckets[b] = i;
	lru_push_front(t, i);
	return i;
}

static int64_t wait_for(struct throttle *t, char kind, const char *user, const char *addr,
			int64_t now)
{
	uint8_t key[KEY_LEN];
	uint32_t i;

	if ((kind == 'a' ? !addr : !user) || !make_key(kind, user, addr, key))
		return 0;
	i = find(t, key);
	if (i == NONE)
		return 0;
	lru_unlink(t, i);
	lru_push_front(t, i);
	return t->t_entries[i].te_blocked_until > now ? t->t_entries[i].te_blocked_until - now : 0;
}

int throttle_check(struct throttle *t, const char *user, const char *addr, int64_t now)
{
	int64_t p, u, a;

	pthread_mutex_lock(&t->t_lock);
	p = wait_for(t, 'p', user, addr, now);
	u = wait_for(t, 'u', user, addr, now);
	a = wait_for(t, 'a', user, addr, now);
	pthread_mutex_unlock(&t->t_lock);
	if (u > p)
		p = u;
	return (int)(p > a ? p : a);
}

static void count_failure(struct throttle *t, char kind, const char *user, const char *addr,
			  int limit, int64_t now)
{
	struct throttle_entry *e;
	uint8_t key[KEY_LEN];
	int64_t delay;
	uint32_t i, over;

	if ((kind == 'a' ? !addr : !user) || !make_key(kind, user, addr, key))
		return;
	i = find(t, key);
	if (i == NONE) {
		i = insert(t, key, now);
	} else {
		lru_unlink(t, i);
		lru_push_front(t, i);
	}
	e = &t->t_entries[i];
	if (e->te_failures && now - e->te_last_failure >= t->t_cfg.tc_window)
		e->te_failures = 0;
	if (e->te_failures < UINT32_MAX)
		e->te_failures++;
	e->te_last_failure = now;
	if (e->te_failures < (uint32_t)limit)
		return;
	over = e->te_failures - (uint32_t)limit;
	delay = over >= 31 ? t->t_cfg.tc_max_delay : (int64_t)t->t_cfg.tc_base_delay << over;
	if (delay > t->t_cfg.tc_max_delay)
		delay = t->t_cfg.tc_max_delay;
	if (now + delay > e->te_blocked_until)
		e->te_blocked_until = now + delay;
}

void throttle_failure(struct throttle *t, const char *user, const char *addr, int64_t now)
{
	pthread_mutex_lock(&t->t_lock);
	count_failure(t, 'p', user, addr, t->t_cfg.tc_user_failures, now);
	count_failure(t, 'u', user, addr, t->t_cfg.tc_account_failures, now);
	count_failure(t, 'a', user, addr, t->t_cfg.tc_addr_failures, now);
	pthread_mutex_unlock(&t->t_lock);
}

void throttle_success(struct throttle *t, const char *user, const char *addr, int64_t now)
{
	uint8_t key[KEY_LEN];
	uint32_t i;

	(void)now;
	if (!user)
		return;
	pthread_mutex_lock(&t->t_lock);
	for (const char *kind = "up"; *kind; kind++) {
		if (!make_key(*kind, user, addr, key))
			continue;
		i = find(t, key);
		if (i != NONE)
			remove_entry(t, i);
	}
	pthread_mutex_unlock(&t->t_lock);
}
