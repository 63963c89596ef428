// tests/unit/core/test_tensor.cpp — Tensor<D, R> ownership and TensorView<D, R> access rules.
//
// Run-time checks compare against index arithmetic written out here (row-major offsets), and the
// type rules (const-correctness, no dtype conversion, block formats are not tensors) are checked
// with named concepts so that a rule that stops holding fails to compile (style-anchors §5.1).
#include <algorithm>    // std::all_of
#include <cstddef>      // std::size_t, std::byte
#include <cstdint>      // std::uintptr_t, std::uint16_t
#include <cstdio>       // std::fopen, std::fscanf
#include <cstring>      // std::memset

#include <unistd.h>     // sysconf
#include <type_traits>  // std::is_convertible_v, std::is_constructible_v, ...
#include <utility>      // std::move, std::pair
#include <vector>       // std::vector

#include <catch2/catch.hpp>  // TEST_CASE, TEMPLATE_TEST_CASE, STATIC_REQUIRE, REQUIRE_THROWS_*

#include <precis/core/dtype.hpp>        // dtype tags, storage_t
#include <precis/core/error.hpp>        // precis::shape_error, precis::range_error
#include <precis/core/tensor.hpp>       // precis::Tensor, make_tensor
#include <precis/core/tensor_view.hpp>  // precis::TensorView, for_each_offset, cview

using namespace precis;  // NOLINT(google-build-using-namespace): tests read better with bare dtype tags

namespace {

/// `Tensor<D, R, Dev>` names a valid type (its constraints hold).
template <class D, std::size_t R, class Dev = host>
concept can_form_tensor = requires { typename Tensor<D, R, Dev>; };

/// `TensorView<D, R, Dev>` names a valid type.
template <class D, std::size_t R, class Dev = host>
concept can_form_view = requires { typename TensorView<D, R, Dev>; };

/// An element reached through `v(0, 0)` can be assigned: false for read-only views.
template <class V>
concept writable_through = requires(const V& v) { v(0, 0) = storage_t<typename V::dtype>{}; };

/// Reads every element of a 2-D tensor-like value as the bit pattern of its storage.
template <class View>
std::vector<std::uint16_t> bits_2d(const View& v) {
  std::vector<std::uint16_t> out;
  for (index_t i = 0; i < v.extent(0); ++i)
    for (index_t j = 0; j < v.extent(1); ++j) out.push_back(v(i, j).bits);
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Construction
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("a fresh tensor is zero-filled and 64-byte aligned", "[core][tensor]", f32, f64, bf16, f16,
                   f8_e4m3, i8, i32, i64) {
  // Dirty the heap with a same-sized block first, so that recycled memory would show if the
  // constructor skipped zero-filling (fresh pages from the OS are zero anyway).
  const extents_t<2> e{7, 13};  // (7, 13)
  for (int round = 0; round < 3; ++round) {
    {
      Tensor<TestType, 2> dirty(e);  // (7, 13)
      std::memset(static_cast<void*>(dirty.data()), 0xA5, dirty.bytes());
    }
    const Tensor<TestType, 2> t(e);  // (7, 13)
    const auto* bytes = reinterpret_cast<const unsigned char*>(t.data());
    CHECK(std::all_of(bytes, bytes + t.bytes(), [](unsigned char b) { return b == 0; }));
    CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % tensor_alignment == 0);
  }
}

TEST_CASE("a tensor reports its extents, element count and byte size", "[core][tensor]") {
  const Tensor<bf16, 3> t({2, 3, 4});  // (2, 3, 4)
  CHECK(t.extents() == extents_t<3>{2, 3, 4});
  CHECK(t.extent(0) == 2);
  CHECK(t.extent(1) == 3);
  CHECK(t.extent(2) == 4);
  CHECK(t.numel() == 2 * 3 * 4);
  CHECK(t.bytes() == 2 * 3 * 4 * sizeof(bfloat16));
  CHECK_FALSE(t.empty());

  const Tensor<f32, 2> zero_rows({0, 5});  // (0, 5)
  CHECK(zero_rows.numel() == 0);
  CHECK(zero_rows.empty());

  const Tensor<f32, 2> unset;
  CHECK(unset.data() == nullptr);
  CHECK(unset.empty());
}

TEST_CASE("a negative extent is a shape_error naming the axis", "[core][tensor]") {
  REQUIRE_THROWS_AS((Tensor<f32, 2>({3, -1})), shape_error);
  REQUIRE_THROWS_WITH((Tensor<f32, 2>({3, -1})), Catch::Contains("negative extent -1") && Catch::Contains("axis 1"));
}

TEST_CASE("make_tensor converts each value with the dtype's rounding and checks the count", "[core][tensor]") {
  const float values[] = {1.0f, 1.0f + 0x1p-8f, 1.0f + 0x3p-8f, -3.5f, 1e30f, -0.0f};
  const auto t = make_tensor<bf16, 2>({2, 3}, {values[0], values[1], values[2], values[3], values[4], values[5]});
  for (index_t i = 0; i < 6; ++i) {
    INFO("element " << i);
    CHECK(t.data()[i].bits == bfloat16(values[i]).bits);
  }
  REQUIRE_THROWS_AS((make_tensor<f32, 2>({2, 3}, {1.0f, 2.0f})), shape_error);
  REQUIRE_THROWS_WITH((make_tensor<f32, 2>({2, 3}, {1.0f, 2.0f})), Catch::Contains("2 values") &&
                                                                      Catch::Contains("6 elements"));
}

// ---------------------------------------------------------------------------------------------
// Ownership
// ---------------------------------------------------------------------------------------------

TEST_CASE("tensors move but do not copy", "[core][tensor]") {
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<Tensor<f32, 2>>);
  STATIC_REQUIRE_FALSE(std::is_copy_assignable_v<Tensor<f32, 2>>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<Tensor<f32, 2>>);
  STATIC_REQUIRE(std::is_nothrow_move_assignable_v<Tensor<f32, 2>>);

