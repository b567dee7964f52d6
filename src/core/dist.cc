// The processes of an MPI job (core stage; vitq/dist.h). Built with Open MPI when CMake finds it
// (VITQ_WITH_MPI); otherwise, and whenever no MPI launcher started the process, a 1-process job.
#include "vitq/dist.h"

#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#ifdef VITQ_WITH_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only (Open MPI's C++ bindings need libmpi_cxx)
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace vitq::dist {
namespace {

bool g_started = false;  // MPI_Init was called
int g_rank = 0, g_size = 1;
int g_solo = 0;  // nesting depth of Solo scopes
bool g_failed_together = false;
uint64_t g_bytes = 0, g_collectives = 0;

// VITQ_NO_MPI=1 makes a process a 1-process job even in an MPI launcher's environment (a vitq
// started by a program that itself runs under mpirun inherits its variables).
bool LaunchedByMpi() {
  const char* off = std::getenv("VITQ_NO_MPI");
  if (off != nullptr && *off != '\0' && std::strcmp(off, "0") != 0) return false;
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    if (std::getenv(v) != nullptr) return true;
  }
  return false;
}

#ifdef VITQ_WITH_MPI
// Waits for a non-blocking collective: tests in a row for 200 µs (a collective whose ranks are
// all ready completes in microseconds, and a large one needs the tests to make progress), then
// tests with 20 µs sleeps between, so a rank waiting for a slower one does not take the core that
// rank's threads need (Open MPI's blocking calls spin).
void WaitFor(MPI_Request* req) {
  int done = 0;
  const auto start = std::chrono::steady_clock::now();
  bool spinning = true;
  for (int tests = 0;; ++tests) {
    MPI_Test(req, &done, MPI_STATUS_IGNORE);
    if (done) return;
    if (spinning && (tests & 63) == 63)
      spinning = std::chrono::steady_clock::now() - start < std::chrono::microseconds(200);
    if (!spinning) {
      timespec ts{0, 20 * 1000};
      nanosleep(&ts, nullptr);
    }
  }
}
#endif

}  // namespace

Status Init(int* argc, char*** argv) {
#ifdef VITQ_WITH_MPI
  if (!LaunchedByMpi()) return Status::Ok();
  int provided = 0;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
    return Status::Internal("MPI_Init_thread failed (launched by mpirun?)");
  // Only the main thread calls MPI (OpenMP threads never do): FUNNELED is needed; an MPI that
  // offers less is refused rather than trusted.
  if (provided < MPI_THREAD_FUNNELED) {
    MPI_Finalize();
    return Status::Internal("this MPI library offers no MPI_THREAD_FUNNELED support");
  }
  g_started = true;
  // Large blocks from the heap rather than fresh mmaps: every gather allocates its result, and
  // fresh pages (faulted in, and unmapped under Open MPI's memory hooks) made an 800 KB gather
  // take 5-10 ms instead of 0.2 ms (bench/mpi_gather_bench). MPI jobs only.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  return Status::Ok();
#else
  (void)argc;
  (void)argv;
  auto above_one = [](const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr && std::atoi(v) > 1;
  };
  if (LaunchedByMpi() && (above_one("OMPI_COMM_WORLD_SIZE") || above_one("PMI_SIZE"))) {
    return Status::Usage(
        "launched by mpirun with several processes, but this vitq was built without MPI "
        "(install libopenmpi-dev and rebuild: bash scripts/setup.sh && bash scripts/build.sh)");
  }
  return Status::Ok();
#endif
}

void Finalize() {
#ifdef VITQ_WITH_MPI
  if (g_started) MPI_Finalize();
  g_started = false;
#endif
}

