/*
 * torture.c: stackscan-torture, a seeded random program generator over ref's
 * public API, run with the checkmark verifier and poison-on-sweep on, over
 * every mode (stw, concurrent-rescan, concurrent-hybrid), every strategy,
 * W in {1, 2, 4, 8} and P (mutator threads) in {1, 2, 4} (--mode, --workers
 * and --mutators take lists).
 *
 * One seed is one program. Its goroutines:
 *   - workers do a random sequence of operations: build random object graphs
 *     (four object kinds with different pointer bitmaps, small and large
 *     arrays, cycles and cross-graph edges) held in frame slots, drop them
 *     (sometimes leaving a stale pointer in a dead slot), mutate them, swap
 *     subtrees between two of them and their frame slots, move a subtree
 *     from the heap into a frame slot across a park or a collection and back
 *     (every heap pointer store through ref_store), send
 *     and receive them on buffered and unbuffered channels, select with and
 *     without default, close their own channel, recurse through frames (some
 *     flagged conservative, holding a pointer only in a native local), spawn
 *     children whose start argument is a graph, yield, sleep, switch the
 *     stack-map lookup, allocate garbage (on 1 and 2 MiB heaps ref_alloc then
 *     collects by itself), and call ref_gc();
 *   - a source sends fresh graphs on two feed channels until `done` closes;
 *   - a drainer receives everything sent to the two sink channels.
 * Every object carries a canary derived from its id and kind; every graph
 * head carries a signature of its whole shape. Goroutines re-verify every
 * graph they hold after each call that may park or collect: an object freed
 * while reachable shows the 0xfe poison (or a reused slot) and fails. At the
 * end, with every goroutine gone and the one root removed, a collection must
 * leave no object alive.
 *
 * In the concurrent modes the cycles that ref_gc() and the GOGC trigger start
 * mark while the goroutines run on: they allocate, rewire graphs through the
 * barrier, create and finish goroutines, send and close channels during the
 * mark, and the checkmark verifier checks every cycle after its termination.
 *
 * One seed fixes the program (goroutines, channels, heap size, stack-map
 * lookup, every choice); each (mode, strategy, W, P) runs the same program
 * (the concurrent modes with reuse off: they refuse reuse=clean), and the
 * line "torture: seed S mode M strategy X workers W mutators P ..." goes to
 * stderr before each run, so an abort by the runtime itself (checkmark,
 * assertions) names what to replay with --seed S --mode M --strategy X
 * --workers W --mutators P.
 * With one mutator a seed replays exactly; with several, the goroutines'
 * interleaving (and so which graphs meet on which channel) is the threads',
 * while every goroutine's own choices stay the seed's. Their live sets then
 * add up at once, so the heap limit is the seed's times P.
 *
 * Frame contract: every heap pointer a function uses after a call that may
 * park or collect sits in a slot that is live at that call's safepoint, in
 * an object reachable from one, or (in a conservative record) in its native
 * frame. C locals copying a slot are fine: the collector does not move.
 *
 * Termination (why ref_run must come back with only source and drainer
 * parked): a worker blocks only on (a) a sink send (the drainer always
 * receives), (b) a feed receive or a select that includes a feed receive
 * (the source always sends until `done`), (c) a plain receive on own[j] of a
 * worker j > i (j sends on it or closes it at exit; by induction from the
 * highest index, every worker exits). Children block only on sink sends.
 * Only worker i sends on own[i], and it closes own[i] once; shared channels
 * and feeds are never closed while anyone may send, so no send panics.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"

/* ---------------------------------------------------------------------------
 * Options and the run being executed
 * ------------------------------------------------------------------------- */

#define NVARS 6               /* graph slots of a worker frame: slots 2..7 */
#define MAX_WORKERS 10
#define MAX_SHARED 6
#define MAX_CASES 12
#define MAX_RECURSION 6       /* op_recurse frames on one stack */
/* Sleepers wake when the run queue drains, in due order. One fixed, tiny
 * duration makes them all due by then and due in the order they slept, so
 * the interleaving does not depend on the clock: a seed replays exactly. */
#define SLEEP_NS 1
/* The concurrent modes' smallest heap limit per mutator, unless
 * --small-heaps: 16 MiB lets the GOGC trigger (goal at least 4 MiB) start
 * cycles while the goroutines run, where the seed's 1 and 2 MiB heaps
 * mostly reach the limit. (On those, ref_alloc once failed with "heap
 * limit exceeded" at a sixth of the limit live: the allocation that hit the
 * limit waited out its cycle while the others filled the freed space before
 * its one retry. --seed 1007 --mode=concurrent-hybrid --mutators 1
 * --workers=1,2,4 --small-heaps failed 8 of 10 runs; ref_alloc now retries
 * its collection in the concurrent modes, and ctest runs the small heaps.) */
#define CONCURRENT_MIN_HEAP ((size_t)16 << 20)

static const char *const strategy_names[] = {"conservative-serial", "frames-serial",
                                             "frames-parallel", "conservative-parallel",
                                             "conservative-rootjobs", "frames-rootjobs"};
static const int worker_counts[] = {1, 2, 4, 8};
static const int mutator_counts[] = {1, 2, 4};
#define MAX_LIST 16           /* values a --workers or --mutators list may hold */

/* A list of counts from the command line, or a default table's. */
typedef struct counts {
  int v[MAX_LIST];
  int n;
} counts;

typedef struct opts {
  uint64_t first_seed, nseeds;
  int ops;                    /* operations per worker */
  const char *strategy;       /* NULL: all six */
  counts workers;             /* mark workers W: worker_counts unless --workers */
  counts mutators;            /* mutator threads P: mutator_counts unless --mutators */
  bool mode[REF_NMODES];      /* the modes to run (--mode; default: all) */
  bool small_heaps;           /* --small-heaps */
  bool verbose;
} opts;

/* What the running configuration is, and what its goroutines counted. */
static struct {
  uint64_t seed;
  const char *strategy;
  ref_mode mode;
  int mark_workers, mutators;
  int ops;
  _Atomic uint64_t next_id;
  int nworkers, nshared;
  bool shared_ptr[MAX_SHARED]; /* shared channel k carries graph heads, else tokens */
  /* Counted by goroutines on every mutator (atomic increments). */
  _Atomic int workers_done, children_spawned, children_done;
  _Atomic uint64_t sunk, drained, fed, gcs, tokens_sent, tokens_received;
  struct worker *ws;
  bool verbose;
  _Atomic uint64_t max_marked; /* largest live set an explicit collection found */
} R;

/* Prints the one failure line and exits 1. */
__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...) {
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  fprintf(stderr, "torture: FAILED seed %llu mode %s strategy %s workers %d mutators %d: %s\n",
          (unsigned long long)R.seed, ref_mode_name(R.mode), R.strategy, R.mark_workers,
          R.mutators, what);
  exit(1);
}

/* ---------------------------------------------------------------------------
 * Randomness: splitmix64, deterministic per seed
 * ------------------------------------------------------------------------- */

static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static uint64_t rnd(uint64_t *s) {
  *s += 0x9e3779b97f4a7c15ull;
  return mix(*s);
}

static uint32_t below(uint64_t *s, uint32_t n) { return (uint32_t)(rnd(s) % n); }
static bool chance(uint64_t *s, uint32_t one_in) { return below(s, one_in) == 0; }

/* ---------------------------------------------------------------------------
 * Objects. Every object (and every array element) starts with
 *   word 0: canary = mix(word 1)
 *   word 1: idtag  = id << 24 | aux << 8 | kind   (aux: array length or index)
 * so a freed object (0xfe poison, or zeroes once its pages were released)
 * fails the canary, and a reused one fails its graph's signature.
 * ------------------------------------------------------------------------- */

