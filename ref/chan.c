/*
 * chan.c: channels with Go semantics (runtime/chan.go): buffered and
 * unbuffered, direct handoff to a parked peer, close, receive with ok.
 * Send on a closed channel and close of a closed or nil channel abort, as
 * Go panics. A send or receive on a nil channel blocks forever.
 *
 * Threads: every operation holds the channel's lock (chan.h); a blocking
 * one parks with it held and it is released after the switch. A waker
 * readies the parked goroutine on its own P. Every operation begins with a
 * safepoint (ref_poll), before it takes the lock.
 *
 * Frame records: chan_send and chan_recv do not use the channel after they
 * park (the waker moves the value and sets success), so they hold no heap
 * pointer across a park and need no record; chan_make holds the new channel
 * across the buffer's allocation and has one.
 */
#include "chan.h"

#include <string.h>

static const uint64_t chan_ptrmask[1] = {0x1}; /* word 0: buf */
static const ref_type chan_type = {sizeof(ref_chan), chan_ptrmask, "ref.hchan"};
static const ref_type bytes_type = {1, NULL, "ref.bytes"};

REF_FUNC(chanmake_info, "ref.chan_make", 1, REF_SP(0x1));

/* ---------------------------------------------------------------------------
 * Wait queues
 * ------------------------------------------------------------------------- */

void ref__waitq_enqueue(ref__waitq *q, ref__sudog *s) {
  s->next = NULL;
  s->prev = q->last;
  if (q->last) q->last->next = s;
  else q->first = s;
  q->last = s;
}

/* Unlinks s; a no-op when s is no longer queued (ref__waitq_dequeue drops a
 * stale select waiter that its select later withdraws again: Go's
 * dequeueSudoG makes the same check). */
void ref__waitq_remove(ref__waitq *q, ref__sudog *s) {
  if (s->prev == NULL && q->first != s) return;
  if (s->prev) s->prev->next = s->next;
  else q->first = s->next;
  if (s->next) s->next->prev = s->prev;
  else q->last = s->prev;
  s->next = s->prev = NULL;
}

ref__sudog *ref__waitq_dequeue(ref__waitq *q) {
  for (;;) {
    ref__sudog *s = q->first;
    if (!s) return NULL;
    ref__waitq_remove(q, s);
    /* A select waiter is claimed by the first case that fires, under
     * that case's channel lock; a waiter already claimed through another
     * channel stays queued here until its select dequeues it: skip it (Go's
     * selectDone). */
    if (s->is_select) {
      uint32_t free_ = 0;
      if (!atomic_compare_exchange_strong(&s->g->xselectdone, &free_, 1)) continue;
    }
    return s;
  }
}

static void wake(ref__sudog *sg, bool success) {
  sg->success = success;
  sg->g->param = sg;
  ref__ready(sg->g);
}

/* ---------------------------------------------------------------------------
 * Make, len, cap
 * ------------------------------------------------------------------------- */

/* The buffer's size is checked before anything is allocated: Go's makechan
 * panics "size out of range"; here the channel is refused (NULL). */
static ref_chan *chan_make(const ref_type *elem, size_t elemsize, size_t cap) {
  size_t bytes;
  if (__builtin_mul_overflow(elemsize, cap, &bytes) || bytes > ref__cfg.heap_max) {
    ref__seterr("makechan: size out of range: %zu elements of %zu bytes (heap limit %zu MiB)", cap,
                elemsize, ref__cfg.heap_max >> 20);
    return NULL;
  }
  REF_FRAME(f, chanmake_info);
  REF_SAFEPOINT(f, 0);
  ref_chan *c = ref_alloc(&chan_type);
  if (!c) return NULL;
  f.slot[0] = c;
  c->elemtype = elem;
  c->elemsize = elemsize;
  c->dataqsiz = cap;
  if (cap > 0 && elemsize == 0) ref_store(&c->buf, c); /* Go's makechan: slots of 0 bytes at a real address */
  if (cap > 0 && elemsize > 0) {
    void *buf = elem ? ref_alloc_array(elem, cap) : ref_alloc_array(&bytes_type, bytes);
    if (!buf) return NULL;
    ref_store(&c->buf, buf);
  }
  return c;
}

ref_chan *ref_chan_make(const ref_type *elem, size_t cap) {
  REF_RUNTIME_CALL();
  ref_assert(elem != NULL);
  return chan_make(elem, elem->size, cap);
}

ref_chan *ref_chan_make_size(size_t elem_size, size_t cap) {
  REF_RUNTIME_CALL();
  return chan_make(NULL, elem_size, cap);
}

size_t ref_chan_len(const ref_chan *c) {
  REF_RUNTIME_CALL();
  if (!c) return 0;
  ref_chan *mc = (ref_chan *)c; /* the lock is not part of the value */
  ref__spin_lock(&mc->lock);
  size_t n = c->qcount;
  ref__spin_unlock(&mc->lock);
  return n;
}

size_t ref_chan_cap(const ref_chan *c) { return c ? c->dataqsiz : 0; }

/* ---------------------------------------------------------------------------
 * Moving values
 * ------------------------------------------------------------------------- */

