#include "core/cpus.h"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace frugal {

namespace {

std::optional<long long> to_int(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  long long v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> quota_over_period(std::optional<long long> quota, std::optional<long long> period) {
  if (!quota || !period || *quota <= 0 || *period <= 0) return std::nullopt;
  return static_cast<double>(*quota) / static_cast<double>(*period);
}

std::string read_file(const char* path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

std::optional<double> parse_cgroup_cpu_max(std::string_view text) {
  const size_t space = text.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  return quota_over_period(to_int(text.substr(0, space)), to_int(text.substr(space + 1)));
}

std::optional<double> parse_cgroup_v1_quota(std::string_view quota_us, std::string_view period_us) {
  return quota_over_period(to_int(quota_us), to_int(period_us));
}

int usable_cpus() {
  int n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) n = std::max(1, CPU_COUNT(&set));
  std::optional<double> quota = parse_cgroup_cpu_max(read_file("/sys/fs/cgroup/cpu.max"));
  if (!quota)
    quota = parse_cgroup_v1_quota(read_file("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
                                  read_file("/sys/fs/cgroup/cpu/cpu.cfs_period_us"));
  if (quota) n = std::min(n, std::max(1, static_cast<int>(std::ceil(*quota))));
  return n;
}

}  // namespace frugal
