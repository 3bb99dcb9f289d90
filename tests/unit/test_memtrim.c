/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of memtrim.c against glibc's real heap: one trim 5 s into a
 * quiet spell and no more; while busy, a trim once 4 MiB more is held
 * free, at most one per 5 s; and memory freed just after a trim (other
 * threads' frees wait on the heap's lock while it runs) counted towards
 * the next one.  The binary is linked with --wrap=malloc_trim: the test
 * counts the trims and frees memory right after one.  The heap tests skip
 * themselves under a sanitizer, whose allocator is not glibc's.
 */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "memtrim.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GLIBC_HEAP 0
#else
#define GLIBC_HEAP 1
#endif

#define SEC 1000000000ull
#define BLOCK (16 << 10) /* below the mmap threshold: from the heap */
#define NBLOCK 1024      /* 16 MiB a set */

int __real_malloc_trim(size_t pad);
int __wrap_malloc_trim(size_t pad);

static unsigned trims;
static void *set_a[NBLOCK], *set_b[NBLOCK];
static void *top;         /* allocated after both sets: their frees never reach the heap's top */
static bool free_b_after; /* free set b just after the next trim */

static void free_set(void **set)
{
	for (size_t i = 0; i < NBLOCK; i++) {
		free(set[i]);
		set[i] = NULL;
	}
}

int __wrap_malloc_trim(size_t pad)
{
	int r = __real_malloc_trim(pad);

	trims++;
	if (free_b_after) {
		free_b_after = false;
		free_set(set_b);
	}
	return r;
}

/* Interleaved blocks of sets a and b, each written (resident), then one more above them. */
static void fill(void)
{
	for (size_t i = 0; i < NBLOCK; i++) {
		assert_non_null(set_a[i] = malloc(BLOCK));
		memset(set_a[i], 'a', BLOCK);
		assert_non_null(set_b[i] = malloc(BLOCK));
		memset(set_b[i], 'b', BLOCK);
	}
	assert_non_null(top = malloc(64));
}

static size_t rss_kib(void)
{
	char line[128];
	size_t kib = 0;
	FILE *f = fopen("/proc/self/status", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %zu kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static int setup(void **state)
{
	(void)state;
	(void)__real_malloc_trim(0); /* what earlier tests left free is not held */
	trims = 0;
	free_b_after = false;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free_set(set_a);
	free_set(set_b);
	free(top);
	top = NULL;
	return 0;
}

static void test_one_trim_five_seconds_into_a_quiet_spell(void **state)
{
	struct tp_memtrim t = {0};

	(void)state;
	assert_false(tp_memtrim_tick(&t, true, 1 * SEC));
	assert_false(tp_memtrim_tick(&t, false, 2 * SEC));
	assert_false(tp_memtrim_tick(&t, false, 6 * SEC - 1));
	assert_true(tp_memtrim_tick(&t, false, 6 * SEC));
	assert_false(tp_memtrim_tick(&t, false, 7 * SEC));
	assert_false(tp_memtrim_tick(&t, false, 60 * SEC));
	assert_int_equal(trims, 1);
	/* activity starts a new spell, with its own trim */
	assert_false(tp_memtrim_tick(&t, true, 61 * SEC));
	assert_false(tp_memtrim_tick(&t, false, 65 * SEC));
	assert_true(tp_memtrim_tick(&t, false, 66 * SEC));
	assert_int_equal(trims, 2);
}

static void test_busy_trims_what_is_held_at_most_every_five_seconds(void **state)
{
	struct tp_memtrim t = {0};

	(void)state;
	if (!GLIBC_HEAP)
		skip();
	assert_false(tp_memtrim_tick(&t, true, 1 * SEC)); /* the first look */
	fill();
	assert_false(tp_memtrim_tick(&t, true, 2 * SEC)); /* allocated, nothing held */
	size_t before = rss_kib();
	free_set(set_a);
	assert_true(tp_memtrim_tick(&t, true, 3 * SEC)); /* 16 MiB held */
	assert_int_equal(trims, 1);
	assert_in_range(rss_kib(), 0, before - 8 * 1024); /* whole pages inside each free block */
	/* freed again at once: not before 5 s have passed */
	for (size_t i = 0; i < NBLOCK; i++) {
		assert_non_null(set_a[i] = malloc(BLOCK));
		memset(set_a[i], 'a', BLOCK);
	}
	free_set(set_a);
	assert_false(tp_memtrim_tick(&t, true, 8 * SEC - 1));
	assert_true(tp_memtrim_tick(&t, true, 8 * SEC));
	assert_int_equal(trims, 2);
	/* nothing more held: no trim, however long it goes on */
	assert_false(tp_memtrim_tick(&t, true, 14 * SEC));
	assert_false(tp_memtrim_tick(&t, true, 20 * SEC));
	assert_int_equal(trims, 2);
}

static void test_memory_freed_just_after_a_trim_counts_towards_the_next(void **state)
{
	struct tp_memtrim t = {0};

	(void)state;
	if (!GLIBC_HEAP)
		skip();
	assert_false(tp_memtrim_tick(&t, true, 1 * SEC));
	fill();
	free_set(set_a);
	free_b_after = true; /* another thread's 16 MiB, freed as the trim lets go of the heap */
	assert_true(tp_memtrim_tick(&t, true, 2 * SEC));
	assert_false(free_b_after);
	size_t held = rss_kib();
	assert_false(tp_memtrim_tick(&t, true, 7 * SEC - 1));
	assert_true(tp_memtrim_tick(&t, true, 7 * SEC));
	assert_int_equal(trims, 2);
	assert_in_range(rss_kib(), 0, held - 12 * 1024);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_one_trim_five_seconds_into_a_quiet_spell, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_busy_trims_what_is_held_at_most_every_five_seconds,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_memory_freed_just_after_a_trim_counts_towards_the_next,
	                                        setup, teardown),
	};
	(void)mallopt(M_MMAP_THRESHOLD, 1 << 20); /* the blocks stay in the heap whatever was freed before */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
