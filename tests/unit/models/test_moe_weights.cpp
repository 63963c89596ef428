// tests/unit/models/test_moe_weights.cpp — models/moe_weights.hpp: expert stacks read from small
// hand-made files in every checkpoint convention of the MoE models, and the per-expert storage
// of nn/moe.hpp's ExpertStack.
//
// What is checked, per convention (model-semantics §1a, §1b, §1d):
//   HF Qwen3-MoE per-expert    E separate bf16 tensors are viewed in place (every expert's data
//                              lies inside the file mapping), and the MoE layer over them gives
//                              bit for bit what the same layer gives over an owned [E, N, K] copy
//                              (same kernel, same values: any difference is a loader bug);
//   HF v5 fused gate_up_proj   the row halves [gate | up] of one tensor equal the separate ones;
//   HF gpt-oss MXFP4           `_blocks`/`_scales` U8 viewed in place as InterleavedGateUp<mxfp4>,
//                              bit for bit the layer over the QuantTensor they were written from;
//                              the repack_ggml option dequantizes to the same values and is
//                              bit for bit the layer over to_ggml_layout(); it copies (reported);
//   HF dequantized gpt-oss     a float [E, K, N] (x @ W) tensor transposes to the [E, N, K] stack;
//   GGUF ffn_*_exps            stacked q8_0 experts from a GGUF file, in place;
// and the errors: a wrong shape names the tensor, both shapes and the config keys; experts of one
// layer in two formats; a non-weight dtype; a repack of a non-MXFP4 stack; one bias without the other.
#include <catch2/catch.hpp>  // TEST_CASE, SECTION, CHECK, REQUIRE

#include <algorithm>   // std::max
#include <cmath>       // std::fabs
#include <cstddef>     // std::byte
#include <cstdint>     // std::uint32_t, std::uint64_t
#include <cstring>     // std::memcmp, std::memcpy
#include <filesystem>  // std::filesystem::path
#include <span>        // std::span
#include <string>      // std::string
#include <vector>      // std::vector

#include <precis/backends/cpu/moe.hpp>        // backends::cpu::moe_experts
#include <precis/core/cast.hpp>               // precis::cast
#include <precis/core/error.hpp>              // shape_error, dtype_error
#include <precis/io/safetensors_writer.hpp>   // io::SafetensorsWriter
#include <precis/backends/cpu/backend.hpp>     // backends::Cpu (its moe op)
#include <precis/backends/reference/backend.hpp>  // backends::Reference (the spec's moe op)
#include <precis/models/moe_weights.hpp>      // AnyExpertStack, AnyMoeExperts, loaders
#include <precis/nn/router.hpp>               // SoftmaxThenTopK, TopKThenSoftmax
#include <precis/quant/dequantize.hpp>        // dequantize
#include <precis/quant/mxfp4_layout.hpp>      // to_ggml_layout
#include <precis/quant/quantize.hpp>          // quantize

#include "unit/io/io_test_support.hpp"  // TempDir, write_file, append_le
#include "unit/nn/nn_test_support.hpp"  // random_tensor, make_rng

using namespace precis;
using namespace precis::test;
using precis::AnyExpertStack;
using precis::AnyMoeExperts;
using precis::models::WeightSource;
namespace backend = precis::backends::cpu;

namespace {
/// One layer's experts through the CPU backend's `moe` op (the dispatch models use).
template <class Layer, class X>
[[nodiscard]] auto run_layer(const Layer& layer, const X& x, const precis::Routing& r) {
  return precis::backends::Cpu{}.moe(layer, x, r);
}
}  // namespace

