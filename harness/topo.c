/*
 * topo.c: topology (hwloc) -- loading, counts and summary, placement plans,
 * and thread binding. See topo.h for the contracts.
 *
 * Orders are lists of PU logical indices (hwloc's depth-first order of the
 * CPU tree); a plan maps thread i (worker i, mutator i) to order[i % npus].
 */
#include "topo.h"

#include <errno.h>
#include <hwloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct topo {
  hwloc_topology_t h;
  bool synthetic;
};

static __thread char errbuf[256];

__attribute__((format(printf, 1, 2))) static int seterr(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, sizeof errbuf, fmt, ap);
  va_end(ap);
  return -1;
}

const char *topo_error(void) { return errbuf; }

/* ---------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------- */

topo *topo_load(const char *synthetic) {
  topo *t = calloc(1, sizeof *t);
  if (t == NULL) {
    seterr("topology: out of memory");
    return NULL;
  }
  if (hwloc_topology_init(&t->h) != 0) {
    seterr("topology: hwloc_topology_init failed: %s", strerror(errno));
    goto fail_alloc;
  }
  if (synthetic != NULL) {
    t->synthetic = true;
    if (hwloc_topology_set_synthetic(t->h, synthetic) != 0) {
      seterr("invalid synthetic topology \"%s\"; accepted: hwloc synthetic descriptions, "
             "e.g. \"pack:2 numa:2 core:4 pu:2\"", synthetic);
      goto fail_init;
    }
  }
  if (hwloc_topology_load(t->h) != 0) {
    seterr("topology: hwloc_topology_load failed: %s", strerror(errno));
    goto fail_init;
  }
  return t;

fail_init:
  hwloc_topology_destroy(t->h);
fail_alloc:
  free(t);
  return NULL;
}

void topo_free(topo *t) {
  if (t == NULL) return;
  hwloc_topology_destroy(t->h);
  free(t);
}

bool topo_is_synthetic(const topo *t) { return t->synthetic; }

/* ---------------------------------------------------------------------------
 * Counts and summary
 * ------------------------------------------------------------------------- */

static int count(const topo *t, hwloc_obj_type_t type) {
  int n = hwloc_get_nbobjs_by_type(t->h, type);
  return n < 0 ? 0 : n; /* -1: objects of this type sit at several depths (not for these) */
}

static uint64_t first_cache_bytes(const topo *t, hwloc_obj_type_t type) {
  hwloc_obj_t o = hwloc_get_obj_by_type(t->h, type, 0);
  return o != NULL && o->attr != NULL ? o->attr->cache.size : 0;
}

void topo_get_counts(const topo *t, topo_counts *c) {
  static const hwloc_obj_type_t caches[] = {HWLOC_OBJ_L5CACHE, HWLOC_OBJ_L4CACHE,
                                            HWLOC_OBJ_L3CACHE, HWLOC_OBJ_L2CACHE,
                                            HWLOC_OBJ_L1CACHE};
  memset(c, 0, sizeof *c);
  c->packages = count(t, HWLOC_OBJ_PACKAGE);
  c->numa_nodes = count(t, HWLOC_OBJ_NUMANODE);
  c->l3_caches = count(t, HWLOC_OBJ_L3CACHE);
  c->cores = count(t, HWLOC_OBJ_CORE);
  c->pus = count(t, HWLOC_OBJ_PU);
  c->l3_bytes = first_cache_bytes(t, HWLOC_OBJ_L3CACHE);
  for (int i = 0; i < 5; i++) {
    int n = count(t, caches[i]);
    if (n > 0) {
      c->llc_level = 5 - i;
      c->llc_count = n;
      c->llc_bytes = first_cache_bytes(t, caches[i]);
      break;
    }
  }
}

/* "32 MiB", "1.5 MiB", "48 KiB", "512 B": binary units, one decimal if not whole. */
static void format_bytes(char *buf, size_t len, uint64_t bytes) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  double v = (double)bytes;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    u++;
  }
  if (v == (double)(uint64_t)v)
    snprintf(buf, len, "%llu %s", (unsigned long long)v, units[u]);
  else
    snprintf(buf, len, "%.1f %s", v, units[u]);
}

