/*
 * chan.h: channel internals shared by chan.c and select.c.
 *
 * A channel is a GC heap object; its buffer is a second heap object (an
 * array of the element type), so buffered values are scanned precisely.
 * Wait queues hold sudogs (g.h), outside the heap: a plain send or receive
 * waits with its G's own sudog, a select with one per case on its stack.
 */
#ifndef REF_CHAN_H
#define REF_CHAN_H

#include "g.h"

typedef struct ref__waitq {
  ref__sudog *first, *last;
} ref__waitq;

struct ref_chan {
  void *buf;                 /* heap array of dataqsiz elements; the channel itself
                                when they are 0 bytes, so that every slot address
                                and copy (of 0 bytes) is valid; NULL when
                                unbuffered. The only heap pointer in the object
                                (word 0) */
  size_t qcount, dataqsiz;   /* invariant: qcount <= dataqsiz */
  size_t elemsize;
  size_t sendx, recvx;
  const ref_type *elemtype;  /* static, not heap */
  ref__waitq recvq, sendq;   /* off-heap sudogs */
  bool closed;
  /* Guards every field above (Go's hchan.lock). A goroutine parks with it
   * held and the lock is released after its switch (ref__park), so a waker
   * that dequeues its sudog finds it parked. */
  ref__spinlock lock;
};

/* Removes and returns the first waiter that can still fire: a select
 * waiter whose goroutine was already woken by another case is dropped. */
ref__sudog *ref__waitq_dequeue(ref__waitq *q);
void ref__waitq_enqueue(ref__waitq *q, ref__sudog *s);
void ref__waitq_remove(ref__waitq *q, ref__sudog *s);

/* The element slot i of c's buffer. */
static inline void *ref__chanbuf(ref_chan *c, size_t i) {
  return (char *)c->buf + i * c->elemsize;
}

/* With c's lock held: a send or receive that completes without blocking
 * -- a handoff to a parked peer (which is readied), the buffer, or (receive)
 * a closed channel -- and returns true, or does nothing and returns false.
 * A receive sets *ok. Send on a closed channel aborts. */
bool ref__chan_trysend_locked(ref_chan *c, const void *elem);
bool ref__chan_tryrecv_locked(ref_chan *c, void *elem, bool *ok);

/* An after-switch function (g.h) releasing the channel arg's lock. */
void ref__chan_unlock_after(struct ref__m *m, void *arg);


#endif /* REF_CHAN_H */
