/* SPDX-License-Identifier: MIT */
/*
 * addrtab: a hash table of client addresses with chaining, grown by
 * doubling so chains stay short; keys are hashed with a random seed so a
 * client cannot choose addresses that share a chain.
 */
#include "addrtab.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "tp_assert.h"

#define INITIAL_BUCKETS 256

struct key {
	uint8_t bytes[16]; /* IPv4 in the first 4, the rest zero; IPv6 masked to its prefix */
	uint8_t family;
};

struct entry {
	struct tp_qgroup group; /* first: the queue's handle is the entry */
	struct entry *next;     /* chain */
	struct key key;
	uint64_t hash;
	size_t conns;
};

/* An address refused over the cap in the current period, and how often. */
struct refused {
	struct key key;
	int ipv6_prefix; /* as it was counted, to name it so */
	uint64_t n;
};

struct tp_addrtab {
	pthread_mutex_t lock;
	struct entry **buckets;
	size_t nbuckets; /* a power of two */
	size_t count;
	uint64_t seed;
	/* the refusals over the cap in the current period (see count_refusal) */
	struct refused refused[TP_ADDRTAB_REFUSED_SLOTS];
	size_t nrefused;
	uint64_t refused_total;
	bool refused_more; /* more addresses than slots: the counts are bounds */
};

struct tp_addrtab *tp_addrtab_new(void)
{
	struct tp_addrtab *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->buckets = calloc(INITIAL_BUCKETS,
	                    sizeof(*t->buckets)); // NOLINT(bugprone-sizeof-expression): an array of pointers
	if (!t->buckets) {
		free(t);
		return NULL;
	}
	t->nbuckets = INITIAL_BUCKETS;
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != (ssize_t)sizeof(t->seed))
		t->seed = (uint64_t)(uintptr_t)t ^ 0x9e3779b97f4a7c15ull;
	pthread_mutex_init(&t->lock, NULL);
	return t;
}

void tp_addrtab_free(struct tp_addrtab *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nbuckets; i++)
		for (struct entry *e = t->buckets[i], *next; e; e = next) {
			next = e->next;
			free(e);
		}
	pthread_mutex_destroy(&t->lock);
	free(t->buckets);
	free(t);
}

/* The client address of peer. Returns false for a family without one. */
static bool key_of(const struct sockaddr_storage *peer, int ipv6_prefix, struct key *k)
{
	memset(k, 0, sizeof(*k));
	if (peer->ss_family == AF_INET) {
		memcpy(k->bytes, &((const struct sockaddr_in *)peer)->sin_addr, 4);
		k->family = AF_INET;
		return true;
	}
	if (peer->ss_family != AF_INET6)
		return false;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)peer)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a)) {
		memcpy(k->bytes, &a->s6_addr[12], 4);
		k->family = AF_INET;
		return true;
	}
	k->family = AF_INET6;
	for (int i = 0; i < 16 && ipv6_prefix > 0; i++, ipv6_prefix -= 8)
		k->bytes[i] =
		        ipv6_prefix >= 8 ? a->s6_addr[i] : (uint8_t)(a->s6_addr[i] & (0xff00 >> ipv6_prefix));
	return true;
}

