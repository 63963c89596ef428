// precis/io/gguf.hpp — a validating, zero-copy reader for GGUF (v3; v2 is byte-identical for
// little-endian files and accepted too).
//
// Format (model-semantics.md §1d; ggml docs/gguf.md, src/gguf.cpp), all little-endian:
//   u32 magic "GGUF" ; u32 version ; u64 tensor_count ; u64 metadata_kv_count
//   metadata_kv[]   gguf_string key (u64 len + bytes) ; u32 value_type ; value
//                   value: fixed-size scalar | gguf_string | array {u32 elem_type; u64 n; elems}
//   tensor_info[]   gguf_string name ; u32 n_dims ; u64 dims[n_dims] ; u32 ggml_type ; u64 offset
//   padding to ALIGNMENT (general.alignment, u32 power of two; default 32)
//   tensor data     each offset relative to the start of this section, a multiple of ALIGNMENT
// dims[0] is the innermost (contiguous) axis: a PyTorch [vocab, n_embd] embedding is stored as
// dims = [n_embd, vocab]. GgufFile reports shapes in PyTorch/row-major order (reversed), the
// order every other precis API uses.
//
// A model file is untrusted input. `parse` checks every rule below before anything is handed
// out, and every violation is a precis::format_error naming the file, the key or tensor, and the
// file offset:
//   magic; version (1 is rejected as ggml does; a byte-swapped version hints at a big-endian
//   file); the counts against the bytes left (no allocation sized by a hostile count); every
//   string length; value type ids; nested arrays (ggml's reader rejects them, so no producer
//   relies on them: rejected here too); bool bytes other than 0/1 (gguf.md: invalid); duplicate
//   keys; general.alignment present ⇒ u32, non-zero power of two; tensor names (≤ 64 bytes,
//   gguf.md), duplicates; n_dims ≤ 4 (GGML_MAX_DIMS); every dim non-zero and ≤ INT64_MAX, and
//   the element and byte counts free of overflow; unknown ggml type ids; the innermost dim a
//   multiple of the type's block size; offsets aligned; each tensor's data inside the file; no
//   two tensors overlapping. (ggml additionally insists that tensors are packed in info order;
//   precis accepts any non-overlapping aligned placement.)
//
// Tensors precis can represent (F32, F16, BF16, F64, I8..I64, Q8_0, Q4_0, Q4_1, MXFP4, Q5_0, Q5_1,
// IQ4_NL, Q2_K … Q6_K, IQ4_XS) come out of `tensor(name)` as an AnyTensor viewing the mapping;
// other types (the IQ1–IQ3 grids, TQ*, NVFP4, …) are listed
// by `tensor_infos()` with their true size, and `tensor(name)` refuses them by name. Typed access
// is then `load<D, R>(any)` (io/load.hpp) for element types and `quant_view<F, R>(any)`
// (io/quant_load.hpp) for block formats.
#pragma once

#include <algorithm>    // std::sort
#include <cstddef>      // std::byte, std::size_t
#include <cstdint>      // std::uint32_t, std::uint64_t
#include <filesystem>   // std::filesystem::path
#include <functional>   // std::less
#include <limits>       // std::numeric_limits
#include <map>          // std::map
#include <memory>       // std::shared_ptr, std::make_shared
#include <optional>     // std::optional
#include <span>         // std::span
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <type_traits>  // std::is_invocable_v
#include <utility>      // std::move
#include <vector>       // std::vector

#include <precis/core/config.hpp>         // precis::index_t
#include <precis/core/dtype.hpp>          // precis::dtype_code
#include <precis/core/error.hpp>          // precis::format_error, fail
#include <precis/io/any_tensor.hpp>       // precis::io::AnyTensor, shape_string
#include <precis/io/gguf_ggml_type.hpp>   // ggml_type_info, ggml_type_name, ggml_type_dtype
#include <precis/io/gguf_value.hpp>       // precis::io::GgufValue, gguf_value_type
#include <precis/io/mapped_file.hpp>      // precis::io::MappedFile

namespace precis::io {

class GgufFile {
 public:
  /// gguf.md: "GGUF_DEFAULT_ALIGNMENT 32".
  static constexpr std::uint64_t default_alignment = 32;
  /// GGML_MAX_DIMS (ggml.h).
  static constexpr std::uint32_t max_dims = 4;
  /// gguf.md: a tensor name is "a maximum of 64 bytes long".
  static constexpr std::uint64_t max_tensor_name_bytes = 64;

