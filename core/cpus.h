#pragma once
// How many CPUs this process may actually use: its affinity mask, capped by a cgroup
// CPU quota (a container's `cpus:` limit). std::thread::hardware_concurrency() sees
// neither, so a pod limited to one CPU on a 16-core node would count 16.
#include <optional>
#include <string_view>

namespace frugal {

// A cgroup v2 `cpu.max` ("200000 100000" → 2.0, "max 100000" → none).
std::optional<double> parse_cgroup_cpu_max(std::string_view text);
// A cgroup v1 quota and period (`cpu.cfs_quota_us`, `cpu.cfs_period_us`; -1: none).
std::optional<double> parse_cgroup_v1_quota(std::string_view quota_us, std::string_view period_us);

// CPUs available to this process, at least 1 (a fractional quota rounds up).
int usable_cpus();

}  // namespace frugal
