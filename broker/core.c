/* What every broker module shares and nothing in it calls back: the maintenance
 * thread's wake-up, domain results, and the accessors of the opaque
 * broker object for the HTTP layer. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "broker/internal.h"
#include "lib/log.h"

void broker_kick(struct broker *b)
{
	pthread_mutex_lock(&b->b_lock);
	b->b_kicked = true;
	pthread_cond_signal(&b->b_wake);
	pthread_mutex_unlock(&b->b_lock);
}

enum broker_outcome broker_result_set(struct broker_result *res, enum broker_outcome outcome,
				      const char *reason, const char *fmt, ...)
{
	va_list ap;

	res->br_outcome = outcome;
	res->br_reason = reason;
	va_start(ap, fmt);
	vsnprintf(res->br_message, sizeof(res->br_message), fmt, ap);
	va_end(ap);
	return outcome;
}

const struct broker_config *broker_config(const struct broker *b)
{
	return b->b_cfg;
}

void broker_set_gateway(struct broker *b, struct gateway *gw)
{
	b->b_gateway = gw;
}

struct gateway *broker_gateway(const struct broker *b)
{
	return b->b_gateway;
}
