// libFuzzer harness: the metadata of a .vitq file: the model description (vitq.model) and the
// plan (vitq.plan), the input split at its first NUL byte, parsed as LoadQuantizedFile does.
#include <cstdint>
#include <cstring>
#include <string>

#include "vitq/model_config.h"
#include "vitq/plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* text = reinterpret_cast<const char*>(data);
  const char* nul = static_cast<const char*>(std::memchr(text, 0, size));
  const std::string model(text, nul != nullptr ? nul : text + size);
  const std::string plan = nul != nullptr ? std::string(nul + 1, text + size) : std::string();
  auto spec = vitq::ModelSpecFromJson(model, "fuzz.vitq");
  if (spec.ok()) (void)vitq::ModelSpecToJson(spec.value());
  auto p = vitq::PlanFromJson(plan, "fuzz.vitq");
  if (p.ok()) (void)vitq::PlanToJson(p.value());
  return 0;
}
