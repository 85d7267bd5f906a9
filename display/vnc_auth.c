/* VNC authentication (see vnc_auth.h). DES is single DES in ECB mode; OpenSSL 3 keeps
 * single DES in its legacy provider only, so it is run as two-key triple DES with both
 * keys equal (E_K(D_K(E_K(x))) is E_K(x)), which the default provider has. */
#include "display/vnc_auth.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
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
