/* Unit tests for policy/placement: most free memory wins, tie-breaks (vCPUs, desktop
 * count, host id), down / disabled / disallowed hosts, hosts without the pool's engine,
 * capacity limits, the three failure reasons, and batches that spread over hosts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "policy/placement.h"

static struct policy_pool pool(int memory_mb, int vcpus)
{
	return (struct policy_pool){
	    .pool_id = "p", .pool_memory_mb = memory_mb, .pool_vcpus = vcpus};
}

#define H(id, mem, vcpus, desktops)                                                                \
	{                                                                                          \
		id, ~0u, true, true, mem, vcpus, desktops, 0                                       \
	}

static void test_most_free_memory(void **state)
{
	struct policy_pool p = pool(2048, 2);
	struct policy_host hosts[] = {H("h1", 8192, 16, 2), H("h2", 16384, 4, 5),
				      H("h3", 4096, 32, 0)};
	struct policy_placement pl;

	(void)state;
	pl = policy_place(&p, hosts, 3);
	assert_ptr_equal(pl.pl_host, &hosts[1]);
	assert_int_equal(pl.pl_reason, POLICY_OK);
}

static void test_tie_breaks(void **state)
{
	struct policy_pool p = pool(1024, 1);
	struct policy_host hosts[] = {H("h3", 8192, 8, 1), H("h2", 8192, 8, 1), H("h1", 8192, 4, 0),
				      H("h4", 8192, 8, 0)};

	(void)state;
	/* equal memory: more vCPUs (h3, h2, h4), then fewer desktops (h4) */
	assert_ptr_equal(policy_place(&p, hosts, 4).pl_host, &hosts[3]);
	/* equal memory, vCPUs and desktops: the smaller id, wherever it is listed */
	assert_ptr_equal(policy_place(&p, hosts, 2).pl_host, &hosts[1]);
	struct policy_host swapped[] = {hosts[1], hosts[0]};
	assert_ptr_equal(policy_place(&p, swapped, 2).pl_host, &swapped[0]);
}

static void test_down_and_disallowed_hosts(void **state)
{
	struct policy_pool p = pool(1024, 1);
	struct policy_host hosts[] = {H("big", 65536, 64, 0), H("small", 4096, 4, 0),
				      H("mid", 8192, 8, 0)};
	static const char *const only_small_mid[] = {"small", "mid"};
	struct policy_placement pl;

	(void)state;
	hosts[0].host_up = false;
	assert_ptr_equal(policy_place(&p, hosts, 3).pl_host, &hosts[2]);
	hosts[0].host_up = true;
	hosts[0].host_enabled = false; /* maintenance */
	assert_ptr_equal(policy_place(&p, hosts, 3).pl_host, &hosts[2]);
	hosts[0].host_enabled = true;
	p.pool_hosts = only_small_mid;
	p.pool_nhosts = 1;
	assert_ptr_equal(policy_place(&p, hosts, 3).pl_host, &hosts[1]);
	p.pool_nhosts = 2;
	assert_ptr_equal(policy_place(&p, hosts, 3).pl_host, &hosts[2]);
	/* every allowed host down: no_host */
	hosts[1].host_up = hosts[2].host_up = false;
	pl = policy_place(&p, hosts, 3);
	assert_null(pl.pl_host);
	assert_int_equal(pl.pl_reason, POLICY_NO_HOST);
	assert_int_equal(policy_place(&p, NULL, 0).pl_reason, POLICY_NO_HOST);
}

