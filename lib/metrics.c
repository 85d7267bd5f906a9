/* Lock-free counters and histograms, and their Prometheus text format (see metrics.h).
 * Not a registry: the daemons list their own figures when they write a scrape. */
#include "lib/metrics.h"

#include <math.h> /* isnan(), isinf(): macros, no libm */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void metrics_counter_add(struct metrics_counter *c, uint64_t n)
{
	atomic_fetch_add_explicit(&c->mc_value, n, memory_order_relaxed);
}

uint64_t metrics_counter_get(struct metrics_counter *c)
{
	return atomic_load_explicit(&c->mc_value, memory_order_relaxed);
}

void metrics_gauge_add(struct metrics_gauge *g, int64_t n)
{
	atomic_fetch_add_explicit(&g->mg_value, n, memory_order_relaxed);
}

int64_t metrics_gauge_get(struct metrics_gauge *g)
{
	return atomic_load_explicit(&g->mg_value, memory_order_relaxed);
}

void metrics_histogram_observe(struct metrics_histogram *h, double v)
{
	size_t i = 0;

	if (!(v > 0)) /* negative, zero or NaN */
		v = 0;
	while (i < h->mh_nbounds && i < METRICS_BUCKETS_MAX && v > h->mh_bounds[i])
		i++;
	atomic_fetch_add_explicit(&h->mh_counts[i], 1, memory_order_relaxed);
	/* at most 2^63 millionths (about 9e12 s) a sample: beyond, it is clamped */
	v *= 1e6;
	atomic_fetch_add_explicit(&h->mh_sum_millionths,
				  v < 9.2e18 ? (uint64_t)(v + 0.5) : (uint64_t)9.2e18,
				  memory_order_relaxed);
}

/* ---- text ---- */

void metrics_text_init(struct metrics_text *t)
{
	memset(t, 0, sizeof(*t));
}

void metrics_text_free(struct metrics_text *t)
{
	free(t->mt_buf);
	metrics_text_init(t);
}

char *metrics_text_take(struct metrics_text *t)
{
	char *text = t->mt_buf;

	if (t->mt_failed) {
		metrics_text_free(t);
		return NULL;
	}
	if (!text)
		return strdup(""); /* nothing written */
	metrics_text_init(t);
	return text;
}

static void put(struct metrics_text *t, const char *s, size_t n)
{
	if (t->mt_failed)
		return;
	if (t->mt_cap - t->mt_len <= n) {
		size_t cap = t->mt_cap ? t->mt_cap : 4096;
		char *p;

		while (cap - t->mt_len <= n) {
			if (cap > SIZE_MAX / 2) {
				t->mt_failed = true;
				return;
			}
			cap *= 2;
		}
		p = realloc(t->mt_buf, cap);
		if (!p) {
			t->mt_failed = true;
			return;
		}
		t->mt_buf = p;
		t->mt_cap = cap;
	}
	memcpy(t->mt_buf + t->mt_len, s, n);
	t->mt_len += n;
	t->mt_buf[t->mt_len] = '\0';
}

static void puts_(struct metrics_text *t, const char *s)
{
	put(t, s, strlen(s));
}

/* s with backslash and newline escaped, and the double quote too in label values. */
static void put_escaped(struct metrics_text *t, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			puts_(t, "\\\\");
		else if (*s == '\n')
			puts_(t, "\\n");
		else if (*s == '"' && quote)
			puts_(t, "\\\"");
		else
			put(t, s, 1);
	}
}

/* The shortest text that reads back as v ("0.005", not "0.0050000000000000001"). */
static void format_double(char *buf, size_t len, double v)
{
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

static void put_value(struct metrics_text *t, double v)
{
	char buf[64];

	if (isnan(v))
		snprintf(buf, sizeof(buf), "NaN");
	else if (isinf(v))
		snprintf(buf, sizeof(buf), "%sInf", v > 0 ? "+" : "-");
	else if (v > -1e15 && v < 1e15 && v == (double)(long long)v)
		snprintf(buf, sizeof(buf), "%.0f", v);
	else
		format_double(buf, sizeof(buf), v);
	puts_(t, buf);
}

bool metrics_name_valid(const char *name)
{
	if (!name || !name[0] || (name[0] >= '0' && name[0] <= '9'))
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:") ==
	       strlen(name);
}

bool metrics_label_name_valid(const char *name)
{
	return metrics_name_valid(name) && !strchr(name, ':') && strncmp(name, "__", 2);
}

void metrics_family(struct metrics_text *t, const char *name, const char *type, const char *help)
{
	if (!metrics_name_valid(name) ||
	    (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "histogram"))) {
		t->mt_failed = true;
		return;
	}
	puts_(t, "# HELP ");
	puts_(t, name);
	puts_(t, " ");
	put_escaped(t, help, false);
	puts_(t, "\n# TYPE ");
	puts_(t, name);
	puts_(t, " ");
	puts_(t, type);
	puts_(t, "\n");
}

#define LABELS_MAX 8

/* name + suffix, {k="v",...} from n label name and value pairs, and the value. */
static void sample(struct metrics_text *t, const char *name, const char *suffix, double value,
		   const char *const *labels, size_t n)
{
	if (!metrics_name_valid(name)) {
		t->mt_failed = true;
		return;
	}
	puts_(t, name);
	puts_(t, suffix);
	for (size_t i = 0; i < n; i++) {
		if (!metrics_label_name_valid(labels[2 * i]) || !labels[2 * i + 1]) {
			t->mt_failed = true;
			return;
		}
		puts_(t, i ? "," : "{");
		puts_(t, labels[2 * i]);
		puts_(t, "=\"");
		put_escaped(t, labels[2 * i + 1], true);
		puts_(t, "\"");
	}
	puts_(t, n ? "} " : " ");
	put_value(t, value);
	puts_(t, "\n");
}

void metrics_sample(struct metrics_text *t, const char *name, double value, ...)
{
	const char *labels[2 * LABELS_MAX];
	const char *k;
	size_t n = 0;
	va_list ap;

	va_start(ap, value);
	while ((k = va_arg(ap, const char *))) {
		if (n == LABELS_MAX) {
			t->mt_failed = true;
			break;
		}
		labels[2 * n] = k;
		labels[2 * n + 1] = va_arg(ap, const char *);
		n++;
	}
	va_end(ap);
	if (!t->mt_failed)
		sample(t, name, "", value, labels, n);
}

void metrics_histogram_write(struct metrics_text *t, const char *name, struct metrics_histogram *h,
			     const char *label, const char *value)
{
	size_t n = h->mh_nbounds < METRICS_BUCKETS_MAX ? h->mh_nbounds : METRICS_BUCKETS_MAX;
	size_t nl = label ? 1 : 0;
	const char *labels[4] = {label, value};
	uint64_t cumulative = 0;
	char le[64];

	labels[2 * nl] = "le";
	labels[2 * nl + 1] = le;
	for (size_t i = 0; i <= n; i++) {
		cumulative += atomic_load_explicit(&h->mh_counts[i], memory_order_relaxed);
		if (i < n)
			format_double(le, sizeof(le), h->mh_bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		sample(t, name, "_bucket", (double)cumulative, labels, nl + 1);
	}
	sample(t, name, "_sum",
	       (double)atomic_load_explicit(&h->mh_sum_millionths, memory_order_relaxed) / 1e6,
	       labels, nl);
	sample(t, name, "_count", (double)cumulative, labels, nl);
}