  Tensor<f32, 2> a({2, 3});  // (2, 3)
  a(1, 2) = 42.0f;
  const float* storage = a.data();

  Tensor<f32, 2> b(std::move(a));  // (2, 3)
  CHECK(b.data() == storage);
  CHECK(b.extents() == extents_t<2>{2, 3});
  CHECK(b(1, 2) == 42.0f);
  CHECK(a.data() == nullptr);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  CHECK(a.numel() == 0);

  Tensor<f32, 2> c({5, 5});  // (5, 5), released by the assignment below
  c = std::move(b);
  CHECK(c.data() == storage);
  CHECK(c.extents() == extents_t<2>{2, 3});
  CHECK(b.data() == nullptr);  // NOLINT(bugprone-use-after-move)
  CHECK(b.numel() == 0);

  Tensor<f32, 2>& alias = c;
  c = std::move(alias);  // self-move keeps the tensor intact
  CHECK(c.data() == storage);
  CHECK(c(1, 2) == 42.0f);
}

TEST_CASE("clone is a deep copy", "[core][tensor]") {
  auto original = make_tensor<bf16, 2>({2, 2}, {1.0f, 2.0f, 3.0f, 4.0f});  // (2, 2)
  auto copy = original.clone();                                             // (2, 2)
  CHECK(copy.data() != original.data());
  CHECK(copy.extents() == original.extents());
  CHECK(bits_2d(copy.cview()) == bits_2d(original.cview()));

  copy(0, 1) = bfloat16(-7.0f);
  CHECK(static_cast<float>(original(0, 1)) == 2.0f);
  CHECK(static_cast<float>(copy(0, 1)) == -7.0f);

  const Tensor<f32, 1> empty({0});
  CHECK(empty.clone().numel() == 0);
}

// ---------------------------------------------------------------------------------------------
// Views: element access, sub-views, slicing, reshape
// ---------------------------------------------------------------------------------------------