  /// One tensor-info entry, after validation.
  struct TensorInfo {
    std::string name;
    std::vector<index_t> shape;  // PyTorch/row-major order: REVERSED from GGUF dims (dims[0] is innermost)
    std::uint32_t ggml_type;     // raw id (F32=0, F16=1, Q4_0=2, Q4_1=3, Q8_0=8, BF16=30, MXFP4=39, ...)
    std::uint64_t offset;        // relative to the start of tensor data
    std::uint64_t nbytes;
  };

  /// Memory-maps and validates `path`. Tensors and metadata strings are views into the mapping,
  /// which lives as long as this object (or any copy of it, or any AnyTensor taken from it).
  [[nodiscard]] static GgufFile open(const std::filesystem::path& path) {
    auto mapping = std::make_shared<const MappedFile>(MappedFile::open(path));
    const std::span<const std::byte> bytes = mapping->bytes();
    GgufFile f = parse(bytes, path.string(), std::move(mapping));
    f.path_ = path;
    return f;
  }

  /// Validates a complete GGUF file held in `bytes`; `source_name` names it in messages. The
  /// bytes are not copied: they must outlive the result unless `owner` keeps them alive.
  [[nodiscard]] static GgufFile parse(std::span<const std::byte> bytes, std::string source_name,
                                      std::shared_ptr<const void> owner = {}) {
    GgufFile f;
    f.path_ = source_name;
    f.source_ = std::make_shared<const std::string>(std::move(source_name));
    f.owner_ = std::move(owner);
    f.parse_impl(bytes);
    return f;
  }

  /// Validates a file held in a buffer the result takes over.
  [[nodiscard]] static GgufFile parse(std::vector<std::byte>&& bytes, std::string source_name) {
    auto owned = std::make_shared<const std::vector<std::byte>>(std::move(bytes));
    const std::span<const std::byte> view(*owned);
    return parse(view, std::move(source_name), std::move(owned));
  }

  /// The file (or the name given to `parse`).
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] std::uint32_t version() const noexcept { return version_; }
  /// general.alignment, or 32 when absent.
  [[nodiscard]] std::uint64_t alignment() const noexcept { return alignment_; }
  /// File offset of the tensor data section (the end of the tensor infos, padded to alignment()).
  [[nodiscard]] std::uint64_t data_offset() const noexcept { return data_offset_; }

  // --- metadata --------------------------------------------------------------------------------

  [[nodiscard]] bool has(std::string_view key) const { return by_key_.find(key) != by_key_.end(); }

  /// The value stored under `key`; format_error naming the key and the file if absent.
  [[nodiscard]] const GgufValue& at(std::string_view key) const {
    const auto it = by_key_.find(key);
    if (it == by_key_.end()) fail<format_error>("[gguf] '", *source_, "': no metadata key '", key, "'");
    return values_[it->second];
  }

  /// The scalar under `key` as T (bool, any integer, float, double, std::string): format_error if
  /// absent or of another kind, range_error if an integer does not fit T (gguf_value.hpp).
  template <gguf_readable T>
  [[nodiscard]] T get(std::string_view key) const {
    return at(key).template get<T>();
  }

  /// As get<T>, but nullopt when the key is absent (a present key of the wrong kind still throws).
  template <gguf_readable T>
  [[nodiscard]] std::optional<T> find(std::string_view key) const {
    const auto it = by_key_.find(key);
    if (it == by_key_.end()) return std::nullopt;
    return values_[it->second].template get<T>();
  }

  /// Every element of the array under `key` as T (conversions checked like get<T>).
  template <gguf_readable T>
  [[nodiscard]] std::vector<T> get_array(std::string_view key) const {
    return at(key).template get_array<T>();
  }

  /// Metadata keys in file order.
  [[nodiscard]] std::vector<std::string> keys() const {
    std::vector<std::string> r;
    r.reserve(values_.size());
    for (const auto& v : values_) r.push_back(v.key());
    return r;
  }
  /// Every metadata value, in file order.
  [[nodiscard]] const std::vector<GgufValue>& metadata() const noexcept { return values_; }

  /// general.architecture ("llama"), which gguf.md requires of every model file.
  [[nodiscard]] std::string architecture() const {
    if (!has("general.architecture"))
      fail<format_error>("[gguf] '", *source_, "': no 'general.architecture' key (gguf.md requires it)");
    return get<std::string>("general.architecture");
  }

  // --- tensors ---------------------------------------------------------------------------------

