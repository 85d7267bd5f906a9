/* Unit tests for web/websocket: the handshake's accept key, client frame headers (partial,
 * well-formed and refused), unmasking split at any offset, server frame headers and
 * the token lists of Connection and Upgrade. Frames are written out byte by byte here,
 * not with websocket_header(), so the encoder and the parser check each other. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "web/websocket.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* A client frame's mask, written after the length in the byte tables below. */
#define MASK 0x37, 0xfa, 0x21, 0x3d

static const uint8_t mask[4] = {MASK};

static void test_accept_key(void **state)
{
	/* RFC 6455 section 1.3, MDN's example, and the two extremes of 16 bytes; the
	 * expected values come from Python's hashlib and base64 */
	static const struct {
		const char *key, *accept;
	} good[] = {
	    {"dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
	    {"x3JJHMbDL1EzLkh9GBhXDw==", "HSmrc0sMlYUkAGmm5OPpG2HaGWk="},
	    {"AAAAAAAAAAAAAAAAAAAAAA==", "ICX+Yqv66kxgM0FcWaLWlFLwTAI="},
	    {"/////////////////////w==", "XXpj4jYzLM2yUE0C7TIgMwTQh2g="},
	};
	char out[29];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		memset(out, 'x', sizeof(out));
		assert_int_equal(websocket_accept_key(good[i].key, out), 0);
		assert_string_equal(out, good[i].accept);
	}
}

static void test_accept_key_malformed(void **state)
{
	static const char *const bad[] = {
	    NULL,
	    "",
	    "dGhlIHNhbXBsZSBub25jZQ=",	    /* 23 characters */
	    "dGhlIHNhbXBsZSBub25jZQ",	    /* padding missing */
	    "dGhlIHNhbXBsZSBub25jZQ===",    /* 25 characters */
	    "dGhlIHNhbXBsZSBub25jZQ==\r",   /* trailing junk */
	    "dGhlIHNhbXBsZSBub25jZQ== ",    /* trailing space */
	    "dGhlIHNhbXBsZSBub25jZQ==dGhl", /* a second key glued on */
	    " dGhlIHNhbXBsZSBub25jZQ==",    /* leading space */
	    "    AAAAAAAAAAAAAAAAAA==",	    /* leading spaces, which base64 skips */
	    "\tAAAAAAAAAAAAAAAAAAAAA==",    /* a leading tab */
	    "dGhlIHNhbXBsZSBub25jZ!==",	    /* not base64 */
	    "dGhlIHNhbXBsZ-Bub25jZQ==",	    /* base64url, not base64 */
	    "dGhlIHNhbXBsZ_Bub25jZQ==",
	    "dGhlIHNhbXBs\nSBub25jZQ==",      /* a line break inside */
	    "dGhlIHNhbXBs ZSBub25jZ==",	      /* a space inside */
	    "dGhlIHNhbXBsZSBub25\xc3\xa9Q==", /* not ASCII */
	    "dGhlIHNhbXBsZSBub25jZQAA",	      /* 18 bytes */
	    "dGhlIHNhbXBsZSBub25jZQA=",	      /* 17 bytes */
	    "AAAAAAAAAAAAAAAAAAAA====",	      /* 15 bytes */
	    "AAAAAAAAAAAAAAAAAAAAA===",	      /* not a whole byte */
	    "dGhl=HNhbXBsZSBub25jZQ==",	      /* padding inside */
	    "====================AA==",
	    "========================",
	};
	char out[29];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (websocket_accept_key(bad[i], out) != -EINVAL)
			fail_msg("accepted key %zu: '%s'", i, bad[i] ? bad[i] : "(null)");
}

