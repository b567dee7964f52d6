// The MPI layer in a 1-process job (its multi-process behaviour: ctest `mpi`,
// tests/mpi_test.sh): block sharding, payload packing, and collectives that return at once.
#include "vitq/dist.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace vitq::dist {
namespace {

TEST(Dist, ShardsAreContiguousBalancedAndInOrder) {
  for (int64_t total : {0, 1, 7, 8, 100, 401}) {
    for (int size : {1, 2, 3, 8, 64}) {
      int64_t next = 0, smallest = total, largest = 0;
      for (int r = 0; r < size; ++r) {
        Range s = ShardOf(total, r, size);
        EXPECT_EQ(s.begin, next) << total << " over " << size << ", rank " << r;
        next = s.end;
        smallest = std::min(smallest, s.size());
        largest = std::max(largest, s.size());
      }
      EXPECT_EQ(next, total);
      EXPECT_LE(largest - smallest, 1);
    }
  }
  // Hand-checked: 7 images over 3 ranks are 3, 2, 2.
  EXPECT_EQ(ShardOf(7, 0, 3).size(), 3);
  EXPECT_EQ(ShardOf(7, 1, 3).begin, 3);
  EXPECT_EQ(ShardOf(7, 2, 3).begin, 5);
}

TEST(Dist, WithoutMpirunThisIsAOneProcessJob) {
  EXPECT_EQ(Rank(), 0);
  EXPECT_EQ(Size(), 1);
  EXPECT_EQ(WorldSize(), 1);
  EXPECT_EQ(MyShard(10).begin, 0);
  EXPECT_EQ(MyShard(10).end, 10);
  EXPECT_EQ(AllGather("abc"), std::vector<std::string>{"abc"});
  EXPECT_EQ(AllGatherDoubles({1.5, -2.0}), (std::vector<double>{1.5, -2.0}));
  EXPECT_EQ(Max(3.25), 3.25);
  EXPECT_EQ(Sum(-7), -7);
  {
    Solo alone;
    EXPECT_EQ(Size(), 1);
    EXPECT_TRUE(IsRoot());
  }
  EXPECT_TRUE(Agree(Status::Ok()).ok());
  Status bad = Agree(Status::InvalidInput("image 'x.png': truncated"));
  EXPECT_EQ(bad.code(), StatusCode::kInvalidInput);
  EXPECT_EQ(bad.message(), "image 'x.png': truncated");
}

TEST(Dist, PayloadsRoundTripAndShortOnesAreRefused) {
  Writer w;
  w.Pod<int32_t>(-5);
  w.Str("images/a b.png");
  w.Vec(std::vector<double>{0.25, 1e300});
  w.Vec(std::vector<int>{});
  PutStatus(&w, Status::Usage("--calib-size 1 with 2 processes"));
  PutStatus(&w, Status::Ok());
  Reader r(w.bytes());
  EXPECT_EQ(r.Pod<int32_t>(), -5);
  EXPECT_EQ(r.Str(), "images/a b.png");
  EXPECT_EQ(r.Vec<double>(), (std::vector<double>{0.25, 1e300}));
  EXPECT_TRUE(r.Vec<int>().empty());
  Status s = GetStatus(&r);
  EXPECT_EQ(s.code(), StatusCode::kUsage);
  EXPECT_EQ(s.message(), "--calib-size 1 with 2 processes");
  EXPECT_TRUE(GetStatus(&r).ok());
  EXPECT_THROW(r.Pod<int32_t>(), std::length_error);  // nothing left
  std::string cut = w.bytes().substr(0, 10);
  Reader short_one(cut);
  short_one.Pod<int32_t>();
  EXPECT_THROW(short_one.Str(), std::length_error);  // a length beyond the payload
}

}  // namespace
}  // namespace vitq::dist
