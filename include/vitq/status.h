// Status and Result<T>: how every stage reports errors caused by input (core stage).
// Library code never aborts or exits on bad input; it returns a Status whose message names the
// object (file, tensor, option), what was expected and what was found.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace vitq {

// The numeric values are the CLI exit codes (docs/ARCHITECTURE.md, "Errors").
enum class StatusCode { kOk = 0, kInternal = 1, kUsage = 2, kInvalidInput = 3 };

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidInput(std::string message) {
    return Status(StatusCode::kInvalidInput, std::move(message));
  }
  static Status Usage(std::string message) {
    return Status(StatusCode::kUsage, std::move(message));
  }
  static Status Internal(std::string message) {
    return Status(StatusCode::kInternal, std::move(message));
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  int exit_code() const { return static_cast<int>(code_); }
  const std::string& message() const { return message_; }
  // Prefixes context ("while loading X: ") to the message; keeps the code.
  Status WithContext(const std::string& context) const {
    return ok() ? *this : Status(code_, context + ": " + message_);
  }

 private:
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT(runtime/explicit)
  Result(Status status) : status_(std::move(status)) {}  // NOLINT(runtime/explicit)

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace vitq

#define VITQ_CONCAT_INNER_(a, b) a##b
#define VITQ_CONCAT_(a, b) VITQ_CONCAT_INNER_(a, b)

#define VITQ_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::vitq::Status vitq_status_ = (expr);        \
    if (!vitq_status_.ok()) return vitq_status_; \
  } while (0)

#define VITQ_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()

#define VITQ_ASSIGN_OR_RETURN(lhs, expr) \
  VITQ_ASSIGN_OR_RETURN_IMPL_(VITQ_CONCAT_(vitq_result_, __LINE__), lhs, expr)

// Always-on check of an internal invariant (not for input validation): throws std::logic_error,
// which the CLI reports as an internal error (exit 1).
#define VITQ_CHECK(cond, msg)                                                                \
  do {                                                                                       \
    if (!(cond)) ::vitq::internal::CheckFailed(#cond, __FILE__, __LINE__, std::string(msg)); \
  } while (0)

namespace vitq::internal {
[[noreturn]] void CheckFailed(const char* cond, const char* file, int line, const std::string& msg);
}  // namespace vitq::internal
