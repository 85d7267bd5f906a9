/* Who a TLS peer's certificate says it is: its subject's common name (CN). The product's
 * certificates carry the holder's identity there (the broker "vdi-broker", a host its
 * host id: hostd/mkcerts.sh) while their subjectAltNames list the addresses they are
 * served on, which several certificates share (localhost, 127.0.0.1). So a check of who
 * is at the other end compares the CN, whole and exactly; a certificate's address names
 * are checked separately (curl's VERIFYHOST, SSL_set1_host()). */
#ifndef VDI_NET_TLSNAME_H
#define VDI_NET_TLSNAME_H

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>

/* Longest name kept (host ids are at most 64 bytes). */
#define TLSNAME_MAX 128

/* The CN of x into buf (NUL-terminated, UTF-8). Returns 0, or -ENOENT when x is NULL or
 * has no CN or more than one, -EINVAL when it holds a NUL or a control character,
 * -ENAMETOOLONG when it does not fit len, -ENOMEM. */
int tlsname_cn(X509 *x, char *buf, size_t len);

/* True when x's CN is exactly name (a non-empty string). */
bool tlsname_is(X509 *x, const char *name);

/* For log lines: the CN of x in buf, or a description of why there is none ("no
 * certificate", "no name", "an unreadable name"). Returns buf. */
const char *tlsname_describe(X509 *x, char *buf, size_t len);

/* The verified peer certificate of a finished handshake, or NULL (none, or not verified:
 * then it names no one). Not a new reference. */
X509 *tlsname_peer(SSL *ssl);

/* A name the server's certificate must carry, checked during the handshake of a client
 * whose connection setup is not ours (libcurl: from its CURLOPT_SSL_CTX_FUNCTION). When
 * the chain verifies but the server's certificate names someone else, the handshake
 * fails and te_found describes what it named instead. */
struct tlsname_expect {
	const char *te_name;
	bool te_mismatch;
	char te_found[TLSNAME_MAX + 32];
};

/* Makes ctx's handshakes verify the peer (SSL_VERIFY_PEER) and check e (which must
 * outlive them). Returns 0 or -ENOMEM. */
int tlsname_expect_on(SSL_CTX *ctx, struct tlsname_expect *e);

#endif
