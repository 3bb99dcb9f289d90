/* SPDX-License-Identifier: MIT */
/*
 * client_sched: the open-loop schedule of one worker.  See client_sched.h.
 */
#include "client_sched.h"

void tp_client_sched_add(struct tp_client_sched *s, unsigned g, unsigned pos)
{
	if (s->groups[g].n++ == 0)
		s->groups[g].first = pos;
}

bool tp_client_sched_begin(struct tp_client_sched *s, const struct tp_client_opts *opts)
{
	s->opts = opts;
	s->on = false;
	for (unsigned g = 0; g < opts->ngroups; g++) {
		s->groups[g].on = s->groups[g].n > 0 && opts->groups[g].rate > 0;
		s->on |= s->groups[g].on;
	}
	return s->on;
}

/* Has every connection of the group sent its --requests (or closed)? */
static bool all_done(const struct tp_client_sched_group *t, struct tp_client_conn **conns)
{
	for (unsigned i = 0; i < t->n; i++)
		if (!tp_client_conn_done(conns[t->first + i]))
			return false;
	return true;
}

/*
 * Rounds past --requests go on while a connection still has requests to
 * send: those of the warm-up do not count towards it.
 */
static void run_group(struct tp_client_sched_group *t, const struct tp_client_group *group,
                      struct tp_client_conn **conns, const struct tp_client_ctx *ctx)
{
	while (t->on) {
		struct tp_client_conn *c = conns[t->first + t->j];
		int64_t due = tp_client_conn_due_ns(c, t->k);

		if (ctx->stopping ||
		    (group->requests && t->j == 0 && t->k >= group->requests && all_done(t, conns)) ||
		    (ctx->end_ns && due >= ctx->end_ns)) {
			t->on = false;
			break;
		}
		if (due > ctx->now_ns) {
			t->next_ns = due;
			break;
		}
		tp_client_conn_pump(c);
		if (++t->j == t->n) {
			t->j = 0;
			t->k++;
		}
	}
}

void tp_client_sched_run(struct tp_client_sched *s, struct tp_client_conn **conns,
                         const struct tp_client_ctx *ctx)
{
	s->on = false;
	for (unsigned g = 0; g < s->opts->ngroups; g++) {
		struct tp_client_sched_group *t = &s->groups[g];
		run_group(t, &s->opts->groups[g], conns, ctx);
		if (t->on && (!s->on || t->next_ns < s->next_ns))
			s->next_ns = t->next_ns;
		s->on |= t->on;
	}
}
