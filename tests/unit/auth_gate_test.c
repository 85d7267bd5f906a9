/* Unit tests for auth/gate: slots taken at once, the bounded queue (the surplus turned
 * away without waiting), waiters let in as slots are given back, and the bounded wait.
 * The test thread itself holds the slots, so it decides when they come free; every
 * wait here has a deadline and alarm() ends a run that hangs anyway. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/gate.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits (at most 5 s) until the gate counts inside and waiting callers. */
static void expect_counts(struct gate *g, int inside, int waiting)
{
	int64_t deadline = now_ms() + 5000;
	int in, w;

	for (;;) {
		gate_counts(g, &in, &w);
		if (in == inside && w == waiting)
			return;
		if (now_ms() > deadline)
			fail_msg("gate: %d inside, %d waiting; expected %d and %d", in, w, inside,
				 waiting);
		usleep(1000);
	}
}

struct waiter {
	struct gate *w_gate;
	int w_timeout_ms;
	int w_result;
	int64_t w_waited_ms;
};

/* Enters with a timeout and leaves at once: a login that got its turn. */
static void *wait_turn(void *arg)
{
	struct waiter *w = arg;
	int64_t start = now_ms();

	w->w_result = gate_enter(w->w_gate, w->w_timeout_ms);
	w->w_waited_ms = now_ms() - start;
	if (w->w_result == 0)
		gate_leave(w->w_gate);
	return NULL;
}

static void test_slots_and_queue(void **state)
{
	struct gate *g = gate_new(2, 1);
	struct waiter w = {.w_gate = g, .w_timeout_ms = 5000, .w_result = 1};
	pthread_t th;

	(void)state;
	assert_non_null(g);
	/* two slots: taken at once, by this thread */
	assert_int_equal(gate_enter(g, 0), 0);
	assert_int_equal(gate_enter(g, 0), 0);
	expect_counts(g, 2, 0);
	/* the third caller waits in the queue... */
	assert_int_equal(pthread_create(&th, NULL, wait_turn, &w), 0);
	expect_counts(g, 2, 1);
	/* ...and with the queue full the next one is turned away without waiting */
	int64_t start = now_ms();
	assert_int_equal(gate_enter(g, 5000), -EBUSY);
	assert_true(now_ms() - start < 1000);
	/* a slot given back lets the waiter in */
	gate_leave(g);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.w_result, 0);
	expect_counts(g, 1, 0);
	gate_leave(g);
	expect_counts(g, 0, 0);
	gate_free(g);
}

static void test_bounded_wait(void **state)
{
	struct gate *g = gate_new(1, 4);
	struct waiter w = {.w_gate = g, .w_timeout_ms = 200, .w_result = 1};
	pthread_t th;

	(void)state;
	assert_int_equal(gate_enter(g, 0), 0);
	assert_int_equal(pthread_create(&th, NULL, wait_turn, &w), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.w_result, -ETIMEDOUT);
	assert_true(w.w_waited_ms >= 190 && w.w_waited_ms < 3000);
	/* the timed-out waiter left the queue */
	expect_counts(g, 1, 0);
	gate_leave(g);
	/* free again: entered at once */
	assert_int_equal(gate_enter(g, 0), 0);
	gate_leave(g);
	gate_free(g);
}

static void test_no_queue(void **state)
{
	struct gate *g = gate_new(1, 0);

	(void)state;
	assert_int_equal(gate_enter(g, 1000), 0);
	assert_int_equal(gate_enter(g, 1000), -EBUSY);
	gate_leave(g);
	assert_int_equal(gate_enter(g, 1000), 0);
	gate_leave(g);
	gate_free(g);
	assert_null(gate_new(0, 1));
	assert_null(gate_new(1, -1));
}

/* Many threads through a small gate: never more than its slots inside at once. */
struct crowd {
	struct gate *c_gate;
	pthread_mutex_t c_lock;
	int c_inside, c_max, c_entered, c_refused;
};

static void *crowd_member(void *arg)
{
	struct crowd *c = arg;

	for (int i = 0; i < 50; i++) {
		int r = gate_enter(c->c_gate, 5000);

		pthread_mutex_lock(&c->c_lock);
		if (r == 0) {
			c->c_entered++;
			if (++c->c_inside > c->c_max)
				c->c_max = c->c_inside;
		} else {
			c->c_refused++;
		}
		pthread_mutex_unlock(&c->c_lock);
		if (r < 0)
			continue;
		usleep(100);
		pthread_mutex_lock(&c->c_lock);
		c->c_inside--;
		pthread_mutex_unlock(&c->c_lock);
		gate_leave(c->c_gate);
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct crowd c = {.c_gate = gate_new(2, 3)};
	pthread_t th[8];

	(void)state;
	pthread_mutex_init(&c.c_lock, NULL);
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&th[i], NULL, crowd_member, &c), 0);
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(c.c_entered + c.c_refused, 8 * 50);
	assert_true(c.c_max <= 2);
	assert_true(c.c_entered > 0);
	expect_counts(c.c_gate, 0, 0);
	pthread_mutex_destroy(&c.c_lock);
	gate_free(c.c_gate);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_slots_and_queue),
	    cmocka_unit_test(test_bounded_wait),
	    cmocka_unit_test(test_no_queue),
	    cmocka_unit_test(test_threads),
	};

	alarm(60); /* a hang is a failure, not a stuck build */
	return cmocka_run_group_tests_name("auth_gate", tests, NULL, NULL);
}
