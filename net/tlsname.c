/* The identity in a peer certificate's subject CN (see tlsname.h). */
#include "net/tlsname.h"

#include <errno.h>
#include <pthread.h>
#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

int tlsname_cn(X509 *x, char *buf, size_t len)
{
	const X509_NAME *subject = x ? X509_get_subject_name(x) : NULL;
	int i, r = 0, n;
	unsigned char *utf8 = NULL;

	if (len)
		buf[0] = '\0';
	if (!subject)
		return -ENOENT;
	i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
	/* Two CNs: which one names the holder is anyone's guess, so neither does. */
	if (i < 0 || X509_NAME_get_index_by_NID(subject, NID_commonName, i) >= 0)
		return -ENOENT;
	n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
	if (n < 0)
		return -ENOMEM;
	for (int j = 0; j < n; j++)
		if (utf8[j] < 0x20 || utf8[j] == 0x7f)
			r = -EINVAL; /* a NUL could cut it short, a newline forge a log line */
	if (!r && n == 0)
		r = -ENOENT;
	if (!r && (size_t)n >= len)
		r = -ENAMETOOLONG;
	if (!r) {
		memcpy(buf, utf8, (size_t)n);
		buf[n] = '\0';
	}
	OPENSSL_free(utf8);
	return r;
}

bool tlsname_is(X509 *x, const char *name)
{
	char cn[TLSNAME_MAX + 1];

	return name && name[0] && tlsname_cn(x, cn, sizeof(cn)) == 0 && !strcmp(cn, name);
}

const char *tlsname_describe(X509 *x, char *buf, size_t len)
{
	char cn[TLSNAME_MAX + 1];
	int r = tlsname_cn(x, cn, sizeof(cn));

	if (r == 0)
		snprintf(buf, len, "'%s'", cn);
	else
		snprintf(buf, len, "%s",
			 !x		      ? "no certificate"
			 : r == -ENOENT	      ? "no name (CN)"
			 : r == -ENAMETOOLONG ? "an over-long name"
					      : "an unreadable name");
	return buf;
}

X509 *tlsname_peer(SSL *ssl)
{
	X509 *x = ssl ? SSL_get0_peer_certificate(ssl) : NULL;

	return x && SSL_get_verify_result(ssl) == X509_V_OK ? x : NULL;
}

static int expect_index = -1;
static pthread_once_t expect_once = PTHREAD_ONCE_INIT;

static void expect_index_init(void)
{
	expect_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* OpenSSL's verdict on each certificate of the chain, then ours on the server's own. */
static int verify_name(int ok, X509_STORE_CTX *store)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tlsname_expect *e =
	    ssl ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), expect_index) : NULL;
	X509 *x = X509_STORE_CTX_get_current_cert(store);

	if (!ok || X509_STORE_CTX_get_error_depth(store) != 0)
		return ok;
	if (!e || tlsname_is(x, e->te_name))
		return 1;
	e->te_mismatch = true;
	tlsname_describe(x, e->te_found, sizeof(e->te_found));
	X509_STORE_CTX_set_error(store, X509_V_ERR_HOSTNAME_MISMATCH);
	return 0;
}

int tlsname_expect_on(SSL_CTX *ctx, struct tlsname_expect *e)
{
	pthread_once(&expect_once, expect_index_init);
	if (expect_index < 0 || SSL_CTX_set_ex_data(ctx, expect_index, e) != 1)
		return -ENOMEM;
	e->te_mismatch = false;
	e->te_found[0] = '\0';
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_name);
	return 0;
}
