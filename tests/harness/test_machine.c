/*
 * test_machine.c: machine keys from CPU descriptions (the key decides which
 * baseline a run is compared with, so its spelling is the contract), and
 * the facts machine_get reads on this machine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <regex.h>
#include <string.h>

#include "machine.h"

static void check_key(const char *vendor, const char *model, int pus, const char *want) {
  char key[96];
  machine_key("x86_64", vendor, model, pus, key, sizeof key);
  if (strcmp(key, want) != 0)
    fail_msg("(%s, %s, %d): key %s, want %s", vendor, model, pus, key, want);
}

static void test_keys(void **state) {
  (void)state;
  check_key("AuthenticAMD", "AMD EPYC", 2, "x86_64-amd-epyc-2pu");
  check_key("AuthenticAMD", "AMD EPYC 7B13 64-Core Processor", 2, "x86_64-amd-epyc-7b13-2pu");
  check_key("GenuineIntel", "Intel(R) Xeon(R) CPU @ 2.20GHz", 4, "x86_64-intel-xeon-4pu");
  check_key("GenuineIntel", "Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz", 12,
            "x86_64-intel-core-i7-8700-12pu");
  check_key("AuthenticAMD", "AMD EPYC 7763 64-Core Processor", 2, "x86_64-amd-epyc-7763-2pu");
  check_key("", "", 1, "x86_64-cpu-1pu");
  check_key("HygonGenuine", "Hygon C86 7185 32-core Processor", 8,
            "x86_64-hygongenuine-hygon-c86-7185-8pu");
}

/* This machine: a key of the documented shape ending in the PU count, and
 * no field left empty. */
static void test_this_machine(void **state) {
  (void)state;
  machine_info mi;
  machine_get(&mi, 3);
  regex_t re;
  assert_int_equal(regcomp(&re, "^[a-z0-9_]+-[a-z0-9-]+-3pu$", REG_EXTENDED | REG_NOSUB), 0);
  if (regexec(&re, mi.key, 0, NULL, 0) != 0) fail_msg("key %s", mi.key);
  regfree(&re);
  assert_true(mi.cpu[0] && mi.kernel[0] && mi.virt[0] && mi.host_id[0]);
  assert_non_null(strstr(mi.cpu, " family "));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keys),
      cmocka_unit_test(test_this_machine),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
