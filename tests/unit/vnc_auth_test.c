/* Unit tests for display/vnc_auth: the DES challenge-response equals libvncserver's
 * rfbEncryptBytes (the reference every VNC viewer agrees with) for short, long and
 * non-ASCII passwords, and a published DES vector for the empty one; the client
 * handshake logs in to a fake RFB 3.8 server with VNC authentication or None, and
 * reports a refused password; the server side, fed whole or a byte at a time, lets in
 * the right password, refuses a wrong one with a reason, and stops at a client that is
 * not RFB 3.x or asks for another security type. */
#include <errno.h>
#include <pthread.h>
#include <rfb/rfb.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "display/vnc_auth.h"

static void reference(const char *password, const uint8_t *challenge, uint8_t *out)
{
	char key[9] = {0};

	strncpy(key, password, 8);
	memcpy(out, challenge, 16);
	rfbEncryptBytes(out, key);
}

static void test_response(void **state)
{
	static const char *const passwords[] = {"a", "ticket12", "0123456789abcdef0123456789abcdef",
						"\xff\x80\x01\x7f\xaa\x55xy"};
	uint8_t challenge[16], want[16], got[16];

	(void)state;
	for (int i = 0; i < 16; i++)
		challenge[i] = (uint8_t)(i * 37 + 11);
	for (size_t i = 0; i < sizeof(passwords) / sizeof(passwords[0]); i++) {
		reference(passwords[i], challenge, want);
		assert_int_equal(vnc_auth_response(got, challenge, passwords[i]), 0);
		assert_memory_equal(got, want, 16);
	}
	/* An empty password is the all-zero key (rfbEncryptBytes leaves the bytes as they
	 * are then): DES of a zero block under a zero key is a published vector. */
	memset(challenge, 0, sizeof(challenge));
	assert_int_equal(vnc_auth_response(got, challenge, ""), 0);
	assert_memory_equal(got, "\x8c\xa6\x4d\xe9\xc1\xb1\x23\xa7", 8);
}

/* A fake server: offers the security types in its argument, and accepts "secret". */
struct fake {
	int f_fd;
	const char *f_types; /* count byte first */
};

static void *fake_server(void *arg)
{
	struct fake *f = arg;
	uint8_t version[12], choice, challenge[16], response[16], want[16];
	bool ok = true;

	for (int i = 0; i < 16; i++)
		challenge[i] = (uint8_t)(200 - i);
	assert_int_equal(write(f->f_fd, "RFB 003.008\n", 12), 12);
	assert_int_equal(read(f->f_fd, version, 12), 12);
	assert_int_equal(write(f->f_fd, f->f_types, 1 + (size_t)f->f_types[0]), 1 + f->f_types[0]);
	if (read(f->f_fd, &choice, 1) != 1)
		return NULL;
	if (choice == 2) {
		assert_int_equal(write(f->f_fd, challenge, 16), 16);
		assert_int_equal(recv(f->f_fd, response, 16, MSG_WAITALL), 16);
		reference("secret", challenge, want);
		ok = !memcmp(want, response, 16);
	}
	assert_int_equal(write(f->f_fd, ok ? "\0\0\0\0" : "\0\0\0\1", 4), 4);
	return NULL;
}

static int login(const char *types, const char *password)
{
	struct fake f = {.f_types = types};
	pthread_t t;
	int sv[2], r;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	f.f_fd = sv[1];
	assert_int_equal(pthread_create(&t, NULL, fake_server, &f), 0);
	r = vnc_auth_login(sv[0], password);
	close(sv[0]);
	pthread_join(t, NULL);
	close(sv[1]);
	return r;
}

static void test_login(void **state)
{
	(void)state;
	assert_int_equal(login("\x02\x01\x02", "secret"), 0);
	assert_int_equal(login("\x01\x02", "secret"), 0);
	assert_int_equal(login("\x01\x02", "wrong"), -EACCES);
	assert_int_equal(login("\x01\x01", NULL), 0);
	assert_int_equal(login("\x01\x10", "secret"), -EPROTO);
}

/* Plays a client against the server side for password, typing typed; feeds step bytes at
 * a time. Returns the last step. */
static enum vnc_auth_step serve(const char *password, const char *typed, const char *version,
				uint8_t type, size_t step)
{
	struct vnc_auth_server vs;
	uint8_t in[VNC_AUTH_SERVER_IN], out[VNC_AUTH_SERVER_OUT], challenge[16] = {0};
	enum vnc_auth_step st = VNC_AUTH_MORE;
	size_t pos = 0, len;

	assert_int_equal(vnc_auth_server_init(&vs, password), 0);
	memcpy(in, version, 12);
	in[12] = type;
	while (pos < sizeof(in) && st == VNC_AUTH_MORE) {
		size_t n = sizeof(in) - pos < step ? sizeof(in) - pos : step;

		if (pos == 13) /* the response, to the challenge the server sent */
			reference(typed, challenge, in + 13);
		pos += vnc_auth_server_feed(&vs, in + pos, n, out, &len, &st);
		if (pos == 12 && st == VNC_AUTH_MORE)
			assert_memory_equal(out, "\x01\x02", 2);
		if (pos == 13 && st == VNC_AUTH_MORE) {
			assert_int_equal(len, 16);
			memcpy(challenge, out, 16);
		}
	}
	if (st == VNC_AUTH_OK)
		assert_memory_equal(out, "\0\0\0\0", len);
	if (st == VNC_AUTH_REFUSED)
		assert_memory_equal(out, "\0\0\0\1", 4);
	return st;
}

static void test_server(void **state)
{
	static const char *const v38 = "RFB 003.008\n";

	(void)state;
	for (size_t step = 1; step <= VNC_AUTH_SERVER_IN; step += 28) {
		assert_int_equal(serve("ticket1234", "ticket12", v38, 2, step), VNC_AUTH_OK);
		assert_int_equal(serve("ticket1234", "ticket13", v38, 2, step), VNC_AUTH_REFUSED);
		assert_int_equal(serve("ticket1234", "ticket12", "GET / HTTP/1", 2, step),
				 VNC_AUTH_BROKEN);
		assert_int_equal(serve("ticket1234", "ticket12", v38, 1, step), VNC_AUTH_BROKEN);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_response),
	    cmocka_unit_test(test_login),
	    cmocka_unit_test(test_server),
	};
	return cmocka_run_group_tests_name("vnc_auth", tests, NULL, NULL);
}
