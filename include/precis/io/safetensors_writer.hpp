// precis/io/safetensors_writer.hpp — writes safetensors files from typed tensors.
//
// The save side of the load-time checks (dtype-bugs E28: `save_pretrained` silently downcast
// 417 f32 tensors — attention sinks, the MoE gate bias — to bf16, "no warning, no error").
// A tensor is written in its own dtype (`add`), or widened exactly (`add_as<Stored>`); saving
// in a narrower dtype does not compile for a static target, and is a dtype_error for a target
// chosen at run time (`add_as(name, dtype_code, t)`, the shape of a "save as torch_dtype" flag).
//
// Layout written (model-semantics.md §1e): the u64 header length N, the JSON header padded
// with spaces so that 8 + N is a multiple of 8, then the tensors back to back in the order they
// were added, tiling the buffer exactly. `__metadata__` (string → string) comes first when set.
//
// `add_raw` writes arbitrary bytes under an arbitrary dtype and shape, unchecked: it exists so
// tests can produce malformed checkpoints that the reader must reject.
#pragma once

#include <cerrno>       // errno
#include <concepts>     // std::same_as
#include <cstddef>      // std::byte, std::size_t
#include <cstdint>      // std::uint64_t
#include <cstdio>       // std::fopen, std::fwrite, std::fclose
#include <cstring>      // std::memcpy, std::strerror
#include <filesystem>   // std::filesystem::path
#include <set>          // std::set
#include <span>         // std::span
#include <string>       // std::string
#include <utility>      // std::move, std::pair
#include <vector>       // std::vector

#include <nlohmann/json.hpp>  // nlohmann::ordered_json (header in insertion order)

#include <precis/core/cast.hpp>             // precis::cast
#include <precis/core/config.hpp>           // precis::index_t
#include <precis/core/device.hpp>           // precis::host
#include <precis/core/dtype.hpp>            // ElementDtype, dtype_traits, dtype_code
#include <precis/core/error.hpp>            // dtype_error, format_error, io_error
#include <precis/core/tensor_view.hpp>      // TensorView, TensorLike, for_each_offset
#include <precis/io/conversion.hpp>         // exact_float_widening, detail::widens_exactly
#include <precis/io/safetensors_dtype.hpp>  // safetensors_name, stored_dtype_name

namespace precis::io {

/// Saving `D` as `Stored` keeps every value: the same dtype, or an exact widening.
template <class D, class Stored>
concept save_keeps_values = std::same_as<D, Stored> || exact_float_widening<D, Stored>;

/// A host tensor or view the writer can read.
template <class X>
concept WritableSource = TensorLike<X> && std::same_as<device_of<X>, host>;

class SafetensorsWriter {
 public:
  /// Writes `x` in its own dtype.
  template <WritableSource X>
  void add(std::string name, const X& x) {
    using D = dtype_of<X>;
    constexpr std::size_t R = rank_of<X>;
    const TensorView<const D, R> v = x;
    std::vector<std::byte> bytes(static_cast<std::size_t>(v.numel()) * sizeof(storage_t<D>));
    for_each_offset(v, [&](index_t flat, index_t off) {
      std::memcpy(bytes.data() + static_cast<std::size_t>(flat) * sizeof(storage_t<D>), v.data() + off,
                  sizeof(storage_t<D>));
    });
    push(std::move(name), dtype_traits<D>::code, std::vector<index_t>(v.extents().begin(), v.extents().end()),
         std::move(bytes));
  }

  /// Writes `x` as `Stored`, which must keep every value (same dtype or exact widening).
  /// Narrowing on save does not compile: `add_as<bf16>(name, f32_tensor)` is E28.
  template <ElementDtype Stored, WritableSource X>
    requires save_keeps_values<dtype_of<X>, Stored>
  void add_as(std::string name, const X& x) {
    if constexpr (std::same_as<dtype_of<X>, Stored>) add(std::move(name), x);
    else add(std::move(name), cast<Stored>(x));
  }