enum kind { K_HEAD = 1, K_LEAF, K_PAIR, K_NODE, K_ARR, K_CELL, K_HUB };

typedef struct hdr { uint64_t canary, idtag; } hdr;
typedef struct head { hdr h; uint64_t sig; void *body; uint64_t nodes; } head;
typedef struct leaf { hdr h; uint64_t a, b; } leaf;
typedef struct pair { hdr h; void *l, *r; } pair;
/* x is an extra edge (back into the graph, or to another graph's head) that
 * the signature does not follow; xid is what its target's idtag must be. */
typedef struct node { hdr h; void *k[3]; void *x; uint64_t xid, pad; } node;
typedef struct cell { hdr h; void *p; } cell;  /* arrays: cell[0] is the array's header */

#define HUB_CH 29
typedef struct hub { hdr h; ref_chan *ch[HUB_CH]; uint64_t pad; } hub;
enum { CH_FEED_U, CH_FEED_B, CH_SINK_U, CH_SINK_B, CH_DONE, CH_SHARED,
       CH_OWN = CH_SHARED + MAX_SHARED };
_Static_assert(CH_OWN + MAX_WORKERS <= HUB_CH, "hub too small");

static const uint64_t head_mask[1] = {1u << 3};
static const uint64_t pair_mask[1] = {3u << 2};
static const uint64_t node_mask[1] = {15u << 2};
static const uint64_t cell_mask[1] = {1u << 2};
static const uint64_t hub_mask[1] = {((1ull << HUB_CH) - 1) << 2};
static const uint64_t ptr_mask[1] = {1};
static const ref_type head_type = {sizeof(head), head_mask, "torture.head"};
static const ref_type leaf_type = {sizeof(leaf), NULL, "torture.leaf"};
static const ref_type pair_type = {sizeof(pair), pair_mask, "torture.pair"};
static const ref_type node_type = {sizeof(node), node_mask, "torture.node"};
static const ref_type cell_type = {sizeof(cell), cell_mask, "torture.cell"};
static const ref_type hub_type = {sizeof(hub), hub_mask, "torture.hub"};
static const ref_type ptr_type = {sizeof(void *), ptr_mask, "torture.ptr"};

static uint64_t idtag_make(uint64_t id, uint64_t aux, enum kind k) {
  return id << 24 | (aux & 0xffff) << 8 | (uint64_t)k;
}

static void hdr_set(void *o, uint64_t idtag) {
  hdr *h = o;
  h->idtag = idtag;
  h->canary = mix(idtag);
}

static uint64_t new_id(void) { return ++R.next_id; }

/* Checks o's canary and kind; returns its idtag. */
static uint64_t hdr_check(const void *o, enum kind want, const char *where) {
  const hdr *h = o;
  if (h->canary != mix(h->idtag))
    die("%s: object %p lost its canary (canary %#llx idtag %#llx): freed while reachable?", where,
        o, (unsigned long long)h->canary, (unsigned long long)h->idtag);
  if (want && (enum kind)(h->idtag & 0xff) != want)
    die("%s: object %p is kind %d, expected %d", where, o, (int)(h->idtag & 0xff), (int)want);
  return h->idtag;
}

/* ---------------------------------------------------------------------------
 * Graph signatures: a hash over the spanning tree (x edges only checked)
 * ------------------------------------------------------------------------- */

#define MAX_DEPTH 24

static uint64_t walk(const void *p, int depth, uint64_t *count);

static uint64_t walk_array(const cell *a, uint64_t idtag, int depth, uint64_t *count) {
  uint64_t h = 0, len = (idtag >> 8) & 0xffff, id = idtag >> 24;
  for (uint64_t i = 0; i < len; i++) {
    if (i > 0 && a[i].h.idtag != idtag_make(id, i, K_CELL))
      die("array %p cell %llu has idtag %#llx", (const void *)a, (unsigned long long)i,
          (unsigned long long)a[i].h.idtag);
    if (i > 0) hdr_check(&a[i], K_CELL, "array cell");
    if (a[i].p) h = mix(h ^ (i * 31 + walk(a[i].p, depth + 1, count)));
  }
  return h;
}

static uint64_t walk(const void *p, int depth, uint64_t *count) {
  if (!p) return 0x6e756c6c;
  if (depth > MAX_DEPTH) die("graph deeper than %d at %p", MAX_DEPTH, p);
  uint64_t idtag = hdr_check(p, 0, "graph walk"), h = mix(idtag);
  (*count)++;
  switch ((enum kind)(idtag & 0xff)) {
  case K_LEAF: {
    const leaf *o = p;
    if (o->a != mix(idtag + 1) || o->b != ~o->a) die("leaf %p payload changed", p);
    return h;
  }
  case K_PAIR: {
    const pair *o = p;
    return mix(h ^ walk(o->l, depth + 1, count)) + walk(o->r, depth + 1, count);
  }
  case K_NODE: {
    const node *o = p;
    for (int i = 0; i < 3; i++) h = mix(h + walk(o->k[i], depth + 1, count) * (uint64_t)(i + 1));
    if (o->x && hdr_check(o->x, 0, "extra edge") != o->xid)
      die("node %p: extra edge retargeted", p);
    return h;
  }
  case K_ARR:
    return h ^ walk_array(p, idtag, depth, count);
  default:
    die("graph walk: object %p has kind %d inside a graph", p, (int)(idtag & 0xff));
  }
}

/* Verifies a graph head: canary and signature (and expected, when non-0). */
static void graph_verify(const head *g, uint64_t expected, const char *where) {
  hdr_check(g, K_HEAD, where);
  uint64_t n = 0, sig = walk(g->body, 0, &n);
  if (sig != g->sig || n != g->nodes)
    die("%s: graph %p changed: signature %#llx nodes %llu, built as %#llx nodes %llu", where,
        (const void *)g, (unsigned long long)sig, (unsigned long long)n,
        (unsigned long long)g->sig, (unsigned long long)g->nodes);
  if (expected && sig != expected)
    die("%s: graph %p is not the one held (signature %#llx, expected %#llx)", where,
        (const void *)g, (unsigned long long)sig, (unsigned long long)expected);
}

static void graph_reseal(head *g) {
  uint64_t n = 0;
  g->sig = walk(g->body, 0, &n);
  g->nodes = n;
}

/* ---------------------------------------------------------------------------
 * Building graphs. ref_alloc is a safepoint: the caller's records must be
 * up to date. Every new object is linked into the graph (reachable from the
 * head in build's slot) before the next allocation.
 * ------------------------------------------------------------------------- */

typedef struct builder {
  uint64_t *rng;
  int budget;                 /* objects left to allocate */
  void *targets[16];          /* objects an extra edge may point to (all reachable) */
  int ntargets;
  bool big_ok;
} builder;

static void *alloc_or_die(const ref_type *t, size_t n) {
  void *p = n == 1 ? ref_alloc(t) : ref_alloc_array(t, n);
  if (!p) die("allocating %zu x %s: %s", n, t->name, ref_error());
  return p;
}

static void add_target(builder *b, void *o) {
  if (b->ntargets < 16) b->targets[b->ntargets++] = o;
  else b->targets[below(b->rng, 16)] = o;
}

static void build_sub(builder *b, void **field, int depth);