TEST_CASE("element access follows row-major offsets", "[core][view]") {
  Tensor<i32, 3> t({2, 3, 4});  // (2, 3, 4)
  for (index_t n = 0; n < t.numel(); ++n) t.data()[n] = static_cast<std::int32_t>(n);

  const TensorView<const i32, 3> v = t;  // (2, 3, 4)
  CHECK(v.strides() == extents_t<3>{12, 4, 1});
  CHECK(v.is_contiguous());
  for (index_t i = 0; i < 2; ++i)
    for (index_t j = 0; j < 3; ++j)
      for (index_t k = 0; k < 4; ++k) {
        const index_t offset = (i * 3 + j) * 4 + k;
        CHECK(v(i, j, k) == offset);
        CHECK(&t(i, j, k) == t.data() + offset);
      }
}

TEST_CASE("operator[] drops the leading axis", "[core][view]") {
  Tensor<i32, 3> t({2, 3, 4});  // (2, 3, 4)
  for (index_t n = 0; n < t.numel(); ++n) t.data()[n] = static_cast<std::int32_t>(n);
  const auto v = t.view();  // (2, 3, 4)

  const TensorView<i32, 2> plane = v[1];  // (3, 4)
  CHECK(plane.extents() == extents_t<2>{3, 4});
  CHECK(plane.strides() == extents_t<2>{4, 1});
  CHECK(plane.data() == t.data() + 12);
  const TensorView<i32, 1> row = v[1][2];  // (4)
  CHECK(row.extent(0) == 4);
  CHECK(row(3) == (1 * 3 + 2) * 4 + 3);

  row(0) = -1;  // a writable view writes through to the tensor
  CHECK(t(1, 2, 0) == -1);
}

TEST_CASE("slice keeps the rank and the strides", "[core][view]") {
  Tensor<i32, 2> t({3, 4});  // (3, 4)
  for (index_t n = 0; n < t.numel(); ++n) t.data()[n] = static_cast<std::int32_t>(n);

  const auto cols = t.view().slice(1, 1, 3);  // (3, 2), strides (4, 1)
  CHECK(cols.extents() == extents_t<2>{3, 2});
  CHECK(cols.strides() == extents_t<2>{4, 1});
  CHECK_FALSE(cols.is_contiguous());
  for (index_t i = 0; i < 3; ++i)
    for (index_t j = 0; j < 2; ++j) CHECK(cols(i, j) == i * 4 + (j + 1));

  const auto rows = t.view().slice(0, 2, 3);  // (1, 4)
  CHECK(rows(0, 3) == 2 * 4 + 3);
  CHECK(t.view().slice(0, 1, 1).empty());  // (0, 4)

  REQUIRE_THROWS_AS(t.view().slice(1, 2, 5), range_error);  // end past the extent
  REQUIRE_THROWS_AS(t.view().slice(1, 3, 2), range_error);  // begin after end
  REQUIRE_THROWS_AS(t.view().slice(0, -1, 2), range_error);
  REQUIRE_THROWS_AS(t.view().slice(2, 0, 1), range_error);  // no axis 2
  REQUIRE_THROWS_WITH(t.view().slice(1, 2, 5), Catch::Contains("[2, 5)") && Catch::Contains("axis 1"));
}

TEST_CASE("reshape keeps the element order and rejects what it cannot do", "[core][view]") {
  Tensor<i32, 2> t({3, 4});  // (3, 4)
  for (index_t n = 0; n < t.numel(); ++n) t.data()[n] = static_cast<std::int32_t>(n);

  const auto r = t.view().reshape<3>({2, 3, 2});  // (2, 3, 2)
  for (index_t i = 0; i < 2; ++i)
    for (index_t j = 0; j < 3; ++j)
      for (index_t k = 0; k < 2; ++k) CHECK(r(i, j, k) == (i * 3 + j) * 2 + k);
  CHECK(t.view().reshape<1>({12}).extent(0) == 12);

  REQUIRE_THROWS_AS(t.view().reshape<2>({5, 2}), shape_error);  // 10 ≠ 12 elements
  REQUIRE_THROWS_WITH(t.view().reshape<2>({5, 2}), Catch::Contains("12 elements") && Catch::Contains("10 elements"));
  const auto strided = t.view().slice(1, 0, 2);  // (3, 2), not contiguous
  REQUIRE_THROWS_AS(strided.reshape<1>({6}), shape_error);
  REQUIRE_THROWS_WITH(strided.reshape<1>({6}), Catch::Contains("not contiguous"));
}

