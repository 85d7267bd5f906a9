/* libcurl calls to vdi-hostd: a handle per call, the answer collected up to 1 MiB, the
 * host's certificate checked for its address (curl) and its host id (ours). */
#include "broker/hostclient.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/tlsname.h"

#define REPLY_MAX (1 << 20)

struct hostclient {
	char *hc_cert, *hc_key, *hc_ca;
	long hc_timeout;
};

struct buffer {
	char *b_data;
	size_t b_len;
	bool b_overflow;
};

struct hostclient *hostclient_new(const char *cert, const char *key, const char *ca, int timeout_s)
{
	struct hostclient *hc = calloc(1, sizeof(*hc));

	if (!hc)
		return NULL;
	hc->hc_cert = strdup(cert ? cert : "");
	hc->hc_key = strdup(key ? key : "");
	hc->hc_ca = strdup(ca ? ca : "");
	hc->hc_timeout = timeout_s;
	if (!hc->hc_cert || !hc->hc_key || !hc->hc_ca) {
		hostclient_free(hc);
		return NULL;
	}
	return hc;
}

void hostclient_free(struct hostclient *hc)
{
	if (!hc)
		return;
	free(hc->hc_cert);
	free(hc->hc_key);
	free(hc->hc_ca);
	free(hc);
}

static size_t collect(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct buffer *b = arg;
	size_t n = size * nmemb;
	char *grown;

	if (b->b_overflow || b->b_len + n > REPLY_MAX) {
		b->b_overflow = true;
		return n;
	}
	grown = realloc(b->b_data, b->b_len + n + 1);
	if (!grown)
		return 0;
	memcpy(grown + b->b_len, ptr, n);
	b->b_data = grown;
	b->b_len += n;
	b->b_data[b->b_len] = '\0';
	return n;
}

/* curl's new TLS context: the server's certificate must name the host we mean. */
static CURLcode expect_host(CURL *curl, void *ssl_ctx, void *arg)
{
	(void)curl;
	return tlsname_expect_on(ssl_ctx, arg) < 0 ? CURLE_OUT_OF_MEMORY : CURLE_OK;
}

int hostclient_call(struct hostclient *hc, const char *host_id, const char *base_url,
		    const char *method, const char *path, const json_t *body, json_t **reply,
		    char *err, size_t errlen)
{
	struct tlsname_expect expect = {.te_name = host_id};
	struct curl_slist *headers = NULL;
	struct buffer buf = {NULL, 0, false};
	char url[2048], *text = NULL;
	long status = 0;
	CURLcode rc;
	CURL *curl;
	int r;

	*reply = NULL;
	if ((size_t)snprintf(url, sizeof(url), "%s%s", base_url, path) >= sizeof(url)) {
		snprintf(err, errlen, "URL too long");
		return -EINVAL;
	}
	curl = curl_easy_init();
	if (!curl) {
		snprintf(err, errlen, "cannot set up libcurl");
		return -ENOMEM;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_SSLCERT, hc->hc_cert);
	curl_easy_setopt(curl, CURLOPT_SSLKEY, hc->hc_key);
	curl_easy_setopt(curl, CURLOPT_CAINFO, hc->hc_ca);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(curl, CURLOPT_SSL_CTX_FUNCTION, expect_host);
	curl_easy_setopt(curl, CURLOPT_SSL_CTX_DATA, &expect);
	/* no session resumed from an earlier call: every handshake sees the certificate */
	curl_easy_setopt(curl, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, hc->hc_timeout);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, hc->hc_timeout);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		headers = curl_slist_append(NULL, "Content-Type: application/json");
		if (!text || !headers) {
			snprintf(err, errlen, "out of memory");
			r = -ENOMEM;
			goto out;
		}
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
	} else if (!strcmp(method, "POST")) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
	}
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK && expect.te_mismatch) {
		snprintf(err, errlen,
			 "%s: refused: the certificate there names %s, not host '%s' (a host "
			 "certificate is issued for its host id)",
			 base_url, expect.te_found, host_id);
		r = -EPERM;
		goto out;
	}
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s: %s", base_url, curl_easy_strerror(rc));
		r = rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT
		    : rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION ||
			    rc == CURLE_SSL_CERTPROBLEM
			? -EPROTO
			: -EHOSTUNREACH;
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (buf.b_data && !buf.b_overflow)
		*reply = json_loadb(buf.b_data, buf.b_len, 0, NULL);
	if (status >= 400) {
		const char *msg =
		    *reply ? json_string_value(json_object_get(*reply, "error")) : NULL;

		snprintf(err, errlen, "%s %s: HTTP %ld%s%s", method, path, status, msg ? ": " : "",
			 msg ? msg : "");
	}
	r = (int)status;
out:
	curl_slist_free_all(headers);
	free(text);
	free(buf.b_data);
	curl_easy_cleanup(curl);
	return r;
}
