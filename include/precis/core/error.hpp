// precis/core/error.hpp — the runtime tier of precis' three error tiers.
//
// Tier 1 (compile time): constrained signatures whose concept names are the message
//   (see docs/dtype-safety.md).
// Tier 2 (run time, host): exceptions derived from precis::error. Every message names the
//   op or tensor, the expected and the actual value, e.g.
//   "[load] tensor 'model.rotary_emb.inv_freq': stored dtype F64, declared f32".
// Tier 3 (device code): no exceptions; kernels return precis::status.
#pragma once

#include <sstream>    // std::ostringstream
#include <stdexcept>  // std::runtime_error
#include <string>     // std::string

namespace precis {

/// Root of every exception precis throws.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A tensor's element type is not the one the code declared (load-time dtype checks).
class dtype_error : public error {
 public:
  using error::error;
};

/// Extents disagree: matmul inner dimensions, a checkpoint tensor of the wrong shape.
class shape_error : public error {
 public:
  using error::error;
};

/// A file is malformed: safetensors / GGUF headers, JSON, offsets, sizes.
class format_error : public error {
 public:
  using error::error;
};

/// A configuration is unsupported or inconsistent (config.json, CLI options).
class config_error : public error {
 public:
  using error::error;
};

/// The operating system refused: a file cannot be opened, mapped or written.
class io_error : public error {
 public:
  using error::error;
};

/// An index or token id is outside its valid range.
class range_error : public error {
 public:
  using error::error;
};

/// A computation produced a non-finite value where only finite ones are meaningful.
class numeric_error : public error {
 public:
  using error::error;
};

/// Memory (host or device) ran out: the message says what needed how many bytes.
class resource_error : public error {
 public:
  using error::error;
};

/// Status codes returned by device code, where exceptions do not exist.
enum class status : int {
  ok = 0,
  invalid_argument = 1,
  out_of_range = 2,
  unsupported = 3,
  device_error = 4,
};

namespace detail {
template <class... Parts>
[[nodiscard]] std::string concat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}
}  // namespace detail

/// Throws `ErrorT` with the concatenated message parts (precis' one runtime-check mechanism).
template <class ErrorT, class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  throw ErrorT(detail::concat(parts...));
}

}  // namespace precis

/// PRECIS_CHECK(cond, precis::shape_error, "[matmul] expected K=", k, ", got ", k2);
#define PRECIS_CHECK(cond, ErrorT, ...)      \
  do {                                       \
    if (!(cond)) ::precis::fail<ErrorT>(__VA_ARGS__); \
  } while (false)