static void build_array(builder *b, void **field, int depth) {
  bool big = b->big_ok && chance(b->rng, 24);
  size_t len = big ? 2000 + below(b->rng, 4000) : 2 + below(b->rng, 30);
  cell *a = alloc_or_die(&cell_type, len);
  uint64_t id = new_id();
  hdr_set(&a[0], idtag_make(id, len, K_ARR));
  for (size_t i = 1; i < len; i++) hdr_set(&a[i], idtag_make(id, i, K_CELL));
  ref_store(field, a);
  b->big_ok = false; /* at most one big array per graph */
  for (size_t i = 0; i < len && b->budget > 0; i += big ? 1 + below(b->rng, 400) : 1)
    if (!chance(b->rng, 3)) build_sub(b, &a[i].p, depth + 1);
}

static void build_node(builder *b, void **field, int depth) {
  node *o = alloc_or_die(&node_type, 1);
  hdr_set(o, idtag_make(new_id(), 0, K_NODE));
  o->pad = 0x5a5a5a5a5a5a5a5aull;
  ref_store(field, o);
  if (b->ntargets > 0 && !chance(b->rng, 3)) {
    ref_store(&o->x, b->targets[below(b->rng, (uint32_t)b->ntargets)]);
    o->xid = ((hdr *)o->x)->idtag;
  }
  add_target(b, o);
  for (int i = 0; i < 3; i++)
    if (!chance(b->rng, 3)) build_sub(b, &o->k[i], depth + 1);
}

/* Builds a random subtree into *field (a field of an object reachable from
 * a live slot, or a live slot itself). */
static void build_sub(builder *b, void **field, int depth) {
  if (b->budget <= 0 || depth > 5) return;
  b->budget--;
  uint32_t k = below(b->rng, depth >= 4 ? 2 : 10);
  if (k == 0) {
    leaf *o = alloc_or_die(&leaf_type, 1);
    uint64_t idtag = idtag_make(new_id(), 0, K_LEAF);
    hdr_set(o, idtag);
    o->a = mix(idtag + 1);
    o->b = ~o->a;
    ref_store(field, o);
  } else if (k <= 3) {
    pair *o = alloc_or_die(&pair_type, 1);
    hdr_set(o, idtag_make(new_id(), 0, K_PAIR));
    ref_store(field, o);
    build_sub(b, &o->l, depth + 1);
    build_sub(b, &o->r, depth + 1);
  } else if (k <= 7) {
    build_node(b, field, depth);
  } else {
    build_array(b, field, depth);
  }
}

REF_FUNC(build_info, "torture.build_graph", 1, REF_SP(0x1));

/* A new sealed graph of up to `budget` objects; `other` (may be NULL: a
 * head held live by the caller) may become the target of an extra edge. */
static head *build_graph(uint64_t *rng, int budget, head *other, bool big_ok) {
  REF_FRAME(f, build_info);
  REF_SAFEPOINT(f, 0);
  head *g = alloc_or_die(&head_type, 1);
  f.slot[0] = g;
  hdr_set(g, idtag_make(new_id(), 0, K_HEAD));
  builder b = {rng, budget, {0}, 0, big_ok};
  add_target(&b, g); /* a cycle through the head */
  if (other) add_target(&b, other);
  build_sub(&b, &g->body, 0);
  graph_reseal(g);
  return g;
}

/* The pointer field at the end of a random path of tree edges from g's head
 * (&g->body is depth 0), `depth` edges long or shorter where the path meets
 * a NULL field or a leaf first; *reached is its depth. */
static void **graph_field_at(head *g, uint64_t *rng, int depth, int *reached) {
  void **field = &g->body;
  int d = 0;
  for (; d < depth && *field; d++) {
    hdr *o = *field;
    switch ((enum kind)(o->idtag & 0xff)) {
    case K_PAIR: field = chance(rng, 2) ? &((pair *)o)->l : &((pair *)o)->r; break;
    case K_NODE: field = &((node *)o)->k[below(rng, 3)]; break;
    case K_ARR: field = &((cell *)o)[below(rng, (uint32_t)((o->idtag >> 8) & 0xffff))].p; break;
    default: *reached = d; return field;
    }
  }
  *reached = d;
  return field;
}

/* Replaces a random pointer field on a random path of g with a new subtree;
 * the old subtree becomes garbage (unless an extra edge holds part of it). */
static void graph_mutate(head *g, uint64_t *rng) {
  int reached;
  void **field = graph_field_at(g, rng, (int)below(rng, 5), &reached);
  builder b = {rng, 1 + (int)below(rng, 8), {g}, 1, false};
  ref_store(field, NULL);
  build_sub(&b, field, 3);
  graph_reseal(g);
}

/* The signature of a detached subtree (walk's, from depth 0). */
static uint64_t subtree_sig(const void *p, uint64_t *count) {
  *count = 0;
  return walk(p, 0, count);
}

/* ---------------------------------------------------------------------------
 * Tokens: the values of non-pointer channels
 * ------------------------------------------------------------------------- */

static uint64_t token_make(uint64_t seq) { return seq << 16 | (mix(seq) & 0xffff); }

static void token_check(uint64_t t, const char *where) {
  if ((t & 0xffff) != (mix(t >> 16) & 0xffff) || t == 0)
    die("%s: received a corrupted token %#llx", where, (unsigned long long)t);
  R.tokens_received++;
}

/* ---------------------------------------------------------------------------
 * Workers: state and safepoints
 * ------------------------------------------------------------------------- */

/* slot 0: the hub; slot 1: receive target; slots 2..7: graphs. Slots 0 and
 * 1 are always live; safepoint k has graph slot v live iff bit v of k. */
#define WMASK(k) REF_SP(0x3ull | ((uint64_t)(k) << 2))
#define WM4(b) WMASK(b), WMASK(b + 1), WMASK(b + 2), WMASK(b + 3)
#define WM16(b) WM4(b), WM4(b + 4), WM4(b + 8), WM4(b + 12)
REF_FUNC(worker_info, "torture.worker", 8, WM16(0), WM16(16), WM16(32), WM16(48));

typedef struct worker {
  int idx;
  uint64_t rng;
  ref_frame *rec;
  void **slot;
  bool live[NVARS];
  uint64_t sig[NVARS];        /* expected signature of each live graph */
  bool own_closed;
  uint64_t tokseq;
  char doing[48];
  bool finished;             /* the last blocking call, for a deadlock report */
} worker;

/* REF_SAFEPOINT on a record reached by pointer. */
typedef struct { ref_frame h; } rec_view;
#define SAFEPOINT_AT(rec, k) REF_SAFEPOINT(*(rec_view *)(rec), (k))

static void wk_sync(worker *w) {
  uint32_t k = 0;
  for (int v = 0; v < NVARS; v++) k |= (uint32_t)w->live[v] << v;
  SAFEPOINT_AT(w->rec, k);
}

static head *wk_var(worker *w, int v) { return w->slot[2 + v]; }
static hub *wk_hub(worker *w) { return w->slot[0]; }
static ref_chan *wk_chan(worker *w, int i) { return wk_hub(w)->ch[i]; }

static int wk_pick_live(worker *w) {
  int start = (int)below(&w->rng, NVARS);
  for (int i = 0; i < NVARS; i++)
    if (w->live[(start + i) % NVARS]) return (start + i) % NVARS;
  return -1;
}

static int wk_pick_free(worker *w) {
  int start = (int)below(&w->rng, NVARS);
  for (int i = 0; i < NVARS; i++)
    if (!w->live[(start + i) % NVARS]) return (start + i) % NVARS;
  return -1;
}

/* Forgets var v: clears the slot, or leaves the stale pointer in the now
 * dead slot (scan=frames must then not keep its graph alive). */
