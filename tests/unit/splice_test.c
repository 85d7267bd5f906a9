/* Unit tests for net/splice on plain streams over socketpairs: bytes cross both ways and
 * a side's end ends the splice; a half-closing side's end reaches the other side while
 * the answer still comes back; the filter sees (and may change) what a side sends; the
 * idle deadline ends a silent splice. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/splice.h"

struct rig {
	int r_peer[2]; /* the test's ends: the client's, the server's */
	struct splice r_sp;
	uint8_t r_buf[2][4096], r_in[4096];
	pthread_t r_thread;
	int r_end;
};

static void *run(void *arg)
{
	struct rig *r = arg;

	r->r_end = splice_run(&r->r_sp);
	return NULL;
}

static void rig_start(struct rig *r, unsigned flags0)
{
	int a[2], b[2];

	memset(r, 0, sizeof(*r));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	r->r_peer[0] = a[0];
	r->r_peer[1] = b[0];
	for (int i = 0; i < 2; i++) {
		r->r_sp.sp_side[i].sd_stream = stream_new(i ? b[1] : a[1], NULL);
		r->r_sp.sp_side[i].sd_out = r->r_buf[i];
		r->r_sp.sp_side[i].sd_out_size = sizeof(r->r_buf[i]);
	}
	r->r_sp.sp_side[0].sd_flags = flags0;
	r->r_sp.sp_stop_fd = -1;
	r->r_sp.sp_tick_ms = -1;
	r->r_sp.sp_arg = r;
}

static void rig_go(struct rig *r)
{
	assert_int_equal(pthread_create(&r->r_thread, NULL, run, r), 0);
}

static int rig_wait(struct rig *r)
{
	pthread_join(r->r_thread, NULL);
	for (int i = 0; i < 2; i++) {
		stream_close(r->r_sp.sp_side[i].sd_stream);
		close(r->r_peer[i]);
	}
	return r->r_end;
}

static void expect(int fd, const char *text)
{
	char buf[64] = "";

	assert_int_equal(recv(fd, buf, strlen(text), MSG_WAITALL), (ssize_t)strlen(text));
	assert_string_equal(buf, text);
}

static void test_both_ways_then_end(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, 0);
	rig_go(&r);
	assert_int_equal(write(r.r_peer[0], "hello", 5), 5);
	expect(r.r_peer[1], "hello");
	assert_int_equal(write(r.r_peer[1], "world", 5), 5);
	expect(r.r_peer[0], "world");
	shutdown(r.r_peer[0], SHUT_WR);
	assert_int_equal(rig_wait(&r), SPLICE_EOF);
	assert_int_equal(r.r_sp.sp_end_side, 0);
	assert_int_equal(r.r_sp.sp_side[0].sd_read, 5);
	assert_int_equal(r.r_sp.sp_side[0].sd_written, 5);
}

static void test_half_close(void **state)
{
	struct rig r;
	char c;

	(void)state;
	rig_start(&r, SPLICE_HALF_CLOSE | SPLICE_DRAIN);
	rig_go(&r);
	assert_int_equal(write(r.r_peer[0], "request", 7), 7);
	shutdown(r.r_peer[0], SHUT_WR);
	expect(r.r_peer[1], "request");
	assert_int_equal(read(r.r_peer[1], &c, 1), 0); /* the end, passed on */
	assert_int_equal(write(r.r_peer[1], "answer", 6), 6);
	shutdown(r.r_peer[1], SHUT_WR);
	expect(r.r_peer[0], "answer");
	assert_int_equal(rig_wait(&r), SPLICE_EOF);
	assert_int_equal(r.r_sp.sp_end_side, 1);
}

static ssize_t upper(struct splice *sp, int from, uint8_t *in, size_t n)
{
	for (size_t i = 0; i < n; i++)
		in[i] = (uint8_t)toupper(in[i]);
	if (memchr(in, '!', n))
		return -1;
	return splice_put(sp, 1 - from, in, n) ? (ssize_t)n : 0;
}

static void test_filter(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, 0);
	r.r_sp.sp_filter = upper;
	r.r_sp.sp_side[0].sd_in = r.r_in;
	r.r_sp.sp_side[0].sd_in_size = sizeof(r.r_in);
	rig_go(&r);
	assert_int_equal(write(r.r_peer[0], "quiet", 5), 5);
	expect(r.r_peer[1], "QUIET");
	assert_int_equal(write(r.r_peer[0], "loud!", 5), 5);
	assert_int_equal(rig_wait(&r), SPLICE_FILTER);
}

static void test_idle(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, 0);
	r.r_sp.sp_idle_ms = 50;
	rig_go(&r);
	assert_int_equal(rig_wait(&r), SPLICE_IDLE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_both_ways_then_end),
	    cmocka_unit_test(test_half_close),
	    cmocka_unit_test(test_filter),
	    cmocka_unit_test(test_idle),
	};
	return cmocka_run_group_tests_name("splice", tests, NULL, NULL);
}