  /// Every tensor-info entry, in file order.
  [[nodiscard]] const std::vector<TensorInfo>& tensor_infos() const noexcept { return infos_; }
  [[nodiscard]] bool contains(std::string_view name) const { return by_name_.find(name) != by_name_.end(); }
  /// The info of tensor `name`, or nullptr.
  [[nodiscard]] const TensorInfo* find_tensor(std::string_view name) const {
    const auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &infos_[it->second];
  }
  /// The info of tensor `name`; format_error naming it and the file if absent.
  [[nodiscard]] const TensorInfo& tensor_info(std::string_view name) const {
    const TensorInfo* t = find_tensor(name);
    if (t == nullptr) fail<format_error>("[gguf] '", *source_, "': no tensor named '", name, "'");
    return *t;
  }

  /// Tensor `name` as a zero-copy AnyTensor (row-major shape, exactly its bytes, keeping the
  /// mapping alive). format_error if absent, or if its ggml type is one precis does not support.
  [[nodiscard]] AnyTensor tensor(std::string_view name) const {
    const TensorInfo& t = tensor_info(name);
    const std::optional<dtype_code> dt = ggml_type_dtype(t.ggml_type);
    if (!dt)
      fail<format_error>("[gguf] '", *source_, "': ", t.name, " is ", ggml_type_name(t.ggml_type), " (ggml type ",
                         t.ggml_type, "), which precis does not support; supported: ", ggml_supported_types_list);
    const auto bytes = data_.subspan(static_cast<std::size_t>(t.offset), static_cast<std::size_t>(t.nbytes));
    return AnyTensor(t.name, *dt, t.shape, bytes, *source_, owner_);
  }

  /// Tensor names in file order.
  [[nodiscard]] std::vector<std::string> tensor_names() const {
    std::vector<std::string> r;
    r.reserve(infos_.size());
    for (const auto& t : infos_) r.push_back(t.name);
    return r;
  }

  /// The tensor data section (from data_offset() to the end of the file; empty if the file ends
  /// before it, which only a tensor-less file may).
  [[nodiscard]] std::span<const std::byte> data() const noexcept { return data_; }

 private:
  GgufFile() = default;

  // --- a bounds-checked little-endian cursor over the file -------------------------------------
  // `what` names the field for messages: a string, or a callable returning one (so that reading
  // the 150k strings of a vocabulary formats no description unless one of them is bad).
  template <class What>
  [[nodiscard]] static std::string describe(const What& what) {
    if constexpr (std::is_invocable_v<const What&>) return std::string(what());
    else return std::string(what);
  }

  struct Cursor {
    std::span<const std::byte> bytes;
    std::size_t pos = 0;
    const GgufFile* file = nullptr;

    [[nodiscard]] std::size_t remaining() const noexcept { return bytes.size() - pos; }

    /// Fails unless `n` more bytes exist.
    template <class What>
    void need(std::uint64_t n, const What& what) const {
      if (n > remaining())
        file->fail_at(pos, describe(what), " needs ", n, " bytes but the file ends after ", remaining(),
                      " (file size ", bytes.size(), ")");
    }
    template <class What>
    [[nodiscard]] std::uint64_t uint(std::size_t width, const What& what) {
      need(width, what);
      const std::uint64_t v = detail::gguf_load_le(bytes.data() + pos, width);
      pos += width;
      return v;
    }
    template <class What>
    [[nodiscard]] std::uint32_t u32(const What& what) {
      return static_cast<std::uint32_t>(uint(4, what));
    }
    template <class What>
    [[nodiscard]] std::uint64_t u64(const What& what) {
      return uint(8, what);
    }
    /// gguf_string: u64 length + bytes (no NUL), viewed in place.
    template <class What>
    [[nodiscard]] std::string_view string(const What& what) {
      const std::size_t at = pos;
      const std::uint64_t len = u64(what);
      if (len > remaining())
        file->fail_at(at, describe(what), ": string length ", len, " runs past the end of the file (", remaining(),
                      " bytes left)");
      const std::string_view s(reinterpret_cast<const char*>(bytes.data() + pos), static_cast<std::size_t>(len));
      pos += static_cast<std::size_t>(len);
      return s;
    }
  };

  template <class... Parts>
  [[noreturn]] void fail_at(std::size_t offset, const Parts&... parts) const {
    fail<format_error>("[gguf] '", *source_, "': ", parts..., " (at file offset ", offset, ")");
  }

