/* Unit tests for hv/dev/blk_overlay: reads through to the base, copy-up, refusing damaged
 * or mismatched overlays, and crash consistency: every write and sync the overlay makes is
 * recorded, and at each one every crash state (the file as of the last sync plus any
 * subset of the writes since) is opened and checked against what the disk may show. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv/dev/blk_overlay.h"
#include "lib/log.h"

#define SECTOR	   512u
#define BS	   BLK_OVERLAY_BLOCK_SIZE
#define NSECTORS   (16 * (BS / SECTOR) + 3) /* 16 blocks and a partial 17th */
#define DISK_BYTES ((uint64_t)NSECTORS * SECTOR)
#define MAX_PEND   32

static char dir[] = "/tmp/blk-overlay-test-XXXXXX";
static char base_path[128], ovl_path[128], crash_path[128];

/* Every sector holds one byte value throughout: base sectors 0x80 | (s & 0x3f), writes
 * the tag of the write (1..0x7f). */
static uint8_t base_value(unsigned s)
{
	return (uint8_t)(0x80 | (s & 0x3f));
}

static void make_base(uint64_t bytes)
{
	uint8_t sector[SECTOR];
	int fd = open(base_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	for (unsigned s = 0; s < bytes / SECTOR; s++) {
		memset(sector, base_value(s), SECTOR);
		assert_int_equal(write(fd, sector, SECTOR), SECTOR);
	}
	close(fd);
}

static int setup(void **state)
{
	(void)state;
	log_set_fd(open("/dev/null", O_WRONLY)); /* the faults below are logged on purpose */
	if (!mkdtemp(dir))
		return -1;
	snprintf(base_path, sizeof(base_path), "%s/base.img", dir);
	snprintf(ovl_path, sizeof(ovl_path), "%s/disk.ovl", dir);
	snprintf(crash_path, sizeof(crash_path), "%s/crash.ovl", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[200];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static int fresh(void **state)
{
	(void)state;
	unlink(ovl_path);
	unlink(crash_path);
	make_base(DISK_BYTES);
	blk_overlay_set_io(NULL);
	return 0;
}

static int write_tag(struct blk_overlay *ov, unsigned sector, unsigned count, uint8_t tag)
{
	size_t len = (size_t)count * SECTOR;
	uint8_t *buf = malloc(len);
	/* Split the buffer in three uneven pieces to exercise the iovec walking. */
	struct iovec iov[3] = {{buf, len / 3}, {buf + len / 3, 7}, {buf + len / 3 + 7, 0}};
	int r;

	assert_non_null(buf);
	memset(buf, tag, len);
	if (len / 3 + 7 > len) {
		iov[0].iov_len = len, iov[1].iov_len = 0;
	} else {
		iov[2].iov_len = len - len / 3 - 7;
	}
	r = blk_overlay_write(ov, iov, 3, (uint64_t)sector * SECTOR);
	free(buf);
	return r;
}

/* Reads the whole disk and returns each sector's value, or -1 for a sector whose bytes
 * are not all the same; -2 on a read error. */
static int read_all(struct blk_overlay *ov, int values[NSECTORS])
{
	uint8_t *buf = malloc(DISK_BYTES);
	struct iovec iov[2] = {{buf, 12345}, {buf + 12345, DISK_BYTES - 12345}};
	int r;

	assert_non_null(buf);
	r = blk_overlay_read(ov, iov, 2, 0);
	for (unsigned s = 0; s < NSECTORS; s++) {
		const uint8_t *p = buf + (size_t)s * SECTOR;

		values[s] = p[0];
		for (unsigned i = 1; i < SECTOR; i++)
			if (p[i] != p[0])
				values[s] = -1;
	}
	free(buf);
	return r < 0 ? -2 : 0;
}

static void test_reads_fall_through_and_writes_copy_up(void **state)
{
	struct blk_overlay *ov;
	int values[NSECTORS];
	struct stat st;

	(void)state;
	ov = blk_overlay_open(ovl_path, base_path);
	assert_non_null(ov);
	assert_int_equal(blk_overlay_size(ov), DISK_BYTES);
	assert_int_equal(read_all(ov, values), 0);
	for (unsigned s = 0; s < NSECTORS; s++)
		assert_int_equal(values[s], base_value(s));

	/* One sector in the middle of block 3, a run over blocks 5..7, the partial tail. */
	assert_int_equal(write_tag(ov, 3 * 128 + 5, 1, 0x11), 0);
	assert_int_equal(write_tag(ov, 5 * 128 + 100, 200, 0x22), 0);
	assert_int_equal(write_tag(ov, NSECTORS - 2, 2, 0x33), 0);
	assert_int_equal(blk_overlay_allocated(ov), 1 + 3 + 1);
	assert_int_equal(read_all(ov, values), 0);
	for (unsigned s = 0; s < NSECTORS; s++) {
		int want = base_value(s);

		if (s == 3 * 128 + 5)
			want = 0x11;
		else if (s >= 5 * 128 + 100 && s < 5 * 128 + 300)
			want = 0x22;
		else if (s >= NSECTORS - 2)
			want = 0x33;
		assert_int_equal(values[s], want);
	}
	/* Writing an allocated block again goes in place. */
	assert_int_equal(write_tag(ov, 3 * 128, 128, 0x44), 0);
	assert_int_equal(blk_overlay_allocated(ov), 5);
	blk_overlay_close(ov);

	/* Reopened: the same content; the base untouched. */
	ov = blk_overlay_open(ovl_path, base_path);
	assert_non_null(ov);
	assert_int_equal(blk_overlay_allocated(ov), 5);
	assert_int_equal(read_all(ov, values), 0);
	assert_int_equal(values[3 * 128 + 5], 0x44);
	assert_int_equal(values[5 * 128 + 99], base_value(5 * 128 + 99));
	assert_int_equal(values[5 * 128 + 100], 0x22);
	assert_int_equal(values[NSECTORS - 1], 0x33);
	blk_overlay_close(ov);

	/* The overlay holds the five blocks it wrote, not a copy of the base. */
	assert_int_equal(stat(ovl_path, &st), 0);
	assert_true((uint64_t)st.st_blocks * 512 <= 5 * BS + 2 * 4096 + 4096);
	{
		struct blk_overlay *again;
		int v2[NSECTORS];

		make_base(0); /* the base must stay as it was: check it was never written */
		make_base(DISK_BYTES);
		again = blk_overlay_open(ovl_path, base_path);
		assert_non_null(again);
		assert_int_equal(read_all(again, v2), 0);
		assert_int_equal(v2[0], base_value(0));
		blk_overlay_close(again);
	}
}

static void test_out_of_range_is_refused(void **state)
{
	struct blk_overlay *ov = blk_overlay_open(ovl_path, base_path);
	uint8_t buf[SECTOR];
	struct iovec iov = {buf, SECTOR};
	struct iovec huge[2] = {{buf, SIZE_MAX}, {buf, 2}};

	(void)state;
	assert_non_null(ov);
	assert_int_equal(blk_overlay_read(ov, &iov, 1, DISK_BYTES - SECTOR), 0);
	assert_int_equal(blk_overlay_read(ov, &iov, 1, DISK_BYTES - SECTOR + 1), -EINVAL);
	assert_int_equal(blk_overlay_write(ov, &iov, 1, DISK_BYTES), -EINVAL);
	assert_int_equal(blk_overlay_write(ov, &iov, 1, UINT64_MAX - 100), -EINVAL);
	assert_int_equal(blk_overlay_read(ov, huge, 2, 0), -EINVAL);
	assert_int_equal(blk_overlay_allocated(ov), 0);
	blk_overlay_close(ov);
}

static void corrupt(const char *path, off_t off, const void *bytes, size_t len)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, bytes, len, off), (ssize_t)len);
	close(fd);
}

