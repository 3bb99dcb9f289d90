/* SPDX-License-Identifier: MIT */
/*
 * client_gen: the pseudo-random numbers and ECHO texts of tpclient's
 * requests.  Deterministic from a seed, so a run repeats and a reply is
 * checked by generating its text again instead of storing it.  No state
 * but the caller's; safe on any thread once tp_client_gen_init() returned.
 */
#ifndef TP_CLIENT_GEN_H
#define TP_CLIENT_GEN_H

#include <stddef.h>
#include <stdint.h>

/* Build the letter table. Call before tp_client_gen_text(); safe to repeat, from any thread. */
void tp_client_gen_init(void);

/* splitmix64: the next number of the sequence *state; small state, fast, good enough here. */
static inline uint64_t tp_client_gen_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The ECHO text of seed: len letters and digits (A-Za-z0-9) into dst, no NUL. */
void tp_client_gen_text(uint64_t seed, char *dst, size_t len);

#endif