static void wk_drop(worker *w, int v) {
  w->live[v] = false;
  if (chance(&w->rng, 2)) w->slot[2 + v] = NULL;
}

/* Checks every graph the worker holds: after every park or collection. */
static void wk_verify(worker *w, const char *where) {
  hdr_check(wk_hub(w), K_HUB, where);
  for (int v = 0; v < NVARS; v++)
    if (w->live[v]) graph_verify(wk_var(w, v), w->sig[v], where);
}

/* Takes ownership of the graph in slot 1 (if any) into a free var. */
static void wk_adopt(worker *w, const char *where) {
  head *g = w->slot[1];
  w->slot[1] = NULL;
  if (!g) return;
  graph_verify(g, 0, where);
  int v = wk_pick_free(w);
  if (v < 0) return; /* dropped: garbage now */
  w->slot[2 + v] = g;
  w->live[v] = true;
  w->sig[v] = g->sig;
}

/* ---------------------------------------------------------------------------
 * Worker operations
 * ------------------------------------------------------------------------- */

static void op_alloc(worker *w) {
  int v = wk_pick_free(w);
  if (v < 0) v = (int)below(&w->rng, NVARS);
  w->live[v] = false; /* replaced: the old graph is garbage from here */
  int other = wk_pick_live(w);
  wk_sync(w);
  head *g = build_graph(&w->rng, 1 + (int)below(&w->rng, 40),
                        other >= 0 ? wk_var(w, other) : NULL, true);
  w->slot[2 + v] = g;
  w->live[v] = true;
  w->sig[v] = g->sig;
}

static void op_mutate(worker *w) {
  int v = wk_pick_live(w);
  if (v < 0) return;
  wk_sync(w);
  graph_mutate(wk_var(w, v), &w->rng);
  w->sig[v] = wk_var(w, v)->sig;
}

static void op_send_sink(worker *w) {
  int v = wk_pick_live(w);
  if (v < 0) return;
  wk_sync(w); /* v stays live while we may be parked: the value is its slot */
  snprintf(w->doing, sizeof w->doing, "sink send");
  ref_chan_send(wk_chan(w, chance(&w->rng, 2) ? CH_SINK_U : CH_SINK_B), &w->slot[2 + v]);
  R.sunk++;
  wk_drop(w, v);
}

static void op_recv_feed(worker *w) {
  wk_sync(w);
  snprintf(w->doing, sizeof w->doing, "feed receive");
  if (!ref_chan_recv(wk_chan(w, chance(&w->rng, 2) ? CH_FEED_U : CH_FEED_B), &w->slot[1]))
    die("worker %d: a feed channel was closed while workers run", w->idx);
  wk_adopt(w, "feed receive");
}

/* Plain receive on own[j], j > i: see the termination argument above. */
static void op_recv_own(worker *w) {
  if (w->idx + 1 >= R.nworkers) return;
  int j = w->idx + 1 + (int)below(&w->rng, (uint32_t)(R.nworkers - w->idx - 1));
  wk_sync(w);
  snprintf(w->doing, sizeof w->doing, "receive on own[%d]", j);
  ref_chan_recv(wk_chan(w, CH_OWN + j), &w->slot[1]);
  wk_adopt(w, "own-channel receive");
}

static void op_close_own(worker *w) {
  if (w->own_closed) return;
  w->own_closed = true;
  ref_chan_close(wk_chan(w, CH_OWN + w->idx));
}

/* One select case per call: what it does and what it needs afterwards. */
typedef struct selset {
  ref_case c[MAX_CASES];
  int var[MAX_CASES];         /* graph sent by the case, or -1 */
  bool token[MAX_CASES];      /* a token channel */
  int n;
  uint64_t tok_in, tok_out;
} selset;

static void sel_add(selset *s, ref_chan *c, ref_dir dir, void *elem, int var, bool token) {
  s->c[s->n] = (ref_case){c, dir, elem, false};
  s->var[s->n] = var;
  s->token[s->n] = token;
  s->n++;
}

static void sel_add_shared(worker *w, selset *s) {
  int k = (int)below(&w->rng, (uint32_t)R.nshared);
  ref_chan *c = wk_chan(w, CH_SHARED + k);
  bool send = chance(&w->rng, 2);
  if (!R.shared_ptr[k]) {
    sel_add(s, c, send ? REF_SEND : REF_RECV, send ? (void *)&s->tok_out : (void *)&s->tok_in, -1,
            true);
    return;
  }
  int v = send ? wk_pick_live(w) : -1;
  if (v >= 0) sel_add(s, c, REF_SEND, &w->slot[2 + v], v, false);
  else sel_add(s, c, REF_RECV, &w->slot[1], -1, false);
}

static void sel_fill(worker *w, selset *s, bool blocking) {
  s->n = 0;
  s->tok_out = token_make(((uint64_t)w->idx << 32) | ++w->tokseq);
  if (blocking) sel_add(s, wk_chan(w, chance(&w->rng, 2) ? CH_FEED_U : CH_FEED_B), REF_RECV,
                        &w->slot[1], -1, false);
  int extra = 1 + (int)below(&w->rng, MAX_CASES - 2);
  for (int i = 0; i < extra; i++) {
    uint32_t k = below(&w->rng, 4);
    if (k <= 1) {
      sel_add_shared(w, s);
    } else if (k == 2) {
      int j = (int)below(&w->rng, (uint32_t)R.nworkers);
      if (j != w->idx) sel_add(s, wk_chan(w, CH_OWN + j), REF_RECV, &w->slot[1], -1, false);
    } else if (!w->own_closed) {
      int v = wk_pick_live(w);
      if (v >= 0) sel_add(s, wk_chan(w, CH_OWN + w->idx), REF_SEND, &w->slot[2 + v], v, false);
    }
  }
  if (chance(&w->rng, 8)) sel_add(s, NULL, REF_RECV, &w->slot[1], -1, false); /* nil channel */
}

static void op_select(worker *w, bool blocking) {
  selset s;
  sel_fill(w, &s, blocking);
  if (s.n == 0) return;
  wk_sync(w);
  snprintf(w->doing, sizeof w->doing, "select of %d cases%s", s.n, blocking ? "" : " with default");
  int k = ref_select(s.c, s.n, !blocking);
  if (k < 0) {
    if (blocking) die("worker %d: select without default returned %d", w->idx, k);
    return;
  }
  if (k >= s.n || !s.c[k].c) die("worker %d: select chose case %d of %d (nil?)", w->idx, k, s.n);
  if (s.c[k].dir == REF_SEND) {
    if (s.token[k]) R.tokens_sent++;
    else wk_drop(w, s.var[k]);
  } else if (s.token[k]) {
    if (s.c[k].ok) token_check(s.tok_in, "select");
  } else {
    if (!s.c[k].ok && w->slot[1]) die("worker %d: receive not ok but got a value", w->idx);
    wk_adopt(w, "select receive");
  }
}

static void child_main(void *arg);

/* Hands a graph to a new goroutine: its start argument is its only root
 * until it runs. */
static void op_spawn(worker *w) {
  int v = wk_pick_live(w);
  if (v < 0) return;
  wk_sync(w);
  if (!ref_go(child_main, wk_var(w, v))) die("ref_go: %s", ref_error());
  R.children_spawned++;
  wk_drop(w, v);
}

/* ref_set_strategy stops the world when there are several mutators, and
 * may itself be stopped by a collection: a call that may collect. In the
 * concurrent modes it waits for a cycle under way to end (its stop does not
 * stop the background mark workers; TSan found them reading ref__cfg.scan
 * while it was written, with --seed 1001 --mode=concurrent-rescan --strategy
 * conservative-serial --workers 1 --mutators 1). */
