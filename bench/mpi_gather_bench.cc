// The cost of vitq's one collective (dist::AllGather) by payload size, run under mpirun:
// `mpirun -np 2 build/bench/mpi_gather_bench` prints one JSON line per size (rank 0):
// microseconds per call (median of 9 timed runs of `reps` calls each) and bytes received per call.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "vitq/dist.h"

int main(int argc, char** argv) {
  if (vitq::Status st = vitq::dist::Init(&argc, &argv); !st.ok()) {
    std::fprintf(stderr, "%s\n", st.message().c_str());
    return 1;
  }
  for (size_t bytes : {8, 800, 8000, 80000, 800000}) {
    const std::string mine(bytes, 'x');
    const int reps = bytes >= 80000 ? 50 : 500;
    std::vector<double> us;
    for (int run = 0; run < 9; ++run) {
      const uint64_t before = vitq::dist::BytesReceived();
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < reps; ++i) vitq::dist::AllGather(mine);
      us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                       .count() /
                   reps);
      if (run == 8 && vitq::dist::IsRoot()) {
        std::sort(us.begin(), us.end());
        std::printf(
            "{\"processes\": %d, \"bytes_per_rank\": %zu, \"bytes_received\": %llu, "
            "\"us_per_call\": %.2f}\n",
            vitq::dist::Size(), bytes,
            static_cast<unsigned long long>((vitq::dist::BytesReceived() - before) / reps), us[4]);
      }
    }
  }
  vitq::dist::Finalize();
  return 0;
}
