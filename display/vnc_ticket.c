/* Ticket store and authentication throttle for the VNC server (see vnc_ticket.h). Passwords
 * are kept as their first 8 bytes only, wiped when replaced, and compared through RFB's
 * DES challenge-response (display/vnc_auth.h). */
#include "display/vnc_ticket.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "display/vnc_auth.h"

struct vnc_ticket {
	bool tk_set;
	int64_t tk_expires;
	char tk_key[VNC_TICKET_LEN + 1]; /* NUL-terminated for vnc_auth_response() */
};

struct vnc_tickets {
	pthread_mutex_t t_lock;
	struct vnc_ticket t_full;
	struct vnc_ticket t_view_only[VNC_TICKET_VIEW_ONLY_MAX];
};

static void wipe(void *p, size_t n)
{
	explicit_bzero(p, n);
}

struct vnc_tickets *vnc_tickets_create(void)
{
	struct vnc_tickets *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	pthread_mutex_init(&t->t_lock, NULL);
	return t;
}

void vnc_tickets_free(struct vnc_tickets *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->t_lock);
	wipe(t, sizeof(*t));
	free(t);
}

static bool live(const struct vnc_ticket *tk, int64_t now)
{
	return tk->tk_set && tk->tk_expires > now;
}

static bool same_key(const struct vnc_ticket *tk, const char *key, int64_t now)
{
	return live(tk, now) && memcmp(tk->tk_key, key, VNC_TICKET_LEN) == 0;
}

int vnc_tickets_set(struct vnc_tickets *t, const char *password, int64_t expires, bool view_only,
		    int64_t now)
{
	size_t len = password ? strnlen(password, VNC_TICKET_PASSWORD_MAX + 1) : 0;
	char key[VNC_TICKET_LEN];
	struct vnc_ticket *slot = NULL;
	int err = 0;

	if (len < VNC_TICKET_LEN || len > VNC_TICKET_PASSWORD_MAX)
		return -EINVAL;
	if (expires <= now)
		return -ETIMEDOUT;
	memcpy(key, password, VNC_TICKET_LEN);
	pthread_mutex_lock(&t->t_lock);
	if (view_only) {
		if (same_key(&t->t_full, key, now)) {
			err = -EEXIST;
			goto out_unlock;
		}
		for (size_t i = 0; i < VNC_TICKET_VIEW_ONLY_MAX && !slot; i++)
			if (same_key(&t->t_view_only[i], key, now))
				slot = &t->t_view_only[i];
		for (size_t i = 0; i < VNC_TICKET_VIEW_ONLY_MAX && !slot; i++)
			if (!live(&t->t_view_only[i], now))
				slot = &t->t_view_only[i];
		if (!slot) {
			err = -ENOSPC;
			goto out_unlock;
		}
	} else {
		for (size_t i = 0; i < VNC_TICKET_VIEW_ONLY_MAX; i++)
			if (same_key(&t->t_view_only[i], key, now)) {
				err = -EEXIST;
				goto out_unlock;
			}
		slot = &t->t_full;
	}
	wipe(slot, sizeof(*slot));
	memcpy(slot->tk_key, key, VNC_TICKET_LEN);
	slot->tk_expires = expires;
	slot->tk_set = true;
out_unlock:
	pthread_mutex_unlock(&t->t_lock);
	wipe(key, sizeof(key));
	return err;
}

void vnc_tickets_clear(struct vnc_tickets *t)
{
	pthread_mutex_lock(&t->t_lock);
	wipe(&t->t_full, sizeof(t->t_full));
	wipe(t->t_view_only, sizeof(t->t_view_only));
	pthread_mutex_unlock(&t->t_lock);
}

bool vnc_tickets_any(struct vnc_tickets *t, int64_t now)
{
	bool any;

	pthread_mutex_lock(&t->t_lock);
	any = live(&t->t_full, now);
	for (size_t i = 0; i < VNC_TICKET_VIEW_ONLY_MAX; i++)
		any = any || live(&t->t_view_only[i], now);
	pthread_mutex_unlock(&t->t_lock);
	return any;
}

/* Whether the response is the challenge encrypted with the ticket's key; every byte is
 * compared whatever the first difference. */
static bool response_matches(const struct vnc_ticket *tk, const uint8_t *challenge,
			     const uint8_t *response)
{
	uint8_t expected[VNC_TICKET_CHALLENGE_SIZE];
	unsigned diff = 0;
	int r = vnc_auth_response(expected, challenge, tk->tk_key);

	for (size_t i = 0; i < sizeof(expected); i++)
		diff |= expected[i] ^ response[i];
	wipe(expected, sizeof(expected));
	return r == 0 && diff == 0;
}