static void op_stackmaps(worker *w) {
  wk_sync(w);
  const ref_config *c = ref_get_config();
  ref_stackmaps maps = (ref_stackmaps)below(&w->rng, 3);
  ref_set_strategy(c->phase, c->scan, maps);
}

static void gc_counted(void) {
  ref_gc();
  R.gcs++;
  if (ref_gc_last()->bytes_marked > R.max_marked) R.max_marked = ref_gc_last()->bytes_marked;
}

static void op_gc(worker *w) {
  wk_sync(w);
  gc_counted();
}

/* Allocates garbage (small objects and arrays up to 96 KiB) so that small
 * heaps reach their limit and ref_alloc collects by itself. */
static void op_churn(worker *w) {
  wk_sync(w);
  for (int i = (int)below(&w->rng, 64); i >= 0; i--) {
    if (chance(&w->rng, 8)) {
      size_t len = 1 + below(&w->rng, 4096);
      hdr_set(alloc_or_die(&cell_type, len), idtag_make(new_id(), len, K_ARR));
    } else {
      hdr_set(alloc_or_die(chance(&w->rng, 2) ? &node_type : &leaf_type, 1),
              idtag_make(new_id(), 0, K_NODE));
    }
  }
}

/* Exchanges two subtrees of two different graphs the worker holds, at the
 * same depth below their heads (so no object sinks deeper: MAX_DEPTH
 * holds), through the barrier: in a concurrent cycle the deletion half
 * shades both overwritten pointers, the insertion half both stored ones.
 * Then swaps the two graphs' frame slots (plain stores, as a stack takes
 * them). No call in between may park or collect, so the C locals need no
 * slot. */
static void op_swap(worker *w) {
  int a = wk_pick_live(w), b = wk_pick_live(w);
  if (a < 0 || b < 0 || a == b) return;
  head *ga = wk_var(w, a), *gb = wk_var(w, b);
  int depth = (int)below(&w->rng, 4), da, db;
  void **fa = graph_field_at(ga, &w->rng, depth, &da);
  void **fb = graph_field_at(gb, &w->rng, depth, &db);
  if (da != depth || db != depth) return;
  void *t = *fa;
  ref_store(fa, *fb);
  ref_store(fb, t);
  graph_reseal(ga);
  graph_reseal(gb);
  w->slot[2 + a] = gb;
  w->slot[2 + b] = ga;
  w->sig[a] = gb->sig;
  w->sig[b] = ga->sig;
}

/* Moves a subtree out of a graph into frame slot 1 (its heap field cleared
 * through the barrier), parks or collects or allocates with it held by the
 * stack alone, checks it, and stores it back. Under the hybrid barrier the
 * clearing store must shade it: this goroutine's stack may already be
 * black; under rescan the termination pause finds it on the stack. */
static void op_stash(worker *w) {
  int v = wk_pick_live(w);
  if (v < 0) return;
  head *g = wk_var(w, v);
  int reached;
  void **field = graph_field_at(g, &w->rng, (int)below(&w->rng, 4), &reached);
  if (!*field) return;
  uint64_t n, sig = subtree_sig(*field, &n), n2;
  w->slot[1] = *field;
  ref_store(field, NULL);
  graph_reseal(g);
  w->sig[v] = g->sig;
  wk_sync(w);
  snprintf(w->doing, sizeof w->doing, "stash");
  switch (below(&w->rng, 4)) {
  case 0: ref_yield(); break;
  case 1: gc_counted(); break;
  case 2: ref_sleep(SLEEP_NS); break;
  default: op_churn(w); break;
  }
  wk_verify(w, "stash");
  if (subtree_sig(w->slot[1], &n2) != sig || n2 != n)
    die("stash: a subtree held only by frame slot 1 changed (%llu objects, %llu before)",
        (unsigned long long)n2, (unsigned long long)n);
  ref_store(field, w->slot[1]);
  w->slot[1] = NULL;
  graph_reseal(g);
  w->sig[v] = g->sig;
}

static void op_recurse(worker *w, int depth);

static void op_drop(worker *w) {
  int v = wk_pick_live(w);
  if (v >= 0) wk_drop(w, v);
}

static void op_check(worker *w) {
  int v = wk_pick_live(w);
  if (v >= 0) graph_verify(wk_var(w, v), w->sig[v], "check");
}

enum op { OP_ALLOC, OP_DROP, OP_MUTATE, OP_GC, OP_SINK, OP_FEED, OP_SELECT, OP_SELECT_DEFAULT,
          OP_RECV_OWN, OP_CLOSE_OWN, OP_YIELD, OP_SLEEP, OP_RECURSE, OP_SPAWN, OP_STACKMAPS,
          OP_CHURN, OP_CHECK, OP_SWAP, OP_STASH, NOPS };

/* Relative frequencies, out of 100. */
static const uint8_t op_weight[NOPS] = {
    [OP_ALLOC] = 12, [OP_SWAP] = 3, [OP_STASH] = 3, [OP_DROP] = 8, [OP_MUTATE] = 7, [OP_GC] = 5,
    [OP_SINK] = 5, [OP_FEED] = 5,
    [OP_SELECT] = 10, [OP_SELECT_DEFAULT] = 10, [OP_RECV_OWN] = 3, [OP_CLOSE_OWN] = 1,
    [OP_YIELD] = 4, [OP_SLEEP] = 1, [OP_RECURSE] = 8, [OP_SPAWN] = 4, [OP_STACKMAPS] = 1,
    [OP_CHURN] = 4, [OP_CHECK] = 6};

static enum op pick_op(uint64_t *rng) {
  uint32_t k = below(rng, 100);
  int op = 0;
  while (op < NOPS - 1 && k >= op_weight[op]) k -= op_weight[op++];
  return (enum op)op;
}

/* Does one random operation; returns whether it may have parked or
 * collected (then the caller re-verifies every graph it holds). */
static bool wk_step(worker *w, int depth) {
  switch (pick_op(&w->rng)) {
  case OP_ALLOC: op_alloc(w); return true;
  case OP_DROP: op_drop(w); return false;
  case OP_MUTATE: op_mutate(w); return true;
  case OP_GC: op_gc(w); return true;
  case OP_SINK: op_send_sink(w); return true;
  case OP_FEED: op_recv_feed(w); return true;
  case OP_SELECT: op_select(w, true); return true;
  case OP_SELECT_DEFAULT: op_select(w, false); return true;
  case OP_RECV_OWN: op_recv_own(w); return true;
  case OP_CLOSE_OWN: op_close_own(w); return false;
  case OP_YIELD: wk_sync(w); ref_yield(); return true;
  case OP_SLEEP: wk_sync(w); ref_sleep(SLEEP_NS); return true;
  case OP_RECURSE: if (depth < MAX_RECURSION) op_recurse(w, depth + 1); return true;
  case OP_SPAWN: op_spawn(w); return true;
  case OP_STACKMAPS: op_stackmaps(w); return false;
  case OP_CHURN: op_churn(w); return true;
  case OP_SWAP: op_swap(w); return false;
  case OP_STASH: op_stash(w); return true;
  case OP_CHECK: case NOPS: op_check(w); return false;
  }
  return false;
}

/* ---------------------------------------------------------------------------
 * Recursion: frames of their own, some conservative
 * ------------------------------------------------------------------------- */

REF_FUNC(rec_info, "torture.recurse", 4, REF_SP(0), REF_SP(1), REF_SP(2), REF_SP(3), REF_SP(4),
         REF_SP(5), REF_SP(6), REF_SP(7), REF_SP(8), REF_SP(9), REF_SP(10), REF_SP(11),
         REF_SP(12), REF_SP(13), REF_SP(14), REF_SP(15));