  /// Writes `x` as the run-time dtype `stored` (e.g. from a "save dtype" option). The same rule
  /// as above, checked at run time: a narrowing target is a dtype_error naming the tensor and
  /// both dtypes (dtype-bugs E28, §3 load-time test 9).
  template <WritableSource X>
  void add_as(std::string name, dtype_code stored, const X& x) {
    using D = dtype_of<X>;
    constexpr dtype_code declared = dtype_traits<D>::code;
    if (stored == declared) return add(std::move(name), x);
    if (!detail::widens_exactly(declared, stored))
      fail<dtype_error>("[save] tensor '", name, "': declared ", dtype_name<D>, ", requested stored dtype ",
                        stored_dtype_name(stored),
                        ": saving would narrow the values and is refused (dtype-bugs E28: silent downcast on save)");
    if constexpr (FloatDtype<D>) {
      bool done = false;
      const auto widen_to = [&]<class To>(To) {
        if constexpr (exact_float_widening<D, To>)
          if (!done && stored == dtype_traits<To>::code) {
            add(name, cast<To>(x));
            done = true;
          }
      };
      widen_to(f16{}), widen_to(bf16{}), widen_to(f32{}), widen_to(f64{});
    }
  }

  /// Unchecked: `bytes` are written as they are under `dtype` and `shape` (test fixtures only).
  void add_raw(std::string name, dtype_code dtype, std::vector<index_t> shape, std::span<const std::byte> bytes) {
    push(std::move(name), dtype, std::move(shape), {bytes.begin(), bytes.end()});
  }

  /// Adds a `__metadata__` entry (string → string).
  void set_metadata(std::string key, std::string value) { metadata_.emplace_back(std::move(key), std::move(value)); }

  [[nodiscard]] std::size_t size() const noexcept { return tensors_.size(); }

  /// The complete file.
  [[nodiscard]] std::vector<std::byte> serialize() const {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata_.empty()) {
      nlohmann::ordered_json m = nlohmann::ordered_json::object();
      for (const auto& [k, v] : metadata_) m[k] = v;
      header["__metadata__"] = std::move(m);
    }
    std::uint64_t offset = 0;
    for (const auto& t : tensors_) {
      const auto dtype = safetensors_name(t.dtype);
      if (!dtype)
        fail<dtype_error>("[SafetensorsWriter] tensor '", t.name, "': dtype ", to_string(t.dtype),
                          " has no safetensors spelling");
      nlohmann::ordered_json e = nlohmann::ordered_json::object();
      e["dtype"] = std::string(*dtype);
      e["shape"] = t.shape;
      e["data_offsets"] = {offset, offset + t.bytes.size()};
      header[t.name] = std::move(e);
      offset += t.bytes.size();
    }
    std::string text;
    try {
      text = header.dump();
    } catch (const nlohmann::json::exception& ex) {
      fail<format_error>("[SafetensorsWriter] cannot encode the header: ", ex.what());
    }
    text.append((8 - (8 + text.size()) % 8) % 8, ' ');  // 8 + N is a multiple of 8

    std::vector<std::byte> out(8 + text.size() + offset);
    const std::uint64_t n = text.size();
    for (std::size_t i = 0; i < 8; ++i) out[i] = static_cast<std::byte>((n >> (8 * i)) & 0xffu);
    std::memcpy(out.data() + 8, text.data(), text.size());
    std::size_t pos = 8 + text.size();
    for (const auto& t : tensors_) {
      if (!t.bytes.empty()) std::memcpy(out.data() + pos, t.bytes.data(), t.bytes.size());
      pos += t.bytes.size();
    }
    return out;
  }

  /// Writes the file; io_error naming the path and strerror on failure.
  void write(const std::filesystem::path& path) const {
    const std::vector<std::byte> bytes = serialize();
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) fail<io_error>("[SafetensorsWriter] cannot create '", path.string(), "': ", std::strerror(errno));
    const std::size_t written = bytes.empty() ? 0 : std::fwrite(bytes.data(), 1, bytes.size(), f);
    const int err = written == bytes.size() ? 0 : errno;
    if (std::fclose(f) != 0 || written != bytes.size())
      fail<io_error>("[SafetensorsWriter] cannot write '", path.string(), "': ", std::strerror(err ? err : errno));
  }

 private:
  struct Pending {
    std::string name;
    dtype_code dtype;
    std::vector<index_t> shape;
    std::vector<std::byte> bytes;
  };

  void push(std::string name, dtype_code dtype, std::vector<index_t> shape, std::vector<std::byte> bytes) {
    if (name == "__metadata__")
      fail<format_error>("[SafetensorsWriter] '__metadata__' is reserved and cannot name a tensor");
    if (!names_.insert(name).second) fail<format_error>("[SafetensorsWriter] tensor '", name, "' added twice");
    tensors_.push_back({std::move(name), dtype, std::move(shape), std::move(bytes)});
  }

  std::vector<Pending> tensors_;
  std::set<std::string> names_;
  std::vector<std::pair<std::string, std::string>> metadata_;
};

}  // namespace precis::io
