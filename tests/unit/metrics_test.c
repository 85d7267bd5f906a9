/* Unit tests for lib/metrics: counters and gauges, histogram buckets and sums, and the
 * Prometheus text format: HELP/TYPE lines, labels and their escaping, values, names
 * refused. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/metrics.h"

static char *take(struct metrics_text *t)
{
	char *s = metrics_text_take(t);

	assert_non_null(s);
	return s;
}

static void family_and_samples(void **state)
{
	struct metrics_text t;
	char *s;

	(void)state;
	metrics_text_init(&t);
	metrics_family(&t, "vdi_logins_total", "counter", "Logins by result.\nSecond line \\ end");
	metrics_sample(&t, "vdi_logins_total", 3, "result", "ok", NULL);
	metrics_sample(&t, "vdi_logins_total", 0, "result", "bad_credentials", NULL);
	metrics_family(&t, "vdi_up", "gauge", "Up.");
	metrics_sample(&t, "vdi_up", 1, NULL);
	metrics_sample(&t, "vdi_ratio", 0.25, "a", "x", "b", "y", NULL);
	s = take(&t);
	assert_string_equal(s, "# HELP vdi_logins_total Logins by result.\\nSecond line \\\\ end\n"
			       "# TYPE vdi_logins_total counter\n"
			       "vdi_logins_total{result=\"ok\"} 3\n"
			       "vdi_logins_total{result=\"bad_credentials\"} 0\n"
			       "# HELP vdi_up Up.\n"
			       "# TYPE vdi_up gauge\n"
			       "vdi_up 1\n"
			       "vdi_ratio{a=\"x\",b=\"y\"} 0.25\n");
	free(s);
}

static void label_values_escaped(void **state)
{
	struct metrics_text t;
	char *s;

	(void)state;
	metrics_text_init(&t);
	metrics_sample(&t, "m", 1, "pool", "a\"b\\c\nd", NULL);
	s = take(&t);
	assert_string_equal(s, "m{pool=\"a\\\"b\\\\c\\nd\"} 1\n");
	free(s);
}

static void values(void **state)
{
	struct metrics_text t;
	char *s;

	(void)state;
	metrics_text_init(&t);
	metrics_sample(&t, "a", 18446744073709551615.0, NULL);
	metrics_sample(&t, "b", -2, NULL);
	metrics_sample(&t, "c", 1.0 / 0.0, NULL);
	metrics_sample(&t, "d", 0.005, NULL);
	metrics_sample(&t, "e", 123456789012345.0, NULL);
	s = take(&t);
	assert_string_equal(s, "a 1.8446744073709552e+19\nb -2\nc +Inf\nd 0.005\n"
			       "e 123456789012345\n");
	free(s);
}

static void bad_names_fail_the_scrape(void **state)
{
	static const char *const bad[] = {"", "1abc", "a-b", "a b", "é", NULL};
	struct metrics_text t;

	(void)state;
	for (size_t i = 0; bad[i]; i++) {
		metrics_text_init(&t);
		metrics_sample(&t, bad[i], 1, NULL);
		assert_null(metrics_text_take(&t));
		metrics_text_init(&t);
		metrics_sample(&t, "ok", 1, bad[i], "v", NULL);
		assert_null(metrics_text_take(&t));
	}
	metrics_text_init(&t);
	metrics_sample(&t, "ok", 1, "__reserved", "v", NULL);
	assert_null(metrics_text_take(&t));
	metrics_text_init(&t);
	metrics_sample(&t, "ok", 1, "a:b", "v", NULL);
	assert_null(metrics_text_take(&t));
	metrics_text_init(&t);
	metrics_family(&t, "ok", "summary", "unsupported type");
	assert_null(metrics_text_take(&t));
	assert_true(metrics_name_valid("vdi:rule_x"));
	assert_true(metrics_label_name_valid("_x9"));
	/* nothing written: an empty text, not a failure */
	metrics_text_init(&t);
	char *s = take(&t);
	assert_string_equal(s, "");
	free(s);
}

static const double bounds[] = {0.01, 0.1, 1};

static void histogram_buckets_sum_count(void **state)
{
	struct metrics_histogram h = METRICS_HISTOGRAM(bounds);
	struct metrics_text t;
	char *s;

	(void)state;
	metrics_histogram_observe(&h, 0.005);
	metrics_histogram_observe(&h, 0.01); /* on a bound: that bucket (le is <=) */
	metrics_histogram_observe(&h, 0.5);
	metrics_histogram_observe(&h, 7);
	metrics_histogram_observe(&h, -1); /* counts as 0 */
	metrics_text_init(&t);
	metrics_histogram_write(&t, "lat_seconds", &h, NULL, NULL);
	metrics_histogram_write(&t, "lat_seconds", &h, "op", "x");
	s = take(&t);
	assert_string_equal(s, "lat_seconds_bucket{le=\"0.01\"} 3\n"
			       "lat_seconds_bucket{le=\"0.1\"} 3\n"
			       "lat_seconds_bucket{le=\"1\"} 4\n"
			       "lat_seconds_bucket{le=\"+Inf\"} 5\n"
			       "lat_seconds_sum 7.515\n"
			       "lat_seconds_count 5\n"
			       "lat_seconds_bucket{op=\"x\",le=\"0.01\"} 3\n"
			       "lat_seconds_bucket{op=\"x\",le=\"0.1\"} 3\n"
			       "lat_seconds_bucket{op=\"x\",le=\"1\"} 4\n"
			       "lat_seconds_bucket{op=\"x\",le=\"+Inf\"} 5\n"
			       "lat_seconds_sum{op=\"x\"} 7.515\n"
			       "lat_seconds_count{op=\"x\"} 5\n");
	free(s);
}

static struct metrics_counter shared_counter;
static struct metrics_histogram shared_hist = METRICS_HISTOGRAM(bounds);
static struct metrics_gauge shared_gauge;

static void *hammer(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100000; i++) {
		metrics_counter_add(&shared_counter, 1);
		metrics_histogram_observe(&shared_hist, 0.05);
		metrics_gauge_add(&shared_gauge, i % 2 ? -1 : 1);
	}
	return NULL;
}

static void concurrent_updates_lose_nothing(void **state)
{
	pthread_t th[4];
	struct metrics_text t;
	char *s;

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(metrics_counter_get(&shared_counter), 400000);
	assert_int_equal(metrics_gauge_get(&shared_gauge), 0);
	metrics_text_init(&t);
	metrics_histogram_write(&t, "h", &shared_hist, NULL, NULL);
	s = take(&t);
	assert_non_null(strstr(s, "h_bucket{le=\"0.1\"} 400000\n"));
	assert_non_null(strstr(s, "h_sum 20000\n"));
	assert_non_null(strstr(s, "h_count 400000\n"));
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(family_and_samples),
	    cmocka_unit_test(label_values_escaped),
	    cmocka_unit_test(values),
	    cmocka_unit_test(bad_names_fail_the_scrape),
	    cmocka_unit_test(histogram_buckets_sum_count),
	    cmocka_unit_test(concurrent_updates_lose_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