void Abort(int code) {
#ifdef VITQ_WITH_MPI
  if (g_started && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

bool BuiltWithMpi() {
#ifdef VITQ_WITH_MPI
  return true;
#else
  return false;
#endif
}

int Rank() { return g_solo > 0 ? 0 : g_rank; }
int Size() { return g_solo > 0 ? 1 : g_size; }
int WorldSize() { return g_size; }

Range ShardOf(int64_t total, int rank, int size) {
  const int64_t p = std::max(1, size), base = total / p, extra = total % p;
  Range r;
  r.begin = rank * base + std::min<int64_t>(rank, extra);
  r.end = r.begin + base + (rank < extra ? 1 : 0);
  return r;
}

std::vector<std::string> AllGather(const std::string& mine) {
  if (Size() == 1) return {mine};
#ifdef VITQ_WITH_MPI
  const int p = Size();
  int64_t n = static_cast<int64_t>(mine.size());
  std::vector<int64_t> sizes(p);
  MPI_Request req;
  MPI_Iallgather(&n, 1, MPI_INT64_T, sizes.data(), 1, MPI_INT64_T, MPI_COMM_WORLD, &req);
  WaitFor(&req);
  g_bytes += sizeof(int64_t) * p;
  // MPI counts and displacements are ints: payloads go in rounds of at most `cap` bytes from
  // each rank, so one round moves under 2 GiB (a plan of a large model can exceed that).
  // VITQ_DIST_ROUND_BYTES lowers the cap (ctest mpi uses it to run many rounds).
  static const int64_t round_bytes = [] {
    const char* v = std::getenv("VITQ_DIST_ROUND_BYTES");
    const long long b = v != nullptr ? std::atoll(v) : 0;
    return b > 0 ? static_cast<int64_t>(b) : int64_t{1} << 30;
  }();
  const int64_t cap = std::min<int64_t>(round_bytes, ((int64_t{1} << 31) - 1) / p);
  int64_t longest = 0;
  for (int64_t v : sizes) longest = std::max(longest, v);
  const int64_t rounds = std::max<int64_t>(1, (longest + cap - 1) / cap);
  std::vector<std::string> out(p);
  for (int i = 0; i < p; ++i) out[i].reserve(static_cast<size_t>(sizes[i]));
  // One receive buffer kept for the process when rounds are small (see the mallopt in Init);
  // a larger one lives for this call only.
  static std::string kept;
  std::string big;
  std::vector<int> counts(p), displs(p);
  for (int64_t round = 0; round < rounds; ++round) {
    const int64_t at = round * cap;
    int64_t total = 0;
    for (int i = 0; i < p; ++i) {
      counts[i] = static_cast<int>(std::clamp<int64_t>(sizes[i] - at, 0, cap));
      displs[i] = static_cast<int>(total);
      total += counts[i];
    }
    std::string& buf = total <= (int64_t{64} << 20) ? kept : big;
    if (buf.size() < static_cast<size_t>(total)) buf.resize(static_cast<size_t>(total));
    const int mine_count = counts[Rank()];
    MPI_Iallgatherv(mine.data() + std::min<int64_t>(at, n), mine_count, MPI_BYTE, buf.data(),
                    counts.data(), displs.data(), MPI_BYTE, MPI_COMM_WORLD, &req);
    WaitFor(&req);
    for (int i = 0; i < p; ++i) out[i].append(buf, static_cast<size_t>(displs[i]), counts[i]);
    g_bytes += static_cast<uint64_t>(total);
  }
  g_collectives += 1;
  return out;
#else
  return {mine};
#endif
}

std::vector<double> AllGatherDoubles(const std::vector<double>& mine) {
  if (Size() == 1) return mine;
  std::string bytes(reinterpret_cast<const char*>(mine.data()), mine.size() * sizeof(double));
  std::vector<double> out;
  for (const std::string& s : AllGather(bytes)) {
    const size_t n = s.size() / sizeof(double);
    const size_t at = out.size();
    out.resize(at + n);
    std::memcpy(out.data() + at, s.data(), n * sizeof(double));
  }
  return out;
}

double Max(double mine) {
  if (Size() == 1) return mine;
  double m = mine;
  for (double v : AllGatherDoubles({mine})) m = std::max(m, v);
  return m;
}

int64_t Sum(int64_t mine) {
  if (Size() == 1) return mine;
  std::string bytes(reinterpret_cast<const char*>(&mine), sizeof mine);
  int64_t total = 0;
  for (const std::string& s : AllGather(bytes)) {
    int64_t v;
    std::memcpy(&v, s.data(), sizeof v);
    total += v;
  }
  return total;
}

void Reader::Raw(void* p, size_t n) {
  if (n == 0) return;  // an empty vector's data() may be null
  if (n > s_.size() - pos_) throw std::length_error("dist::Reader: payload shorter than expected");
  std::memcpy(p, s_.data() + pos_, n);
  pos_ += n;
}

size_t Reader::Count(size_t item_bytes) {
  const auto n = Pod<uint64_t>();
  if (n > (s_.size() - pos_) / std::max<size_t>(1, item_bytes))
    throw std::length_error("dist::Reader: a length beyond the payload");
  return static_cast<size_t>(n);
}

void PutStatus(Writer* w, const Status& s) {
  w->Pod<int32_t>(static_cast<int32_t>(s.code()));
  w->Str(s.message());
}

Status GetStatus(Reader* r) {
  const auto code = static_cast<StatusCode>(r->Pod<int32_t>());
  std::string message = r->Str();
  switch (code) {
    case StatusCode::kOk:
      return Status::Ok();
    case StatusCode::kUsage:
      return Status::Usage(std::move(message));
    case StatusCode::kInvalidInput:
      return Status::InvalidInput(std::move(message));
    default:
      return Status::Internal(std::move(message));
  }
}

Status Agree(const Status& mine) {
  if (Size() == 1) return mine;
  Writer w;
  PutStatus(&w, mine);
  for (const std::string& s : AllGather(w.bytes())) {
    Reader r(s);
    Status st = GetStatus(&r);
    if (!st.ok()) {
      g_failed_together = true;
      return st;
    }
  }
  return Status::Ok();
}

bool FailedTogether() { return g_failed_together; }

Solo::Solo() { ++g_solo; }
Solo::~Solo() { --g_solo; }

uint64_t BytesReceived() { return g_bytes; }
uint64_t Collectives() { return g_collectives; }

}  // namespace vitq::dist
