// compile_fail seed 1 — written literally (dtype-bugs §0): gpt-oss with a custom f32 KV
// "workspace"; the MXFP4 kernels are missing, so the weights are dequantized by the fallback
// path to bf16 (transformers' Mxfp4HfQuantizer: "...we will default to dequantizing the model to
// bf16"; convert_moe_packed_tensors(..., dtype=torch.bfloat16)). The bf16 K/V then meet the f32
// virtual KV tensors: `RuntimeError: expected scalar type Float but found BFloat16`.
// Classes C7, C2, C1.
//
// In precis the dequantize target is a template argument the caller names (quant/dequantize.hpp),
// so the activation dtype is visible here as bf16, and appending bf16 K/V to a KvCache<f32> does
// not compile (kv_append_matches_store, nn/kv_cache.hpp). The twin makes the conversion explicit;
// a real model lets the backend make its cache for the compute type (make_kv_cache<Act>).
// expect-error: (satisfaction of|because|does not satisfy) 'kv_append_matches_store[<']
#include <precis/core/cast.hpp>         // precis::cast
#include <precis/nn/kv_cache.hpp>       // precis::KvCache
#include <precis/ops/matmul.hpp>        // precis::matmul
#include <precis/quant/dequantize.hpp>  // precis::dequantize
#include <precis/quant/quant_tensor.hpp>  // precis::QuantTensor

using namespace precis;

constexpr index_t n_kv_heads = 8, head_dim = 64;

index_t seed1(const QuantTensor<mxfp4, 2>& k_proj_mxfp4, const QuantTensor<mxfp4, 2>& v_proj_mxfp4,
              const Tensor<bf16, 2>& hidden);  // weights [Hkv·Dh, hidden], hidden [T, hidden]
index_t seed1(const QuantTensor<mxfp4, 2>& k_proj_mxfp4, const QuantTensor<mxfp4, 2>& v_proj_mxfp4,
              const Tensor<bf16, 2>& hidden) {
  // No MXFP4 kernel on this machine: the fallback dequantizes — to bf16.
  const Tensor<bf16, 2> k_proj = dequantize<bf16>(k_proj_mxfp4);  // [Hkv·Dh, hidden]
  const Tensor<bf16, 2> v_proj = dequantize<bf16>(v_proj_mxfp4);  // [Hkv·Dh, hidden]
  const Tensor<bf16, 2> k2 = matmul(hidden, k_proj);               // [T, Hkv·Dh]
  const Tensor<bf16, 2> v2 = matmul(hidden, v_proj);               // [T, Hkv·Dh]
  const index_t n_tok = hidden.extent(0);
  const auto k = k2.cview().reshape<3>({n_tok, n_kv_heads, head_dim});  // [T, Hkv, Dh]
  const auto v = v2.cview().reshape<3>({n_tok, n_kv_heads, head_dim});  // [T, Hkv, Dh]

  KvCache<f32> workspace(1, 4096, n_kv_heads, head_dim);  // the custom "virtual" KV tensors, f32
#ifdef PRECIS_SHOULD_FAIL
  workspace.append(0, k, v);
#else
  workspace.append(0, cast<f32>(k), cast<f32>(v));
#endif
  return workspace.length(0);
}
