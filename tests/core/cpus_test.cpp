#include "core/cpus.h"

#include <doctest/doctest.h>
#include <sched.h>

#include <thread>

using namespace frugal;

TEST_CASE("cgroup CPU quotas: v2 cpu.max and v1 quota/period") {
  CHECK(parse_cgroup_cpu_max("200000 100000\n") == 2.0);
  CHECK(parse_cgroup_cpu_max("50000 100000") == 0.5);
  CHECK_FALSE(parse_cgroup_cpu_max("max 100000\n"));
  CHECK_FALSE(parse_cgroup_cpu_max(""));
  CHECK_FALSE(parse_cgroup_cpu_max("garbage"));
  CHECK(parse_cgroup_v1_quota("150000\n", "100000\n") == 1.5);
  CHECK_FALSE(parse_cgroup_v1_quota("-1\n", "100000\n"));
  CHECK_FALSE(parse_cgroup_v1_quota("", ""));
}

TEST_CASE("usable CPUs follow the affinity mask") {
  cpu_set_t saved;
  REQUIRE(sched_getaffinity(0, sizeof saved, &saved) == 0);
  const int before = usable_cpus();
  CHECK(before >= 1);
  CHECK(before <= CPU_COUNT(&saved));
  // Pinned to one CPU, the process can use one.
  int first = 0;
  while (!CPU_ISSET(first, &saved)) ++first;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  REQUIRE(sched_setaffinity(0, sizeof one, &one) == 0);
  CHECK(usable_cpus() == 1);
  REQUIRE(sched_setaffinity(0, sizeof saved, &saved) == 0);
}
