/* Login throttling per account as tried from one client address, per account from
 * everywhere (a much higher limit), and per client address: after N failures within a
 * window, each further failure doubles a lockout delay up to a cap. Guessing at an
 * account from one address (one NAT, one attacker) thus delays that account there, not
 * its owner elsewhere, until the overall count is reached. Fixed memory (a table with
 * LRU eviction), thread-safe, time passed in by the caller. Not a rate limiter for
 * successful requests. */
#ifndef VDI_AUTH_THROTTLE_H
#define VDI_AUTH_THROTTLE_H

#include <stdint.h>

struct throttle_config {
	int tc_user_failures;	 /* failures of one account from one address before that
				  * account is delayed from that address */
	int tc_account_failures; /* failures of one account from all addresses together
				  * before it is delayed from everywhere */
	int tc_addr_failures;	 /* failures from one address (IPv6: its /64) before it is
				  * delayed */
	int tc_window;		 /* seconds without a failure after which a count restarts */
	int tc_base_delay;	 /* seconds of the first delay; doubles per further failure */
	int tc_max_delay;	 /* seconds, the cap of a delay */
	int tc_entries;		 /* counts remembered (up to three per failure); least
				  * recently used go first */
};

/* Returns a new throttle (copies cfg; bounds-checked: every field >= 1) or NULL with
 * errno set. Free with throttle_free(). */
struct throttle *throttle_new(const struct throttle_config *cfg);
void throttle_free(struct throttle *t);

/* Whether a login for user from addr may be tried at time now (seconds, any epoch as
 * long as it is the same for every call). Returns 0 if allowed, otherwise the seconds
 * to wait before the next try. user or addr may be NULL. Account names compare
 * after Unicode's NFKC_Casefold ("ＡＬＩＣＥ" is "alice", "STRASSE" is "straße"). */
int throttle_check(struct throttle *t, const char *user, const char *addr, int64_t now);

/* Records a failed login (wrong password, unknown user, invalid name): counts for the
 * account from that address, the account, and the address. */
void throttle_failure(struct throttle *t, const char *user, const char *addr, int64_t now);

/* Records a successful login: forgets the account's failures, overall and from that
 * address. The address keeps its count, so one valid account does not reset guessing
 * at others from the same place. */
void throttle_success(struct throttle *t, const char *user, const char *addr, int64_t now);

#endif