/* Hands graph i of a returning frame to the worker, if it has room. */
static void rec_return(worker *w, head *g) {
  int v = wk_pick_free(w);
  if (v < 0) return;
  w->slot[2 + v] = g;
  w->live[v] = true;
  w->sig[v] = g->sig;
}

/* A frame holding up to 4 graphs across deeper frames and random worker
 * operations. A conservative frame keeps its first graph only in a native
 * local, which the scanner must find by scanning the frame word by word. */
static void op_recurse(worker *w, int depth) {
  REF_FRAME(f, rec_info);
  bool cons = chance(&w->rng, 3);
  if (cons) f.h.flags = REF_FRAME_CONSERVATIVE;
  head *volatile hidden = NULL;
  uint64_t sig[4], hidden_sig = 0;
  uint32_t live = 0;
  int n = (int)below(&w->rng, 5);
  wk_sync(w);
  for (int i = 0; i < n; i++) {
    REF_SAFEPOINT(f, live);
    f.slot[i] = build_graph(&w->rng, 1 + (int)below(&w->rng, 12), NULL, false);
    sig[i] = ((head *)f.slot[i])->sig;
    live |= 1u << i;
  }
  if (cons && (live & 1)) { /* only the native local holds it now */
    hidden = f.slot[0];
    hidden_sig = sig[0];
    f.slot[0] = NULL;
    live &= ~1u;
  }
  REF_SAFEPOINT(f, live);
  if (depth < MAX_RECURSION && chance(&w->rng, 2)) {
    op_recurse(w, depth + 1);
  } else {
    for (int i = (int)below(&w->rng, 4); i > 0; i--)
      if (wk_step(w, depth)) wk_verify(w, "recursion");
  }
  for (int i = 0; i < 4; i++)
    if (live & (1u << i)) graph_verify(f.slot[i], sig[i], "recursion frame");
  if (hidden) graph_verify(hidden, hidden_sig, "conservative frame local");
  if (live && chance(&w->rng, 2)) rec_return(w, f.slot[__builtin_ctz(live)]);
  else if (hidden && chance(&w->rng, 2)) rec_return(w, hidden);
}

/* ---------------------------------------------------------------------------
 * Goroutines
 * ------------------------------------------------------------------------- */

/* The hub is a registered root; goroutines also hold it in slot 0. */
static struct { hub *hub; } root;

static void worker_main(void *arg) {
  REF_FRAME(f, worker_info);
  worker *w = arg;
  w->rec = &f.h;
  w->slot = f.slot;
  f.slot[0] = root.hub;
  wk_sync(w);
  for (int i = 0; i < R.ops; i++)
    if (wk_step(w, 0)) wk_verify(w, "worker");
  wk_verify(w, "worker exit");
  if (!w->own_closed) op_close_own(w);
  w->finished = true;
  R.workers_done++;
}

REF_FUNC(child_info, "torture.child", 2, REF_SP(0x3), REF_SP(0x2));

static void child_main(void *arg) {
  REF_FRAME(f, child_info);
  f.slot[0] = arg;
  f.slot[1] = root.hub;
  REF_SAFEPOINT(f, 0);
  head *g = arg;
  graph_verify(g, 0, "child start");
  uint64_t sig = g->sig, rng = mix(g->h.idtag);
  for (int i = (int)below(&rng, 4); i > 0; i--) {
    switch (below(&rng, 3)) {
    case 0: gc_counted(); break;
    case 1: ref_yield(); break;
    default: ref_sleep(SLEEP_NS); break;
    }
    graph_verify(f.slot[0], sig, "child");
  }
  ref_chan_send(((hub *)f.slot[1])->ch[chance(&rng, 2) ? CH_SINK_U : CH_SINK_B], &f.slot[0]);
  R.sunk++;
  REF_SAFEPOINT(f, 1);
  R.children_done++;
}

REF_FUNC(source_info, "torture.source", 2, REF_SP(0x3), REF_SP(0x2));

/* Sends fresh graphs on the feeds until done is closed. */
static void source_main(void *arg) {
  REF_FRAME(f, source_info);
  uint64_t rng = mix(R.seed ^ 0x50757263);
  (void)arg;
  f.slot[1] = root.hub;
  for (;;) {
    REF_SAFEPOINT(f, 0);
    if (!f.slot[0]) f.slot[0] = build_graph(&rng, 1 + (int)below(&rng, 10), NULL, false);
    if (chance(&rng, 16)) gc_counted();
    hub *h = f.slot[1];
    ref_case cs[3] = {{h->ch[CH_FEED_U], REF_SEND, &f.slot[0], false},
                      {h->ch[CH_FEED_B], REF_SEND, &f.slot[0], false},
                      {h->ch[CH_DONE], REF_RECV, NULL, false}};
    int k = ref_select(cs, 3, false);
    if (k == 2) return;
    R.fed++;
    f.slot[0] = NULL;
  }
}

REF_FUNC(drain_info, "torture.drainer", 5, REF_SP(0x1f));

/* Receives and checks everything sent to the sinks until both are closed;
 * keeps the last few graphs alive for a while. */
static void drainer_main(void *arg) {
  REF_FRAME(f, drain_info);
  (void)arg;
  uint64_t rng = mix(R.seed ^ 0x4472616e);
  f.slot[0] = root.hub;
  REF_SAFEPOINT(f, 0);
  ref_chan *u = root.hub->ch[CH_SINK_U], *b = root.hub->ch[CH_SINK_B];
  while (u || b) {
    ref_case cs[2] = {{u, REF_RECV, &f.slot[1], false}, {b, REF_RECV, &f.slot[1], false}};
    int k = ref_select(cs, 2, false);
    if (!cs[k].ok) {
      *(k == 0 ? &u : &b) = NULL;
      continue;
    }
    graph_verify(f.slot[1], 0, "drainer");
    R.drained++;
    f.slot[2 + below(&rng, 3)] = f.slot[1];
    f.slot[1] = NULL;
    for (int i = 2; i < 5; i++)
      if (f.slot[i]) graph_verify(f.slot[i], 0, "drainer keep");
    if (chance(&rng, 32)) gc_counted();
  }
}

/* ---------------------------------------------------------------------------
 * One run: a seed's program under one strategy and worker count
 * ------------------------------------------------------------------------- */

/* Program shape, from the seed alone (the same program for every config). */
typedef struct shape {
  int nworkers, nshared;
  size_t shared_cap[MAX_SHARED], own_cap[MAX_WORKERS];
  ref_stackmaps maps;
  size_t heap_max;
  ref_reuse reuse; /* drawn last: the other draws are those of older runs */
} shape;

static shape shape_of(uint64_t seed) {
  uint64_t rng = mix(seed);
  shape s = {0};
  s.nworkers = 2 + (int)below(&rng, MAX_WORKERS - 1);
  s.nshared = 1 + (int)below(&rng, MAX_SHARED);
  for (int k = 0; k < s.nshared; k++) {
    R.shared_ptr[k] = !chance(&rng, 3);
    s.shared_cap[k] = chance(&rng, 2) ? 0 : below(&rng, 4);
  }
  for (int k = 0; k < s.nworkers; k++) s.own_cap[k] = below(&rng, 3);
  s.maps = (ref_stackmaps)below(&rng, 3);
  static const size_t heaps[] = {1u << 20, 2u << 20, 64u << 20};
  s.heap_max = heaps[below(&rng, 3)];
  s.reuse = (ref_reuse)below(&rng, REF_NREUSES);
  return s;
}

