// compile_fail 05 — dtype-bugs §3 entry 5: kv_cache.view<f16>() when the store is bf16.
// Class C2 (E9 vLLM: `--kv-cache-dtype float16` on a bf16 model — "the cache holds the model
// dtype's bits, read back as the requested dtype": 0.1621 read as 1.5361, fluent nonsense, no
// error). KvCache has no view<Other>() or reinterpret at all (nn/kv_cache.hpp): the reader gets
// TensorView<const Store, 3>, and a reader wanting f16 makes a converted copy with cast<f16>.
// The diagnostic is the absence of the member, in both compilers' words.
// expect-error: no member named 'view'
#include <precis/core/cast.hpp>    // precis::cast
#include <precis/nn/kv_cache.hpp>  // precis::KvCache

using namespace precis;

index_t cf_05(const KvCache<bf16>& cache);
index_t cf_05(const KvCache<bf16>& cache) {
#ifdef PRECIS_SHOULD_FAIL
  const auto keys = cache.view<f16>(0);  // the same bytes, "read as" f16
#else
  const auto keys = cast<f16>(cache.keys(0));  // converted values, a new Tensor<f16, 3>
#endif
  return keys.numel();
}