static void test_refuses_bad_overlays(void **state)
{
	struct blk_overlay *ov;
	char missing[160];

	(void)state;
	ov = blk_overlay_open(ovl_path, base_path);
	assert_non_null(ov);
	/* In use: a second opener is refused. */
	assert_null(blk_overlay_open(ovl_path, base_path));
	blk_overlay_close(ov);

	snprintf(missing, sizeof(missing), "%s/no-such-base", dir);
	assert_null(blk_overlay_open(ovl_path, missing));

	/* The base grew: refused (the overlay's blocks would no longer match). */
	make_base(DISK_BYTES + BS);
	assert_null(blk_overlay_open(ovl_path, base_path));
	make_base(DISK_BYTES);
	ov = blk_overlay_open(ovl_path, base_path);
	assert_non_null(ov);
	blk_overlay_close(ov);

	/* A damaged header (checksum) and a raw image passed as an overlay. */
	corrupt(ovl_path, 30, "\xff", 1);
	assert_null(blk_overlay_open(ovl_path, base_path));
	corrupt(ovl_path, 0, "NOTOVRL!", 8);
	assert_null(blk_overlay_open(ovl_path, base_path));
	assert_null(blk_overlay_open(base_path, base_path));
}

/* ---- crash consistency ---- */

struct pending_write {
	off_t pw_off;
	size_t pw_len;
	uint8_t *pw_data;
};