/* One client frame header per length encoding, with the mask. */
static const struct {
	const char *what;
	uint8_t bytes[WEBSOCKET_HEADER_MAX];
	size_t header_len;
	uint64_t len;
} headers[] = {
    {"7-bit 0", {0x82, 0x80, MASK}, 6, 0},
    {"7-bit 125", {0x82, 0xfd, MASK}, 6, 125},
    {"16-bit 126", {0x82, 0xfe, 0x00, 0x7e, MASK}, 8, 126},
    {"16-bit 65535", {0x82, 0xfe, 0xff, 0xff, MASK}, 8, 65535},
    {"64-bit 65536", {0x82, 0xff, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00, MASK}, 14, 65536},
    {"64-bit 2^32+5", {0x82, 0xff, 0, 0, 0, 0x01, 0, 0, 0, 0x05, MASK}, 14, (1ull << 32) + 5},
    {"64-bit 2^63-1",
     {0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, MASK},
     14,
     INT64_MAX},
};

static void test_parse_need_more(void **state)
{
	struct websocket_frame f;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(headers); i++) {
		for (size_t n = 0; n < headers[i].header_len; n++)
			if (websocket_parse(headers[i].bytes, n, UINT64_MAX, &f) != 0)
				fail_msg("%s: %zu of %zu bytes not 'need more'", headers[i].what, n,
					 headers[i].header_len);
		assert_int_equal(
		    websocket_parse(headers[i].bytes, headers[i].header_len, UINT64_MAX, &f), 1);
	}
}

static void test_parse_lengths(void **state)
{
	uint8_t buf[WEBSOCKET_HEADER_MAX + 8];
	struct websocket_frame f;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(headers); i++) {
		size_t hl = headers[i].header_len;

		/* payload bytes after the header are not part of it */
		memset(buf, 0xee, sizeof(buf));
		memcpy(buf, headers[i].bytes, hl);
		memset(&f, 0x55, sizeof(f));
		assert_int_equal(websocket_parse(buf, sizeof(buf), UINT64_MAX, &f), 1);
		assert_true(f.wf_fin);
		assert_int_equal(f.wf_opcode, WEBSOCKET_OP_BINARY);
		assert_true(f.wf_len == headers[i].len);
		assert_memory_equal(f.wf_mask, mask, 4);
		assert_int_equal(f.wf_header_len, hl);
		/* a payload of exactly max is allowed, one byte more is not */
		assert_int_equal(websocket_parse(buf, hl, headers[i].len, &f), 1);
		if (headers[i].len)
			assert_int_equal(websocket_parse(buf, hl, headers[i].len - 1, &f),
					 -EMSGSIZE);
	}
}

static void test_parse_kinds(void **state)
{
	static const struct {
		uint8_t bytes[6];
		bool fin;
		unsigned opcode;
		uint64_t len;
	} kinds[] = {
	    {{0x02, 0x83, MASK}, false, WEBSOCKET_OP_BINARY, 3}, /* first of several */
	    {{0x00, 0x83, MASK}, false, WEBSOCKET_OP_CONT, 3},
	    {{0x80, 0x83, MASK}, true, WEBSOCKET_OP_CONT, 3}, /* last of several */
	    {{0x81, 0x83, MASK}, true, WEBSOCKET_OP_TEXT, 3},
	    {{0x88, 0x82, MASK}, true, WEBSOCKET_OP_CLOSE, 2},
	    {{0x89, 0xfd, MASK}, true, WEBSOCKET_OP_PING, 125},
	    {{0x8a, 0x80, MASK}, true, WEBSOCKET_OP_PONG, 0},
	};
	struct websocket_frame f;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		assert_int_equal(websocket_parse(kinds[i].bytes, 6, 1024, &f), 1);
		assert_int_equal(f.wf_fin, kinds[i].fin);
		assert_int_equal(f.wf_opcode, kinds[i].opcode);
		assert_true(f.wf_len == kinds[i].len);
		assert_int_equal(f.wf_header_len, 6);
	}
}