  void parse_impl(std::span<const std::byte> bytes) {
    Cursor c{bytes, 0, this};

    // --- 1. header ---------------------------------------------------------------------------
    if (bytes.size() < 4 || bytes[0] != std::byte{'G'} || bytes[1] != std::byte{'G'} || bytes[2] != std::byte{'U'} ||
        bytes[3] != std::byte{'F'}) {
      std::string seen;
      for (std::size_t i = 0; i < 4 && i < bytes.size(); ++i) {
        const auto ch = static_cast<unsigned char>(bytes[i]);
        seen += (ch >= 0x20 && ch < 0x7f) ? static_cast<char>(ch) : '?';
      }
      fail_at(0, "not a GGUF file: magic is '", seen, "' (", bytes.size() < 4 ? "file shorter than 4 bytes, " : "",
              "expected 'GGUF')");
    }
    c.pos = 4;
    version_ = c.u32("the version");
    if (version_ == 1)
      fail_at(4, "GGUF version 1 is not supported (it used 32-bit counts and lengths; ggml dropped it too)");
    if (version_ != 2 && version_ != 3) {
      if (version_ != 0 && (version_ & 0xffffu) == 0)
        fail_at(4, "GGUF version ", version_, " looks byte-swapped (", __builtin_bswap32(version_),
                " read big-endian): a big-endian GGUF file, which precis does not read");
      fail_at(4, "unsupported GGUF version ", version_, " (precis reads versions 2 and 3)");
    }
    const std::uint64_t n_tensors = c.u64("tensor_count");
    const std::uint64_t n_kv = c.u64("metadata_kv_count");
    // Bound both counts by the bytes left before anything is sized by them: a metadata entry is
    // at least 8 (key length) + 4 (type) + 1 (smallest value) bytes, a tensor info at least
    // 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset).
    constexpr std::uint64_t min_kv_bytes = 13, min_info_bytes = 24;
    if (n_kv > c.remaining() / min_kv_bytes)
      fail_at(16, "metadata_kv_count ", n_kv, " cannot fit in the ", c.remaining(),
              " bytes after the header (each entry takes at least ", min_kv_bytes, ")");
    if (n_tensors > c.remaining() / min_info_bytes ||
        n_kv * min_kv_bytes + n_tensors * min_info_bytes > c.remaining())
      fail_at(8, "tensor_count ", n_tensors, " cannot fit in the ", c.remaining(),
              " bytes after the header (each tensor info takes at least ", min_info_bytes, ")");

    // --- 2. metadata -------------------------------------------------------------------------
    values_.reserve(static_cast<std::size_t>(n_kv));
    for (std::uint64_t i = 0; i < n_kv; ++i) read_kv(c, i);

    if (const auto it = by_key_.find("general.alignment"); it != by_key_.end()) {
      const GgufValue& a = values_[it->second];
      if (a.type() != gguf_value_type::u32)
        fail_at(static_cast<std::size_t>(a.offset()), "general.alignment must be a u32 (gguf.md), but holds ",
                a.describe());
      const auto v = a.get<std::uint32_t>();
      if (v == 0 || (v & (v - 1)) != 0)
        fail_at(static_cast<std::size_t>(a.offset()), "general.alignment ", v, " is not a power of two");
      alignment_ = v;
    }

    // --- 3. tensor infos -----------------------------------------------------------------------
    infos_.reserve(static_cast<std::size_t>(n_tensors));
    for (std::uint64_t i = 0; i < n_tensors; ++i) read_tensor_info(c, i);

    // --- 4. the data section -------------------------------------------------------------------
    // Padding to alignment (gguf.md). pos ≤ file size and alignment ≤ 2^32, so no overflow.
    const std::uint64_t end_of_infos = c.pos;
    data_offset_ = (end_of_infos + alignment_ - 1) / alignment_ * alignment_;
    if (data_offset_ <= bytes.size()) {
      data_ = bytes.subspan(static_cast<std::size_t>(data_offset_));
    } else if (!infos_.empty()) {
      fail_at(c.pos, "the tensor data section would start at offset ", data_offset_, " (tensor infos end at ",
              end_of_infos, ", padded to alignment ", alignment_, "), past the end of the file (size ", bytes.size(),
              ")");
    }
    for (const auto& t : infos_) {
      if (t.offset > data_.size() || t.nbytes > data_.size() - t.offset)
        fail<format_error>("[gguf] '", *source_, "': tensor '", t.name, "': data at offset ", t.offset, " (", t.nbytes,
                           " bytes, relative to the data section at file offset ", data_offset_,
                           ") runs past the end of the file (the data section holds ", data_.size(), " bytes)");
    }
    std::vector<const TensorInfo*> sorted;
    sorted.reserve(infos_.size());
    for (const auto& t : infos_) sorted.push_back(&t);
    std::sort(sorted.begin(), sorted.end(),
              [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
    for (std::size_t i = 1; i < sorted.size(); ++i) {
      const TensorInfo& prev = *sorted[i - 1];
      const TensorInfo& cur = *sorted[i];
      if (cur.offset < prev.offset + prev.nbytes)
        fail<format_error>("[gguf] '", *source_, "': tensor '", cur.name, "' data [", cur.offset, ", ",
                           cur.offset + cur.nbytes, ") overlaps tensor '", prev.name, "' data [", prev.offset, ", ",
                           prev.offset + prev.nbytes, ")");
    }
  }

  void read_kv(Cursor& c, std::uint64_t index) {
    const std::size_t key_at = c.pos;
    const std::string_view key = c.string([&] { return "key of metadata entry " + std::to_string(index); });
    if (by_key_.find(key) != by_key_.end())
      fail_at(key_at, "duplicate metadata key '", key, "' (entry ", index, ")");
    const std::size_t type_at = c.pos;
    const std::string what = "metadata key '" + std::string(key) + "'";
    const std::uint32_t type_id = c.u32(what + " value type");
    if (type_id > static_cast<std::uint32_t>(gguf_value_type::f64))
      fail_at(type_at, what, ": unknown value type id ", type_id, " (valid: 0..12)");
    const auto type = static_cast<gguf_value_type>(type_id);

    std::string k(key);
    if (type == gguf_value_type::string) {
      const std::string_view s = c.string(what + " string value");
      values_.push_back(GgufValue::string(std::move(k), source_, type_at, s));
    } else if (type == gguf_value_type::array) {
      const std::size_t elem_at = c.pos;
      const std::uint32_t elem_id = c.u32(what + " array element type");
      if (elem_id == static_cast<std::uint32_t>(gguf_value_type::array))
        fail_at(elem_at, what, ": nested arrays (an array of arrays) are not supported (ggml's gguf reader "
                               "rejects them as well)");
      if (elem_id > static_cast<std::uint32_t>(gguf_value_type::f64))
        fail_at(elem_at, what, ": unknown array element type id ", elem_id, " (valid: 0..8, 10..12)");
      const auto elem = static_cast<gguf_value_type>(elem_id);
      const std::size_t n_at = c.pos;
      const std::uint64_t n = c.u64(what + " array length");
      if (elem == gguf_value_type::string) {
        // Each string takes at least its 8-byte length: bound n before reserving.
        if (n > c.remaining() / 8)
          fail_at(n_at, what, ": array of ", n, " strings cannot fit in the ", c.remaining(), " bytes left");
        std::vector<std::string_view> strings;
        strings.reserve(static_cast<std::size_t>(n));
        for (std::uint64_t j = 0; j < n; ++j)
          strings.push_back(c.string([&] { return what + " array element " + std::to_string(j); }));
        values_.push_back(GgufValue::string_array(std::move(k), source_, type_at, std::move(strings)));
      } else {
        const std::size_t w = gguf_value_type_size(elem);
        if (n > c.remaining() / w)
          fail_at(n_at, what, ": array of ", n, ' ', gguf_value_type_name(elem), " needs ", n, " x ", w,
                  " bytes but only ", c.remaining(), " are left");
        const auto raw = c.bytes.subspan(c.pos, static_cast<std::size_t>(n) * w);
        if (elem == gguf_value_type::boolean)
          for (std::size_t j = 0; j < raw.size(); ++j)
            if (static_cast<unsigned>(raw[j]) > 1)
              fail_at(c.pos + j, what, ": array element ", j, " is the bool byte ", static_cast<unsigned>(raw[j]),
                      " (gguf.md: a bool is 0 or 1)");
        c.pos += raw.size();
        values_.push_back(GgufValue::numeric_array(std::move(k), source_, type_at, elem, raw));
      }
    } else {
      const std::size_t w = gguf_value_type_size(type);
      const std::size_t value_at = c.pos;
      const std::uint64_t bits = c.uint(w, what + " value");
      if (type == gguf_value_type::boolean && bits > 1)
        fail_at(value_at, what, ": bool byte ", bits, " is neither 0 nor 1 (gguf.md)");
      values_.push_back(GgufValue::scalar(std::move(k), source_, type_at, type, bits));
    }
    by_key_.emplace(values_.back().key(), values_.size() - 1);
  }

  void read_tensor_info(Cursor& c, std::uint64_t index) {
    const std::size_t name_at = c.pos;
    const std::string_view name = c.string([&] { return "name of tensor info " + std::to_string(index); });
    const std::string tn = "tensor '" + std::string(name) + "'";
    if (name.size() > max_tensor_name_bytes)
      fail_at(name_at, tn, ": name is ", name.size(), " bytes, longer than the ", max_tensor_name_bytes,
              " gguf.md allows");
    if (by_name_.find(name) != by_name_.end())
      fail_at(name_at, "duplicate tensor name '", name, "' (tensor info ", index, ")");

    const std::size_t dims_at = c.pos;
    const std::uint32_t n_dims = c.u32(tn + " n_dims");
    if (n_dims > max_dims)
      fail_at(dims_at, tn, ": n_dims ", n_dims, " exceeds GGML_MAX_DIMS (", max_dims, ")");
    std::vector<std::uint64_t> dims(n_dims);
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      const std::size_t at = c.pos;
      dims[d] = c.u64([&] { return tn + " dims[" + std::to_string(d) + "]"; });
      if (dims[d] == 0) fail_at(at, tn, ": dims[", d, "] is 0 (empty tensors are not supported)");
      if (dims[d] > static_cast<std::uint64_t>(std::numeric_limits<index_t>::max()))
        fail_at(at, tn, ": dims[", d, "] = ", dims[d], " exceeds INT64_MAX");
    }
    const auto dims_text = [&] {
      std::string s = "[";
      for (std::size_t d = 0; d < dims.size(); ++d) s += (d ? ", " : "") + std::to_string(dims[d]);
      return s + "]";
    };
    const std::size_t type_at = c.pos;
    const std::uint32_t type = c.u32(tn + " ggml type");
    const GgmlTypeInfo* ti = ggml_type_info(type);
    if (ti == nullptr) fail_at(type_at, tn, ": unknown ggml type id ", type);
    const std::uint64_t inner = dims.empty() ? 1 : dims[0];
    if (inner % ti->block_size != 0)
      fail_at(type_at, tn, ": the innermost dim (dims[0] = ", inner, ", GGUF order ", dims_text(),
              ") is not a multiple of ", ti->name, "'s block size ", ti->block_size);
    // Elements must fit in index_t (signed 64-bit), bytes in u64.
    std::uint64_t numel = 1;
    std::uint64_t nbytes = (inner / ti->block_size);
    bool overflow = __builtin_mul_overflow(nbytes, static_cast<std::uint64_t>(ti->type_size), &nbytes);
    for (std::size_t d = 0; d < dims.size(); ++d) {
      overflow = overflow || __builtin_mul_overflow(numel, dims[d], &numel);
      if (d > 0) overflow = overflow || __builtin_mul_overflow(nbytes, dims[d], &nbytes);
    }
    if (overflow || numel > static_cast<std::uint64_t>(std::numeric_limits<index_t>::max()))
      fail_at(dims_at, tn, ": dims ", dims_text(), " of ", ti->name, " have more elements or bytes than fit in 64 bits");

    const std::size_t off_at = c.pos;
    const std::uint64_t offset = c.u64(tn + " offset");
    if (offset % alignment_ != 0)
      fail_at(off_at, tn, ": data offset ", offset, " is not a multiple of the alignment ", alignment_);

    TensorInfo info;
    info.name = std::string(name);
    info.shape.reserve(dims.size());
    for (std::size_t d = dims.size(); d-- > 0;) info.shape.push_back(static_cast<index_t>(dims[d]));
    info.ggml_type = type;
    info.offset = offset;
    info.nbytes = nbytes;
    infos_.push_back(std::move(info));
    by_name_.emplace(infos_.back().name, infos_.size() - 1);
  }

  std::filesystem::path path_;
  std::shared_ptr<const std::string> source_;
  std::shared_ptr<const void> owner_;
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = default_alignment;
  std::uint64_t data_offset_ = 0;
  std::span<const std::byte> data_;
  std::vector<GgufValue> values_;
  std::map<std::string, std::size_t, std::less<>> by_key_;
  std::vector<TensorInfo> infos_;
  std::map<std::string, std::size_t, std::less<>> by_name_;
};

}  // namespace precis::io
