/* The heartbeat thread: one reusable curl handle (keeps the TLS connection
 * alive), a condition variable to sleep on so stopping does not wait out an
 * interval. */
#include "hostd/heartbeat.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "net/tlsname.h"

#define REPLY_MAX 512

struct heartbeat {
	const struct conf *hb_conf;
	struct host *hb_host;
	pthread_t hb_thread;
	pthread_mutex_t hb_lock;
	pthread_cond_t hb_wake;
	bool hb_stop;
	/* the broker's answer to the last heartbeat, its start: the reason of a refusal */
	char hb_reply[REPLY_MAX + 1];
	size_t hb_reply_len;
	struct tlsname_expect hb_expect; /* the broker's name, checked in each handshake */
};

static size_t keep_start(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct heartbeat *hb = arg;
	size_t n = size * nmemb, room = REPLY_MAX - hb->hb_reply_len;

	memcpy(hb->hb_reply + hb->hb_reply_len, ptr, n < room ? n : room);
	hb->hb_reply_len += n < room ? n : room;
	hb->hb_reply[hb->hb_reply_len] = '\0';
	return n;
}

/* curl's new TLS context: the heartbeat listener must be the broker's. */
static CURLcode expect_broker(CURL *curl, void *ssl_ctx, void *arg)
{
	(void)curl;
	return tlsname_expect_on(ssl_ctx, arg) < 0 ? CURLE_OUT_OF_MEMORY : CURLE_OK;
}

/* Sends one heartbeat. Returns 0, or -1 with why in err. */
static int beat(struct heartbeat *hb, CURL *curl, char *err, size_t errlen)
{
	json_t *msg = host_heartbeat(hb->hb_host);
	char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
	long status = 0;
	CURLcode rc;

	json_decref(msg);
	if (!text) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
	hb->hb_reply_len = 0;
	hb->hb_reply[0] = '\0';
	rc = curl_easy_perform(curl);
	free(text);
	if (rc != CURLE_OK && hb->hb_expect.te_mismatch) {
		snprintf(err, errlen,
			 "refused: its certificate names %s, not '%s' ([api] broker_name)",
			 hb->hb_expect.te_found, hb->hb_expect.te_name);
		return -1;
	}
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s", curl_easy_strerror(rc));
		return -1;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		json_t *reply = json_loads(hb->hb_reply, 0, NULL);
		const char *why = json_string_value(json_object_get(reply, "error"));

		/* (the broker's words: a host certificate that does not name this host id) */
		snprintf(err, errlen, "the broker answered HTTP %ld%s%.200s", status,
			 why ? ": " : "", why ? why : "");
		json_decref(reply);
		return -1;
	}
	return 0;
}

static void *heartbeat_main(void *arg)
{
	struct heartbeat *hb = arg;
	const struct conf *c = hb->hb_conf;
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	CURL *curl = curl_easy_init();
	bool failing = false;
	unsigned long sent = 0;

	pthread_setname_np(pthread_self(), "heartbeat");
	if (!curl || !headers) {
		log_warnx("heartbeat: cannot set up libcurl; no heartbeats");
		goto out;
	}
	curl_easy_setopt(curl, CURLOPT_URL, c->heartbeat_url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_SSLCERT, c->tls_cert);
	curl_easy_setopt(curl, CURLOPT_SSLKEY, c->tls_key);
	curl_easy_setopt(curl, CURLOPT_CAINFO, c->tls_ca);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)c->heartbeat_timeout);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)c->heartbeat_timeout);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, keep_start);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, hb);
	hb->hb_expect.te_name = c->broker_name;
	curl_easy_setopt(curl, CURLOPT_SSL_CTX_FUNCTION, expect_broker);
	curl_easy_setopt(curl, CURLOPT_SSL_CTX_DATA, &hb->hb_expect);
	curl_easy_setopt(curl, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	pthread_mutex_lock(&hb->hb_lock);
	while (!hb->hb_stop) {
		struct timespec until;
		char err[CURL_ERROR_SIZE + 64];
		int r;

		pthread_mutex_unlock(&hb->hb_lock);
		r = beat(hb, curl, err, sizeof(err));
		if (r < 0 && !failing)
			log_warnx("heartbeat: cannot reach the broker at %s: %s (retrying every "
				  "%ds)",
				  c->heartbeat_url, err, c->heartbeat_interval);
		else if (r == 0 && failing)
			log_info("heartbeat: the broker is reachable again");
		else if (r == 0 && ++sent == 1)
			log_info("heartbeat: first heartbeat delivered to %s", c->heartbeat_url);
		failing = r < 0;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += c->heartbeat_interval;
		pthread_mutex_lock(&hb->hb_lock);
		while (!hb->hb_stop &&
		       pthread_cond_timedwait(&hb->hb_wake, &hb->hb_lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&hb->hb_lock);
out:
	curl_slist_free_all(headers);
	if (curl)
		curl_easy_cleanup(curl);
	return NULL;
}

struct heartbeat *heartbeat_start(const struct conf *c, struct host *h)
{
	struct heartbeat *hb;

	if (!c->heartbeat_url[0]) {
		log_info("heartbeat: no [broker] heartbeat_url; not sending heartbeats");
		return NULL;
	}
	hb = calloc(1, sizeof(*hb));
	if (!hb)
		return NULL;
	hb->hb_conf = c;
	hb->hb_host = h;
	pthread_mutex_init(&hb->hb_lock, NULL);
	pthread_cond_init(&hb->hb_wake, NULL);
	if (pthread_create(&hb->hb_thread, NULL, heartbeat_main, hb) != 0) {
		log_warnx("heartbeat: cannot start its thread");
		pthread_cond_destroy(&hb->hb_wake);
		pthread_mutex_destroy(&hb->hb_lock);
		free(hb);
		return NULL;
	}
	return hb;
}

void heartbeat_stop(struct heartbeat *hb)
{
	if (!hb)
		return;
	pthread_mutex_lock(&hb->hb_lock);
	hb->hb_stop = true;
	pthread_cond_signal(&hb->hb_wake);
	pthread_mutex_unlock(&hb->hb_lock);
	pthread_join(hb->hb_thread, NULL);
	pthread_cond_destroy(&hb->hb_wake);
	pthread_mutex_destroy(&hb->hb_lock);
	free(hb);
}
