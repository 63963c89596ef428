// compile_fail 04a — dtype-bugs §3 entry 4, first misuse: KVCache<f32>::update(Tensor<bf16>).
// Class C2 (E5 litgpt: "index_copy_(): self and source expected to have the same dtype, but got
// (self) Float and (source) BFloat16" — the cache defaulted to f32 under a bf16 model; E6
// torchtune's default-f32 cache). KvCache<Store>::append accepts exactly Store
// (kv_append_matches_store, nn/kv_cache.hpp). The twin uses the cache the attention layer
// makes: Attention<B, bf16>::make_cache() → KvCache<bf16>.
// expect-error: (satisfaction of|because|does not satisfy) 'kv_append_matches_store[<']
#include <precis/nn/attention.hpp>  // precis::Attention, attention_backend::reference
#include <precis/nn/kv_cache.hpp>   // precis::KvCache

using namespace precis;

index_t cf_04a(const Tensor<bf16, 3>& k, const Tensor<bf16, 3>& v);  // [T, Hkv, Dh]
index_t cf_04a(const Tensor<bf16, 3>& k, const Tensor<bf16, 3>& v) {
  const Attention<attention_backend::reference, bf16> attn(AttentionConfig{.n_heads = 8, .n_kv_heads = 2, .head_dim = 64});
#ifdef PRECIS_SHOULD_FAIL
  KvCache<f32> cache(1, 128, 2, 64);  // allocated with a hard-coded default dtype
#else
  auto cache = attn.make_cache(1, 128);  // KvCache<bf16>: the compute type
#endif
  cache.append(0, k, v);
  return cache.length(0);
}
