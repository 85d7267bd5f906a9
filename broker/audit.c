/* The audit log: what admins, users and the broker did, one row each; failures of
 * clients not signed in (wrong logins, unknown tickets) counted per address and minute,
 * so a flood of them costs a row a minute, not a row (and a disk flush) each. Rows
 * older than [broker] audit_retention are purged by the maintenance pass. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/internal.h"
#include "lib/log.h"

/* Addresses counted at once; beyond, failures are counted under the address "*". */
#define TALLY_MAX   1024
#define TALLY_SPARE 8
#define TALLY_SPAN  60
#define TALLY_NAMES 5

struct failure_tally {
	char ft_action[16];
	char ft_addr[48];
	int64_t ft_since;
	unsigned ft_count; /* after the first, written at once */
	char ft_names[TALLY_NAMES][40];
	unsigned ft_nnames;
	char ft_last[200]; /* the last one's detail */
};

static void write_row(struct broker *b, int64_t now, const char *actor, const char *action,
		      const char *target, const char *result, const char *addr, const char *detail)
{
	if (store_audit(b->b_store, now, actor, action, target, result, addr,
			detail && detail[0] ? detail : NULL) < 0)
		log_warnx("audit: cannot record %s %s", action, target ? target : "");
}

void broker_audit(struct broker *b, const char *actor, const char *action, const char *target,
		  const char *result, const char *addr, const char *fmt, ...)
{
	char detail[512] = "";
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(detail, sizeof(detail), fmt, ap);
		va_end(ap);
	}
	write_row(b, (int64_t)time(NULL), actor, action, target, result, addr, detail);
}

static struct failure_tally *tally_find(struct broker *b, const char *action, const char *addr)
{
	for (size_t i = 0; i < b->b_ntallies; i++)
		if (!strcmp(b->b_tallies[i].ft_action, action) &&
		    !strcmp(b->b_tallies[i].ft_addr, addr))
			return &b->b_tallies[i];
	return NULL;
}

static void tally_name(struct failure_tally *t, const char *name)
{
	if (!name || t->ft_nnames == TALLY_NAMES)
		return;
	for (unsigned i = 0; i < t->ft_nnames; i++)
		if (!strcmp(t->ft_names[i], name))
			return;
	snprintf(t->ft_names[t->ft_nnames++], sizeof(t->ft_names[0]), "%s", name);
}

void audit_failure(struct broker *b, const char *actor, const char *action, const char *target,
		   const char *addr, const char *fmt, ...)
{
	int64_t now = (int64_t)time(NULL);
	struct failure_tally *t;
	char detail[200] = "";
	bool first = false;
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(detail, sizeof(detail), fmt, ap);
		va_end(ap);
	}
	if (!addr)
		addr = "?";
	pthread_mutex_lock(&b->b_tally_lock);
	if (!b->b_tallies)
		b->b_tallies = calloc(TALLY_MAX, sizeof(*b->b_tallies));
	t = b->b_tallies ? tally_find(b, action, addr) : NULL;
	if (!t && b->b_tallies) {
		/* the last few places are for "*": every address beyond, per action */
		first = b->b_ntallies < TALLY_MAX - TALLY_SPARE;
		t = first ? NULL : tally_find(b, action, "*");
		if (!t && b->b_ntallies < TALLY_MAX) {
			t = &b->b_tallies[b->b_ntallies++];
			memset(t, 0, sizeof(*t));
			snprintf(t->ft_action, sizeof(t->ft_action), "%s", action);
			snprintf(t->ft_addr, sizeof(t->ft_addr), "%s", first ? addr : "*");
			t->ft_since = now;
		}
	}
	if (t && !first) {
		t->ft_count++;
		tally_name(t, actor);
		snprintf(t->ft_last, sizeof(t->ft_last), "%s", detail);
	}
	pthread_mutex_unlock(&b->b_tally_lock);
	if (first || !t) /* the first of its minute, or no memory to count it */
		write_row(b, now, actor, action, target, "failure", addr, detail);
}

void audit_flush(struct broker *b, int64_t now, bool all)
{
	pthread_mutex_lock(&b->b_tally_lock);
	for (size_t i = 0; i < b->b_ntallies;) {
		struct failure_tally t = b->b_tallies[i];
		char names[TALLY_NAMES * 42] = "", detail[512];

		if (!all && t.ft_since + TALLY_SPAN > now) {
			i++;
			continue;
		}
		b->b_tallies[i] = b->b_tallies[--b->b_ntallies];
		if (!t.ft_count)
			continue;
		for (unsigned n = 0; n < t.ft_nnames; n++)
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
				 n ? ", " : "", t.ft_names[n]);
		snprintf(detail, sizeof(detail),
			 "%u more in the %d s after the first%s%s%s; last: %s", t.ft_count,
			 TALLY_SPAN, names[0] ? " (" : "", names,
			 names[0] ? (t.ft_nnames == TALLY_NAMES ? ", ...)" : ")") : "", t.ft_last);
		pthread_mutex_unlock(&b->b_tally_lock);
		write_row(b, now, NULL, t.ft_action, NULL, "failure", t.ft_addr, detail);
		pthread_mutex_lock(&b->b_tally_lock);
	}
	pthread_mutex_unlock(&b->b_tally_lock);
}