namespace {

constexpr index_t kE = 4, kH = 64, kI = 32, kT = 7, kK = 2;
const std::string kWhy = "num_experts=4, moe_intermediate_size=32, hidden_size=64";

/// Expert e of a stack [E, N, K] as an owned [N, K] tensor.
template <class D>
Tensor<D, 2> expert_of(const Tensor<D, 3>& s, index_t e) {
  Tensor<D, 2> m({s.extent(1), s.extent(2)});
  for (index_t n = 0; n < s.extent(1); ++n)
    for (index_t k = 0; k < s.extent(2); ++k) m(n, k) = s(e, n, k);
  return m;
}

/// Rows [gate | up] of two stacks [E, I, H] as one [E, 2I, H] (HF v5 fused layout).
template <class D>
Tensor<D, 3> fuse_halves(const Tensor<D, 3>& g, const Tensor<D, 3>& u) {
  const index_t ne = g.extent(0), ni = g.extent(1), nh = g.extent(2);
  Tensor<D, 3> out({ne, 2 * ni, nh});
  for (index_t e = 0; e < ne; ++e)
    for (index_t i = 0; i < ni; ++i)
      for (index_t h = 0; h < nh; ++h) {
        out(e, i, h) = g(e, i, h);
        out(e, ni + i, h) = u(e, i, h);
      }
  return out;
}

/// [E, N, K] → [E, K, N] (the x @ W storage of HF v5 gpt-oss).
template <class D>
Tensor<D, 3> transpose12(const Tensor<D, 3>& s) {
  Tensor<D, 3> out({s.extent(0), s.extent(2), s.extent(1)});
  for (index_t e = 0; e < s.extent(0); ++e)
    for (index_t n = 0; n < s.extent(1); ++n)
      for (index_t k = 0; k < s.extent(2); ++k) out(e, k, n) = s(e, n, k);
  return out;
}

Routing qwen_routing(std::mt19937& rng) {
  const Tensor<f32, 2> logits = random_tensor<f32, 2>({kT, kE}, rng, 0.1, 2.0);
  return SoftmaxThenTopK{.norm_topk_prob = true}(logits, kK);
}

template <class D, std::size_t R>
bool same_bits(const Tensor<D, R>& a, const Tensor<D, R>& b) {
  return a.extents() == b.extents() && std::memcmp(a.data(), b.data(), a.bytes()) == 0;
}

bool mapped(const WeightSource& src, const AnyExpertStack& s) {
  for (index_t e = 0; e < s.n_experts(); ++e)
    if (!src.contains_address(s.expert_data(e), 1)) return false;
  return true;
}

/// `n` raw bytes of one plane of a QuantTensor<mxfp4, R>.
std::vector<std::byte> plane(const std::uint8_t* p, index_t n) {
  std::vector<std::byte> b(static_cast<std::size_t>(n));
  std::memcpy(b.data(), p, b.size());
  return b;
}

// ---- a minimal GGUF v3 writer (gguf.md layout; tensors F32/Q8_0 only) ----------------------------

struct GgufTensor {
  std::string name;
  std::vector<index_t> shape;  // row-major
  std::uint32_t ggml_type;
  std::vector<std::byte> data;
};

void put_string(std::vector<std::byte>& out, const std::string& s) {
  append_le(out, s.size());
  for (char c : s) out.push_back(static_cast<std::byte>(c));
}

std::vector<std::byte> gguf_bytes(const std::string& arch, const std::vector<GgufTensor>& ts) {
  std::vector<std::byte> out;
  for (char c : std::string("GGUF")) out.push_back(static_cast<std::byte>(c));
  append_le(out, 3, 4);
  append_le(out, ts.size());
  append_le(out, 1);                    // one metadata key
  put_string(out, "general.architecture");
  append_le(out, 8, 4);                 // GGUF_TYPE_STRING
  put_string(out, arch);
  std::uint64_t offset = 0;
  for (const auto& t : ts) {
    put_string(out, t.name);
    append_le(out, t.shape.size(), 4);
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) append_le(out, static_cast<std::uint64_t>(*it));
    append_le(out, t.ggml_type, 4);
    append_le(out, offset);
    offset += (t.data.size() + 31) / 32 * 32;
  }
  while (out.size() % 32 != 0) out.push_back(std::byte{0});
  for (const auto& t : ts) {
    out.insert(out.end(), t.data.begin(), t.data.end());
    while (out.size() % 32 != 0) out.push_back(std::byte{0});
  }
  return out;
}

