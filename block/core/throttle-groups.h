/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Throttle groups: named sets of limits whose budget their members (a
 * drive's backend, a throttle filter node) share, as in QEMU 7.2.  A
 * group is made by the throttle-group object or, unnamed by any object,
 * by the first drive that names it (-drive throttling.group=,
 * block_set_io_throttle's "group"); such a group goes with its last
 * member.  Requests over the limits wait in their member's queue until
 * the group's timer lets them go, members taking turns.
 */
#ifndef BLOCK_CORE_THROTTLE_GROUPS_H
#define BLOCK_CORE_THROTTLE_GROUPS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "block/core/block.h"
#include "block/core/throttle-core.h"

typedef struct ThrottleGroup ThrottleGroup;
typedef struct ThrottleGroupMember ThrottleGroupMember;

/*
 * The clock limits are measured on: host time, or under -accel qtest
 * @now_ns (the guest's virtual clock, as QEMU), whose moves the caller
 * reports with throttle_groups_clock_moved().  Main loop only.
 */
void throttle_groups_use_clock(int64_t (*now_ns)(void));
void throttle_groups_clock_moved(void);

/* The group called @name, or NULL. */
ThrottleGroup *throttle_group_find(const char *name);

/*
 * A new group @name for the throttle-group object (which holds the
 * reference returned), with @cfg (valid); refused with QEMU's message
 * when a group of that name exists.
 */
ThrottleGroup *throttle_group_new_object(const char *name,
                                         const ThrottleConfig *cfg,
                                         Error **errp);
/* Drop the object's reference (the group has no members then). */
void throttle_group_release_object(ThrottleGroup *tg);

const char *throttle_group_name(const ThrottleGroup *tg);
bool throttle_group_has_members(const ThrottleGroup *tg);
void throttle_group_get_config(const ThrottleGroup *tg, ThrottleConfig *cfg);
/* Take @cfg (valid) for the whole group; waiting requests re-check it. */
void throttle_group_set_config(ThrottleGroup *tg, const ThrottleConfig *cfg);

/*
 * Make a member of group @name (made, without limits, when none has
 * that name); it holds a reference on its group.
 */
ThrottleGroupMember *throttle_group_register(const char *name);
/* Leave the group; requests still waiting go at once. */
void throttle_group_unregister(ThrottleGroupMember *tgm);
ThrottleGroup *throttle_group_of(const ThrottleGroupMember *tgm);

/*
 * A request of @bytes in direction @is_write asks to go: @cb(@opaque, 0)
 * is called when the group's limits allow it, at once (before this
 * returns) or later from the main loop.
 */
void throttle_group_intercept(ThrottleGroupMember *tgm, bool is_write,
                              uint64_t bytes, BdrvCb *cb, void *opaque);

/* Let every request @tgm holds back go now, unaccounted (a drain). */
void throttle_group_release(ThrottleGroupMember *tgm);

/* Requests of @tgm waiting in direction @is_write (for tests). */
unsigned throttle_group_pending(const ThrottleGroupMember *tgm,
                                bool is_write);

/*
 * ThrottleLimits (QEMU's members, "bps-total" ... "iops-size"): @cfg as
 * all of them (new reference), and the members @limits gives applied
 * over @cfg, then checked (QEMU's messages).  @prefix: "" or the flat
 * legacy "x-" names of the object.
 */
json_t *throttle_limits_to_json(const ThrottleConfig *cfg);
bool throttle_limits_apply(ThrottleConfig *cfg, const json_t *limits,
                           Error **errp);

/* The members' names in ThrottleLimits' order (NULL-terminated). */
extern const char *const throttle_limit_names[];
/* Set limit number @i (of throttle_limit_names) in @cfg; no checks. */
void throttle_limit_set(ThrottleConfig *cfg, int i, uint64_t value);
uint64_t throttle_limit_get(const ThrottleConfig *cfg, int i);

/*
 * A drive's I/O limits (backend.c; QEMU keeps them on the BlockBackend,
 * not on a node): its reads and writes wait for group @group's limits
 * once enabled; update_group moves it to another group.  Main loop only.
 */
void blk_io_limits_enable(BlockBackend *blk, const char *group);
void blk_io_limits_disable(BlockBackend *blk);
void blk_io_limits_update_group(BlockBackend *blk, const char *group);
/* The drive's group, or NULL when it has no limits. */
ThrottleGroup *blk_io_limits_group(const BlockBackend *blk);

#endif /* BLOCK_CORE_THROTTLE_GROUPS_H */