static void test_engine_unavailable(void **state)
{
	struct policy_pool p = pool(1024, 1);
	struct policy_host hosts[] = {H("big", 65536, 64, 0), H("small", 4096, 4, 0)};
	struct policy_placement pl;

	(void)state;
	p.pool_engine = POLICY_ENGINE_VDIHV;
	hosts[0].host_engines = POLICY_ENGINE_QEMU | POLICY_ENGINE_DEFAULT; /* no KVM */
	assert_ptr_equal(policy_place(&p, hosts, 2).pl_host, &hosts[1]);
	hosts[1].host_engines = POLICY_ENGINE_QEMU;
	pl = policy_place(&p, hosts, 2);
	assert_null(pl.pl_host);
	assert_int_equal(pl.pl_reason, POLICY_NO_ENGINE);
	/* a pool on the hosts' default engine goes where the default runs */
	p.pool_engine = POLICY_ENGINE_DEFAULT;
	assert_ptr_equal(policy_place(&p, hosts, 2).pl_host, &hosts[0]);
	/* an engine some host has, but no room there: no_capacity, not engine_unavailable */
	p.pool_engine = POLICY_ENGINE_QEMU;
	p.pool_memory_mb = 1 << 20;
	assert_int_equal(policy_place(&p, hosts, 2).pl_reason, POLICY_NO_CAPACITY);
	/* down hosts are no_host whatever their engines */
	hosts[0].host_up = hosts[1].host_up = false;
	assert_int_equal(policy_place(&p, hosts, 2).pl_reason, POLICY_NO_HOST);
}

static void test_capacity(void **state)
{
	struct policy_pool p = pool(4096, 4);
	struct policy_host hosts[] = {H("h1", 4095, 64, 0), H("h2", 65536, 3, 0),
				      H("h3", 8192, 8, 9)};
	struct policy_placement pl;

	(void)state;
	hosts[2].host_max_desktops = 9;
	pl = policy_place(&p, hosts, 3);
	assert_null(pl.pl_host);
	assert_int_equal(pl.pl_reason, POLICY_NO_CAPACITY);
	hosts[2].host_max_desktops = 10;
	assert_ptr_equal(policy_place(&p, hosts, 3).pl_host, &hosts[2]);
	hosts[0].host_mem_free_mb = 4096; /* exactly enough */
	hosts[2].host_mem_free_mb = 4096;
	hosts[2].host_vcpus_free = 4;
	hosts[0].host_vcpus_free = 4;
	assert_ptr_equal(policy_place(&p, hosts, 3).pl_host,
			 &hosts[0]); /* h1 < h3, fewer desktops */
}

static void test_batch_spreads(void **state)
{
	struct policy_pool p = pool(2048, 2);
	struct policy_host hosts[] = {H("a", 8192, 16, 0), H("b", 6144, 16, 0), H("c", 2048, 1, 0)};
	const struct policy_host *out[8];
	enum policy_reason reason;
	size_t n;

	(void)state;
	/* a: 8192, b: 6144 -> a; then both have 6144 left and b more vCPUs -> b; and so on,
	 * alternating, until both are full (4 + 3); c never fits (1 vCPU) */
	n = policy_place_many(&p, hosts, 3, 8, out, &reason);
	assert_int_equal(n, 7);
	assert_int_equal(reason, POLICY_NO_CAPACITY);
	const struct policy_host *want[] = {&hosts[0], &hosts[1], &hosts[0], &hosts[1],
					    &hosts[0], &hosts[1], &hosts[0]};
	for (size_t i = 0; i < n; i++)
		assert_ptr_equal(out[i], want[i]);
	n = policy_place_many(&p, hosts, 3, 2, out, &reason);
	assert_int_equal(n, 2);
	assert_int_equal(reason, POLICY_OK);
	assert_int_equal(policy_place_many(&p, hosts, 3, 0, out, &reason), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_most_free_memory),
	    cmocka_unit_test(test_tie_breaks),
	    cmocka_unit_test(test_down_and_disallowed_hosts),
	    cmocka_unit_test(test_engine_unavailable),
	    cmocka_unit_test(test_capacity),
	    cmocka_unit_test(test_batch_spreads),
	};
	return cmocka_run_group_tests_name("policy_placement", tests, NULL, NULL);
}