TEST_CASE("at() checks every index and names the axis", "[core][view]") {
  Tensor<f32, 2> t({2, 3});  // (2, 3)
  t(1, 2) = 5.0f;
  CHECK(&t.at(1, 2) == &t(1, 2));
  CHECK(t.view().at(1, 2) == 5.0f);
  REQUIRE_THROWS_AS(t.at(2, 0), range_error);
  REQUIRE_THROWS_AS(t.at(0, 3), range_error);
  REQUIRE_THROWS_AS(t.at(-1, 0), range_error);
  REQUIRE_THROWS_WITH(t.at(0, 3), Catch::Contains("index 3") && Catch::Contains("[0, 3)") &&
                                      Catch::Contains("axis 1"));
  REQUIRE_THROWS_AS(t.cview().at(0, 7), range_error);
}

TEST_CASE("for_each_offset walks any strided view in row-major order", "[core][view]") {
  std::vector<std::int32_t> storage(40);
  // A transposed, every-other-row view of a (10, 4) row-major buffer: element (i, j) lives at
  // 4·(2j) + i, i.e. extents (4, 5), strides (1, 8).
  const TensorView<i32, 2> v(storage.data(), {4, 5}, {1, 8});  // (4, 5)
  std::vector<std::pair<index_t, index_t>> visited;
  for_each_offset(v, [&](index_t flat, index_t off) { visited.emplace_back(flat, off); });

  std::vector<std::pair<index_t, index_t>> expected;
  for (index_t i = 0; i < 4; ++i)
    for (index_t j = 0; j < 5; ++j) expected.emplace_back(i * 5 + j, i + 8 * j);
  CHECK(visited == expected);

  int calls = 0;
  for_each_offset(TensorView<i32, 2>(storage.data(), {0, 5}), [&](index_t, index_t) { ++calls; });
  CHECK(calls == 0);
}

// ---------------------------------------------------------------------------------------------
// Type rules
// ---------------------------------------------------------------------------------------------

TEST_CASE("views convert only from writable to read-only of the same dtype and rank", "[core][view][static]") {
  // Like std::span<const T>: dropping write access is implicit, gaining it is impossible.
  STATIC_REQUIRE(std::is_convertible_v<TensorView<bf16, 2>, TensorView<const bf16, 2>>);
  STATIC_REQUIRE_FALSE(std::is_convertible_v<TensorView<const bf16, 2>, TensorView<bf16, 2>>);
  STATIC_REQUIRE_FALSE(std::is_constructible_v<TensorView<bf16, 2>, TensorView<const bf16, 2>>);
  // Never across dtypes (no reinterpretation of bits, dtype-bugs E9) or ranks.
  STATIC_REQUIRE_FALSE(std::is_convertible_v<TensorView<bf16, 2>, TensorView<const f32, 2>>);
  STATIC_REQUIRE_FALSE(std::is_constructible_v<TensorView<const f16, 2>, TensorView<bf16, 2>>);
  STATIC_REQUIRE_FALSE(std::is_convertible_v<TensorView<bf16, 2>, TensorView<const bf16, 3>>);
  STATIC_REQUIRE_FALSE(std::is_convertible_v<TensorView<f32, 1, cuda>, TensorView<const f32, 1, host>>);
  // A read-only view's elements cannot be assigned.
  STATIC_REQUIRE(writable_through<TensorView<bf16, 2>>);
  STATIC_REQUIRE_FALSE(writable_through<TensorView<const bf16, 2>>);
}

