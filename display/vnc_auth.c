/* VNC authentication (see vnc_auth.h). DES is single DES in ECB mode; OpenSSL 3 keeps
 * single DES in its legacy provider only, so it is run as two-key triple DES with both
 * keys equal (E_K(D_K(E_K(x))) is E_K(x)), which the default provider has. */
#include "display/vnc_auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

/* VNC's quirk: the key bytes go to DES with their bits in reverse order. */
static uint8_t reverse_bits(uint8_t b)
{
	uint8_t r = 0;

	for (int i = 0; i < 8; i++)
		if (b & (1u << i))
			r |= (uint8_t)(0x80u >> i);
	return r;
}

int vnc_auth_response(uint8_t out[VNC_AUTH_CHALLENGE_SIZE],
		      const uint8_t challenge[VNC_AUTH_CHALLENGE_SIZE], const char *password)
{
	uint8_t key[16] = {0};
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, tail = 0;
	bool ok;

	for (size_t i = 0; i < 8 && password[i]; i++)
		key[i] = key[i + 8] = reverse_bits((uint8_t)password[i]);
	ok = ctx && EVP_EncryptInit_ex(ctx, EVP_des_ede_ecb(), NULL, key, NULL) == 1 &&
	     EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
	     EVP_EncryptUpdate(ctx, out, &n, challenge, VNC_AUTH_CHALLENGE_SIZE) == 1 &&
	     EVP_EncryptFinal_ex(ctx, out + n, &tail) == 1 && n + tail == VNC_AUTH_CHALLENGE_SIZE;
	EVP_CIPHER_CTX_free(ctx); /* wipes the key schedule */
	explicit_bzero(key, sizeof(key));
	if (!ok)
		memset(out, 0, VNC_AUTH_CHALLENGE_SIZE);
	return ok ? 0 : -EIO;
}

static int recv_all(int fd, void *buf, size_t n)
{
	for (size_t got = 0; got < n;) {
		ssize_t r = recv(fd, (char *)buf + got, n - got, 0);

		if (r == 0)
			return -ECONNRESET;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)r;
	}
	return 0;
}

static int send_all(int fd, const void *buf, size_t n)
{
	return send(fd, buf, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -EIO;
}

int vnc_auth_login(int fd, const char *password)
{
	uint8_t version[12], n, types[255], challenge[16], response[16], result[4];
	bool vnc_auth = false, none = false;
	int r;

	if (recv_all(fd, version, 12) < 0 || memcmp(version, "RFB 003.", 8))
		return -EPROTO;
	if (send_all(fd, "RFB 003.008\n", 12) < 0 || recv_all(fd, &n, 1) < 0 || n == 0 ||
	    recv_all(fd, types, n) < 0)
		return -EPROTO;
	for (unsigned i = 0; i < n; i++) {
		vnc_auth |= types[i] == 2;
		none |= types[i] == 1;
	}
	if (vnc_auth && password) {
		if (send_all(fd, "\x02", 1) < 0 || recv_all(fd, challenge, 16) < 0)
			return -EPROTO;
		r = vnc_auth_response(response, challenge, password);
		if (r == 0)
			r = send_all(fd, response, 16);
		explicit_bzero(response, sizeof(response));
		if (r < 0)
			return -EPROTO;
	} else if (none) {
		if (send_all(fd, "\x01", 1) < 0)
			return -EPROTO;
	} else {
		return -EPROTO;
	}
	if (recv_all(fd, result, 4) < 0)
		return -EPROTO;
	return memcmp(result, "\0\0\0\0", 4) ? -EACCES : 0;
}

/* ---- the server side ---- */

int vnc_auth_server_init(struct vnc_auth_server *vs, const char *password)
{
	memset(vs, 0, sizeof(*vs));
	snprintf(vs->vs_password, sizeof(vs->vs_password), "%s", password);
	return RAND_bytes(vs->vs_challenge, sizeof(vs->vs_challenge)) == 1 ? 0 : -EIO;
}

/* The client's VNC response, checked: SecurityResult OK, or failed with a reason. */
static enum vnc_auth_step check_response(struct vnc_auth_server *vs, uint8_t *out, size_t *out_len)
{
	static const char refused[] = "\0\0\0\1\0\0\0\x16wrong or expired ticket";
	uint8_t expected[VNC_AUTH_CHALLENGE_SIZE];
	int r = vnc_auth_response(expected, vs->vs_challenge, vs->vs_password);
	bool ok = r == 0 && !CRYPTO_memcmp(expected, vs->vs_in + 13, sizeof(expected));

	explicit_bzero(vs->vs_password, sizeof(vs->vs_password));
	explicit_bzero(expected, sizeof(expected));
	if (!ok) {
		memcpy(out, refused, sizeof(refused) - 1);
		*out_len = sizeof(refused) - 1;
		return VNC_AUTH_REFUSED;
	}
	memcpy(out, "\0\0\0\0", 4);
	*out_len = 4;
	return VNC_AUTH_OK;
}

size_t vnc_auth_server_feed(struct vnc_auth_server *vs, const uint8_t *in, size_t n, uint8_t *out,
			    size_t *out_len, enum vnc_auth_step *step)
{
	/* steps end after the ProtocolVersion, the security type and the response */
	size_t next = vs->vs_got < 12 ? 12 : vs->vs_got < 13 ? 13 : VNC_AUTH_SERVER_IN;
	size_t take = next - vs->vs_got < n ? next - vs->vs_got : n;

	*out_len = 0;
	*step = VNC_AUTH_MORE;
	memcpy(vs->vs_in + vs->vs_got, in, take);
	vs->vs_got += take;
	if (vs->vs_got != next)
		return take;
	if (next == 12) {
		/* RFB 3.8: the security types follow the client's ProtocolVersion, not ours */
		memcpy(out, "\x01\x02", 2);
		*out_len = 2;
	} else if (next == 13) {
		if (memcmp(vs->vs_in, "RFB 003.", 8) || vs->vs_in[12] != 2) {
			*step = VNC_AUTH_BROKEN;
			return take;
		}
		memcpy(out, vs->vs_challenge, sizeof(vs->vs_challenge));
		*out_len = sizeof(vs->vs_challenge);
	} else {
		*step = check_response(vs, out, out_len);
	}
	return take;
}
