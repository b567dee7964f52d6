// The processes of an MPI job (core stage; issue 15): which rank this process is, which images
// it owns, and the few collectives vitq needs.
//
// Every reduction vitq does across processes is a gather: each rank contributes its images'
// per-image figures, every rank receives all of them in image order and reduces them in that
// order itself. The sums therefore do not depend on the number of processes, so the figures and
// files of `mpirun -np N` equal a 1-process run's, bit for bit.
//
// Without mpirun (or in a build without MPI) this is a 1-process job: Rank() 0, Size() 1, and
// every collective returns at once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vitq/status.h"

namespace vitq::dist {

// Starts MPI when the process was launched by an MPI launcher (mpirun sets OMPI_COMM_WORLD_SIZE,
// PMI_SIZE or PMIX_RANK); otherwise does nothing. Called once, first thing in main.
Status Init(int* argc, char*** argv);
// Ends MPI (if started). Called once at the end of main, by every rank.
void Finalize();
// Ends the whole job at once with `code` (MPI_Abort): for an error only this rank has seen,
// where the other ranks may already wait in a collective.
[[noreturn]] void Abort(int code);

bool BuiltWithMpi();
int Rank();
int Size();
// The job's process count, also inside a Solo scope.
int WorldSize();
inline bool IsRoot() { return Rank() == 0; }

// The contiguous block of [0, total) that `rank` of `size` processes owns: ranks in order, the
// first total % size ranks one item more. The blocks in rank order make [0, total) in order.
struct Range {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};
Range ShardOf(int64_t total, int rank, int size);
inline Range MyShard(int64_t total) { return ShardOf(total, Rank(), Size()); }

// Every rank's bytes, index = rank. While it waits for slower ranks this process sleeps in short
// steps rather than spinning, so a waiting rank leaves its core to the ranks still computing.
std::vector<std::string> AllGather(const std::string& mine);
// The ranks' vectors concatenated in rank order.
std::vector<double> AllGatherDoubles(const std::vector<double>& mine);
double Max(double mine);
int64_t Sum(int64_t mine);

// The status of the lowest rank that failed (its message, kind and exit code) on every rank, or
// Ok when none did. Every rank must call it at the same point.
Status Agree(const Status& mine);
// True once Agree has returned an error: every rank knows it, so only rank 0 prints it and all
// exit together (main uses this to choose between a joint exit and Abort).
bool FailedTogether();

// Within a Solo scope this process acts as a 1-process job (Rank() 0, Size() 1): the root runs
// work that is not distributed on its own while the other ranks wait in Agree.
class Solo {
 public:
  Solo();
  ~Solo();
  Solo(const Solo&) = delete;
  Solo& operator=(const Solo&) = delete;
};

// Bytes this process has received through the collectives so far (communication volume).
uint64_t BytesReceived();
// Collectives this process has taken part in so far.
uint64_t Collectives();

// Byte packing for AllGather payloads (native endianness: all ranks run the same binary).
class Writer {
 public:
  void Raw(const void* p, size_t n) { s_.append(static_cast<const char*>(p), n); }
  template <class T>
  void Pod(const T& v) {
    Raw(&v, sizeof v);
  }
  void Str(const std::string& v) {
    Pod<uint64_t>(v.size());
    Raw(v.data(), v.size());
  }
  template <class T>
  void Vec(const std::vector<T>& v) {
    Pod<uint64_t>(v.size());
    Raw(v.data(), v.size() * sizeof(T));
  }
  std::string& bytes() { return s_; }

 private:
  std::string s_;
};
class Reader {
 public:
  explicit Reader(const std::string& s) : s_(s) {}
  void Raw(void* p, size_t n);
  template <class T>
  T Pod() {
    T v;
    Raw(&v, sizeof v);
    return v;
  }
  std::string Str() {
    std::string v(Count(1), '\0');
    Raw(v.data(), v.size());
    return v;
  }
  template <class T>
  std::vector<T> Vec() {
    std::vector<T> v(Count(sizeof(T)));
    Raw(v.data(), v.size() * sizeof(T));
    return v;
  }
  // A length prefix, refused (std::length_error) when its items (each at least `item_bytes`)
  // would not fit in what is left.
  size_t Count(size_t item_bytes);

 private:
  const std::string& s_;
  size_t pos_ = 0;
};

// A Status through a Writer/Reader (kind and message).
void PutStatus(Writer* w, const Status& s);
Status GetStatus(Reader* r);

}  // namespace vitq::dist
