/* SPDX-License-Identifier: MIT */
/*
 * client_gen: tpclient's request generator.  See client_gen.h.
 */
#include "client_gen.h"

#include <pthread.h>

/* byte -> alphanumeric, near-uniform (each of the 62 appears 4 or 5 times); built once. */
static char alnum_of_byte[256];

static void init_alnum(void)
{
	static const char alnum[62] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

	for (unsigned b = 0; b < 256; b++)
		alnum_of_byte[b] = alnum[(b * 62) >> 8];
}

void tp_client_gen_text(uint64_t seed, char *dst, size_t len)
{
	size_t i = 0;

	/* Generated twice per ECHO (to send, to check): a table lookup per byte keeps it cheap. */
	for (; i + 8 <= len; i += 8) {
		uint64_t r = tp_client_gen_next(&seed);
		for (int b = 0; b < 8; b++, r >>= 8)
			dst[i + (size_t)b] = alnum_of_byte[r & 0xff];
	}
	if (i < len) {
		uint64_t r = tp_client_gen_next(&seed);
		for (; i < len; i++, r >>= 8)
			dst[i] = alnum_of_byte[r & 0xff];
	}
}

void tp_client_gen_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, init_alnum);
}