template <class F, std::size_t R>
std::vector<std::byte> block_bytes(const QuantTensor<F, R>& q) {
  std::vector<std::byte> b(static_cast<std::size_t>(q.num_blocks()) * sizeof(typename dtype_traits<F>::block_type));
  std::memcpy(b.data(), q.blocks(), b.size());
  return b;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// nn/moe.hpp: ExpertStack over per-expert matrices
// ---------------------------------------------------------------------------------------------

TEST_CASE("ExpertStack: per-expert views compute what the stacked tensor computes", "[moe_weights]") {
  auto rng = make_rng(11);
  const Tensor<bf16, 3> g = random_tensor<bf16, 3>({kE, kI, kH}, rng);
  const Tensor<bf16, 3> u = random_tensor<bf16, 3>({kE, kI, kH}, rng);
  const Tensor<bf16, 3> d = random_tensor<bf16, 3>({kE, kH, kI}, rng);
  std::vector<Tensor<bf16, 2>> gm, um, dm;
  std::vector<TensorView<const bf16, 2>> gv, uv, dv;
  for (index_t e = 0; e < kE; ++e) {
    gm.push_back(expert_of(g, e));
    um.push_back(expert_of(u, e));
    dm.push_back(expert_of(d, e));
  }
  for (index_t e = 0; e < kE; ++e) {
    gv.push_back(gm[static_cast<std::size_t>(e)].cview());
    uv.push_back(um[static_cast<std::size_t>(e)].cview());
    dv.push_back(dm[static_cast<std::size_t>(e)].cview());
  }
  const ExpertStack<bf16> per = expert_stack(gv);
  CHECK_FALSE(per.is_stacked());
  CHECK(per.extents() == extents_t<3>{kE, kI, kH});
  CHECK(expert_stack(g).is_stacked());
  CHECK_THROWS_AS(per.storage(), shape_error);

  const MoeExperts<SiluGate, SeparateGateUp<bf16>, bf16> stacked(SiluGate{}, {expert_stack(g), expert_stack(u)},
                                                                  expert_stack(d));
  const MoeExperts<SiluGate, SeparateGateUp<bf16>, bf16> views(SiluGate{}, {per, expert_stack(uv)}, expert_stack(dv));
  const Tensor<bf16, 2> x = random_tensor<bf16, 2>({kT, kH}, rng);
  const Routing r = qwen_routing(rng);
  CHECK(same_bits(moe_experts(stacked, x, r), moe_experts(views, x, r)));                    // reference
  CHECK(same_bits(backend::moe_experts(stacked, x, r), backend::moe_experts(views, x, r)));  // CPU kernel

  SECTION("experts of different shapes are rejected, naming the expert") {
    gv.push_back(dm[0].cview());  // [H, I] among [I, H]
    CHECK_THROWS_WITH(ExpertStack<bf16>(gv), Catch::Contains("expert 4 has shape [64, 32]"));
  }
  SECTION("no experts at all") {
    CHECK_THROWS_AS(ExpertStack<bf16>(std::vector<TensorView<const bf16, 2>>{}), shape_error);
  }
}

// ---------------------------------------------------------------------------------------------
// HF Qwen3-MoE: per-expert and fused tensors
// ---------------------------------------------------------------------------------------------

TEST_CASE("moe_weights: HF Qwen3-MoE per-expert and fused tensors, in place", "[moe_weights]") {
  auto rng = make_rng(21);
  const Tensor<bf16, 3> g = random_tensor<bf16, 3>({kE, kI, kH}, rng);
  const Tensor<bf16, 3> u = random_tensor<bf16, 3>({kE, kI, kH}, rng);
  const Tensor<bf16, 3> d = random_tensor<bf16, 3>({kE, kH, kI}, rng);
  const std::string pre = "model.layers.1.mlp.experts";

  TempDir dir;
  {
    io::SafetensorsWriter w;
    for (index_t e = 0; e < kE; ++e) {
      const std::string p = pre + "." + std::to_string(e) + ".";
      w.add(p + "gate_proj.weight", expert_of(g, e));
      w.add(p + "up_proj.weight", expert_of(u, e));
      w.add(p + "down_proj.weight", expert_of(d, e));
    }
    w.write(dir / "per_expert.safetensors");
    io::SafetensorsWriter f;
    f.add(pre + ".gate_up_proj", fuse_halves(g, u));
    f.add(pre + ".down_proj", d);
    f.write(dir / "fused.safetensors");
  }

  // The layer over owned stacks: what both conventions must reproduce bit for bit.
  const MoeExperts<SiluGate, SeparateGateUp<bf16>, bf16> want_ex(SiluGate{}, {expert_stack(g), expert_stack(u)},
                                                                  expert_stack(d));
  const Tensor<bf16, 2> x = random_tensor<bf16, 2>({kT, kH}, rng);
  const Routing r = qwen_routing(rng);
  const Tensor<bf16, 2> want = backend::moe_experts(want_ex, x, r);

  for (const char* file : {"per_expert.safetensors", "fused.safetensors"}) {
    INFO(file);
    WeightSource src = WeightSource::open(dir / file);
    models::ExpertTensors t = models::load_hf_qwen3_experts(src, pre, kE, kI, kH, kWhy);
    for (const AnyExpertStack* s : {&t.gate, &t.up, &t.down}) {
      CHECK(s->format() == dtype_code::bf16);
      CHECK(s->is_zero_copy());
      CHECK(mapped(src, *s));
    }
    CHECK(t.gate.extents() == extents_t<3>{kE, kI, kH});
    CHECK(t.down.extents() == extents_t<3>{kE, kH, kI});
    CHECK(src.unused().empty());
    const auto layer = AnyMoeExperts<SiluGate, bf16>::separate_gate_up(SiluGate{}, t.gate, t.up, t.down);
    CHECK(layer.n_experts() == kE);
    CHECK(layer.intermediate() == kI);
    CHECK(same_bits(run_layer(layer, x, r), want));
  }

  SECTION("a config that disagrees with the tensors names the tensor, both shapes and the keys") {
    WeightSource src = WeightSource::open(dir / "per_expert.safetensors");
    CHECK_THROWS_WITH(models::load_hf_qwen3_experts(src, pre, kE, 48, kH, "moe_intermediate_size=48"),
                      Catch::Contains("model.layers.1.mlp.experts.0.gate_proj.weight") &&
                          Catch::Contains("shape [32, 64], expected [48, 64] from moe_intermediate_size=48"));
  }
  SECTION("a missing expert names the tensor") {
    WeightSource src = WeightSource::open(dir / "per_expert.safetensors");
    CHECK_THROWS_WITH(models::load_hf_qwen3_experts(src, pre, kE + 1, kI, kH, kWhy),
                      Catch::Contains("model.layers.1.mlp.experts.4.gate_proj.weight"));
  }
}

// ---------------------------------------------------------------------------------------------
// HF gpt-oss: MXFP4 blocks, the repack option, and the dequantized transposed layout
// ---------------------------------------------------------------------------------------------

TEST_CASE("moe_weights: HF gpt-oss MXFP4 experts, in place or repacked", "[moe_weights]") {
  auto rng = make_rng(31);
  const QuantTensor<mxfp4, 3> gu = quantize<mxfp4>(random_tensor<f32, 3>({kE, 2 * kI, kH}, rng, 0.01, 1.0));
  const QuantTensor<mxfp4, 3> dn = quantize<mxfp4>(random_tensor<f32, 3>({kE, kH, kI}, rng, 0.01, 1.0));
  const Tensor<bf16, 2> gu_bias = random_tensor<bf16, 2>({kE, 2 * kI}, rng, 0.01, 0.2);
  const Tensor<bf16, 2> dn_bias = random_tensor<bf16, 2>({kE, kH}, rng, 0.01, 0.2);
  const std::string pre = "model.layers.0.mlp.experts";
  TempDir dir;
  {
    io::SafetensorsWriter w;
    w.add_raw(pre + ".gate_up_proj_blocks", dtype_code::u8, {kE, 2 * kI, kH / 32, 16},
              plane(gu.nibbles(), gu.num_blocks() * 16));
    w.add_raw(pre + ".gate_up_proj_scales", dtype_code::u8, {kE, 2 * kI, kH / 32}, plane(gu.scales(), gu.num_blocks()));
    w.add(pre + ".gate_up_proj_bias", gu_bias);
    w.add_raw(pre + ".down_proj_blocks", dtype_code::u8, {kE, kH, kI / 32, 16}, plane(dn.nibbles(), dn.num_blocks() * 16));
    w.add_raw(pre + ".down_proj_scales", dtype_code::u8, {kE, kH, kI / 32}, plane(dn.scales(), dn.num_blocks()));
    w.add(pre + ".down_proj_bias", dn_bias);
    w.write(dir / "model.safetensors");
  }
  const Tensor<f32, 2> x = random_tensor<f32, 2>({kT, kH}, rng);
  const Routing r = TopKThenSoftmax{}(random_tensor<f32, 2>({kT, kE}, rng, 0.1, 2.0), kK);
  const Tensor<f32, 2> gb = cast<f32>(gu_bias), db = cast<f32>(dn_bias);
  const ClampedSwiglu act{};

  WeightSource src = WeightSource::open(dir / "model.safetensors");
  SECTION("as stored: the two planes are read in place") {
    models::InterleavedExpertTensors t = models::load_hf_gpt_oss_experts(src, pre, kE, kI, kH, kWhy);
    CHECK(t.gate_up.format() == dtype_code::mxfp4);
    CHECK(t.gate_up.is_zero_copy());
    CHECK(mapped(src, t.gate_up));
    CHECK(mapped(src, t.down));
    const auto layer = AnyMoeExperts<ClampedSwiglu, f32>::interleaved_gate_up(
        act, t.gate_up, t.down, precis::activation_tensor<f32, 2>(src.tensor(pre + ".gate_up_proj_bias")),
        precis::activation_tensor<f32, 2>(src.tensor(pre + ".down_proj_bias")));
    const MoeExperts<ClampedSwiglu, InterleavedGateUp<mxfp4>, f32> want(act, {expert_stack(gu)}, expert_stack(dn), gb, db);
    CHECK(same_bits(run_layer(layer, x, r), backend::moe_experts(want, x, r)));
  }
  SECTION("repack_ggml: same values, ggml layout, a reported copy") {
    models::InterleavedExpertTensors t =
        models::load_hf_gpt_oss_experts(src, pre, kE, kI, kH, kWhy, precis::mxfp4_experts::repack_ggml);
    CHECK(t.gate_up.format() == dtype_code::mxfp4_ggml);
    CHECK_FALSE(t.gate_up.is_zero_copy());
    CHECK_FALSE(src.contains_address(t.gate_up.expert_data(0), 1));
    const auto& st = std::get<ExpertStack<mxfp4_ggml>>(t.gate_up.storage());
    CHECK(same_bits(dequantize<f32>(st.storage()), dequantize<f32>(gu.view())));
    const auto layer =
        AnyMoeExperts<ClampedSwiglu, f32>::interleaved_gate_up(act, t.gate_up, t.down, gb.clone(), db.clone());
    const QuantTensor<mxfp4_ggml, 3> gu_g = to_ggml_layout(gu), dn_g = to_ggml_layout(dn);
    const MoeExperts<ClampedSwiglu, InterleavedGateUp<mxfp4_ggml>, f32> want(act, {expert_stack(gu_g)},
                                                                             expert_stack(dn_g), gb, db);
    CHECK(same_bits(run_layer(layer, x, r), backend::moe_experts(want, x, r)));
  }
  SECTION("a bias without the other is rejected") {
    models::InterleavedExpertTensors t = models::load_hf_gpt_oss_experts(src, pre, kE, kI, kH, kWhy);
    using Layer = AnyMoeExperts<ClampedSwiglu, f32>;
    CHECK_THROWS_AS(Layer::interleaved_gate_up(act, t.gate_up, t.down, gb.clone(), std::nullopt), shape_error);
  }
  SECTION("only MXFP4 repacks") {
    const Tensor<bf16, 3> b = random_tensor<bf16, 3>({kE, kI, kH}, rng);
    io::SafetensorsWriter w;
    w.add("e", b);
    w.write(dir / "bf16.safetensors");
    WeightSource s2 = WeightSource::open(dir / "bf16.safetensors");
    CHECK_THROWS_AS(AnyExpertStack::stacked(s2.tensor("e")).repacked_ggml(), dtype_error);
  }
}

TEST_CASE("moe_weights: dequantized gpt-oss experts stored for x @ W are transposed once", "[moe_weights]") {
  auto rng = make_rng(41);
  const Tensor<bf16, 3> gu = random_tensor<bf16, 3>({kE, 2 * kI, kH}, rng);  // [E, 2I, H]
  const Tensor<bf16, 3> dn = random_tensor<bf16, 3>({kE, kH, kI}, rng);      // [E, H, I]
  const std::string pre = "model.layers.0.mlp.experts";
  TempDir dir;
  {
    io::SafetensorsWriter w;
    w.add(pre + ".gate_up_proj", transpose12(gu));  // [E, H, 2I]
    w.add(pre + ".down_proj", transpose12(dn));     // [E, I, H]
    w.write(dir / "model.safetensors");
  }
  WeightSource src = WeightSource::open(dir / "model.safetensors");
  models::InterleavedExpertTensors t = models::load_hf_gpt_oss_experts(src, pre, kE, kI, kH, kWhy);
  CHECK_FALSE(t.gate_up.is_zero_copy());
  CHECK(t.gate_up.extents() == extents_t<3>{kE, 2 * kI, kH});
  const auto& st = std::get<ExpertStack<bf16>>(t.gate_up.storage());
  bool equal = true;
  for (index_t e = 0; e < kE; ++e)
    for (index_t n = 0; n < 2 * kI; ++n)
      for (index_t k = 0; k < kH; ++k) equal = equal && st.expert(e)(n, k).bits == gu(e, n, k).bits;
  CHECK(equal);
}

// ---------------------------------------------------------------------------------------------
// GGUF stacked experts
// ---------------------------------------------------------------------------------------------

TEST_CASE("moe_weights: GGUF ffn_*_exps stacks in place, each in its own format", "[moe_weights]") {
  auto rng = make_rng(51);
  const QuantTensor<q8_0, 3> g = quantize<q8_0>(random_tensor<f32, 3>({kE, kI, kH}, rng));
  const QuantTensor<q8_0, 3> u = quantize<q8_0>(random_tensor<f32, 3>({kE, kI, kH}, rng));
  const QuantTensor<q8_0, 3> d = quantize<q8_0>(random_tensor<f32, 3>({kE, kH, kI}, rng));
  const Tensor<f32, 3> d_f32 = random_tensor<f32, 3>({kE, kH, kI}, rng);
  std::vector<std::byte> d_f32_bytes(static_cast<std::size_t>(d_f32.bytes()));
  std::memcpy(d_f32_bytes.data(), d_f32.data(), d_f32_bytes.size());
  TempDir dir;
  write_file(dir / "m.gguf", gguf_bytes("qwen3moe", {{"blk.0.ffn_gate_exps.weight", {kE, kI, kH}, 8, block_bytes(g)},
                                                     {"blk.0.ffn_up_exps.weight", {kE, kI, kH}, 8, block_bytes(u)},
                                                     {"blk.0.ffn_down_exps.weight", {kE, kH, kI}, 8, block_bytes(d)},
                                                     {"blk.1.ffn_gate_exps.weight", {kE, kI, kH}, 8, block_bytes(g)},
                                                     {"blk.1.ffn_up_exps.weight", {kE, kI, kH}, 8, block_bytes(u)},
                                                     {"blk.1.ffn_down_exps.weight", {kE, kH, kI}, 0, d_f32_bytes}}));
  WeightSource src = WeightSource::open(dir / "m.gguf");
  models::ExpertTensors t = models::load_gguf_experts(src, "blk.0", kE, kI, kH, kWhy);
  CHECK(t.gate.format() == dtype_code::q8_0);
  CHECK(t.gate.is_zero_copy());
  CHECK(mapped(src, t.gate));
  CHECK(mapped(src, t.down));
  const auto layer = AnyMoeExperts<SiluGate, f32>::separate_gate_up(SiluGate{}, t.gate, t.up, t.down);
  const MoeExperts<SiluGate, SeparateGateUp<q8_0>, f32> want(SiluGate{}, {expert_stack(g), expert_stack(u)},
                                                             expert_stack(d));
  const Tensor<f32, 2> x = random_tensor<f32, 2>({kT, kH}, rng);
  const Routing r = qwen_routing(rng);
  CHECK(same_bits(run_layer(layer, x, r), backend::moe_experts(want, x, r)));

  SECTION("gate/up q8_0 with an f32 down stack: one layer, two formats, each run in its own") {
    // llama.cpp's Q4_K_M stores some layers' down experts as Q6_K under Q4_K gate/up: a layer's
    // stacks each keep their format. Bits equal the typed MoeExperts<…, q8_0 gate/up, f32 down>.
    models::ExpertTensors t1 = models::load_gguf_experts(src, "blk.1", kE, kI, kH, kWhy);
    CHECK(t1.down.format() == dtype_code::f32);
    CHECK(t1.down.is_zero_copy());
    const auto mixed = AnyMoeExperts<SiluGate, f32>::separate_gate_up(SiluGate{}, t1.gate, t1.up, t1.down);
    CHECK(mixed.formats() == "gate q8_0, up q8_0, down f32");
    const MoeExperts<SiluGate, SeparateGateUp<q8_0>, f32, f32> want_mixed(
        SiluGate{}, {expert_stack(g), expert_stack(u)}, expert_stack(d_f32));
    const Tensor<f32, 2> got = run_layer(mixed, x, r);
    CHECK(same_bits(got, backend::moe_experts(want_mixed, x, r)));
    // and the spec (the reference backend reads each stack row by row in its format)
    const Tensor<f32, 2> spec = precis::backends::Reference{}.moe(mixed, x, r);
    CHECK(same_bits(spec, precis::moe_experts(want_mixed, x, r)));
    double err = 0.0, ref = 0.0;
    for (index_t i = 0; i < got.numel(); ++i) {
      err = std::max(err, std::fabs(static_cast<double>(got.data()[i]) - spec.data()[i]));
      ref = std::max(ref, std::fabs(static_cast<double>(spec.data()[i])));
    }
    CHECK(err <= 1e-5 * std::max(ref, 1.0));  // f32 summation order only (K ≤ 64)
  }
  SECTION("a down stack whose geometry disagrees with gate/up names it") {
    using Layer = AnyMoeExperts<SiluGate, f32>;
    CHECK_THROWS_WITH(Layer::separate_gate_up(SiluGate{}, t.gate, t.up, t.gate),
                      Catch::Contains("down stack") && Catch::Contains("expected [E, H, I] = [4, 64, 32]"));
  }
}

TEST_CASE("moe_weights: a tensor that is no expert weight format is a dtype_error naming it", "[moe_weights]") {
  TempDir dir;
  {
    io::SafetensorsWriter w;
    w.add("experts.i32", Tensor<i32, 3>({2, 32, 32}));
    w.add("experts.per.0", Tensor<bf16, 2>({32, 32}));
    w.add("experts.per.1", Tensor<f32, 2>({32, 32}));
    w.write(dir / "m.safetensors");
  }
  WeightSource src = WeightSource::open(dir / "m.safetensors");
  CHECK_THROWS_WITH(AnyExpertStack::stacked(src.tensor("experts.i32")),
                    Catch::Contains("experts.i32") && Catch::Contains("I32"));
  const std::vector<io::AnyTensor> mixed{src.tensor("experts.per.0"), src.tensor("experts.per.1")};
  CHECK_THROWS_AS(AnyExpertStack::per_expert(mixed), dtype_error);
}