enum vnc_ticket_access vnc_tickets_check(struct vnc_tickets *t, const uint8_t *challenge,
					 const uint8_t *response, int64_t now)
{
	enum vnc_ticket_access access = VNC_TICKET_REFUSED;

	pthread_mutex_lock(&t->t_lock);
	if (live(&t->t_full, now) && response_matches(&t->t_full, challenge, response))
		access = VNC_TICKET_FULL;
	for (size_t i = 0; i < VNC_TICKET_VIEW_ONLY_MAX && access == VNC_TICKET_REFUSED; i++)
		if (live(&t->t_view_only[i], now) &&
		    response_matches(&t->t_view_only[i], challenge, response))
			access = VNC_TICKET_VIEW_ONLY;
	pthread_mutex_unlock(&t->t_lock);
	return access;
}

/* ---- throttle ---- */

static uint64_t delay_ms(unsigned failures, unsigned free_failures, uint64_t max_ms)
{
	unsigned shift;

	if (failures <= free_failures)
		return 0;
	shift = failures - free_failures - 1;
	if (shift > 20)
		return max_ms;
	return (uint64_t)VNC_THROTTLE_BASE_MS << shift > max_ms
		   ? max_ms
		   : (uint64_t)VNC_THROTTLE_BASE_MS << shift;
}

/* The entry of source, or NULL; with create, a new or reused one (the least recent). A
 * source quiet for VNC_THROTTLE_FORGET_MS and not blocked starts over. */
static struct vnc_throttle_source *find_source(struct vnc_throttle *th, const char *source,
					       uint64_t now_ms, bool create)
{
	struct vnc_throttle_source *oldest = &th->th_sources[0];

	if (!source[0])
		source = "?";
	for (size_t i = 0; i < VNC_THROTTLE_SOURCES; i++) {
		struct vnc_throttle_source *s = &th->th_sources[i];

		if (s->ts_name[0] && !strncmp(s->ts_name, source, sizeof(s->ts_name) - 1)) {
			if (now_ms >= s->ts_last_ms + VNC_THROTTLE_FORGET_MS &&
			    now_ms >= s->ts_blocked_until_ms)
				s->ts_failures = 0;
			return s;
		}
		if (!s->ts_name[0] || s->ts_last_ms < oldest->ts_last_ms)
			oldest = s;
	}
	if (!create)
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	strncpy(oldest->ts_name, source, sizeof(oldest->ts_name) - 1);
	oldest->ts_last_ms = now_ms;
	return oldest;
}

bool vnc_throttle_allowed(struct vnc_throttle *th, const char *source, uint64_t now_ms,
			  uint64_t *retry_ms)
{
	struct vnc_throttle_source *s = find_source(th, source, now_ms, false);
	uint64_t until = th->th_blocked_until_ms;

	if (s && s->ts_blocked_until_ms > until)
		until = s->ts_blocked_until_ms;
	if (now_ms >= until)
		return true;
	if (retry_ms)
		*retry_ms = until - now_ms;
	return false;
}

void vnc_throttle_failure(struct vnc_throttle *th, const char *source, uint64_t now_ms)
{
	struct vnc_throttle_source *s = find_source(th, source, now_ms, true);
	uint64_t d;

	if (now_ms >= th->th_last_ms + VNC_THROTTLE_FORGET_MS && now_ms >= th->th_blocked_until_ms)
		th->th_failures = 0;
	th->th_last_ms = now_ms;
	if (th->th_failures < 1000)
		th->th_failures++;
	d = delay_ms(th->th_failures, VNC_THROTTLE_GLOBAL_FREE, VNC_THROTTLE_GLOBAL_MAX_MS);
	if (d)
		th->th_blocked_until_ms = now_ms + d;

	s->ts_last_ms = now_ms;
	if (s->ts_failures < 1000)
		s->ts_failures++;
	d = delay_ms(s->ts_failures, VNC_THROTTLE_SOURCE_FREE, VNC_THROTTLE_SOURCE_MAX_MS);
	if (d)
		s->ts_blocked_until_ms = now_ms + d;
}

void vnc_throttle_success(struct vnc_throttle *th, const char *source)
{
	for (size_t i = 0; i < VNC_THROTTLE_SOURCES; i++) {
		struct vnc_throttle_source *s = &th->th_sources[i];

		if (s->ts_name[0] && !strncmp(s->ts_name, source, sizeof(s->ts_name) - 1))
			memset(s, 0, sizeof(*s));
	}
}
