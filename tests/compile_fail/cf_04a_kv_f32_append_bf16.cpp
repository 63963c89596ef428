// compile_fail 04a — dtype-bugs §3 entry 4, first misuse: KVCache<f32>::update(Tensor<bf16>).
// Class C2 (E5 litgpt: "index_copy_(): self and source expected to have the same dtype, but got
// (self) Float and (source) BFloat16" — the cache defaulted to f32 under a bf16 model; E6
// torchtune's default-f32 cache). A cache's append accepts exactly its Store
// (kv_append_matches_store, nn/kv_cache.hpp). The twin uses the cache a model gets: the
// backend's make_kv_cache<Act>() for the model's activation dtype → kv_cache<bf16>.
// expect-error: (satisfaction of|because|does not satisfy) 'kv_append_matches_store[<']
#include <precis/backends/reference/backend.hpp>  // backends::Reference (make_kv_cache)
#include <precis/nn/kv_cache.hpp>                 // precis::PagedKvCache

using namespace precis;

index_t cf_04a(const Tensor<bf16, 3>& k, const Tensor<bf16, 3>& v);  // [T, Hkv, Dh]
index_t cf_04a(const Tensor<bf16, 3>& k, const Tensor<bf16, 3>& v) {
  const KvLayerPlan plan(full_attention_layers{}, 1);
  const PagedKvSize size{.n_kv_heads = 2, .head_dim = 64, .page_size = 16, .n_pages = 8};
#ifdef PRECIS_SHOULD_FAIL
  PagedKvCache<f32> cache(plan, size);  // allocated with a hard-coded default dtype
#else
  auto cache = backends::Reference{}.make_kv_cache<bf16>(plan, size);  // the compute type
#endif
  const KvSeqId seq = cache.add_sequence();
  cache.append(seq, 0, k, v);
  return cache.length(seq, 0);
}
