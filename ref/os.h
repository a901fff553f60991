/*
 * os.h: the operating-system primitives ref uses for memory and threads, in one place
 * (mimalloc's prim.h idea): every mmap, munmap, mprotect and madvise in ref
 * is in os.c. Linux only today.
 */
#ifndef REF_OS_H
#define REF_OS_H

#include "internal.h"

#include <pthread.h>

/* Maps len bytes of zeroed read-write anonymous memory; reserve-only (pages
 * committed when touched) when lazy. huge: ask for transparent huge pages.
 * Returns NULL on failure (errno set). Under ASan the range's shadow is
 * cleared: an earlier mapping at the same address (a goroutine stack that
 * never unwound, say) may have left it poisoned. */
void *ref__os_map(size_t len, bool lazy, bool huge);
void ref__os_unmap(void *p, size_t len);

/* Makes [p, p+len) inaccessible (a guard page). 0, or -1 with errno set. */
int ref__os_guard(void *p, size_t len);

/* Returns the pages of [p, p+len) to the OS; they read as zero when touched
 * again. 0, or -1 with errno set. */
int ref__os_decommit(void *p, size_t len);

/* The OS page size, the unit of mmap, mprotect and madvise: 4K on x86-64;
 * 4K, 16K or 64K on arm64, so it is asked for at run time. And the
 * machine's physical memory in bytes. */
size_t ref__os_page_size(void);
size_t ref__os_physical_memory(void);

/* Threads. The CPUs a thread ref makes may run on, before any start
 * callback binds it: the ref_init thread's at the first ref_init of the
 * process (ref__os_cpus_capture), not its creator's now. A new thread
 * inherits its creator's binding, and the ref_init thread is mutator 0 and
 * worker 0, which a callback may have bound to one PU: the background mark
 * workers, which no callback binds, then shared that PU with the ref_gc
 * caller while the other one idled. */
void ref__os_cpus_capture(void);
/* pthread_create with those CPUs; its return value. */
int ref__os_thread_create(pthread_t *t, void *(*fn)(void *), void *arg);

/* Clears ASan's shadow of [p, p+len); nothing in other builds. */
void ref__os_unpoison(void *p, size_t len);

#endif /* REF_OS_H */