static void test_parse_refused(void **state)
{
	static const struct {
		const char *what;
		uint8_t bytes[WEBSOCKET_HEADER_MAX];
		size_t n;
		uint64_t max;
		int err;
	} bad[] = {
	    {"unmasked", {0x82, 0x05}, 2, 1024, -EPROTO},
	    {"unmasked, 16-bit", {0x82, 0x7e, 0x01, 0x00}, 4, 1024, -EPROTO},
	    {"unmasked, whole frame", {0x82, 0x01, 'x', 0, 0, 0}, 6, 1024, -EPROTO},
	    {"RSV1", {0xc2, 0x85, MASK}, 6, 1024, -EPROTO},
	    {"RSV2", {0xa2, 0x85, MASK}, 6, 1024, -EPROTO},
	    {"RSV3", {0x92, 0x85, MASK}, 6, 1024, -EPROTO},
	    {"RSV on a ping", {0xc9, 0x80, MASK}, 6, 1024, -EPROTO},
	    {"ping of 126", {0x89, 0xfe, 0x00, 0x7e, MASK}, 8, 1024, -EPROTO},
	    {"close of 65536", {0x88, 0xff, 0, 0, 0, 0, 0, 0x01, 0, 0, MASK}, 14, 1 << 20, -EPROTO},
	    {"pong of 200", {0x8a, 0xfe, 0x00, 0xc8, MASK}, 8, 1024, -EPROTO},
	    {"fragmented close", {0x08, 0x80, MASK}, 6, 1024, -EPROTO},
	    {"fragmented ping", {0x09, 0x85, MASK}, 6, 1024, -EPROTO},
	    {"fragmented pong", {0x0a, 0x80, MASK}, 6, 1024, -EPROTO},
	    {"above max, 7-bit", {0x82, 0x8b, MASK}, 6, 10, -EMSGSIZE},
	    {"above max, 16-bit", {0x82, 0xfe, 0x04, 0x01, MASK}, 8, 1024, -EMSGSIZE},
	    {"above max, 64-bit",
	     {0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0x00, 0x01, MASK},
	     14,
	     1 << 20,
	     -EMSGSIZE},
	    {"above max 0", {0x80, 0x81, MASK}, 6, 0, -EMSGSIZE},
	    {"64-bit top bit",
	     {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, MASK},
	     14,
	     UINT64_MAX,
	     -EPROTO},
	    {"64-bit all ones",
	     {0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, MASK},
	     14,
	     UINT64_MAX,
	     -EPROTO},
	};
	struct websocket_frame f;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int r = websocket_parse(bad[i].bytes, bad[i].n, bad[i].max, &f);

		if (r != bad[i].err)
			fail_msg("%s: got %d, want %d", bad[i].what, r, bad[i].err);
	}
}

static void test_parse_reserved_opcodes(void **state)
{
	uint8_t buf[6] = {0, 0x80, MASK};
	struct websocket_frame f;

	(void)state;
	for (unsigned op = 0; op < 16; op++) {
		bool reserved = (op >= 3 && op <= 7) || op >= 0xb;

		buf[0] = (uint8_t)(0x80 | op);
		if (websocket_parse(buf, sizeof(buf), 1024, &f) != (reserved ? -EPROTO : 1))
			fail_msg("opcode %#x", op);
	}
}

/* RFC 6455 section 5.2 asks the sender for the shortest length encoding but does not tell
 * the receiver to fail on a longer one; websocket.h lists it among no refusals, so these
 * are taken at the length they carry (which max still bounds). */
static void test_parse_non_minimal(void **state)
{
	static const struct {
		uint8_t bytes[WEBSOCKET_HEADER_MAX];
		size_t header_len;
		uint64_t len;
		unsigned opcode;
	} longer[] = {
	    {{0x82, 0xfe, 0x00, 0x00, MASK}, 8, 0, WEBSOCKET_OP_BINARY},
	    {{0x82, 0xfe, 0x00, 0x7d, MASK}, 8, 125, WEBSOCKET_OP_BINARY},
	    {{0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x05, MASK}, 14, 5, WEBSOCKET_OP_BINARY},
	    {{0x82, 0xff, 0, 0, 0, 0, 0, 0, 0xff, 0xff, MASK}, 14, 65535, WEBSOCKET_OP_BINARY},
	    {{0x89, 0xfe, 0x00, 0x05, MASK}, 8, 5, WEBSOCKET_OP_PING},
	};
	struct websocket_frame f;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(longer); i++) {
		assert_int_equal(
		    websocket_parse(longer[i].bytes, longer[i].header_len - 1, UINT64_MAX, &f), 0);
		assert_int_equal(
		    websocket_parse(longer[i].bytes, longer[i].header_len, UINT64_MAX, &f), 1);
		assert_true(f.wf_len == longer[i].len);
		assert_int_equal(f.wf_header_len, longer[i].header_len);
		assert_int_equal(f.wf_opcode, longer[i].opcode);
		if (longer[i].len)
			assert_int_equal(websocket_parse(longer[i].bytes, longer[i].header_len,
							 longer[i].len - 1, &f),
					 -EMSGSIZE);
	}
}

