// The comparison grid of `vitq compare`: parsing (cells, order, variants, errors); RunCompare
// itself runs end to end in tests/cli_test.cc (CliQuantize.Compare*).
#include "vitq/compare.h"

#include <gtest/gtest.h>

namespace vitq {
namespace {

TEST(CompareGrid, UniformCellsFirstWithTheirVariants) {
  QuantizeOptions base;
  base.calib_size = 16;
  base.seed = 7;
  auto grid =
      ParseCompareGrid("minmax,liu2021+no-ranking+coarse", "8,6mp,4", "paper,scale-free", base);
  ASSERT_TRUE(grid.ok()) << grid.status().message();
  // 2 methods x (8, 4) uniform, then 2 methods x 6mp x 2 criteria.
  ASSERT_EQ(grid->size(), 8u);
  const char* labels[] = {"8", "8", "4", "4", "6mp", "6mp-sf", "6mp", "6mp-sf"};
  for (size_t i = 0; i < grid->size(); ++i) {
    const CompareCell& cell = (*grid)[i];
    EXPECT_EQ(cell.BitsLabel(), labels[i]) << i;
    EXPECT_EQ(cell.q.calib_size, 16);
    EXPECT_EQ(cell.q.seed, 7u);
    EXPECT_EQ(cell.q.wbits, cell.q.abits);
    if (cell.label == "liu2021+no-ranking+coarse") {
      EXPECT_EQ(cell.q.method, "liu2021");
      EXPECT_FALSE(cell.q.ranking);
      EXPECT_TRUE(cell.q.coarse_to_fine);
    } else {
      EXPECT_EQ(cell.q.method, "minmax");
      EXPECT_TRUE(cell.q.ranking);
    }
  }
  EXPECT_EQ((*grid)[0].label, "minmax");
  EXPECT_EQ((*grid)[1].label, "liu2021+no-ranking+coarse");
  EXPECT_TRUE((*grid)[4].mixed);
  EXPECT_EQ((*grid)[5].omega, OmegaCriterion::kScaleFree);
}

TEST(CompareGrid, VitqVariantsSwitchTheirComponentOff) {
  QuantizeOptions base;
  auto grid =
      ParseCompareGrid("vitq,vitq+image-abits+uniform-attn,vitq+tensor-log-attn,vitq+tensor-fc2",
                       "4", "paper", base);
  ASSERT_TRUE(grid.ok()) << grid.status().message();
  ASSERT_EQ(grid->size(), 4u);
  EXPECT_EQ((*grid)[0].q.fc2_input, "auto");
  EXPECT_EQ((*grid)[3].q.fc2_input, "tensor");
  EXPECT_EQ((*grid)[2].q.attn_quantizer, "log-sqrt2");
  EXPECT_EQ((*grid)[0].q.image_bits, 8);
  EXPECT_EQ((*grid)[0].q.attn_quantizer, "auto");
  EXPECT_EQ((*grid)[1].q.image_bits, 0);
  EXPECT_EQ((*grid)[1].q.attn_quantizer, "uniform");
  EXPECT_FALSE(ParseCompareGrid("liu2021+image-abits", "4", "paper", base).ok());
}

TEST(CompareGrid, ImpossibleEntriesAreNamed) {
  QuantizeOptions base;
  struct Case {
    const char *methods, *bits, *omega, *names;
  } cases[] = {
      {"minmax", "8x", "paper", "'8x'"},
      {"minmax+fast", "8", "paper", "+fast"},
      {"nosuch", "8", "paper", "nosuch"},
      {"minmax", "9", "paper", "9"},
      {"vitq", "6mp", "paper", "vitq"},
      {"liu2021+sequential", "6mp", "paper", "+sequential"},
      {"minmax", "6mp", "bogus", "bogus"},
      {"minmax+no-gptq", "8", "paper", "+no-gptq"},  // a vitq-only variant
  };
  for (const auto& c : cases) {
    auto grid = ParseCompareGrid(c.methods, c.bits, c.omega, base);
    ASSERT_FALSE(grid.ok()) << c.methods << " " << c.bits << " " << c.omega;
    EXPECT_NE(grid.status().message().find(c.names), std::string::npos) << grid.status().message();
  }
}

}  // namespace
}  // namespace vitq
