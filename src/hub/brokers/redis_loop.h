/*
 * redis_loop.h — hiredis' async API on weft's loop: a context's socket is watched with
 * weft_loop_watch_fd (public API only) and hiredis' read/write hooks drive it. Knows nothing
 * of the broker: any hiredis context can be attached (a later Sentinel or cluster broker
 * reuses it).
 */
#ifndef WEFT_HUB_REDIS_LOOP_H
#define WEFT_HUB_REDIS_LOOP_H

#include <stdint.h>

#include <hiredis/async.h>
#include <weft.h>

/* Attaches ac (just created, not yet attached) to loop. on_gone(arg) runs when hiredis frees
 * the context (disconnect, error or redisAsyncFree), after the watch is dropped. Returns 0,
 * or -1 (out of memory: nothing attached, the caller frees ac). */
int redis_loop_attach(redisAsyncContext *ac, struct weft_loop *loop, void (*on_gone)(void *arg),
                      void *arg);
/* Writes what hiredis still holds for ac, blocking (poll) at most timeout_ms: the last
 * commands before the context is freed at shutdown. */
void redis_loop_flush(redisAsyncContext *ac, uint64_t timeout_ms);

#endif
