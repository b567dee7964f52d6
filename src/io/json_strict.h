// Strict JSON getters for the config parsers (io stage, internal): a value of the wrong type is
// an error naming the key and the file, never a coercion (192.5 is not an integer, true is not a
// number, a string is not an object).
#pragma once

#include <climits>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vitq/status.h"

namespace vitq::json_strict {
using nlohmann::json;

inline bool Convert(const json& v, int* out, const char** expected) {
  *expected = "an integer";
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(INT_MAX)) return false;
  } else if (v.is_number_integer()) {
    if (v.get<int64_t>() < INT_MIN || v.get<int64_t>() > INT_MAX) return false;
  } else {
    return false;
  }
  *out = v.get<int>();
  return true;
}
inline bool Convert(const json& v, bool* out, const char** expected) {
  *expected = "true or false";
  if (!v.is_boolean()) return false;
  *out = v.get<bool>();
  return true;
}
inline bool Convert(const json& v, std::string* out, const char** expected) {
  *expected = "a string";
  if (!v.is_string()) return false;
  *out = v.get<std::string>();
  return true;
}
inline bool Convert(const json& v, double* out, const char** expected) {
  *expected = "a finite number";
  if (!v.is_number() || !std::isfinite(v.get<double>())) return false;
  *out = v.get<double>();
  return true;
}
inline bool Convert(const json& v, float* out, const char** expected) {
  double d;
  if (!Convert(v, &d, expected) || !std::isfinite(static_cast<float>(d))) return false;
  *out = static_cast<float>(d);
  return true;
}
template <typename T>
inline bool Convert(const json& v, std::vector<T>* out, const char** expected) {
  const char* element = nullptr;
  T probe{};
  Convert(json(), &probe, &element);
  static thread_local std::string text;
  text = std::string("an array of ") + element + " values";
  *expected = text.c_str();
  if (!v.is_array()) return false;
  std::vector<T> values;
  for (const auto& e : v) {
    T x{};
    const char* ignored;
    if (!Convert(e, &x, &ignored)) return false;
    values.push_back(std::move(x));
  }
  *out = std::move(values);
  return true;
}

// Reads j[key] into *out when present and not null; `file` and `prefix` name it in errors.
template <typename T>
Status Get(const json& j, const std::string& key, const std::string& file, T* out,
           const std::string& prefix = "") {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return Status::Ok();
  const char* expected = "";
  if (!Convert(j[key], out, &expected)) {
    return Status::InvalidInput("config '" + file + "': key '" + prefix + key + "' is " +
                                j[key].dump(-1, ' ', false, json::error_handler_t::replace) +
                                ", expected " + expected);
  }
  return Status::Ok();
}

// Like Get, but the key must be present.
template <typename T>
Status Need(const json& j, const std::string& key, const std::string& file, T* out,
            const std::string& prefix = "") {
  if (!j.is_object() || !j.contains(key)) {
    return Status::InvalidInput("config '" + file + "': key '" + prefix + key + "' is missing");
  }
  if (j[key].is_null()) {
    return Status::InvalidInput("config '" + file + "': key '" + prefix + key + "' is null");
  }
  return Get(j, key, file, out, prefix);
}

inline Status ParseMeanStd(const json& j, const std::string& key, const std::string& file,
                           float* out) {
  if (!j.contains(key) || j[key].is_null()) return Status::Ok();
  const json& v = j[key];
  const char* expected;
  float one;
  if (Convert(v, &one, &expected)) {
    out[0] = out[1] = out[2] = one;
    return Status::Ok();
  }
  std::vector<float> three;
  if (!Convert(v, &three, &expected) || three.size() != 3) {
    return Status::InvalidInput("config '" + file + "': '" + key + "' is " +
                                v.dump(-1, ' ', false, json::error_handler_t::replace) +
                                ", expected 3 finite numbers");
  }
  for (int i = 0; i < 3; ++i) out[i] = three[i];
  return Status::Ok();
}

}  // namespace vitq::json_strict