static void test_unmask(void **state)
{
	uint8_t plain[19], masked[19], buf[19];

	(void)state;
	for (size_t i = 0; i < sizeof(plain); i++) {
		plain[i] = (uint8_t)(i * 29 + 3);
		masked[i] = plain[i] ^ mask[i % 4];
	}
	/* in one go, and masking again gives back what was masked */
	memcpy(buf, masked, sizeof(buf));
	websocket_unmask(buf, sizeof(buf), mask, 0);
	assert_memory_equal(buf, plain, sizeof(buf));
	websocket_unmask(buf, sizeof(buf), mask, 0);
	assert_memory_equal(buf, masked, sizeof(buf));
	/* the payload arriving in two pieces split anywhere, as the gateway unmasks it */
	for (size_t split = 0; split <= 8; split++) {
		memcpy(buf, masked, sizeof(buf));
		websocket_unmask(buf, split, mask, 0);
		websocket_unmask(buf + split, sizeof(buf) - split, mask, split);
		if (memcmp(buf, plain, sizeof(buf)))
			fail_msg("split at %zu", split);
	}
	/* three pieces, the middle one starting and ending anywhere */
	for (size_t a = 0; a <= 8; a++)
		for (size_t b = a; b <= a + 8; b++) {
			memcpy(buf, masked, sizeof(buf));
			websocket_unmask(buf, a, mask, 0);
			websocket_unmask(buf + a, b - a, mask, a);
			websocket_unmask(buf + b, sizeof(buf) - b, mask, b);
			if (memcmp(buf, plain, sizeof(buf)))
				fail_msg("split at %zu and %zu", a, b);
		}
	/* taking bytes back out (re-masking at the same offset) is identity at any offset */
	for (uint64_t off = 0; off < 8; off++) {
		memcpy(buf, plain, sizeof(buf));
		websocket_unmask(buf + 3, 7, mask, off);
		websocket_unmask(buf + 3, 7, mask, off);
		assert_memory_equal(buf, plain, sizeof(buf));
	}
	/* offsets past 4 GiB keep their place in the mask */
	memcpy(buf, masked, sizeof(buf));
	websocket_unmask(buf, 5, mask, (1ull << 32) + 0);
	websocket_unmask(buf + 5, sizeof(buf) - 5, mask, (1ull << 32) + 5);
	assert_memory_equal(buf, plain, sizeof(buf));
	/* zero bytes is a no-op */
	memcpy(buf, plain, sizeof(buf));
	websocket_unmask(buf, 0, mask, 3);
	assert_memory_equal(buf, plain, sizeof(buf));
}

