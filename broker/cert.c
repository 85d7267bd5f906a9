/* Self-signed certificate generation with OpenSSL 3 (EVP_EC_gen, X509 with a
 * subjectAltName), both files written with mode 0600; existing ones tightened to it. */
#include "broker/cert.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/file.h"
#include "lib/log.h"
#include "lib/pem.h"

static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

static int generate(const char *crt_path, const char *key_path, char *err, size_t errlen)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	char san[512], host[256] = "";
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	FILE *f = NULL;
	int fd, r = -EIO;

	if (!pkey || !x)
		goto out;
	if (gethostname(host, sizeof(host) - 1) < 0 || !host[0] ||
	    strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") !=
		strlen(host))
		host[0] = '\0';
	snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1,IP:::1%s%s", host[0] ? ",DNS:" : "",
		 host);
	X509_set_version(x, 2);
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		goto out;
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		goto out;
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400);
	X509_set_pubkey(x, pkey);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"vdi-broker (self-signed)", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	if (add_ext(x, NID_subject_alt_name, san) < 0 ||
	    add_ext(x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(x, NID_ext_key_usage, "serverAuth") < 0 || !X509_sign(x, pkey, EVP_sha256()))
		goto out;
	fd = open(key_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		snprintf(err, errlen, "%s: %s", key_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out_quiet;
	}
	if (!PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) || fclose(f) != 0) {
		f = NULL;
		goto out;
	}
	/* 0600 like the key, whatever the umask: the state directory is private */
	fd = open(crt_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f && fd >= 0)
		close(fd);
	if (!f || !PEM_write_X509(f, x) || fclose(f) != 0) {
		f = NULL;
		goto out;
	}
	f = NULL;
	log_info("generated a self-signed HTTPS certificate in %s (%s)", crt_path, san);
	r = 0;
	goto out_quiet;
out:
	snprintf(err, errlen, "cannot generate a self-signed certificate (%s)", crt_path);
out_quiet:
	if (f)
		fclose(f);
	BN_free(bn);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return r;
}

int cert_self_signed(const char *dir, char **cert, char **key, char *err, size_t errlen)
{
	char crt_path[4200], key_path[4200];
	struct stat st;

	*cert = *key = NULL;
	snprintf(crt_path, sizeof(crt_path), "%s/https.crt", dir);
	snprintf(key_path, sizeof(key_path), "%s/https.key", dir);
	if (stat(crt_path, &st) < 0 && stat(key_path, &st) < 0 &&
	    generate(crt_path, key_path, err, errlen) < 0)
		return -EIO;
	/* made before under a looser umask, or by hand: tightened to 0600; a symlink or
	 * another user's file is refused */
	for (int i = 0; i < 2; i++) {
		const char *p = i ? key_path : crt_path;
		int r = file_make_private(p, 0600);

		if (r < 0) {
			snprintf(err, errlen, "%s: %s", p,
				 r == -ELOOP   ? "a symbolic link: refused"
				 : r == -EPERM ? "belongs to another user: refused"
					       : strerror(-r));
			return -EIO;
		}
	}
	*cert = pem_read(crt_path, err, errlen);
	*key = *cert ? pem_read(key_path, err, errlen) : NULL;
	if (!*key) {
		free(*cert);
		*cert = NULL;
		return -EIO;
	}
	return 0;
}