/* 64-bit FNV-1a over the key, from the table's seed. */
static uint64_t hash_of(const struct tp_addrtab *t, const struct key *k)
{
	uint64_t h = 0xcbf29ce484222325ull ^ t->seed;
	for (size_t i = 0; i < sizeof(k->bytes); i++)
		h = (h ^ k->bytes[i]) * 0x100000001b3ull;
	h = (h ^ k->family) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

/* Double the buckets when there are more entries than buckets. Lock held. */
static void maybe_grow(struct tp_addrtab *t)
{
	if (t->count < t->nbuckets)
		return;
	size_t n = t->nbuckets * 2;
	struct entry **b = calloc(n, sizeof(*b)); // NOLINT(bugprone-sizeof-expression): an array of pointers
	if (!b)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct entry *e = t->buckets[i], *next; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
}

/*
 * k was refused over its cap.  Each address refused in the period has a
 * slot with its count, independent of its entry (which goes with its last
 * connection), so a client that reconnects at its cap is one address.
 * With the slots full, the least refused gives way to the newcomer, which
 * takes its count plus one: the counts are then upper bounds, and an
 * address refused more than a slot's share of the period is still among
 * them (the space-saving algorithm).  Lock held.
 */
static void count_refusal(struct tp_addrtab *t, const struct key *k, int ipv6_prefix)
{
	size_t least = 0;

	t->refused_total++;
	for (size_t i = 0; i < t->nrefused; i++) {
		if (memcmp(&t->refused[i].key, k, sizeof(*k)) == 0) {
			t->refused[i].n++;
			return;
		}
		if (t->refused[i].n < t->refused[least].n)
			least = i;
	}
	if (t->nrefused < TP_ADDRTAB_REFUSED_SLOTS) {
		t->refused[t->nrefused++] = (struct refused){*k, ipv6_prefix, 1};
		return;
	}
	t->refused_more = true;
	t->refused[least] = (struct refused){*k, ipv6_prefix, t->refused[least].n + 1};
}

int tp_addrtab_enter(struct tp_addrtab *t, const struct sockaddr_storage *peer, int ipv6_prefix, int max,
                     struct tp_qgroup **ret_group)
{
	struct key k;
	struct entry *e;
	int r = 0;

	*ret_group = NULL;
	if (!key_of(peer, ipv6_prefix, &k))
		return 0;
	uint64_t h = hash_of(t, &k);
	pthread_mutex_lock(&t->lock);
	for (e = t->buckets[h & (t->nbuckets - 1)]; e; e = e->next)
		if (e->hash == h && memcmp(&e->key, &k, sizeof(k)) == 0)
			break;
	if (e && max > 0 && e->conns >= (size_t)max) {
		count_refusal(t, &k, ipv6_prefix);
		r = -EUSERS;
	} else if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			r = -ENOMEM;
			goto out;
		}
		tp_qgroup_init(&e->group);
		e->key = k;
		e->hash = h;
		e->next = t->buckets[h & (t->nbuckets - 1)];
		t->buckets[h & (t->nbuckets - 1)] = e;
		t->count++;
		maybe_grow(t);
	}
	if (r == 0) {
		e->conns++;
		*ret_group = &e->group;
	}
out:
	pthread_mutex_unlock(&t->lock);
	return r;
}

void tp_addrtab_leave(struct tp_addrtab *t, struct tp_qgroup *g)
{
	struct entry *e = (struct entry *)(void *)g, **p;

	if (!g)
		return;
	pthread_mutex_lock(&t->lock);
	TP_ASSERT(e->conns > 0);
	if (--e->conns == 0) {
		/* No connection of it is left, so the queue holds nothing of it either. */
		TP_ASSERT(e->group.e.nready == 0 && e->group.nwaiting == 0);
		for (p = &t->buckets[e->hash & (t->nbuckets - 1)]; *p != e; p = &(*p)->next)
			;
		*p = e->next;
		t->count--;
		free(e);
	}
	pthread_mutex_unlock(&t->lock);
}

size_t tp_addrtab_count(struct tp_addrtab *t)
{
	size_t n;
	pthread_mutex_lock(&t->lock);
	n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}

/* k as the logs name a client address: an IPv6 prefix shorter than 128 with its length. */
static void key_text(const struct key *k, int ipv6_prefix, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	(void)inet_ntop(k->family, k->bytes, a, sizeof(a));
	if (k->family == AF_INET6 && ipv6_prefix < 128)
		snprintf(buf, len, "%s/%d", a, ipv6_prefix);
	else
		snprintf(buf, len, "%s", a);
}

bool tp_addrtab_refusals_take(struct tp_addrtab *t, struct tp_addrtab_refusals *ret)
{
	const struct refused *top = NULL;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->nrefused; i++)
		if (!top || t->refused[i].n > top->n)
			top = &t->refused[i];
	ret->total = t->refused_total;
	ret->addrs = t->nrefused;
	ret->more = t->refused_more;
	ret->top_count = top ? top->n : 0;
	if (top)
		key_text(&top->key, top->ipv6_prefix, ret->top, sizeof(ret->top));
	else
		ret->top[0] = '\0';
	t->nrefused = 0;
	t->refused_total = 0;
	t->refused_more = false;
	pthread_mutex_unlock(&t->lock);
	return ret->total > 0;
}
