// tests/support/any_tensor_bytes.hpp — hand-made AnyTensors for tests: bytes with a dtype code the
// test chooses (quantized blocks it built, deliberately wrong dtypes, misaligned or short buffers
// for the validation tests). Library code cannot do this: AnyTensor's constructor is private to
// the file readers (io/any_tensor.hpp), so nothing outside a reader relabels bytes.
#pragma once

#include <cstddef>  // std::byte
#include <memory>   // std::shared_ptr
#include <span>     // std::span
#include <string>   // std::string
#include <utility>  // std::move
#include <vector>   // std::vector

#include <precis/io/any_tensor.hpp>  // precis::io::AnyTensor

namespace precis::io::detail {
struct AnyTensorBytes {
  [[nodiscard]] static AnyTensor make(std::string name, dtype_code dtype, std::vector<index_t> shape,
                                      std::span<const std::byte> bytes, std::string source,
                                      std::shared_ptr<const void> owner = {}) {
    return AnyTensor(std::move(name), dtype, std::move(shape), bytes, std::move(source), std::move(owner));
  }
};
}  // namespace precis::io::detail
