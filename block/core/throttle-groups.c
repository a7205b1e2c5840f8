/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Throttle groups, QEMU 7.2's algorithm on qmpd's one main loop.
 *
 * A group holds one ThrottleState (the buckets, throttle-core.c) that
 * all its members fill.  A member queues its requests per direction; a
 * request goes at once only when its direction has no timer armed in
 * the whole group and nothing queued in its member, else it queues.
 * At most one timer per direction is armed in a group, on the member
 * whose turn it is (the "token"); when it fires, that member's next
 * request goes and the turn passes round-robin to the next member with
 * requests queued, so members share the budget fairly:
 *
 *    intercept ──> timer armed or queue busy? ──yes──> queue
 *         │ no                                           │ timer fires
 *         v                                              v
 *      account, schedule_next  <──────────────────  pop one request
 *         │                                     (none: schedule_next)
 *         v
 *      request goes
 *
 * schedule_next hands the turn on: it arms the next member's timer, for
 * when the buckets allow, or for now (an idle callback) when they do
 * already.  A timer is a GLib timeout on host time; under -accel qtest
 * the clock is the guest's virtual one, and timers fire only when qtest
 * moves it (or at once when already due), as QEMU's virtual clock does.
 */
#include "config.h"

#include <limits.h>
#include <string.h>

#include <glib.h>

#include "block/core/throttle-groups.h"

struct ThrottleGroup {
    char *name;
    int refcnt;
    bool is_object;
    ThrottleState ts;
    GList *members;             /* ThrottleGroupMember *, in join order */
    ThrottleGroupMember *tokens[2];
    bool any_timer_armed[2];
};

typedef struct {
    uint64_t bytes;
    BdrvCb *cb;
    void *opaque;
} ThrottledReq;

typedef struct {
    ThrottleGroupMember *tgm;
    bool is_write;
    bool armed;
    int64_t deadline;
    guint source;
} ThrottleTimer;

struct ThrottleGroupMember {
    ThrottleGroup *tg;
    GQueue queue[2];            /* ThrottledReq * */
    ThrottleTimer timers[2];
};

static GList *groups;
static int64_t (*manual_clock)(void);

void throttle_groups_use_clock(int64_t (*now_ns)(void))
{
    manual_clock = now_ns;
}

static int64_t now_ns(void)
{
    return manual_clock ? manual_clock() : g_get_monotonic_time() * 1000;
}

/* ---- the limits as ThrottleLimits --------------------------------------- */

const char *const throttle_limit_names[] = {
    "iops-total", "iops-total-max", "iops-total-max-length",
    "iops-read", "iops-read-max", "iops-read-max-length",
    "iops-write", "iops-write-max", "iops-write-max-length",
    "bps-total", "bps-total-max", "bps-total-max-length",
    "bps-read", "bps-read-max", "bps-read-max-length",
    "bps-write", "bps-write-max", "bps-write-max-length",
    "iops-size", NULL
};

#define LIMIT_IOPS_SIZE 18

static const ThrottleBucketType limit_bucket[6] = {
    THROTTLE_OPS_TOTAL, THROTTLE_OPS_READ, THROTTLE_OPS_WRITE,
    THROTTLE_BPS_TOTAL, THROTTLE_BPS_READ, THROTTLE_BPS_WRITE,
};

static uint64_t *limit_field(ThrottleConfig *cfg, int i)
{
    LeakyBucket *b;

    if (i == LIMIT_IOPS_SIZE) {
        return &cfg->op_size;
    }
    b = &cfg->buckets[limit_bucket[i / 3]];
    return i % 3 == 0 ? &b->avg : i % 3 == 1 ? &b->max : &b->burst_length;
}

void throttle_limit_set(ThrottleConfig *cfg, int i, uint64_t value)
{
    /* QEMU keeps a burst length in an unsigned int */
    *limit_field(cfg, i) = i % 3 == 2 && i != LIMIT_IOPS_SIZE
                           ? (uint32_t)value : value;
}

uint64_t throttle_limit_get(const ThrottleConfig *cfg, int i)
{
    return *limit_field((ThrottleConfig *)cfg, i);
}

json_t *throttle_limits_to_json(const ThrottleConfig *cfg)
{
    json_t *o = json_object();

    for (int i = 0; throttle_limit_names[i]; i++) {
        json_object_set_new(o, throttle_limit_names[i],
                            json_integer(throttle_limit_get(cfg, i)));
    }
    return o;
}

bool throttle_limits_apply(ThrottleConfig *cfg, const json_t *limits,
                           Error **errp)
{
    for (int i = 0; throttle_limit_names[i]; i++) {
        json_t *v = json_object_get(limits, throttle_limit_names[i]);
        json_int_t value = v ? json_integer_value(v) : 0;

        if (!v) {
            continue;
        }
        /* signed here, as QEMU compares it; -1 then counts as unsigned */
        if (i % 3 == 2 && i != LIMIT_IOPS_SIZE && value > UINT_MAX) {
            error_setg(errp, "%s value must be in the range [0, %u]",
                       throttle_limit_names[i], UINT_MAX);
            return false;
        }
        throttle_limit_set(cfg, i, (uint64_t)value);
    }
    return throttle_is_valid(cfg, errp);
}

