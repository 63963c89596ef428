// compile_fail 04b — dtype-bugs §3 entry 4, second misuse: KVCache<fp8>::update(Tensor<bf16>)
// without a quantizer. Class C2/C7 (E8 vLLM: "First input (bf16) and second input (uint8) must
// have the same dtype!" — the fp8 cache, stored as uint8, met bf16 queries with no typed
// quantize/dequantize step). An fp8 store is spelled quantized_kv<f8_e4m3, Quantizer>, and its
// cache accepts only that quantizer's output (nn/kv_quantizer.hpp).
// expect-error: (satisfaction of|because|does not satisfy) 'kv_append_matches_store[<']
#include <precis/nn/kv_cache.hpp>      // precis::KvCache
#include <precis/nn/kv_quantizer.hpp>  // precis::PerHeadScale

using namespace precis;

index_t cf_04b(const Tensor<bf16, 3>& k, const Tensor<bf16, 3>& v);  // [T, Hkv, Dh]
index_t cf_04b(const Tensor<bf16, 3>& k, const Tensor<bf16, 3>& v) {
  KvCache<quantized_kv<f8_e4m3, PerHeadScale>> cache(1, 128, 2, 64);
#ifdef PRECIS_SHOULD_FAIL
  cache.append(0, k, v);
#else
  cache.append(0, PerHeadScale::quantize<f8_e4m3>(k), PerHeadScale::quantize<f8_e4m3>(v));
#endif
  return cache.length(0);
}