static void test_header(void **state)
{
	static const struct {
		unsigned opcode;
		uint64_t len;
		size_t n;
		uint8_t bytes[WEBSOCKET_HEADER_MAX];
	} want[] = {
	    {WEBSOCKET_OP_BINARY, 0, 2, {0x82, 0x00}},
	    {WEBSOCKET_OP_BINARY, 125, 2, {0x82, 0x7d}},
	    {WEBSOCKET_OP_BINARY, 126, 4, {0x82, 0x7e, 0x00, 0x7e}},
	    {WEBSOCKET_OP_BINARY, 0x1234, 4, {0x82, 0x7e, 0x12, 0x34}},
	    {WEBSOCKET_OP_BINARY, 65535, 4, {0x82, 0x7e, 0xff, 0xff}},
	    {WEBSOCKET_OP_BINARY, 65536, 10, {0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}},
	    {WEBSOCKET_OP_BINARY, 1ull << 32, 10, {0x82, 0x7f, 0, 0, 0, 0x01, 0, 0, 0, 0}},
	    {WEBSOCKET_OP_BINARY,
	     0x0102030405060708ull,
	     10,
	     {0x82, 0x7f, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}},
	    {WEBSOCKET_OP_TEXT, 5, 2, {0x81, 0x05}},
	    {WEBSOCKET_OP_CLOSE, 2, 2, {0x88, 0x02}},
	    {WEBSOCKET_OP_PING, 0, 2, {0x89, 0x00}},
	    {WEBSOCKET_OP_PONG, 125, 2, {0x8a, 0x7d}},
	};
	uint8_t out[WEBSOCKET_HEADER_MAX + 2];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		memset(out, 0xaa, sizeof(out));
		assert_int_equal(websocket_header(out, want[i].opcode, want[i].len), want[i].n);
		assert_memory_equal(out, want[i].bytes, want[i].n);
		/* nothing written past the header */
		for (size_t j = want[i].n; j < sizeof(out); j++)
			assert_int_equal(out[j], 0xaa);
	}
}

/* What websocket_header() writes, given the mask bit and a mask, parses back. */
static void test_header_round_trip(void **state)
{
	static const uint64_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 1ull << 32, INT64_MAX};
	uint8_t buf[WEBSOCKET_HEADER_MAX];
	struct websocket_frame f;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		size_t n = websocket_header(buf, WEBSOCKET_OP_BINARY, lens[i]);

		assert_true(n + 4 <= WEBSOCKET_HEADER_MAX);
		buf[1] |= 0x80;
		memcpy(buf + n, mask, 4);
		assert_int_equal(websocket_parse(buf, n + 4, UINT64_MAX, &f), 1);
		assert_true(f.wf_len == lens[i]);
		assert_int_equal(f.wf_header_len, n + 4);
	}
}

static void test_has_token(void **state)
{
	static const struct {
		const char *list, *token;
		bool found;
	} cases[] = {
	    {"Upgrade", "upgrade", true},
	    {"upgrade", "upgrade", true},
	    {"UPGRADE", "Upgrade", true},
	    {"keep-alive, Upgrade", "upgrade", true},
	    {"Upgrade, keep-alive", "upgrade", true},
	    {" upgrade ", "upgrade", true},
	    {"\tUpgrade\t", "upgrade", true},
	    {"keep-alive,\tupgrade", "upgrade", true},
	    {"keep-alive\t ,\t UpGrAdE \t, close", "upgrade", true},
	    {",, ,upgrade,,", "upgrade", true},
	    {"websocket, vdi-tunnel", "vdi-tunnel", true},
	    {"upgraded", "upgrade", false},
	    {"xupgrade", "upgrade", false},
	    {"keep-alive, upgraded", "upgrade", false},
	    {"keep-alive, xupgrade ", "upgrade", false},
	    {"up grade", "upgrade", false},
	    {"upgrade-x", "upgrade", false},
	    {"upgrade;q=1", "upgrade", false},
	    {"keep-alive", "upgrade", false},
	    {"", "upgrade", false},
	    {" , \t,", "upgrade", false},
	    {NULL, "upgrade", false},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (websocket_has_token(cases[i].list, cases[i].token) != cases[i].found)
			fail_msg("'%s' in '%s': want %s", cases[i].token,
				 cases[i].list ? cases[i].list : "(null)",
				 cases[i].found ? "found" : "not found");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accept_key),
	    cmocka_unit_test(test_accept_key_malformed),
	    cmocka_unit_test(test_parse_need_more),
	    cmocka_unit_test(test_parse_lengths),
	    cmocka_unit_test(test_parse_kinds),
	    cmocka_unit_test(test_parse_refused),
	    cmocka_unit_test(test_parse_reserved_opcodes),
	    cmocka_unit_test(test_parse_non_minimal),
	    cmocka_unit_test(test_unmask),
	    cmocka_unit_test(test_header),
	    cmocka_unit_test(test_header_round_trip),
	    cmocka_unit_test(test_has_token),
	};
	return cmocka_run_group_tests_name("websocket", tests, NULL, NULL);
}