/* ---- groups ------------------------------------------------------------- */

ThrottleGroup *throttle_group_find(const char *name)
{
    for (GList *l = groups; l; l = l->next) {
        ThrottleGroup *tg = l->data;

        if (!strcmp(tg->name, name)) {
            return tg;
        }
    }
    return NULL;
}

static ThrottleGroup *group_new(const char *name)
{
    ThrottleGroup *tg = g_new0(ThrottleGroup, 1);
    ThrottleConfig cfg;

    tg->name = g_strdup(name);
    tg->refcnt = 1;
    throttle_config_init(&cfg);
    throttle_config(&tg->ts, &cfg, now_ns());
    groups = g_list_append(groups, tg);
    return tg;
}

static void group_unref(ThrottleGroup *tg)
{
    if (--tg->refcnt) {
        return;
    }
    g_assert(!tg->members);
    groups = g_list_remove(groups, tg);
    g_free(tg->name);
    g_free(tg);
}

ThrottleGroup *throttle_group_new_object(const char *name,
                                         const ThrottleConfig *cfg,
                                         Error **errp)
{
    ThrottleGroup *tg;

    if (throttle_group_find(name)) {
        error_setg(errp, "A group with this name already exists");
        return NULL;
    }
    tg = group_new(name);
    tg->is_object = true;
    throttle_config(&tg->ts, cfg, now_ns());
    return tg;
}

void throttle_group_release_object(ThrottleGroup *tg)
{
    tg->is_object = false;
    group_unref(tg);
}

const char *throttle_group_name(const ThrottleGroup *tg)
{
    return tg->name;
}

bool throttle_group_has_members(const ThrottleGroup *tg)
{
    return tg->members != NULL;
}

void throttle_group_get_config(const ThrottleGroup *tg, ThrottleConfig *cfg)
{
    *cfg = tg->ts.cfg;
}

ThrottleGroup *throttle_group_of(const ThrottleGroupMember *tgm)
{
    return tgm->tg;
}

unsigned throttle_group_pending(const ThrottleGroupMember *tgm,
                                bool is_write)
{
    return g_queue_get_length((GQueue *)&tgm->queue[is_write]);
}

/* ---- timers ------------------------------------------------------------- */

static void timer_fire(ThrottleGroupMember *tgm, bool is_write);

static gboolean timer_source_cb(gpointer opaque)
{
    ThrottleTimer *t = opaque;

    t->source = 0;
    if (manual_clock && t->deadline > now_ns()) {
        return G_SOURCE_REMOVE;         /* waits for the clock to move */
    }
    timer_fire(t->tgm, t->is_write);
    return G_SOURCE_REMOVE;
}

static void timer_del(ThrottleTimer *t)
{
    if (t->source) {
        g_source_remove(t->source);
        t->source = 0;
    }
    t->armed = false;
}

static void timer_mod(ThrottleTimer *t, int64_t deadline)
{
    int64_t now = now_ns();

    timer_del(t);
    t->armed = true;
    t->deadline = deadline;
    if (deadline <= now) {
        t->source = g_idle_add(timer_source_cb, t);
    } else if (!manual_clock) {
        /* GLib's timeouts count milliseconds: never fire early */
        t->source = g_timeout_add((guint)((deadline - now + 999999)
                                          / 1000000), timer_source_cb, t);
    }
}

void throttle_groups_clock_moved(void)
{
    int64_t now = now_ns();

    /* one timer fired at a time: firing may re-arm any of them */
    for (;;) {
        ThrottleTimer *due = NULL;

        for (GList *g = groups; g; g = g->next) {
            for (GList *l = ((ThrottleGroup *)g->data)->members; l;
                 l = l->next) {
                ThrottleGroupMember *tgm = l->data;

                for (int d = 0; d < 2; d++) {
                    ThrottleTimer *t = &tgm->timers[d];

                    if (t->armed && t->deadline <= now
                        && (!due || t->deadline < due->deadline)) {
                        due = t;
                    }
                }
            }
        }
        if (!due) {
            return;
        }
        timer_del(due);
        timer_fire(due->tgm, due->is_write);
    }
}

/* ---- the algorithm ------------------------------------------------------ */

static ThrottleGroupMember *next_member(ThrottleGroupMember *tgm)
{
    GList *l = g_list_find(tgm->tg->members, tgm);

    return l->next ? l->next->data : tgm->tg->members->data;
}

/* The member whose turn comes next with requests queued, or @tgm. */
static ThrottleGroupMember *next_token(ThrottleGroupMember *tgm,
                                       bool is_write)
{
    ThrottleGroupMember *start = tgm->tg->tokens[is_write];
    ThrottleGroupMember *token;

    if (!start) {
        start = tgm;
    }
    token = next_member(start);
    while (token != start && g_queue_is_empty(&token->queue[is_write])) {
        token = next_member(token);
    }
    if (token == start && g_queue_is_empty(&token->queue[is_write])) {
        token = tgm;
    }
    return token;
}