/* Moves one element of c from src (NULL: the zero value) to dst (NULL: drop
 * it). A typed element goes through the barrier wherever dst is: a heap
 * buffer, or a parked receiver's stack, which in concurrent-hybrid may
 * already be scanned (Go's sendDirect). */
static inline void elem_copy(const ref_chan *c, void *dst, const void *src) {
  if (!dst) return;
  if (c->elemtype) ref_typedmemmove(c->elemtype, dst, src);
  else if (src) memcpy(dst, src, c->elemsize);
  else memset(dst, 0, c->elemsize);
}

void ref__chan_unlock_after(struct ref__m *m, void *arg) {
  (void)m;
  ref__spin_unlock(&((ref_chan *)arg)->lock);
}

/* A receiver is parked on c: hand it the value directly. */
static void send_to(ref_chan *c, ref__sudog *sg, const void *elem) {
  elem_copy(c, sg->elem, elem);
  wake(sg, true);
}

/* A sender is parked on c. Unbuffered: take its value. Buffered (the buffer
 * is full): take the head of the queue and put the sender's value at the
 * tail, which is the same slot. */
static void recv_from(ref_chan *c, ref__sudog *sg, void *elem) {
  if (c->dataqsiz == 0) {
    elem_copy(c, elem, sg->elem);
  } else {
    void *slot = ref__chanbuf(c, c->recvx);
    elem_copy(c, elem, slot);
    elem_copy(c, slot, sg->elem);
    if (++c->recvx == c->dataqsiz) c->recvx = 0;
    c->sendx = c->recvx;
  }
  wake(sg, true);
}

bool ref__chan_trysend_locked(ref_chan *c, const void *elem) {
  if (c->closed) ref__throw("send on closed channel");
  ref__sudog *sg = ref__waitq_dequeue(&c->recvq);
  if (sg) {
    send_to(c, sg, elem);
    return true;
  }
  if (c->qcount < c->dataqsiz) {
    elem_copy(c, ref__chanbuf(c, c->sendx), elem);
    if (++c->sendx == c->dataqsiz) c->sendx = 0;
    c->qcount++;
    return true;
  }
  return false;
}

bool ref__chan_tryrecv_locked(ref_chan *c, void *elem, bool *ok) {
  ref__sudog *sg = ref__waitq_dequeue(&c->sendq);
  if (sg) {
    recv_from(c, sg, elem);
    *ok = true;
    return true;
  }
  if (c->qcount > 0) {
    void *slot = ref__chanbuf(c, c->recvx);
    elem_copy(c, elem, slot);
    elem_copy(c, slot, NULL); /* the buffer must not keep the value alive */
    if (++c->recvx == c->dataqsiz) c->recvx = 0;
    c->qcount--;
    *ok = true;
    return true;
  }
  if (c->closed) {
    elem_copy(c, elem, NULL);
    *ok = false;
    return true;
  }
  return false;
}

/* ---------------------------------------------------------------------------
 * Send, receive, close
 * ------------------------------------------------------------------------- */

static ref_noreturn void block_forever(void) {
  ref__park(NULL, NULL); /* nobody readies it */
  ref__throw("goroutine blocked on a nil channel was woken");
}

void ref_chan_send(ref_chan *c, const void *elem) {
  REF_RUNTIME_CALL();
  ref_poll();
  if (!c) block_forever();
  ref__spin_lock(&c->lock);
  if (ref__chan_trysend_locked(c, elem)) {
    ref__spin_unlock(&c->lock);
    return;
  }
  ref_g *g = ref_curg();
  if (!g) ref__throw("channel send would block on the scheduler stack");
  ref__sudog *me = &g->sudog;
  *me = (ref__sudog){.g = g, .c = c, .elem = (void *)elem};
  g->param = NULL;
  ref__waitq_enqueue(&c->sendq, me);
  ref__park(ref__chan_unlock_after, c);
  if (!me->success) ref__throw("send on closed channel");
}

bool ref_chan_recv(ref_chan *c, void *elem) {
  REF_RUNTIME_CALL();
  ref_poll();
  if (!c) block_forever();
  bool ok;
  ref__spin_lock(&c->lock);
  if (ref__chan_tryrecv_locked(c, elem, &ok)) {
    ref__spin_unlock(&c->lock);
    return ok;
  }
  ref_g *g = ref_curg();
  if (!g) ref__throw("channel receive would block on the scheduler stack");
  ref__sudog *me = &g->sudog;
  *me = (ref__sudog){.g = g, .c = c, .elem = elem};
  g->param = NULL;
  ref__waitq_enqueue(&c->recvq, me);
  ref__park(ref__chan_unlock_after, c);
  if (!me->success) elem_copy(c, elem, NULL);
  return me->success;
}

void ref_chan_close(ref_chan *c) {
  REF_RUNTIME_CALL();
  if (!c) ref__throw("close of nil channel");
  ref__spin_lock(&c->lock);
  if (c->closed) ref__throw("close of closed channel");
  c->closed = true;
  ref__sudog *sg;
  while ((sg = ref__waitq_dequeue(&c->recvq)) != NULL) {
    elem_copy(c, sg->elem, NULL);
    wake(sg, false);
  }
  while ((sg = ref__waitq_dequeue(&c->sendq)) != NULL) wake(sg, false); /* they throw */
  ref__spin_unlock(&c->lock);
}