TEST_CASE("tensors give views of their own dtype only, read-only when const", "[core][tensor][static]") {
  STATIC_REQUIRE(std::is_convertible_v<Tensor<bf16, 2>&, TensorView<bf16, 2>>);
  STATIC_REQUIRE(std::is_convertible_v<const Tensor<bf16, 2>&, TensorView<const bf16, 2>>);
  STATIC_REQUIRE_FALSE(std::is_convertible_v<const Tensor<bf16, 2>&, TensorView<bf16, 2>>);
  STATIC_REQUIRE_FALSE(std::is_convertible_v<Tensor<bf16, 2>&, TensorView<const f32, 2>>);
  STATIC_REQUIRE_FALSE(std::is_constructible_v<TensorView<const f32, 2>, Tensor<bf16, 2>&>);
  STATIC_REQUIRE(std::is_same_v<decltype(std::declval<const Tensor<bf16, 2>&>().view()), TensorView<const bf16, 2>>);
  // No conversion between tensors of different dtypes: cast<To> is the bridge (core/cast.hpp).
  STATIC_REQUIRE_FALSE(std::is_convertible_v<Tensor<bf16, 1>, Tensor<f32, 1>>);
  STATIC_REQUIRE_FALSE(std::is_constructible_v<Tensor<f32, 1>, Tensor<bf16, 1>>);
}

TEST_CASE("block formats, const dtypes and f64 on the GPU are not tensors", "[core][tensor][static]") {
  STATIC_REQUIRE(can_form_tensor<f32, 1>);
  STATIC_REQUIRE(can_form_tensor<f8_e5m2, 4>);
  // q4_0 values exist only in blocks: not element-addressable (core/dtype.hpp BlockFormat).
  STATIC_REQUIRE_FALSE(can_form_tensor<q4_0, 1>);
  STATIC_REQUIRE_FALSE(can_form_tensor<mxfp4, 2>);
  STATIC_REQUIRE_FALSE(can_form_view<q8_0, 1>);
  // Owning tensors are always writable; read-only access is a view.
  STATIC_REQUIRE_FALSE(can_form_tensor<const f32, 1>);
  STATIC_REQUIRE(can_form_view<const f32, 1>);
  // f64 stays on the host (dtype-bugs E15, seed bug 2).
  STATIC_REQUIRE(can_form_tensor<f64, 1, host>);
  STATIC_REQUIRE_FALSE(can_form_tensor<f64, 1, cuda>);
  // Not a dtype at all.
  STATIC_REQUIRE_FALSE(can_form_tensor<float, 1>);
}

namespace {
/// Resident memory of this process now, in bytes (/proc/self/statm: pages resident).
std::size_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? static_cast<std::size_t>(resident) * static_cast<std::size_t>(sysconf(_SC_PAGESIZE)) : 0;
}
}  // namespace

TEST_CASE("a large tensor is zero but commits memory only where written (KV pools grow with use)",
          "[core][tensor][robustness]") {
  // Robustness sweep: 20 prompts × 4096 positions committed 3.7 GB of KV cache before any work,
  // because the pool was memset. A 1 GiB tensor now costs resident memory for what is touched.
  const std::size_t before = resident_bytes();
  precis::Tensor<precis::f32, 2> t({4096, 65536});  // 1 GiB
  const std::size_t after = resident_bytes();
  REQUIRE(before > 0);  // /proc/self/statm (Linux; CI and the GPU machine)
  CHECK(after < before + (std::size_t{64} << 20));
  t(0, 0) = 1.0f;
  t(4095, 65535) = 2.0f;
  CHECK(t(2048, 7) == 0.0f);  // untouched memory reads as zero
  CHECK(t(0, 0) == 1.0f);
  CHECK(resident_bytes() < before + (std::size_t{64} << 20));
  // Extents whose byte count overflows are refused, not wrapped around.
  CHECK_THROWS_AS((precis::Tensor<precis::f32, 3>({index_t{1} << 31, index_t{1} << 31, 16})), precis::resource_error);
}