static const char *plural(int n) { return n == 1 ? "" : "s"; }

int topo_summary(const topo *t, char *buf, size_t len) {
  topo_counts c;
  char cache[64] = "";
  topo_get_counts(t, &c);
  if (c.llc_level > 0) {
    char size[24];
    format_bytes(size, sizeof size, c.llc_bytes);
    if (c.llc_count == 1)
      snprintf(cache, sizeof cache, ", L%d %s", c.llc_level, size);
    else
      snprintf(cache, sizeof cache, ", %d x L%d %s", c.llc_count, c.llc_level, size);
  }
  return snprintf(buf, len, "%d package%s, %d NUMA node%s, %d core%s, %d PU%s%s", c.packages,
                  plural(c.packages), c.numa_nodes, plural(c.numa_nodes), c.cores,
                  plural(c.cores), c.pus, plural(c.pus), cache);
}

/* ---------------------------------------------------------------------------
 * Placement orders
 * ------------------------------------------------------------------------- */

#define PLACEMENT_NAME(e, name, what) name,
#define PLACEMENT_WHAT(e, name, what) what,
static const char *const placement_names[] = {TOPO_PLACEMENTS(PLACEMENT_NAME)};
static const char *const placement_whats[] = {TOPO_PLACEMENTS(PLACEMENT_WHAT)};

const char *topo_placement_name(topo_placement p) {
  return (unsigned)p < TOPO_NPLACEMENTS ? placement_names[p] : NULL;
}

const char *topo_placement_what(topo_placement p) {
  return (unsigned)p < TOPO_NPLACEMENTS ? placement_whats[p] : NULL;
}

int topo_placement_parse(const char *name, topo_placement *p) {
  for (int i = 0; i < TOPO_NPLACEMENTS; i++) {
    if (strcmp(name, placement_names[i]) == 0) {
      *p = (topo_placement)i;
      return 0;
    }
  }
  return seterr("unknown placement \"%s\"", name);
}

/* PUs below o in the CPU tree (memory children hold none). */
static int pus_below(hwloc_obj_t o) {
  if (o->type == HWLOC_OBJ_PU) return 1;
  int n = 0;
  for (unsigned i = 0; i < o->arity; i++) n += pus_below(o->children[i]);
  return n;
}

/* Fills out[0..n) with the logical indices of the PUs below o in scatter
 * order and returns n (-1 on allocation failure). The order of a node
 * interleaves its children's orders round-robin: first PU of child 0, first
 * of child 1, ..., then the second of each, skipping exhausted children. On
 * a symmetric tree worker i's position is i written in mixed radix, its
 * lowest digit picking the package, the next the NUMA node, and so on down
 * to the PU, so consecutive workers share as little of the tree as possible. */
static int scatter_order(hwloc_obj_t o, int *out) {
  if (o->type == HWLOC_OBJ_PU) {
    out[0] = (int)o->logical_index;
    return 1;
  }
  if (o->arity == 1) return scatter_order(o->children[0], out);
  int total = pus_below(o);
  int *sub = malloc(((size_t)total + 1) * sizeof *sub);
  int *start = malloc(((size_t)o->arity + 1) * 2 * sizeof *start);
  if (sub == NULL || start == NULL) goto fail;
  int *len = start + o->arity, pos = 0;
  for (unsigned k = 0; k < o->arity; k++) {
    start[k] = pos;
    len[k] = scatter_order(o->children[k], sub + pos);
    if (len[k] < 0) goto fail;
    pos += len[k];
  }
  int w = 0;
  for (int r = 0; w < total; r++)
    for (unsigned k = 0; k < o->arity; k++)
      if (r < len[k]) out[w++] = sub[start[k] + r];
  free(sub);
  free(start);
  return total;

fail:
  free(sub);
  free(start);
  return -1;
}

/* Fills order[0..npus) for placement p (compact or scatter). */
static int make_order(const topo *t, topo_placement p, int *order, int npus) {
  if (p == TOPO_PLACE_COMPACT) {
    /* Logical PU order is the tree's depth-first order: a core's PUs are
     * consecutive, cores follow each other within their cache/NUMA/package. */
    for (int i = 0; i < npus; i++) order[i] = i;
    return 0;
  }
  int n = scatter_order(hwloc_get_root_obj(t->h), order);
  if (n < 0) return seterr("placement: out of memory");
  if (n != npus) return seterr("placement: tree has %d PUs, expected %d", n, npus);
  return 0;
}