static ref_chan *make_chan(bool ptrs, size_t cap) {
  ref_chan *c = ptrs ? ref_chan_make(&ptr_type, cap) : ref_chan_make_size(sizeof(uint64_t), cap);
  if (!c) die("ref_chan_make: %s", ref_error());
  return c;
}

/* Builds the hub and its channels on the scheduler stack; the hub is a
 * registered root before anything else is allocated. */
static void hub_make(const shape *s, ref_chan **copy) {
  hub *h = alloc_or_die(&hub_type, 1);
  ref_store((void **)&root.hub, h); /* a registered root: the barrier too */
  ref_add_root(&root, sizeof root);
  hdr_set(root.hub, idtag_make(new_id(), 0, K_HUB));
  ref_chan **ch = root.hub->ch;
  ref_store((void **)&ch[CH_FEED_U], make_chan(true, 0));
  ref_store((void **)&ch[CH_FEED_B], make_chan(true, 3));
  ref_store((void **)&ch[CH_SINK_U], make_chan(true, 0));
  ref_store((void **)&ch[CH_SINK_B], make_chan(true, 4));
  ref_store((void **)&ch[CH_DONE], make_chan(false, 0));
  for (int k = 0; k < s->nshared; k++)
    ref_store((void **)&ch[CH_SHARED + k], make_chan(R.shared_ptr[k], s->shared_cap[k]));
  for (int k = 0; k < s->nworkers; k++)
    ref_store((void **)&ch[CH_OWN + k], make_chan(true, s->own_cap[k]));
  memcpy(copy, ch, sizeof root.hub->ch);
}

static void spawn_all(worker *ws) {
  R.ws = ws;
  if (!ref_go(source_main, NULL) || !ref_go(drainer_main, NULL)) die("ref_go: %s", ref_error());
  for (int i = 0; i < R.nworkers; i++) {
    ws[i] = (worker){.idx = i, .rng = mix(R.seed * 0x100 + (uint64_t)i + 1)};
    if (!ref_go(worker_main, &ws[i])) die("ref_go: %s", ref_error());
  }
}

/* Runs the goroutines to quiescence and checks that exactly the source and
 * the drainer are left; then ends them and checks that nothing is left. */
static void run_and_finish(ref_chan *const *copy) {
  size_t parked = ref_run();
  if (R.workers_done != R.nworkers || R.children_done != R.children_spawned || parked != 2) {
    for (int k = 0; R.verbose && k < R.nworkers; k++)
      fprintf(stderr, "torture:   worker %d: %s%s\n", k, R.ws[k].finished ? "finished, last " : "",
              R.ws[k].doing);
    int i = 0;
    while (i < R.nworkers && R.ws[i].finished) i++;
    die("deadlock: ref_run returned with %zu goroutines parked (2 expected); %d of %d workers "
        "and %d of %d children finished; worker %d is in: %s", parked, R.workers_done,
        R.nworkers, R.children_done, R.children_spawned, i, i < R.nworkers ? R.ws[i].doing : "-");
  }
  if (memcmp(copy, root.hub->ch, sizeof root.hub->ch) != 0) die("the hub's channels changed");
  hdr_check(root.hub, K_HUB, "hub");
  ref_chan_close(root.hub->ch[CH_DONE]);
  ref_chan_close(root.hub->ch[CH_SINK_U]);
  ref_chan_close(root.hub->ch[CH_SINK_B]);
  parked = ref_run();
  ref_sched_stats st;
  ref_sched_stats_get(&st);
  if (parked != 0 || st.waiting != 0 || st.runnable != 0)
    die("after closing done and the sinks, %zu goroutines are still parked", parked);
  if (R.drained != R.sunk) die("sent %llu graphs to the sinks, the drainer got %llu",
                               (unsigned long long)R.sunk, (unsigned long long)R.drained);
}

/* With no goroutine and no root left, a collection must free everything. */
static void check_empty_heap(void) {
  ref_gc();
  hdr_check(root.hub, K_HUB, "hub after the last goroutine");
  ref_remove_root(&root);
  root.hub = NULL;
  ref_gc();
  ref_heap_stats hs;
  ref_heap_stats_get(&hs);
  if (hs.objects_live != 0)
    die("%zu objects (%zu bytes) survived a collection with no goroutines and no roots",
        hs.objects_live, hs.bytes_live);
}

/* Runs seed's program in one configuration. The concurrent modes take
 * reuse=off only (ref_config): there the seed's reuse draw is replaced by
 * off, and reuse=clean is covered by the stw runs of the same seed; their
 * heap limit is at least CONCURRENT_MIN_HEAP per mutator. */
static void run_one(uint64_t seed, ref_mode mode, int strategy, int mark_workers, int mutators,
                    const opts *o) {
  memset(&R, 0, sizeof R);
  R.seed = seed;
  R.mode = mode;
  R.strategy = strategy_names[strategy];
  R.mark_workers = mark_workers;
  R.mutators = mutators;
  R.ops = o->ops;
  R.verbose = o->verbose;
  shape s = shape_of(seed);
  R.nworkers = s.nworkers;
  R.nshared = s.nshared;
  if (mode != REF_MODE_STW) s.reuse = REF_REUSE_OFF;
  if (mode != REF_MODE_STW && !o->small_heaps && s.heap_max < CONCURRENT_MIN_HEAP)
    s.heap_max = CONCURRENT_MIN_HEAP;
  fprintf(stderr,
          "torture: seed %llu mode %s strategy %s workers %d mutators %d ops %d stackmaps %s "
          "heap %zuM reuse %s\n",
          (unsigned long long)seed, ref_mode_name(mode), R.strategy, mark_workers, mutators, o->ops,
          ref_stackmaps_name(s.maps), s.heap_max * (size_t)mutators >> 20,
          ref_reuse_name(s.reuse));
  ref_config cfg;
  ref_config_default(&cfg);
  if (ref_strategy_parse(R.strategy, &cfg.phase, &cfg.scan) != 0) die("unknown strategy");
  cfg.checkmark = cfg.poison = true;
  cfg.mode = mode;
  cfg.workers = mark_workers;
  cfg.mutators = mutators;
  cfg.stackmaps = s.maps;
  cfg.heap_max = s.heap_max * (size_t)mutators;
  cfg.reuse = s.reuse;
  cfg.seed = seed;
  if (ref_init(&cfg) != 0) die("ref_init: %s", ref_error());
  worker ws[MAX_WORKERS];
  ref_chan *copy[HUB_CH];
  hub_make(&s, copy);
  spawn_all(ws);
  run_and_finish(copy);
  check_empty_heap();
  if (o->verbose)
    fprintf(stderr, "torture:   ok: %d workers, %d children, %llu+%llu gcs, %llu sunk, %llu fed, "
            "%llu/%llu tokens, %llu objects, max live %llu KiB\n", R.nworkers, R.children_spawned,
            (unsigned long long)R.gcs, (unsigned long long)(ref_gc_last()->cycle - R.gcs - 2),
            (unsigned long long)R.sunk, (unsigned long long)R.fed,
            (unsigned long long)R.tokens_received, (unsigned long long)R.tokens_sent,
            (unsigned long long)R.next_id, (unsigned long long)R.max_marked >> 10);
  ref_shutdown();
}

/* ---------------------------------------------------------------------------
 * Command line
 * ------------------------------------------------------------------------- */