/* Must @tgm's next request wait?  If so its timer is armed. */
static bool schedule_timer(ThrottleGroupMember *tgm, bool is_write)
{
    ThrottleGroup *tg = tgm->tg;
    int64_t next;

    if (tg->any_timer_armed[is_write]) {
        return true;
    }
    if (!throttle_compute_timer(&tg->ts, is_write, now_ns(), &next)) {
        return false;
    }
    if (!tgm->timers[is_write].armed) {
        timer_mod(&tgm->timers[is_write], next);
    }
    tg->tokens[is_write] = tgm;
    tg->any_timer_armed[is_write] = true;
    return true;
}

static void schedule_next(ThrottleGroupMember *tgm, bool is_write)
{
    ThrottleGroup *tg = tgm->tg;
    ThrottleGroupMember *token = next_token(tgm, is_write);

    if (g_queue_is_empty(&token->queue[is_write])) {
        return;
    }
    if (!schedule_timer(token, is_write)) {
        timer_mod(&token->timers[is_write], now_ns());
        tg->any_timer_armed[is_write] = true;
        tg->tokens[is_write] = token;
    }
}

static void timer_fire(ThrottleGroupMember *tgm, bool is_write)
{
    ThrottleGroup *tg = tgm->tg;
    ThrottledReq *r = g_queue_pop_head(&tgm->queue[is_write]);

    tgm->timers[is_write].armed = false;
    tg->any_timer_armed[is_write] = false;
    if (!r) {
        schedule_next(tgm, is_write);
        return;
    }
    throttle_account(&tg->ts, is_write, r->bytes);
    schedule_next(tgm, is_write);
    r->cb(r->opaque, 0);
    g_free(r);
}

void throttle_group_intercept(ThrottleGroupMember *tgm, bool is_write,
                              uint64_t bytes, BdrvCb *cb, void *opaque)
{
    ThrottleGroup *tg = tgm->tg;

    if (schedule_timer(tgm, is_write)
        || !g_queue_is_empty(&tgm->queue[is_write])) {
        ThrottledReq *r = g_new(ThrottledReq, 1);

        *r = (ThrottledReq){ bytes, cb, opaque };
        g_queue_push_tail(&tgm->queue[is_write], r);
        return;
    }
    throttle_account(&tg->ts, is_write, bytes);
    schedule_next(tgm, is_write);
    cb(opaque, 0);
}

void throttle_group_release(ThrottleGroupMember *tgm)
{
    for (int d = 0; d < 2; d++) {
        ThrottledReq *r;

        if (tgm->timers[d].armed) {
            timer_del(&tgm->timers[d]);
            tgm->tg->any_timer_armed[d] = false;
        }
        while ((r = g_queue_pop_head(&tgm->queue[d]))) {
            r->cb(r->opaque, 0);
            g_free(r);
        }
    }
    /* members queued behind the released turn need a timer again */
    for (int d = 0; d < 2; d++) {
        if (!tgm->tg->any_timer_armed[d]) {
            schedule_next(tgm, d);
        }
    }
}

void throttle_group_set_config(ThrottleGroup *tg, const ThrottleConfig *cfg)
{
    throttle_config(&tg->ts, cfg, now_ns());
    /* as QEMU restarts its members: armed timers fire now */
    for (GList *l = tg->members; l; l = l->next) {
        ThrottleGroupMember *tgm = l->data;

        for (int d = 0; d < 2; d++) {
            if (tgm->timers[d].armed) {
                timer_del(&tgm->timers[d]);
                timer_fire(tgm, d);
            } else if (!g_queue_is_empty(&tgm->queue[d])) {
                schedule_next(tgm, d);
            }
        }
    }
}

ThrottleGroupMember *throttle_group_register(const char *name)
{
    ThrottleGroup *tg = throttle_group_find(name);
    ThrottleGroupMember *tgm = g_new0(ThrottleGroupMember, 1);

    if (tg) {
        tg->refcnt++;
    } else {
        tg = group_new(name);
    }
    tgm->tg = tg;
    for (int d = 0; d < 2; d++) {
        g_queue_init(&tgm->queue[d]);
        tgm->timers[d].tgm = tgm;
        tgm->timers[d].is_write = d;
        if (!tg->tokens[d]) {
            tg->tokens[d] = tgm;
        }
    }
    tg->members = g_list_append(tg->members, tgm);
    return tgm;
}

void throttle_group_unregister(ThrottleGroupMember *tgm)
{
    ThrottleGroup *tg = tgm->tg;

    throttle_group_release(tgm);
    for (int d = 0; d < 2; d++) {
        if (tg->tokens[d] == tgm) {
            ThrottleGroupMember *next = next_member(tgm);

            tg->tokens[d] = next == tgm ? NULL : next;
        }
    }
    tg->members = g_list_remove(tg->members, tgm);
    /* another member may have been waiting behind the leaver's turn */
    for (int d = 0; d < 2 && tg->members; d++) {
        if (!tg->any_timer_armed[d]) {
            schedule_next(tg->members->data, d);
        }
    }
    g_free(tgm);
    group_unref(tg);
}
