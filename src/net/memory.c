/*
 * memory.c — the process-wide memory budget: one relaxed atomic counter of the bytes that
 * remote peers make the process hold (message reassembly, inflate output above the loop's
 * scratch, output queues that outlive a flush), shared by every loop, and the budget it is
 * held to. Each loop also keeps its own share (loop_mem_held) for its server's statistics.
 */
#include "net/net.h"

static _Atomic uint64_t mem_held;   /* bytes held now, all loops */
static _Atomic uint64_t mem_budget; /* 0 = no budget */

/* Sets the budget; see weft.h. */
void weft_memory_set_budget(uint64_t bytes)
{
    atomic_store_explicit(&mem_budget, bytes, memory_order_relaxed);
}

/* The budget; see weft.h. */
uint64_t weft_memory_budget(void)
{
    return atomic_load_explicit(&mem_budget, memory_order_relaxed);
}

/* Bytes held now; see weft.h. */
uint64_t weft_memory_held(void)
{
    return atomic_load_explicit(&mem_held, memory_order_relaxed);
}

/* Counts n more bytes held on loop. Unless force, fails (counting nothing) when that would
 * take the process over its budget. Returns true when counted. */
bool mem_charge(struct weft_loop *loop, size_t n, bool force)
{
    if (n == 0) return true;
    uint64_t old = atomic_fetch_add_explicit(&mem_held, n, memory_order_relaxed);
    if (!force) {
        uint64_t budget = atomic_load_explicit(&mem_budget, memory_order_relaxed);
        if (budget && old + n > budget) {
            atomic_fetch_sub_explicit(&mem_held, n, memory_order_relaxed);
            return false;
        }
    }
    *loop_mem_held(loop) += n;
    return true;
}

/* Counts n bytes counted by mem_charge on loop as released. */
void mem_release(struct weft_loop *loop, size_t n)
{
    if (n == 0) return;
    atomic_fetch_sub_explicit(&mem_held, n, memory_order_relaxed);
    *loop_mem_held(loop) -= n;
}

/* True when n more bytes would keep the process within its budget (or there is none). */
bool mem_fits(size_t n)
{
    uint64_t budget = atomic_load_explicit(&mem_budget, memory_order_relaxed);
    return !budget || atomic_load_explicit(&mem_held, memory_order_relaxed) + n <= budget;
}