static const char usage[] =
    "usage: stackscan-torture [--seeds N] [--first S] [--seed S] [--ops N] [--mode LIST]\n"
    "                         [--strategy NAME] [--workers LIST] [--mutators LIST] [--verbose]\n"
    "  --seeds N        run seeds FIRST..FIRST+N-1 (default 3)\n"
    "  --first S        first seed (default 1)\n"
    "  --seed S         run only seed S (replay)\n"
    "  --ops N          operations per worker goroutine (default 60)\n"
    "  --mode LIST      collector modes, comma-separated: stw, concurrent-rescan,\n"
    "                   concurrent-hybrid (default: all three; the concurrent ones run\n"
    "                   every seed with reuse off)\n"
    "  --strategy X     only strategy X (default: all six)\n"
    "  --workers LIST   mark worker counts W, comma-separated (default: 1,2,4,8)\n"
    "  --mutators LIST  mutator thread counts P, comma-separated (default: 1,2,4)\n"
    "  --small-heaps    in the concurrent modes too, run the seed's 1 and 2 MiB heaps\n"
    "                   (else at least 16 MiB per mutator there)\n"
    "  --verbose        print each run's counts\n"
    "A flag's value follows it or an '=' (--mode=stw,concurrent-hybrid). Each run prints\n"
    "'torture: seed S mode M strategy X workers W mutators P ...' on stderr before it starts;\n"
    "a failure prints 'torture: FAILED seed S mode M strategy X workers W mutators P: <what>'\n"
    "and exits 1; replay it with --seed S --mode M --strategy X --workers W --mutators P.\n";

__attribute__((noreturn)) static void usage_error(const char *flag, const char *what) {
  fprintf(stderr, "stackscan-torture: %s: %s (see --help)\n", flag, what);
  exit(2);
}

static uint64_t parse_num(const char *flag, const char *v, uint64_t lo, uint64_t hi) {
  if (!v || !*v) usage_error(flag, "missing value");
  char *end;
  unsigned long long x = strtoull(v, &end, 10);
  if (*end || *v == '-' || x < lo || x > hi) usage_error(flag, "bad number");
  return x;
}

/* The next comma-separated item of *list into buf (NUL-terminated); false
 * at the end. An empty item or one too long for buf is a usage error. */
static bool next_item(const char *flag, const char **list, char *buf, size_t cap) {
  if (!**list) return false;
  size_t k = strcspn(*list, ",");
  if (k == 0 || k >= cap) usage_error(flag, k ? "list item too long" : "empty list item");
  memcpy(buf, *list, k);
  buf[k] = 0;
  *list += k + ((*list)[k] == ',');
  if ((*list)[-1] == ',' && !**list) usage_error(flag, "empty list item");
  return true;
}

/* "1,2,4": each in lo..hi, no repeats, at most MAX_LIST. */
static counts parse_counts(const char *flag, const char *v, int lo, int hi) {
  counts c = {{0}, 0};
  char buf[24];
  if (!v || !*v) usage_error(flag, "missing value");
  while (next_item(flag, &v, buf, sizeof buf)) {
    int x = (int)parse_num(flag, buf, (uint64_t)lo, (uint64_t)hi);
    for (int i = 0; i < c.n; i++)
      if (c.v[i] == x) usage_error(flag, "a value repeated");
    if (c.n == MAX_LIST) usage_error(flag, "too many values");
    c.v[c.n++] = x;
  }
  return c;
}

/* "stw,concurrent-hybrid": names ref_mode_parse knows, no repeats. */
static void parse_modes(const char *flag, const char *v, bool *mode) {
  char buf[64];
  if (!v || !*v) usage_error(flag, "missing value");
  memset(mode, 0, sizeof(bool) * REF_NMODES);
  while (next_item(flag, &v, buf, sizeof buf)) {
    ref_mode m;
    if (ref_mode_parse(buf, &m) != 0) usage_error(flag, "unknown mode");
    if (mode[m]) usage_error(flag, "a mode repeated");
    mode[m] = true;
  }
}

static counts counts_of(const int *v, int n) {
  counts c = {{0}, n};
  memcpy(c.v, v, sizeof(int) * (size_t)n);
  return c;
}

/* Handles flag a with value v (NULL when none follows); returns whether v
 * was consumed. */
static bool parse_flag(opts *o, const char *a, const char *v) {
  if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
    fputs(usage, stdout);
    exit(0);
  }
  if (!strcmp(a, "--verbose")) {
    o->verbose = true;
    return false;
  }
  if (!strcmp(a, "--small-heaps")) {
    o->small_heaps = true;
    return false;
  }
  if (!strcmp(a, "--seeds")) {
    o->nseeds = parse_num(a, v, 1, 1000000000);
  } else if (!strcmp(a, "--first")) {
    o->first_seed = parse_num(a, v, 0, UINT64_MAX / 2);
  } else if (!strcmp(a, "--seed")) {
    o->first_seed = parse_num(a, v, 0, UINT64_MAX / 2);
    o->nseeds = 1;
  } else if (!strcmp(a, "--ops")) {
    o->ops = (int)parse_num(a, v, 0, 100000000);
  } else if (!strcmp(a, "--workers")) {
    o->workers = parse_counts(a, v, 1, REF_MAX_WORKERS);
  } else if (!strcmp(a, "--mutators")) {
    o->mutators = parse_counts(a, v, 1, REF_MAX_MUTATORS);
  } else if (!strcmp(a, "--mode")) {
    parse_modes(a, v, o->mode);
  } else if (!strcmp(a, "--strategy")) {
    ref_phase ph;
    ref_scan sc;
    if (!v || ref_strategy_parse(v, &ph, &sc) != 0) usage_error(a, "unknown strategy");
    o->strategy = v;
  } else {
    usage_error(a, "unknown flag");
  }
  return true;
}

/* "--flag=value" is "--flag value"; a flag that takes no value refuses one. */
static opts parse_args(int argc, char **argv) {
  opts o = {1, 3, 60, NULL, counts_of(worker_counts, REF_ARRAY_SIZE(worker_counts)),
            counts_of(mutator_counts, REF_ARRAY_SIZE(mutator_counts)), {0}, false, false};
  for (int m = 0; m < REF_NMODES; m++) o.mode[m] = true;
  for (int i = 1; i < argc; i++) {
    const char *eq = strchr(argv[i], '=');
    if (!eq || strncmp(argv[i], "--", 2) != 0) {
      if (parse_flag(&o, argv[i], i + 1 < argc ? argv[i + 1] : NULL)) i++;
      continue;
    }
    char flag[32];
    size_t k = (size_t)(eq - argv[i]);
    if (k >= sizeof flag) usage_error(argv[i], "unknown flag");
    memcpy(flag, argv[i], k);
    flag[k] = 0;
    if (!parse_flag(&o, flag, eq + 1)) usage_error(flag, "takes no value");
  }
  return o;
}

int main(int argc, char **argv) {
  opts o = parse_args(argc, argv);
  uint64_t runs = 0;
  for (uint64_t seed = o.first_seed; seed < o.first_seed + o.nseeds; seed++)
    for (int m = 0; m < REF_NMODES; m++)
      for (int s = 0; o.mode[m] && s < 6; s++) {
        if (o.strategy && strcmp(o.strategy, strategy_names[s]) != 0) continue;
        for (int p = 0; p < o.mutators.n; p++)
          for (int k = 0; k < o.workers.n; k++, runs++)
            run_one(seed, (ref_mode)m, s, o.workers.v[k], o.mutators.v[p], &o);
      }
  printf("torture: %llu passed, 0 failed (seeds %llu..%llu, %d ops per worker)\n",
         (unsigned long long)runs, (unsigned long long)o.first_seed,
         (unsigned long long)(o.first_seed + o.nseeds - 1), o.ops);
  return 0;
}
