/* Counters, gauges and histograms that any thread may update without a lock (C11
 * atomics), and the Prometheus text exposition format (version 0.0.4) they are read in:
 * "# HELP" and "# TYPE" lines, samples "name{label="value"} number", histograms as
 * cumulative _bucket{le=...} lines with _sum and _count. No I/O, no HTTP: the daemons'
 * metrics.c files say which figures exist and serve the text. */
#ifndef VDI_LIB_METRICS_H
#define VDI_LIB_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Only ever goes up (a Prometheus counter). Zero-initialised. */
struct metrics_counter {
	_Atomic uint64_t mc_value;
};

/* Goes up and down (connections open now). Zero-initialised. */
struct metrics_gauge {
	_Atomic int64_t mg_value;
};

#define METRICS_BUCKETS_MAX 16

/* Observations counted into fixed buckets: mh_bounds holds mh_nbounds ascending upper
 * bounds (at most METRICS_BUCKETS_MAX); a last bucket, +Inf, takes the rest. The sum is
 * kept in millionths (microseconds for durations in seconds), so it is exact and atomic. */
struct metrics_histogram {
	const double *mh_bounds;
	size_t mh_nbounds;
	_Atomic uint64_t mh_counts[METRICS_BUCKETS_MAX + 1]; /* per bucket, not cumulative */
	_Atomic uint64_t mh_sum_millionths;
};

#define METRICS_HISTOGRAM(bounds)                                                                  \
	{                                                                                          \
		.mh_bounds = (bounds), .mh_nbounds = sizeof(bounds) / sizeof((bounds)[0])          \
	}

void metrics_counter_add(struct metrics_counter *c, uint64_t n);
uint64_t metrics_counter_get(struct metrics_counter *c);
void metrics_gauge_add(struct metrics_gauge *g, int64_t n);
int64_t metrics_gauge_get(struct metrics_gauge *g);
/* Counts v (negative values count as 0) into its bucket. */
void metrics_histogram_observe(struct metrics_histogram *h, double v);

/* The text of one scrape, grown as it is written. An allocation failure or a malformed
 * metric or label name is remembered and makes metrics_text_take() fail, so a caller
 * writes everything and checks once. */
struct metrics_text {
	char *mt_buf;
	size_t mt_len, mt_cap;
	bool mt_failed;
};

void metrics_text_init(struct metrics_text *t);
/* Returns the text (a new string; free()), or NULL when something failed; either way t
 * is empty again. */
char *metrics_text_take(struct metrics_text *t);
void metrics_text_free(struct metrics_text *t);

/* Whether name is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or label name
 * ([a-zA-Z_][a-zA-Z0-9_]*, not beginning with "__"). */
bool metrics_name_valid(const char *name);
bool metrics_label_name_valid(const char *name);

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram); help is
 * escaped (backslash, newline). Every family is written once, before its samples. */
void metrics_family(struct metrics_text *t, const char *name, const char *type, const char *help);
/* One sample: name, then label name and value pairs (const char *) ending with NULL,
 * then nothing else: metrics_sample(t, "vdi_logins_total", 3, "result", "ok", NULL).
 * Label values are escaped (backslash, double quote, newline). Integral values are
 * written as integers, infinities as +Inf and -Inf. */
void metrics_sample(struct metrics_text *t, const char *name, double value, ...)
    __attribute__((sentinel));
/* The samples of histogram h under name: name_bucket for each bound and +Inf
 * (cumulative), name_sum and name_count; label is NULL or one label name with its
 * value. */
void metrics_histogram_write(struct metrics_text *t, const char *name, struct metrics_histogram *h,
			     const char *label, const char *value);

#endif
