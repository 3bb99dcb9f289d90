/* SPDX-License-Identifier: MIT */
/*
 * memtrim: malloc_trim once quiet, or while busy when enough is held.
 */
#include "memtrim.h"

#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"

bool tp_memtrim_statm(size_t *size, size_t *resident)
{
	char buf[128], *end;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	*size = (size_t)strtoul(buf, &end, 10) * page;
	*resident = (size_t)strtoul(end, &end, 10) * page;
	return *end == ' ' || *end == '\n';
}

/*
 * Resident memory the allocator holds free: RSS less allocated (code,
 * stacks and the like are in it too, a constant), where allocated was read
 * at used.
 */
static size_t held(size_t used)
{
	size_t size, rss;
	return tp_memtrim_statm(&size, &rss) && rss > used ? rss - used : 0;
}

/*
 * Trim; used is what was allocated, read before the trim: other threads'
 * frees wait on the heap's lock while it runs and land just after it, and
 * they are free memory the trim did not return, to count towards the next.
 */
static void trim(struct tp_memtrim *t, size_t used)
{
	(void)malloc_trim(0); /* returns whether memory was released: nothing to act on */
	t->held_base = held(used);
}

bool tp_memtrim_tick(struct tp_memtrim *t, bool active, uint64_t now_ns)
{
	if (active || !t->quiet_since_ns) {
		bool first = !t->quiet_since_ns;
		t->quiet_since_ns = now_ns;
		t->trimmed = false;
		if (t->busy_trim_ns && now_ns - t->busy_trim_ns < TP_MEMTRIM_BUSY_EVERY_NS)
			return false;
		size_t used = mallinfo2().uordblks, now_held = held(used);
		if (first)
			t->held_base = now_held; /* the first look: what is free at start */
		if (now_held < t->held_base + TP_MEMTRIM_BUSY_FREE)
			return false;
		t->busy_trim_ns = now_ns;
		trim(t, used);
		tp_log(TP_LOG_DEBUG, "memory", "%zu MiB of free heap resident: returned to the system",
		       now_held >> 20);
		return true;
	}
	if (t->trimmed || now_ns - t->quiet_since_ns < TP_MEMTRIM_QUIET_NS)
		return false;
	t->trimmed = true;
	trim(t, mallinfo2().uordblks);
	tp_log(TP_LOG_DEBUG, "memory", "quiet for %.0f s: freed memory returned to the system",
	       (double)(now_ns - t->quiet_since_ns) / 1e9);
	return true;
}
