// A nesting cap for JSON read from files (core, header-only): nlohmann's parser is iterative,
// but dump() and any recursive walk are not, so a document nested thousands of levels deep could
// overflow the stack after parsing. Pass JsonDepthGuard<json>() as the parser callback.
#pragma once

#include <stdexcept>
#include <string>

namespace vitq {

constexpr int kMaxJsonDepth = 64;

// Parser callback for nlohmann::json::parse: throws std::invalid_argument when the document
// nests deeper than kMaxJsonDepth (the caller reports it as bad input).
template <typename Json>
typename Json::parser_callback_t JsonDepthGuard() {
  return [](int depth, typename Json::parse_event_t, Json&) {
    if (depth > kMaxJsonDepth) {
      throw std::invalid_argument("JSON nested deeper than " + std::to_string(kMaxJsonDepth) +
                                  " levels");
    }
    return true;
  };
}

}  // namespace vitq