static struct {
	int fd;
	uint8_t *durable; /* the file as of the last sync */
	size_t durable_len;
	struct pending_write pend[MAX_PEND];
	int npend;
	int calls;
	int fail_at; /* fail the Nth write or sync (1-based), 0: never */
	/* What the disk may show: each sector's value as of the last completed flush, and
	 * a bit set of the values written to it since. */
	int flushed[NSECTORS];
	uint64_t since_lo[NSECTORS], since_hi[NSECTORS];
	int crash_states;
} rec;

static const struct blk_overlay_io recording_io;

static void note_write(unsigned sector, unsigned count, uint8_t tag)
{
	for (unsigned s = sector; s < sector + count; s++) {
		if (tag < 64)
			rec.since_lo[s] |= 1ULL << tag;
		else
			rec.since_hi[s] |= 1ULL << (tag - 64);
	}
}

static void note_flushed(const int values[NSECTORS])
{
	memcpy(rec.flushed, values, sizeof(rec.flushed));
	memset(rec.since_lo, 0, sizeof(rec.since_lo));
	memset(rec.since_hi, 0, sizeof(rec.since_hi));
}

static bool allowed(unsigned s, int v)
{
	if (v == rec.flushed[s])
		return true;
	if (v < 1 || v > 0x7f)
		return false;
	return v < 64 ? rec.since_lo[s] >> v & 1 : rec.since_hi[s] >> (v - 64) & 1;
}

static void snapshot(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	free(rec.durable);
	rec.durable_len = (size_t)st.st_size;
	rec.durable = malloc(rec.durable_len);
	assert_non_null(rec.durable);
	assert_int_equal(pread(fd, rec.durable, rec.durable_len, 0), (ssize_t)rec.durable_len);
	for (int i = 0; i < rec.npend; i++)
		free(rec.pend[i].pw_data);
	rec.npend = 0;
}

/* Writes the crash state "durable + the pending writes in mask" to crash_path, opens it
 * and checks every sector. */
static void check_crash_state(unsigned mask)
{
	int fd = open(crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0600), values[NSECTORS];
	struct blk_overlay *ov;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, rec.durable, rec.durable_len), (ssize_t)rec.durable_len);
	for (int i = 0; i < rec.npend; i++)
		if (mask >> i & 1)
			assert_int_equal(
			    pwrite(fd, rec.pend[i].pw_data, rec.pend[i].pw_len, rec.pend[i].pw_off),
			    (ssize_t)rec.pend[i].pw_len);
	close(fd);
	ov = blk_overlay_open(crash_path, base_path);
	assert_non_null(ov);
	assert_int_equal(read_all(ov, values), 0);
	for (unsigned s = 0; s < NSECTORS; s++) {
		if (!allowed(s, values[s]))
			fail_msg(
			    "crash state %#x after call %d: sector %u reads %#x, may only read "
			    "%#x (flushed) or a later write",
			    mask, rec.calls, s, values[s], rec.flushed[s]);
	}
	blk_overlay_close(ov); /* its flush goes through the real calls: io is off here */
	rec.crash_states++;
}

