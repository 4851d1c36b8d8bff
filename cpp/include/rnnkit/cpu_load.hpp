// How many of this process's CPUs other processes keep busy, estimated from
// the kernel's CPU counters, so that the kernels start only as many threads
// as the machine gives them.
//
// A thread that must wait at a barrier for a thread without a core wastes
// its own time slice, and on a machine where another process is busy two
// threads run slower than one (benchmarks/NOTES.md, Threads). Over a window
// of kWindowSeconds, the time the CPUs in this process's affinity mask were
// busy (/proc/stat: user, nice, system, irq, softirq, steal), less this
// process's own CPU time, is what others used. Linux only; elsewhere the
// estimate is always 0.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>

#ifdef __linux__
#include <sched.h>
#include <unistd.h>
#endif

namespace rnnkit {
namespace detail {

constexpr double kWindowSeconds = 0.1;

struct CpuSample {
  double wall = 0;         // seconds, steady clock
  double busy = 0;         // CPU-seconds the mask's CPUs were busy, all processes
  double own = 0;          // CPU-seconds of this process
  int cpus = 0;            // CPUs in the affinity mask that /proc/stat lists
  bool valid = false;
};

inline double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

#ifdef __linux__
inline CpuSample take_cpu_sample() {
  CpuSample s;
  s.wall = steady_seconds();
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (sched_getaffinity(0, sizeof(mask), &mask) != 0) return s;
  timespec ts{};
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return s;
  s.own = double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  const long ticks = sysconf(_SC_CLK_TCK);
  std::FILE* f = std::fopen("/proc/stat", "r");
  if (!f || ticks <= 0) {
    if (f) std::fclose(f);
    return s;
  }
  char line[512];
  unsigned long long busy_ticks = 0;
  while (std::fgets(line, sizeof(line), f)) {
    int cpu = -1;
    unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    if (std::strncmp(line, "cpu", 3) != 0) break;  // the cpu lines come first
    if (std::sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &user, &nice, &system, &idle,
                    &iowait, &irq, &softirq, &steal) < 8)
      continue;  // the "cpu" total line, or a line that is not one CPU's
    if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &mask)) continue;
    busy_ticks += user + nice + system + irq + softirq + steal;
    ++s.cpus;
  }
  std::fclose(f);
  s.busy = double(busy_ticks) / double(ticks);
  s.valid = s.cpus > 0;
  return s;
}
#else
inline CpuSample take_cpu_sample() { return CpuSample{}; }
#endif

// Cores that other processes used on this process's CPUs over the last
// window, rounded to the nearest whole core; refreshed by whichever thread
// asks first after a window has passed (the others read the last value).
class NeighbourLoad {
 public:
  int busy_cores() {
    const double now = steady_seconds();
    if (now - last_wall_.load(std::memory_order_relaxed) >= kWindowSeconds && !sampling_.test_and_set()) {
      const CpuSample s = take_cpu_sample();
      if (s.valid && prev_.valid && s.cpus == prev_.cpus && s.wall > prev_.wall) {
        const double others = ((s.busy - prev_.busy) - (s.own - prev_.own)) / (s.wall - prev_.wall);
        busy_.store(std::clamp(int(std::lround(others)), 0, s.cpus), std::memory_order_relaxed);
        cpus_.store(s.cpus, std::memory_order_relaxed);
      }
      prev_ = s;
      last_wall_.store(s.wall, std::memory_order_relaxed);
      sampling_.clear();
    }
    return busy_.load(std::memory_order_relaxed);
  }

  // CPUs in the affinity mask at the last sample.
  int cpus() const { return cpus_.load(std::memory_order_relaxed); }

  static NeighbourLoad& instance() {
    static NeighbourLoad load;
    return load;
  }

 private:
  std::atomic_flag sampling_ = ATOMIC_FLAG_INIT;
  std::atomic<double> last_wall_{-1e300};
  std::atomic<int> busy_{0};
  std::atomic<int> cpus_{0};
  CpuSample prev_;  // written only by the thread holding sampling_
};

}  // namespace detail
}  // namespace rnnkit