static void fill_slot(const topo *t, topo_slot *s, int logical) {
  hwloc_obj_t pu = hwloc_get_obj_by_type(t->h, HWLOC_OBJ_PU, (unsigned)logical);
  s->pu_logical = logical;
  s->pu_os = (int)pu->os_index;
  hwloc_bitmap_snprintf(s->cpuset, sizeof s->cpuset, pu->cpuset);
}

int topo_plan_make(const topo *t, topo_placement p, int workers, topo_plan *plan) {
  memset(plan, 0, sizeof *plan);
  if (workers < 1) return seterr("placement: workers must be >= 1, got %d", workers);
  if ((unsigned)p > TOPO_PLACE_SCATTER) return seterr("placement: unknown placement %d", (int)p);
  int npus = count(t, HWLOC_OBJ_PU);
  if (npus < 1) return seterr("placement: topology has no PUs");
  topo_slot *slot = calloc((size_t)workers, sizeof *slot);
  int *order = malloc((size_t)npus * sizeof *order);
  if (slot == NULL || order == NULL) {
    seterr("placement: out of memory");
    goto fail;
  }
  if (p != TOPO_PLACE_NONE && make_order(t, p, order, npus) != 0) goto fail;
  for (int i = 0; i < workers; i++) {
    if (p == TOPO_PLACE_NONE)
      slot[i] = (topo_slot){.pu_os = -1, .pu_logical = -1};
    else
      fill_slot(t, &slot[i], order[i % npus]);
  }
  free(order);
  *plan = (topo_plan){.placement = p, .nworkers = workers, .slot = slot};
  return 0;

fail:
  free(order);
  free(slot);
  return -1;
}

void topo_plan_free(topo_plan *plan) {
  free(plan->slot);
  memset(plan, 0, sizeof *plan);
}

/* ---------------------------------------------------------------------------
 * Binding
 * ------------------------------------------------------------------------- */

int topo_bind_current_thread(const topo *t, int pu_os_index) {
  if (t->synthetic) return seterr("cannot bind to PU P#%d of a synthetic topology", pu_os_index);
  if (pu_os_index < 0) return seterr("cannot bind to PU P#%d: no such PU", pu_os_index);
  hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(t->h, (unsigned)pu_os_index);
  if (pu == NULL) return seterr("cannot bind to PU P#%d: no such PU", pu_os_index);
  if (hwloc_set_cpubind(t->h, pu->cpuset, HWLOC_CPUBIND_THREAD) != 0)
    return seterr("binding to PU P#%d failed: %s", pu_os_index, strerror(errno));
  return 0;
}

void topo_binder_init(topo_binder *b, const topo *t, const topo_plan *plan) {
  memset(b, 0, sizeof *b);
  b->t = t;
  b->plan = plan;
  b->failed = -1;
}

/* Binds thread `index` of one kind ("worker", "mutator") to its slot. */
static int bind_slot(topo_binder *b, const char *kind, int index) {
  int rc = 0;
  if (index < 0 || index >= b->plan->nworkers)
    rc = seterr("%s %d has no slot in a plan for %d threads", kind, index, b->plan->nworkers);
  else if (b->plan->slot[index].pu_os >= 0)
    rc = topo_bind_current_thread(b->t, b->plan->slot[index].pu_os);
  if (rc != 0) {
    int none = -1;
    /* Only the first failing thread writes err; failed is its claim. */
    if (__atomic_compare_exchange_n(&b->failed, &none, index, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
      snprintf(b->err, sizeof b->err, "%s %d: %s", kind, index, topo_error());
  }
  return rc;
}

int topo_worker_start(int index, void *binder) { return bind_slot(binder, "worker", index); }
int topo_mutator_start(int index, void *binder) { return bind_slot(binder, "mutator", index); }

const char *topo_binder_failure(const topo_binder *b) { return b->failed >= 0 ? b->err : NULL; }