/* Every subset of the pending writes when there are few, else the prefixes, suffixes
 * and each one alone. */
static void check_all_crash_states(void)
{
	unsigned n = (unsigned)rec.npend;

	blk_overlay_set_io(NULL);
	if (n <= 8) {
		for (unsigned mask = 0; mask < 1u << n; mask++)
			check_crash_state(mask);
	} else {
		for (unsigned k = 0; k <= n; k++) {
			check_crash_state((1u << k) - 1);
			check_crash_state(~((1u << k) - 1) & ((1u << n) - 1));
			if (k < n)
				check_crash_state(1u << k);
		}
	}
	blk_overlay_set_io(&recording_io);
}

static bool inject_fault(void)
{
	rec.calls++;
	if (rec.fail_at && rec.calls >= rec.fail_at) {
		errno = EIO;
		return true;
	}
	return false;
}

static void record(int fd, const void *buf, size_t len, off_t off)
{
	struct pending_write *pw;

	assert_int_equal(fd, rec.fd);
	assert_true(rec.npend < MAX_PEND);
	pw = &rec.pend[rec.npend++];
	pw->pw_off = off;
	pw->pw_len = len;
	pw->pw_data = malloc(len);
	assert_non_null(pw->pw_data);
	memcpy(pw->pw_data, buf, len);
}

static ssize_t rec_pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	size_t len = 0, at = 0;
	uint8_t *flat;
	ssize_t r;

	if (inject_fault())
		return -1;
	for (int i = 0; i < cnt; i++)
		len += iov[i].iov_len;
	flat = malloc(len ? len : 1);
	assert_non_null(flat);
	for (int i = 0; i < cnt; i++) {
		memcpy(flat + at, iov[i].iov_base, iov[i].iov_len);
		at += iov[i].iov_len;
	}
	/* One write, recorded as one: a crash keeps all or none of it (the overlay relies
	 * on nothing finer than that, and a torn write only mixes old and new sectors). */
	r = pwrite(fd, flat, len, off);
	if (r > 0)
		record(fd, flat, (size_t)r, off);
	free(flat);
	check_all_crash_states();
	return r;
}

static int rec_fdatasync(int fd)
{
	if (inject_fault())
		return -1;
	assert_int_equal(fd, rec.fd);
	if (fdatasync(fd) < 0)
		return -1;
	snapshot(fd);
	check_all_crash_states();
	return 0;
}

static const struct blk_overlay_io recording_io = {rec_pwritev, rec_fdatasync};

static void rec_reset(void)
{
	free(rec.durable);
	rec.durable = NULL;
	for (int i = 0; i < rec.npend; i++)
		free(rec.pend[i].pw_data);
	rec.npend = 0;
}

/* The descriptor this process has open on path, or -1. */
static int fd_of(const char *path)
{
	char link[64], target[256];

	for (int fd = 3; fd < 1024; fd++) {
		ssize_t n;

		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (!strcmp(target, path))
			return fd;
	}
	return -1;
}

/* Opens the overlay with recording on. */
static struct blk_overlay *open_recorded(void)
{
	struct blk_overlay *ov = blk_overlay_open(ovl_path, base_path);
	int values[NSECTORS];

	assert_non_null(ov);
	rec.fd = fd_of(ovl_path);
	assert_true(rec.fd >= 0);
	snapshot(rec.fd);
	assert_int_equal(read_all(ov, values), 0);
	note_flushed(values);
	rec.calls = 0;
	rec.fail_at = 0;
	blk_overlay_set_io(&recording_io);
	return ov;
}

static void flush_and_note(struct blk_overlay *ov)
{
	int values[NSECTORS];

	assert_int_equal(blk_overlay_flush(ov), 0);
	blk_overlay_set_io(NULL);
	assert_int_equal(read_all(ov, values), 0);
	blk_overlay_set_io(&recording_io);
	note_flushed(values);
}

static void tagged_write(struct blk_overlay *ov, unsigned sector, unsigned count, uint8_t tag)
{
	note_write(sector, count, tag); /* may show from the first byte written */
	assert_int_equal(write_tag(ov, sector, count, tag), 0);
}

static void test_every_crash_state_is_consistent(void **state)
{
	struct blk_overlay *ov;

	(void)state;
	memset(&rec, 0, sizeof(rec));
	ov = open_recorded();
	tagged_write(ov, 0, 4, 1);	      /* copy-up of block 0, partial */
	tagged_write(ov, 128, 128, 2);	      /* block 1 whole, no base read */
	flush_and_note(ov);		      /* data sync, bitmap, sync */
	tagged_write(ov, 2, 1, 3);	      /* in place in block 0 */
	tagged_write(ov, 250, 270, 4);	      /* blocks 1 (in place), 2, 3, 4 (copy-up) */
	tagged_write(ov, NSECTORS - 1, 1, 5); /* the partial last block */
	tagged_write(ov, 16 * 128 - 1, 2, 6); /* across blocks 15 and 16 */
	flush_and_note(ov);
	tagged_write(ov, 120, 20, 7);		/* over allocated blocks 0 and 1 */
	tagged_write(ov, 9 * 128 + 64, 128, 8); /* two new blocks, 9 and 10 */
	blk_overlay_set_io(NULL);
	blk_overlay_close(ov); /* flushes with the real calls */
	assert_true(rec.crash_states > 100);
	print_message("checked %d crash states\n", rec.crash_states);
	rec_reset();
}

/* Fault injection: the Nth write or sync fails. The operation reports it, and the file
 * (as left, and as any crash would leave it) shows only what the disk may show; a later
 * flush with working I/O completes and keeps what was flushed. */
static void run_with_fault(int fail_at)
{
	struct blk_overlay *ov;
	int values[NSECTORS], failures = 0;

	memset(&rec, 0, sizeof(rec));
	unlink(ovl_path);
	ov = open_recorded();
	rec.fail_at = fail_at;
	note_write(0, 4, 1);
	failures += write_tag(ov, 0, 4, 1) < 0;
	note_write(300, 100, 2);
	failures += write_tag(ov, 300, 100, 2) < 0;
	if (blk_overlay_flush(ov) < 0)
		failures++;
	else if (!rec.fail_at || rec.calls < rec.fail_at) {
		blk_overlay_set_io(NULL);
		assert_int_equal(read_all(ov, values), 0);
		note_flushed(values);
		blk_overlay_set_io(&recording_io);
	}
	assert_true(failures > 0);
	blk_overlay_set_io(NULL);
	check_crash_state(rec.npend ? (1u << rec.npend) - 1 : 0);
	blk_overlay_close(ov);
	ov = blk_overlay_open(ovl_path, base_path);
	assert_non_null(ov);
	assert_int_equal(read_all(ov, values), 0);
	for (unsigned s = 0; s < NSECTORS; s++)
		assert_true(allowed(s, values[s]));
	blk_overlay_close(ov);
	rec_reset();
}

static void test_faults_leave_a_consistent_disk(void **state)
{
	(void)state;
	/* Calls: 1 copy-up of block 0, 2 and 3 copy-ups of blocks 2 and 3 (sectors 300-399),
	 * 4 sync, 5 bitmap page, 6 sync. */
	for (int n = 1; n <= 6; n++)
		run_with_fault(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_reads_fall_through_and_writes_copy_up, fresh),
	    cmocka_unit_test_setup(test_out_of_range_is_refused, fresh),
	    cmocka_unit_test_setup(test_refuses_bad_overlays, fresh),
	    cmocka_unit_test_setup(test_every_crash_state_is_consistent, fresh),
	    cmocka_unit_test_setup(test_faults_leave_a_consistent_disk, fresh),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
