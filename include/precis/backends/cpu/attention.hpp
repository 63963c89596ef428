// precis/backends/cpu/attention.hpp — attention on the CPU, reading K/V from any KV cache layout:
// a decode path (one query token per sequence, several sequences at once) and a prefill path
// (many query tokens of one sequence), both with online softmax.
//
//   namespace cpu = precis::backends::cpu;
//   Tensor<bf16, 3> o = cpu::attention_decode(q, views, cfg, sinks);   // q [B, H, Dh], B views
//   Tensor<bf16, 3> p = cpu::attention_prefill(q, cache.sequence(l), cfg);  // q [T, H, Dh]
//
// The math is nn/attention.hpp's reference (model-semantics §1a): s_j = (q·k_j)·scale in f32,
// keys i − w < j ≤ i visible (w = sliding window, 0 = full), optional per-head sink logit
// (unscaled, unmasked, no value), o = Σ p_j·v_j accumulated in f32, rounded once to Act.
//
// Online softmax (Milakov & Gimelshein 2018; FlashAttention, Dao et al. 2022): each query row
// keeps its running max m, running sum l = Σ exp(s_j − m) and unnormalised output
// o = Σ exp(s_j − m)·v_j; a key block whose max raises m to m' rescales l and o by
// α = exp(m − m'). At most one block of scores exists per row, so a 128k-token context never
// materialises a score row, and no exp overflows (every argument is ≤ 0). The sink is folded in
// before the first block as in ggml's CPU flash attention (§1a): m = s_h, l = 1, o = 0. A sink
// of −∞ leaves m = −∞, l = 0, which is exactly the sink-free start.
//
// Blocking: key blocks are [b·Bk, (b + 1)·Bk) in *absolute* positions, cut to each row's
// visible range; score groups of fbatch::size keys are aligned the same way. The arithmetic a
// query row sees therefore depends only on its position and on the keys — never on where the
// cache stores them or how queries are batched: contiguous, ring-buffer and paged caches,
// decode and prefill, one sequence or several all give bit-identical outputs (tests/unit/
// attention checks this exactly). Results do not depend on the thread count either: every row
// is computed by one task in a fixed order.
//
// Work split (oneTBB): decode runs one task per (sequence, kv head); the G = H / Hkv query heads
// of that kv head (8 for gpt-oss 64/8 and for Qwen3-30B-A3B 32/4, §1a/§1b) share every K/V
// load, and K/V are streamed from memory once. Prefill runs one task per (tile of Tq query
// tokens, kv head): each K/V block is loaded once per tile and reused by Tq·G rows.
//
// Kernels (xsimd, any ISA; AVX-512 on Zen 4): per block, each K/V row is loaded once from the
// cache (one kv head's rows are one contiguous stream: the caches store K/V head-major), and the
// rows one block ahead are prefetched into L2 while this block is computed (prefetch_ahead).
// f32 rows are read in place; bf16 V rows are widened in
// registers (the 16 bits become the top half of a binary32 — exact) into an L1-resident f32
// tile that the G heads share. Scores: bf16 q·k with `vdpbf16ps` where the CPU has AVX512-BF16
// (PRECIS_ATTN_BF16_DOT below: bf16 K is then never widened), otherwise FMAs over f32 chunks;
// one register per key, fbatch::size keys reduced at once with a transposing lane sum.
// Probabilities: `xsimd::exp` (≤ 1 ulp from std::exp on normal results; results below 2^-126
// flush to 0). P·V: each V row loaded once per chunk of heads whose output rows stay in
// registers. head_dim 64 and 128 are compiled with fixed chunk counts; other head_dims use
// run-time counts with a scalar tail.
//
// Decode does 4·G·Dh FLOP per 2·Dh·sizeof(K) bytes of K/V: 2·G / sizeof(K) FLOP/byte, 4 for f32
// and 8 for bf16 at G = 8. On the reference machine (2 Zen 4 cores, ~230 GFLOP/s f32 FMA peak,
// ~28 GB/s read) that is about balanced, and the measured decode time is close to the kernel's
// in-cache compute time *plus* the DRAM time (docs/performance.md): the two overlap little.
#pragma once

#include <algorithm>  // std::max, std::min
#include <array>      // std::array
#include <bit>        // std::bit_cast
#include <cmath>      // std::exp
#include <concepts>   // std::same_as
#include <cstdint>    // std::uint32_t
#include <limits>     // std::numeric_limits
#include <optional>   // std::optional
#include <span>       // std::span
#include <utility>    // std::forward
#include <vector>     // std::vector

#include <oneapi/tbb/blocked_range.h>  // tbb::blocked_range
#include <oneapi/tbb/parallel_for.h>   // tbb::parallel_for
#include <oneapi/tbb/partitioner.h>    // tbb::simple_partitioner

#include <precis/backends/cpu/arch.hpp>      // fbatch, <immintrin.h> on AVX-512 builds
#include <precis/backends/cpu/parallel.hpp>  // serial_cutoff, max_threads, detail::thread_scratch, round_up
#include <precis/core/dtype.hpp>             // precis::f32, bf16, same_dtype_no_implicit_cast
#include <precis/core/error.hpp>             // precis::shape_error, config_error, PRECIS_CHECK
#include <precis/core/scalar.hpp>            // precis::from_compute
#include <precis/core/tensor.hpp>            // precis::Tensor
#include <precis/nn/attention.hpp>           // AttentionConfig, detail::check_attention_*
#include <precis/nn/kv_cache.hpp>            // precis::KvSequenceView, KvSegment, KvStoredView
#include <precis/nn/kv_format.hpp>           // precis::KvFormat, kv_row_bytes
#include <precis/ops/host_tensor.hpp>        // precis::HostTensorOfRank, as_const_view, format_extents

#if defined(__AVX512F__) || defined(__AVX2__) || defined(__F16C__)
#include <immintrin.h>  // _mm512_cvtepu16_epi32, _mm512_shuffle_f32x4 ... (bf16 widening, lane sums)
#endif

/// bf16 q·k with `vdpbf16ps` (AVX512-BF16: Zen 4, Sapphire Rapids): 32 bf16 products per
/// instruction, exact (8-bit × 8-bit significands), accumulated in f32 lanes with one rounding
/// per add like an FMA chain — the same (Dh + 2)·u score bound; denormal inputs and results are
/// flushed (DAZ/FTZ), an absolute error below 2^-126. K rows are read as stored, never widened.
/// Define PRECIS_ATTN_BF16_DOT=0 to widen bf16 K to f32 instead.
#ifndef PRECIS_ATTN_BF16_DOT
#if defined(__AVX512BF16__) && defined(__AVX512F__)
#define PRECIS_ATTN_BF16_DOT 1
#else
#define PRECIS_ATTN_BF16_DOT 0
#endif
#endif

namespace precis::backends::cpu {

/// The activation dtypes the CPU attention kernels take (K/V are the same dtype: the cache
/// stores the compute type, nn/kv_cache.hpp).
template <class A>
concept cpu_attention_dtype = std::same_as<A, f32> || std::same_as<A, bf16>;

namespace detail {

inline constexpr index_t attn_lanes = static_cast<index_t>(fbatch::size);
/// Keys per online-softmax step (Bk): Bk·Dh = 8192, i.e. one f32 tile of a block is 32 KiB
/// (Zen 4's L1D): 128 keys at Dh = 64, 64 at Dh = 128, and at most 256. Larger blocks amortise
/// the per-block rescaling; measured on the reference machine (decode, 1 thread), Bk 128 beat 64
/// by ~20 % at Dh = 64 and tied at Dh = 128, where 128 no longer fits the tile in L1.
inline constexpr index_t attn_max_key_block = 256;
[[nodiscard]] constexpr index_t attn_key_block_for(index_t head_dim) noexcept {
  const index_t bk = 8192 / std::max<index_t>(head_dim, 1) / attn_lanes * attn_lanes;
  return std::clamp<index_t>(bk, attn_lanes, attn_max_key_block);
}
/// Query tokens per prefill task (Tq): Tq·G rows reuse each loaded K/V block.
inline constexpr index_t attn_query_tile = 16;

/// fbatch::size values of an activation dtype at p, widened to f32 (exact).
template <cpu_attention_dtype A>
[[nodiscard]] inline fbatch load_widened(const storage_t<A>* p) noexcept {
  if constexpr (std::same_as<A, f32>) {
    return fbatch::load_unaligned(p);
  } else {
#if defined(__AVX512F__)
    if constexpr (fbatch::size == 16) {
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      return fbatch(_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
    }
#elif defined(__AVX2__)
    if constexpr (fbatch::size == 8) {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      return fbatch(_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)));
    }
#endif
    alignas(64) float tmp[fbatch::size];
    for (std::size_t i = 0; i < fbatch::size; ++i) tmp[i] = std::bit_cast<float>(static_cast<std::uint32_t>(p[i].bits) << 16);
    return fbatch::load_aligned(tmp);
  }
}

template <cpu_attention_dtype A>
[[nodiscard]] inline float widen1(const storage_t<A>& v) noexcept {
  if constexpr (std::same_as<A, f32>) return v;
  else return std::bit_cast<float>(static_cast<std::uint32_t>(v.bits) << 16);
}

/// Lane i of the result is Σ of row[i]'s lanes (rows: fbatch::size batches). xsimd 8.1's
/// AVX-512 `haddp` returns the sums in the lane order 0 1 4 5 2 3 6 7 8 9 12 13 10 11 14 15, so
/// AVX-512 builds use this transposing reduction (45 shuffles and adds for 16 rows) instead;
/// xsimd's SSE/AVX versions are correct.
[[nodiscard]] inline fbatch sum_rows(const fbatch* row) noexcept {
#if defined(__AVX512F__)
  if constexpr (fbatch::size == 16) {
    __m512 t[8], u[4];
    for (int i = 0; i < 8; ++i) {  // per 128-bit lane k: [a0+a2, b0+b2, a1+a3, b1+b3]
      const __m512 a = row[2 * i], b = row[2 * i + 1];
      t[i] = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    }
    for (int j = 0; j < 4; ++j)  // per 128-bit lane k: [Σa_k, Σb_k, Σc_k, Σd_k] of rows 4j..4j+3
      u[j] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * j], t[2 * j + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_ps(t[2 * j], t[2 * j + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512 w01 = _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm512_shuffle_f32x4(u[0], u[1], _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512 w23 = _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm512_shuffle_f32x4(u[2], u[3], _MM_SHUFFLE(3, 1, 3, 1)));
    return fbatch(_mm512_add_ps(_mm512_shuffle_f32x4(w01, w23, _MM_SHUFFLE(2, 0, 2, 0)),
                                _mm512_shuffle_f32x4(w01, w23, _MM_SHUFFLE(3, 1, 3, 1))));
  }
#endif
  return xsimd::haddp(row);
}

[[nodiscard]] inline float hmax(fbatch x) noexcept {
  alignas(64) float t[fbatch::size];
  x.store_aligned(t);
  float m = t[0];
  for (std::size_t i = 1; i < fbatch::size; ++i) m = t[i] > m ? t[i] : m;
  return m;
}

/// Software prefetch of one K or V row (row_bytes from p) into L2, issued by the compute loops
/// for the row one key block ahead. Measured on the reference machine (Zen 4, decode over a
/// 4k-token cache streamed from DRAM, 2 threads, interleaved A/B runs): issuing a whole block's
/// prefetches in one burst when the block is loaded ran no faster than no prefetch at all —
/// memory and compute took turns (time ≈ DRAM time + compute time); spreading the prefetches
/// over the block's score and P·V loops gained 10–19 %; the same spread with `prefetcht0`
/// (into L1) lost 10–18 %: every outstanding L1 fill holds one of the few L1 miss buffers the
/// block's own demand loads need.
inline void prefetch_ahead(const void* p, index_t row_bytes) noexcept {
  if (p == nullptr) return;
  const auto* bytes = static_cast<const char*>(p);
  for (index_t off = 0; off < row_bytes; off += 64) __builtin_prefetch(bytes + off, 0, 2);
}

/// The rows of one key block as the block step reads them, indexed by position in the block.
struct attn_block_rows {
  const float* const* k;          // K rows as f32 (in place, or widened into the tile)
  const bfloat16* const* k_bf16;  // K rows as stored (bf16 dot path only; k unused then)
  const float* const* v;          // V rows as f32
  const void* const* k_ahead;     // the K row one block later, to prefetch (nullptr: past the end)
  const void* const* v_ahead;     // the same for V
  index_t row_bytes;              // bytes of one stored K row (head_dim · sizeof(store), or the format's)
  index_t v_row_bytes;            // bytes of one stored V row
  bool prefetch;                  // issue the prefetches (once per block: the first token's step)
};

/// Hands out the K/V rows of one kv head by absolute position, walking the view's segments
/// forward. f32 rows are returned in place; bf16 rows are widened into the tiles first. Each
/// load also records the rows one block ahead, which the block step prefetches while it computes
/// (a decode task is a pure stream of its kv head's rows).
template <cpu_attention_dtype A>
class kv_block_reader {
 public:
  kv_block_reader(const KvSequenceView<A>& kv, index_t kv_head, index_t bk, float* k_tile, float* v_tile) noexcept
      : segs_(kv.segments()), end_(kv.length()), kv_head_(kv_head), dh_(kv.head_dim()), bk_(bk), k_tile_(k_tile),
        v_tile_(v_tile) {}

  /// Rows of positions blk + [ia, ib) into krow[ia..ib), vrow[ia..ib) — and, with RawK, the
  /// stored K rows into kraw[ia..ib) instead of widened ones into krow. Positions never
  /// decrease between calls.
  template <bool RawK = false>
  void load(index_t blk, index_t ia, index_t ib, const float** krow, const float** vrow, const void** kahead,
            const void** vahead, const storage_t<A>** kraw = nullptr) {
    for (index_t i = ia; i < ib; ++i) {
      const storage_t<A>* k;
      const storage_t<A>* v;
      row(blk + i, cur_, k, v);
      kahead[i] = vahead[i] = nullptr;
      if (const index_t ahead = blk + i + bk_; ahead < end_) {
        const storage_t<A>* kp;
        const storage_t<A>* vp;
        row(ahead, ahead_, kp, vp);
        kahead[i] = kp;
        vahead[i] = vp;
      }
      if constexpr (std::same_as<A, f32>) {
        krow[i] = k;
        vrow[i] = v;
      } else {
        if constexpr (RawK) kraw[i] = k;
        else krow[i] = widen_row(k, k_tile_ + i * dh_);
        vrow[i] = widen_row(v, v_tile_ + i * dh_);
      }
    }
  }

 private:
  /// Where a forward walk over the segments stands: the current segment's positions
  /// [begin, end) and this kv head's row 0 and row strides in it.
  struct cursor {
    std::size_t seg = 0;
    index_t begin = 0, end = -1;  // end < begin: not yet positioned
    const storage_t<A>* k = nullptr;
    const storage_t<A>* v = nullptr;
    index_t k_stride = 0, v_stride = 0;
  };
  void row(index_t pos, cursor& c, const storage_t<A>*& k, const storage_t<A>*& v) const noexcept {
    if (pos >= c.end) {
      if (c.end >= c.begin) ++c.seg;  // positioned: move past the segment just finished
      while (segs_[c.seg].position + segs_[c.seg].size() <= pos) ++c.seg;
      const KvSegment<A>& s = segs_[c.seg];
      c.begin = s.position;
      c.end = s.position + s.size();
      c.k = s.k.data() + kv_head_ * s.k.stride(1);
      c.v = s.v.data() + kv_head_ * s.v.stride(1);
      c.k_stride = s.k.stride(0);
      c.v_stride = s.v.stride(0);
    }
    k = c.k + (pos - c.begin) * c.k_stride;
    v = c.v + (pos - c.begin) * c.v_stride;
  }
  const float* widen_row(const storage_t<A>* src, float* dst) const noexcept {
    index_t d = 0;
    for (; d + attn_lanes <= dh_; d += attn_lanes) load_widened<A>(src + d).store_unaligned(dst + d);
    for (; d < dh_; ++d) dst[d] = widen1<A>(src[d]);
    return dst;
  }

  std::span<const KvSegment<A>> segs_;
  cursor cur_, ahead_;
  index_t end_, kv_head_, dh_, bk_;
  float* k_tile_;
  float* v_tile_;
};

/// Decodes one stored row of format `f` (nn/kv_format.hpp) into dst [dh] and returns the f32
/// row: in place for f32, else dst. Bit-identical to kv_decode_row_reference (every value is
/// an exact widening, or code · scale rounded once). head_dim is a multiple of 32 for the block
/// formats (checked when the cache was made).
[[nodiscard]] inline const float* decode_kv_row(KvFormat f, const std::uint8_t* src, index_t dh, float* dst) noexcept {
  switch (f) {
    case KvFormat::f32: return reinterpret_cast<const float*>(src);
    case KvFormat::bf16: {
      const auto* p = reinterpret_cast<const bfloat16*>(src);
      index_t d = 0;
      for (; d + attn_lanes <= dh; d += attn_lanes) load_widened<bf16>(p + d).store_unaligned(dst + d);
      for (; d < dh; ++d) dst[d] = widen1<bf16>(p[d]);
      return dst;
    }
    case KvFormat::f16: {
      index_t d = 0;
#if defined(__F16C__)
      for (; d + 8 <= dh; d += 8)
        _mm256_storeu_ps(dst + d, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * d))));
#endif
      for (; d < dh; ++d) {
        std::uint16_t b = 0;
        std::memcpy(&b, src + 2 * d, 2);
        dst[d] = static_cast<float>(float16::from_bits(b));
      }
      return dst;
    }
    case KvFormat::q8_0:
    case KvFormat::q4_0: {
      const bool q8 = f == KvFormat::q8_0;
      const std::size_t block_bytes = q8 ? sizeof(block_q8_0) : sizeof(block_q4_0);
      for (index_t b = 0; b < dh / 32; ++b) {
        const std::uint8_t* blk = src + static_cast<std::size_t>(b) * block_bytes;
        std::uint16_t bits = 0;
        std::memcpy(&bits, blk, 2);
        const float scale = static_cast<float>(float16::from_bits(bits));
        const std::uint8_t* qs = blk + 2;
        float* out = dst + 32 * b;
#if defined(__AVX2__)
        // AVX2 (also what AVX-512 builds run: 32 values are 4 registers either way).
        const __m256 sc = _mm256_set1_ps(scale);
        if (q8) {
          for (int j = 0; j < 32; j += 8) {
            const __m256i c = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(qs + j)));
            _mm256_storeu_ps(out + j, _mm256_mul_ps(_mm256_cvtepi32_ps(c), sc));
          }
        } else {
          const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
          const __m128i mask = _mm_set1_epi8(0x0f);
          const __m128i lo = _mm_and_si128(bytes, mask), hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
          const __m256i eight = _mm256_set1_epi32(8);
          const auto put = [&](__m128i nib, float* o) {  // 8 nibble codes (bytes) → (code − 8)·d
            const __m256i c = _mm256_sub_epi32(_mm256_cvtepu8_epi32(nib), eight);
            _mm256_storeu_ps(o, _mm256_mul_ps(_mm256_cvtepi32_ps(c), sc));
          };
          put(lo, out);
          put(_mm_srli_si128(lo, 8), out + 8);
          put(hi, out + 16);
          put(_mm_srli_si128(hi, 8), out + 24);
        }
#else
        if (q8) {
          for (int j = 0; j < 32; ++j) out[j] = static_cast<float>(static_cast<std::int8_t>(qs[j])) * scale;
        } else {
          for (int j = 0; j < 16; ++j) {
            out[j] = static_cast<float>((qs[j] & 0x0f) - 8) * scale;
            out[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * scale;
          }
        }
#endif
      }
      return dst;
    }
  }
  return dst;
}

/// kv_block_reader for a KvStoredView: the same walk over segments, every row decoded into the
/// tiles from its format (f32 rows in place).
class kv_stored_reader {
 public:
  kv_stored_reader(const KvStoredView& kv, index_t kv_head, index_t bk, float* k_tile, float* v_tile) noexcept
      : segs_(kv.segments()), end_(kv.length()), kv_head_(kv_head), dh_(kv.head_dim()), bk_(bk),
        fk_(kv.format().k), fv_(kv.format().v), k_tile_(k_tile), v_tile_(v_tile) {}

  template <bool RawK = false>
  void load(index_t blk, index_t ia, index_t ib, const float** krow, const float** vrow, const void** kahead,
            const void** vahead, const void* const* = nullptr) {
    static_assert(!RawK, "stored rows have no raw bf16 dot path");
    for (index_t i = ia; i < ib; ++i) {
      const std::uint8_t *k, *v;
      row(blk + i, cur_, k, v);
      kahead[i] = vahead[i] = nullptr;
      if (const index_t ahead = blk + i + bk_; ahead < end_) {
        const std::uint8_t *kp, *vp;
        row(ahead, ahead_, kp, vp);
        kahead[i] = kp;
        vahead[i] = vp;
      }
      krow[i] = decode_kv_row(fk_, k, dh_, k_tile_ + i * dh_);
      vrow[i] = decode_kv_row(fv_, v, dh_, v_tile_ + i * dh_);
    }
  }

 private:
  struct cursor {
    std::size_t seg = 0;
    index_t begin = 0, end = -1;  // end < begin: not yet positioned
  };
  void row(index_t pos, cursor& c, const std::uint8_t*& k, const std::uint8_t*& v) const noexcept {
    if (pos >= c.end) {
      if (c.end >= c.begin) ++c.seg;
      while (segs_[c.seg].position + segs_[c.seg].size() <= pos) ++c.seg;
      c.begin = segs_[c.seg].position;
      c.end = c.begin + segs_[c.seg].size();
    }
    const KvStoredSegment& s = segs_[c.seg];
    k = s.k.row(pos - c.begin, kv_head_);
    v = s.v.row(pos - c.begin, kv_head_);
  }

  std::span<const KvStoredSegment> segs_;
  cursor cur_, ahead_;
  index_t end_, kv_head_, dh_, bk_;
  KvFormat fk_, fv_;
  float* k_tile_;
  float* v_tile_;
};

/// The G query rows of one token (one kv head's query heads) and their online-softmax state.
struct attn_rows {
  const float* q;  // [G, Dh] widened queries
  const std::uint16_t* q_bf16;  // [G, Dh] the bf16 queries as stored (bf16 dot path only)
  float* o;        // [G, Dh] unnormalised output Σ exp(s_j − m)·v_j
  float* m;        // [G] running max
  float* l;        // [G] running sum
};

/// Shape of one attention problem as the block step sees it.
struct attn_shape {
  index_t groups;  // G query heads per kv head
  index_t dh;      // head_dim
  index_t bk;      // key block
  float scale;     // softmax scale
};

/// Heads per P·V chunk: the largest power of two whose HC·NC output accumulators, NC V chunks
/// and a broadcast fit the register file (32 zmm with AVX-512, 16 otherwise) — 4 heads at
/// Dh = 64 and 2 at Dh = 128 with AVX-512. Powers of two divide the usual GQA groups (1, 4, 8).
[[nodiscard]] constexpr int attn_head_chunk_for(int nc) noexcept {
  const int budget = (fbatch::size == 16 ? 32 : 16) - nc - 2;
  int hc = 1;
  while (2 * hc * nc <= budget) hc *= 2;
  return hc;
}
template <int NC>
inline constexpr int attn_head_chunk = attn_head_chunk_for(NC);

/// P·V for heads [h0, h0 + HC) over block rows [ia, ib): o_h += Σ_i p_h[i]·v_i.
template <int NC, int HC>
inline void pv_chunk(const attn_rows& r, const attn_shape& sh, const float* s, const attn_block_rows& rows,
                     index_t ia, index_t ib, index_t h0) noexcept {
  const bool prefetch = rows.prefetch && h0 == 0;
  constexpr index_t L = attn_lanes;
  fbatch acc[HC][NC];
  for (int hh = 0; hh < HC; ++hh)
    for (int c = 0; c < NC; ++c) acc[hh][c] = fbatch::load_unaligned(r.o + (h0 + hh) * sh.dh + c * L);
  for (index_t i = ia; i < ib; ++i) {
    if (prefetch) prefetch_ahead(rows.v_ahead[i], rows.v_row_bytes);
    fbatch vv[NC];
    for (int c = 0; c < NC; ++c) vv[c] = fbatch::load_unaligned(rows.v[i] + c * L);
    for (int hh = 0; hh < HC; ++hh) {
      const fbatch p(s[(h0 + hh) * sh.bk + i]);
      for (int c = 0; c < NC; ++c) acc[hh][c] = xsimd::fma(p, vv[c], acc[hh][c]);
    }
  }
  for (int hh = 0; hh < HC; ++hh)
    for (int c = 0; c < NC; ++c) acc[hh][c].store_unaligned(r.o + (h0 + hh) * sh.dh + c * L);
}

/// Scores of two heads (g, g + 1) for one full group of L = 16 f32 keys starting at grp: each K
/// chunk is loaded once for both heads, half the loads per multiply-add of the one-head loop.
/// Measured (interleaved A/B, decode over a 4k cache): 1.12x in L2 and 1.14–1.21x from DRAM at
/// Dh 64; neutral at Dh 128 and for the bf16 dot (not used there). Every score is computed as in
/// the one-head loop: the same products in the same order and the same lane sum, so the bits do
/// not depend on which loop computed them.
template <int NC>
inline void score_pair(const attn_rows& r, const attn_shape& sh, const float* const* krow, index_t grp, index_t g,
                       float* s) noexcept {
  constexpr index_t L = attn_lanes;
  constexpr index_t KP = NC <= 4 ? 8 : 4;  // keys per pass: 2·NC query + 2·KP accumulator registers
  const fbatch scale(sh.scale);
  fbatch q0[NC], q1[NC];
  for (int c = 0; c < NC; ++c) {
    q0[c] = fbatch::load_unaligned(r.q + g * sh.dh + c * L);
    q1[c] = fbatch::load_unaligned(r.q + (g + 1) * sh.dh + c * L);
  }
  for (index_t half = 0; half < L; half += L / 2) {  // 8 keys × 2 heads fill one lane sum
    fbatch acc[L];
    for (index_t p = 0; p < L / 2 / KP; ++p)
      for (index_t k = 0; k < KP; ++k) {
        const float* kr = krow[grp + half + p * KP + k];
        fbatch kc = fbatch::load_unaligned(kr);
        fbatch t0 = q0[0] * kc, t1 = q1[0] * kc;
        for (int c = 1; c < NC; ++c) {
          kc = fbatch::load_unaligned(kr + c * L);
          t0 = xsimd::fma(q0[c], kc, t0);
          t1 = xsimd::fma(q1[c], kc, t1);
        }
        acc[p * 2 * KP + k] = t0;
        acc[p * 2 * KP + KP + k] = t1;
      }
    alignas(64) float sum[L];
    (sum_rows(acc) * scale).store_aligned(sum);
    for (index_t p = 0; p < L / 2 / KP; ++p)
      for (index_t k = 0; k < KP; ++k) {
        s[g * sh.bk + grp + half + p * KP + k] = sum[p * 2 * KP + k];
        s[(g + 1) * sh.bk + grp + half + p * KP + k] = sum[p * 2 * KP + KP + k];
      }
  }
}

/// One online-softmax step of G rows (one token) over the visible rows [ia, ib) of the key block
/// starting at absolute position blk. `s` is scratch [G, Bk]. NC = Dh / lanes when fixed at
/// compile time (Dh 64, 128), 0 for a run-time head_dim. Bf16Dot: scores from the stored bf16
/// rows (rows.k_bf16) with `vdpbf16ps` (rows.k unused).
template <int NC, bool Bf16Dot = false>
void attend_block(const attn_rows& r, const attn_shape& sh, const attn_block_rows& rows, index_t ia, index_t ib,
                  float* s) noexcept {
  const float* const* krow = rows.k;
  [[maybe_unused]] const bfloat16* const* kraw = rows.k_bf16;
  constexpr index_t L = attn_lanes;
  constexpr float neg_inf = -std::numeric_limits<float>::infinity();
  const index_t nc = NC > 0 ? NC : sh.dh / L, tail = NC > 0 ? 0 : sh.dh % L;
  const index_t g_begin = ia / L * L, g_end = detail::round_up(ib, L);  // score groups, aligned
  const fbatch scale(sh.scale);

  // --- scores s_g[j] = (q_g · k_j)·scale, j in [ia, ib), every head g -----------------------------
  // Key group outside, heads inside: a group's L rows (L·Dh·sizeof(K): 4 KiB for f32 at Dh 64)
  // stay in L1 while all G heads read them, instead of each head re-reading the block (32 KiB of
  // f32 K at Bk·Dh = 8192) from L2. Alone this measured within the ±10 % noise; it is what lets
  // score_pair share each K load between two heads.
  for (index_t grp = g_begin; grp < ib; grp += L) {
    const index_t la = std::max(grp, ia) - grp, lb = std::min(grp + L, ib) - grp;  // valid lanes
    const bool full = la == 0 && lb == L;
    if (rows.prefetch)
      for (index_t i = grp + la; i < grp + lb; ++i) prefetch_ahead(rows.k_ahead[i], rows.row_bytes);
    index_t g_first = 0;
    if constexpr (!Bf16Dot && NC == 4 && L == 16) {  // f32 K, Dh 64: two heads per K load
      if (full)
        for (; g_first + 2 <= sh.groups; g_first += 2) score_pair<NC>(r, sh, krow, grp, g_first, s);
    }
    for (index_t g = g_first; g < sh.groups; ++g) {
      float* sg = s + g * sh.bk;
      fbatch acc[L];
      if constexpr (Bf16Dot) {
#if PRECIS_ATTN_BF16_DOT
        static_assert(NC % 2 == 0, "a bf16 register holds two f32 chunks");
        constexpr int NB = NC / 2;
        const std::uint16_t* qb = r.q_bf16 + g * sh.dh;
        __m512bh qv[NB];
        for (int c = 0; c < NB; ++c) qv[c] = (__m512bh)_mm512_loadu_si512(qb + 32 * c);
        const auto dot = [&](index_t lane) {
          const bfloat16* kr = kraw[grp + lane];
          __m512 t = _mm512_dpbf16_ps(_mm512_setzero_ps(), qv[0], (__m512bh)_mm512_loadu_si512(kr));
          for (int c = 1; c < NB; ++c) t = _mm512_dpbf16_ps(t, qv[c], (__m512bh)_mm512_loadu_si512(kr + 32 * c));
          return fbatch(t);
        };
        if (full) {
          for (index_t lane = 0; lane < L; ++lane) acc[lane] = dot(lane);
        } else {
          for (index_t lane = 0; lane < L; ++lane) acc[lane] = lane >= la && lane < lb ? dot(lane) : fbatch(0.0f);
        }
        (sum_rows(acc) * scale).store_unaligned(sg + grp);
#endif
      } else if constexpr (NC > 0) {
        const float* qg = r.q + g * sh.dh;
        fbatch qv[NC];
        for (int c = 0; c < NC; ++c) qv[c] = fbatch::load_unaligned(qg + c * L);
        const auto dot = [&](index_t lane) {
          const float* kr = krow[grp + lane];
          fbatch t = qv[0] * fbatch::load_unaligned(kr);
          for (int c = 1; c < NC; ++c) t = xsimd::fma(qv[c], fbatch::load_unaligned(kr + c * L), t);
          return t;
        };
        if (full) {
          for (index_t lane = 0; lane < L; ++lane) acc[lane] = dot(lane);
        } else {
          for (index_t lane = 0; lane < L; ++lane) acc[lane] = lane >= la && lane < lb ? dot(lane) : fbatch(0.0f);
        }
        (sum_rows(acc) * scale).store_unaligned(sg + grp);
      } else {
        const float* qg = r.q + g * sh.dh;
        for (index_t lane = 0; lane < L; ++lane) {
          acc[lane] = fbatch(0.0f);
          if (lane < la || lane >= lb) continue;
          for (index_t c = 0; c < nc; ++c)
            acc[lane] = xsimd::fma(fbatch::load_unaligned(qg + c * L), fbatch::load_unaligned(krow[grp + lane] + c * L), acc[lane]);
        }
        sum_rows(acc).store_unaligned(sg + grp);
        for (index_t i = grp + la; i < grp + lb; ++i) {
          float t = sg[i];
          for (index_t d = nc * L; d < nc * L + tail; ++d) t += qg[d] * krow[i][d];
          sg[i] = t * sh.scale;
        }
      }
    }
  }

  for (index_t g = 0; g < sh.groups; ++g) {
    float* sg = s + g * sh.bk;
    for (index_t i = g_begin; i < ia; ++i) sg[i] = neg_inf;  // masked lanes of the edge groups
    for (index_t i = ib; i < g_end; ++i) sg[i] = neg_inf;

    // --- online softmax: m' = max(m, max_j s_j), α = exp(m − m'), p_j = exp(s_j − m') ----------
    fbatch mx(neg_inf);
    for (index_t grp = g_begin; grp < g_end; grp += L) mx = xsimd::max(mx, fbatch::load_unaligned(sg + grp));
    const float m_old = r.m[g];
    const float m_new = std::max(m_old, hmax(mx));
    const fbatch mb(m_new);
    fbatch sum(0.0f);
    for (index_t grp = g_begin; grp < g_end; grp += L) {
      const fbatch p = xsimd::exp(fbatch::load_unaligned(sg + grp) - mb);  // exp(−∞) = 0 on masked lanes
      sum += p;
      p.store_unaligned(sg + grp);
    }
    const float alpha = m_old == neg_inf ? 0.0f : std::exp(m_old - m_new);
    r.l[g] = r.l[g] * alpha + xsimd::hadd(sum);
    r.m[g] = m_new;
    if (alpha != 1.0f) {
      float* og = r.o + g * sh.dh;
      const fbatch a(alpha);
      index_t d = 0;
      for (; d + L <= sh.dh; d += L) (fbatch::load_unaligned(og + d) * a).store_unaligned(og + d);
      for (; d < sh.dh; ++d) og[d] *= alpha;
    }
  }

  // --- o_h += Σ_j p_h[j]·v_j -------------------------------------------------------------------
  if constexpr (NC > 0) {
    constexpr int HC = attn_head_chunk<NC>;
    index_t h = 0;
    for (; h + HC <= sh.groups; h += HC) pv_chunk<NC, HC>(r, sh, s, rows, ia, ib, h);
    for (; h < sh.groups; ++h) pv_chunk<NC, 1>(r, sh, s, rows, ia, ib, h);
  } else {
    const float* const* vrow = rows.v;
    if (rows.prefetch)
      for (index_t i = ia; i < ib; ++i) prefetch_ahead(rows.v_ahead[i], rows.v_row_bytes);
    for (index_t g = 0; g < sh.groups; ++g) {
      float* og = r.o + g * sh.dh;
      const float* pg = s + g * sh.bk;
      for (index_t c = 0; c < nc; ++c) {
        fbatch acc = fbatch::load_unaligned(og + c * L);
        for (index_t i = ia; i < ib; ++i) acc = xsimd::fma(fbatch(pg[i]), fbatch::load_unaligned(vrow[i] + c * L), acc);
        acc.store_unaligned(og + c * L);
      }
      for (index_t d = nc * L; d < sh.dh; ++d) {
        float acc = og[d];
        for (index_t i = ia; i < ib; ++i) acc += pg[i] * vrow[i][d];
        og[d] = acc;
      }
    }
  }
}

/// First key position query position `pos` sees.
[[nodiscard]] inline index_t first_visible(index_t pos, index_t window) noexcept {
  return window > 0 ? std::max<index_t>(0, pos - window + 1) : 0;
}

/// Scratch of one task, carved from one per-thread buffer (64-byte aligned regions).
struct attn_scratch {
  float* q;  // [Tq, G, Dh]
  float* o;  // [Tq, G, Dh]
  float* m;  // [Tq, G]
  float* l;  // [Tq, G]
  float* s;  // [G, Bk]
  float* k;  // [Bk, Dh] widened K tile (bf16)
  float* v;  // [Bk, Dh] widened V tile (bf16)

  attn_scratch(index_t n_tok, index_t groups, index_t dh, index_t bk) {
    const index_t rows = n_tok * groups;
    const index_t sizes[] = {rows * dh, rows * dh, rows, rows, groups * bk, bk * dh, bk * dh};
    index_t total = 0;
    for (index_t n : sizes) total += round_up(n, 16);
    float* p = thread_scratch<20>(total);
    float** dst[] = {&q, &o, &m, &l, &s, &k, &v};
    for (std::size_t i = 0; i < 7; ++i) {
      *dst[i] = p;
      p += round_up(sizes[i], 16);
    }
  }
};

/// Attention of the query tokens [t0, t1) of q [T, H, Dh] — positions pos0 + t — for kv head
/// `kvh` of one sequence, written to out [T, H, Dh].
template <cpu_attention_dtype A, int NC, class View>
void attend_tokens(const TensorView<const A, 3>& q, index_t t0, index_t t1, index_t pos0, index_t kvh,
                   const View& kv, const AttentionConfig& cfg,
                   const std::optional<TensorView<const f32, 1>>& sinks, index_t bk, const TensorView<A, 3>& out) {
  const index_t groups = cfg.n_heads / cfg.n_kv_heads, dh = cfg.head_dim, n_tok = t1 - t0;
  const index_t h_first = kvh * groups;
  attn_scratch sc(n_tok, groups, dh, bk);
  const attn_shape sh{groups, dh, bk, static_cast<float>(cfg.softmax_scale())};
  constexpr float neg_inf = -std::numeric_limits<float>::infinity();

  for (index_t t = 0; t < n_tok; ++t)
    for (index_t g = 0; g < groups; ++g) {
      const index_t row = t * groups + g, h = h_first + g;
      for (index_t d = 0; d < dh; ++d) {
        sc.q[row * dh + d] = widen1<A>(q(t0 + t, h, d));
        sc.o[row * dh + d] = 0.0f;
      }
      // The sink as a key seen first: m = s_h, l = exp(s_h − s_h) = 1, no value (§1a).
      const float sink = sinks ? (*sinks)(h) : neg_inf;
      sc.m[row] = sink;
      sc.l[row] = sink == neg_inf ? 0.0f : 1.0f;
    }

  // bf16 queries as stored, for the bf16 dot path.
  constexpr bool stored = std::same_as<View, KvStoredView>;
  constexpr bool dot = PRECIS_ATTN_BF16_DOT && !stored && std::same_as<A, bf16> && NC > 0 && NC % 2 == 0;
  thread_local std::vector<std::uint16_t> q_bf16;
  if constexpr (dot) {
    q_bf16.resize(static_cast<std::size_t>(n_tok * groups * dh));
    for (index_t t = 0; t < n_tok; ++t)
      for (index_t g = 0; g < groups; ++g)
        for (index_t d = 0; d < dh; ++d)
          q_bf16[static_cast<std::size_t>((t * groups + g) * dh + d)] = q(t0 + t, h_first + g, d).bits;
  }

  std::array<const float*, attn_max_key_block> krow{}, vrow{};
  std::array<const bfloat16*, attn_max_key_block> kraw{};
  std::array<const void*, attn_max_key_block> kahead{}, vahead{};
  std::conditional_t<stored, kv_stored_reader, kv_block_reader<A>> reader(kv, kvh, bk, sc.k, sc.v);
  index_t k_row_bytes = dh * static_cast<index_t>(sizeof(storage_t<A>)), v_row_bytes = k_row_bytes;
  if constexpr (stored) {
    k_row_bytes = static_cast<index_t>(kv_row_bytes(kv.format().k, dh));
    v_row_bytes = static_cast<index_t>(kv_row_bytes(kv.format().v, dh));
  }
  attn_block_rows rows{krow.data(), kraw.data(), vrow.data(), kahead.data(), vahead.data(), k_row_bytes, v_row_bytes,
                       false};
  const index_t lo = first_visible(pos0 + t0, cfg.sliding_window), hi = pos0 + t1;  // keys [lo, hi)
  for (index_t blk = lo / bk * bk; blk < hi; blk += bk) {
    const index_t ia = std::max(lo, blk) - blk, ib = std::min(hi, blk + bk) - blk;
    if constexpr (dot)
      reader.template load<true>(blk, ia, ib, krow.data(), vrow.data(), kahead.data(), vahead.data(), kraw.data());
    else reader.load(blk, ia, ib, krow.data(), vrow.data(), kahead.data(), vahead.data());
    rows.prefetch = true;  // the first token that sees this block prefetches the next one
    for (index_t t = 0; t < n_tok; ++t) {
      const index_t pos = pos0 + t0 + t;
      const index_t a = std::max(first_visible(pos, cfg.sliding_window), blk) - blk;
      const index_t b = std::min(pos + 1, blk + bk) - blk;
      if (a >= b) continue;  // no key of this block is visible to this token
      const attn_rows r{sc.q + t * groups * dh, dot ? q_bf16.data() + t * groups * dh : nullptr,
                        sc.o + t * groups * dh, sc.m + t * groups, sc.l + t * groups};
      attend_block<NC, dot>(r, sh, rows, a, b, sc.s);
      rows.prefetch = false;
    }
  }

  for (index_t t = 0; t < n_tok; ++t)
    for (index_t g = 0; g < groups; ++g) {
      const index_t row = t * groups + g;
      const float* o = sc.o + row * dh;
      const float l = sc.l[row];
      for (index_t d = 0; d < dh; ++d) out(t0 + t, h_first + g, d) = from_compute<A>(o[d] / l);
    }
}

/// Calls attend_tokens with the chunk count compiled for this head_dim.
template <cpu_attention_dtype A, class... Args>
void attend_tokens_dispatch(index_t dh, Args&&... args) {
  constexpr index_t L = attn_lanes;
  if (dh == 64 && 64 % L == 0) attend_tokens<A, static_cast<int>(64 / L)>(std::forward<Args>(args)...);
  else if (dh == 128 && 128 % L == 0) attend_tokens<A, static_cast<int>(128 / L)>(std::forward<Args>(args)...);
  else attend_tokens<A, 0>(std::forward<Args>(args)...);
}

/// Runs body(i) for i in [0, n): on the calling thread below `serial_cutoff` multiply-adds of
/// work, otherwise one TBB task per index (tasks differ in cost: ragged sequences, causal tiles).
template <class Body>
void for_each_task(index_t n, index_t work, const Body& body) {
  if (work < serial_cutoff || max_threads() <= 1 || n <= 1) {
    for (index_t i = 0; i < n; ++i) body(i);
    return;
  }
  tbb::parallel_for(
      tbb::blocked_range<index_t>(0, n, 1),
      [&](const tbb::blocked_range<index_t>& r) {
        for (index_t i = r.begin(); i < r.end(); ++i) body(i);
      },
      tbb::simple_partitioner{});
}

inline void check_key_block(index_t bk) {
  PRECIS_CHECK(bk > 0 && bk % attn_lanes == 0 && bk <= attn_max_key_block, config_error,
               "[cpu::attention] key block ", bk, " must be a positive multiple of ", attn_lanes, " up to ",
               attn_max_key_block);
}

template <cpu_attention_dtype A>
void check_out(const TensorView<A, 3>& out, const extents_t<3>& want) {
  PRECIS_CHECK(out.extents() == want, shape_error, "[cpu::attention] out ", format_extents(out.extents()),
               ", expected ", format_extents(want));
}

/// Decode: q [B, H, Dh], token b at position kv[b].length() − 1.
template <cpu_attention_dtype A, class View>
void attention_decode_impl(TensorView<const A, 3> q, std::span<const View> kv, const AttentionConfig& cfg,
                           std::optional<TensorView<const f32, 1>> sinks, TensorView<A, 3> out,
                           index_t bk = 0) {
  precis::detail::check_attention_config(cfg);
  precis::detail::check_attention_sinks(sinks, cfg);
  if (bk == 0) bk = attn_key_block_for(cfg.head_dim);  // 0: the default for this head_dim
  check_key_block(bk);
  const auto n_seq = static_cast<index_t>(kv.size());
  PRECIS_CHECK(q.extent(0) == n_seq, shape_error, "[cpu::attention_decode] q ", format_extents(q.extents()), " for ",
               n_seq, " sequences (one query token each)");
  check_out(out, q.extents());
  index_t work = 0;
  for (const auto& s : kv) {
    precis::detail::check_attention_keys({1, q.extent(1), q.extent(2)}, s.first(), s.length(), s.window(),
                                         s.n_kv_heads(), s.head_dim(), cfg);
    const index_t pos = s.length() - 1;
    work += (pos + 1 - first_visible(pos, cfg.sliding_window)) * cfg.n_heads * cfg.head_dim * 2;
  }
  const index_t hkv = cfg.n_kv_heads;
  for_each_task(n_seq * hkv, work, [&](index_t task) {
    const index_t b = task / hkv, kvh = task % hkv;
    const View& s = kv[static_cast<std::size_t>(b)];
    // Row b of q and out, seen as a one-token problem at position length − 1.
    const TensorView<const A, 3> qb = q.slice(0, b, b + 1);
    const TensorView<A, 3> ob = out.slice(0, b, b + 1);
    attend_tokens_dispatch<A>(cfg.head_dim, qb, index_t{0}, index_t{1}, s.length() - 1, kvh, s, cfg, sinks, bk, ob);
  });
}

/// Prefill: q [T, H, Dh] are positions kv.length() − T .. kv.length() − 1.
template <cpu_attention_dtype A, class View>
void attention_prefill_impl(TensorView<const A, 3> q, const View& kv, const AttentionConfig& cfg,
                            std::optional<TensorView<const f32, 1>> sinks, TensorView<A, 3> out,
                            index_t bk = 0, index_t tq = attn_query_tile) {
  precis::detail::check_attention_config(cfg);
  precis::detail::check_attention_sinks(sinks, cfg);
  if (bk == 0) bk = attn_key_block_for(cfg.head_dim);  // 0: the default for this head_dim
  check_key_block(bk);
  precis::detail::check_attention_keys(q.extents(), kv.first(), kv.length(), kv.window(), kv.n_kv_heads(),
                                       kv.head_dim(), cfg);
  check_out(out, q.extents());
  PRECIS_CHECK(tq > 0, config_error, "[cpu::attention_prefill] query tile ", tq, " must be positive");
  const index_t n_q = q.extent(0), pos0 = kv.length() - n_q, hkv = cfg.n_kv_heads;
  const index_t n_tiles = (n_q + tq - 1) / tq;
  index_t work = 0;
  for (index_t t = 0; t < n_q; ++t)
    work += (pos0 + t + 1 - first_visible(pos0 + t, cfg.sliding_window)) * cfg.n_heads * cfg.head_dim * 2;
  for_each_task(n_tiles * hkv, work, [&](index_t task) {
    // Later tiles see more keys: hand them out first.
    const index_t tile = n_tiles - 1 - task / hkv, kvh = task % hkv;
    const index_t t0 = tile * tq, t1 = std::min(n_q, t0 + tq);
    attend_tokens_dispatch<A>(cfg.head_dim, q, t0, t1, pos0, kvh, kv, cfg, sinks, bk, out);
  });
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// Decode: q [B, H, Dh] holds one query token per sequence; token b sits at the last position of
/// kv[b] (its K/V already appended). Returns [B, H, Dh] of the activation dtype. The views may
/// come from any cache layout and may have different lengths.
template <HostTensorOfRank<3> Q, cpu_attention_dtype E>
  requires same_dtype_no_implicit_cast<dtype_of<Q>, E>
[[nodiscard]] Tensor<E, 3> attention_decode(const Q& q, std::span<const KvSequenceView<E>> kv,
                                            const AttentionConfig& cfg,
                                            std::optional<TensorView<const f32, 1>> sinks = std::nullopt) {
  const TensorView<const E, 3> qv = as_const_view(q);
  Tensor<E, 3> out(qv.extents());  // [B, H, Dh]
  detail::attention_decode_impl<E, KvSequenceView<E>>(qv, kv, cfg, sinks, out.view());
  return out;
}
template <HostTensorOfRank<3> Q, cpu_attention_dtype E>
  requires same_dtype_no_implicit_cast<dtype_of<Q>, E>
[[nodiscard]] Tensor<E, 3> attention_decode(const Q& q, const std::vector<KvSequenceView<E>>& kv,
                                            const AttentionConfig& cfg,
                                            std::optional<TensorView<const f32, 1>> sinks = std::nullopt) {
  return attention_decode(q, std::span<const KvSequenceView<E>>(kv), cfg, sinks);
}

/// Prefill: q [T, H, Dh] are the last T positions of `kv` (their K/V already appended).
/// Returns [T, H, Dh].
template <HostTensorOfRank<3> Q, cpu_attention_dtype E>
  requires same_dtype_no_implicit_cast<dtype_of<Q>, E>
[[nodiscard]] Tensor<E, 3> attention_prefill(const Q& q, const KvSequenceView<E>& kv, const AttentionConfig& cfg,
                                             std::optional<TensorView<const f32, 1>> sinks = std::nullopt) {
  const TensorView<const E, 3> qv = as_const_view(q);
  Tensor<E, 3> out(qv.extents());  // [T, H, Dh]
  detail::attention_prefill_impl<E, KvSequenceView<E>>(qv, kv, cfg, sinks, out.view());
  return out;
}

/// The same over caches stored in run-time K/V formats (nn/kv_format.hpp): rows are decoded to
/// f32 into the block tiles as they are read, the math is unchanged.
template <HostTensorOfRank<3> Q>
  requires cpu_attention_dtype<dtype_of<Q>>
[[nodiscard]] Tensor<dtype_of<Q>, 3> attention_decode(const Q& q, std::span<const KvStoredView> kv,
                                                      const AttentionConfig& cfg,
                                                      std::optional<TensorView<const f32, 1>> sinks = std::nullopt) {
  using E = dtype_of<Q>;
  const TensorView<const E, 3> qv = as_const_view(q);
  Tensor<E, 3> out(qv.extents());  // [B, H, Dh]
  detail::attention_decode_impl<E, KvStoredView>(qv, kv, cfg, sinks, out.view());
  return out;
}
template <HostTensorOfRank<3> Q>
  requires cpu_attention_dtype<dtype_of<Q>>
[[nodiscard]] Tensor<dtype_of<Q>, 3> attention_prefill(const Q& q, const KvStoredView& kv, const AttentionConfig& cfg,
                                                       std::optional<TensorView<const f32, 1>> sinks = std::nullopt) {
  using E = dtype_of<Q>;
  const TensorView<const E, 3> qv = as_const_view(q);
  Tensor<E, 3> out(qv.extents());  // [T, H, Dh]
  detail::attention_prefill_impl<E, KvStoredView>(qv, kv, cfg, sinks, out.view());
  return out;
}

/// Plain tensors, as reference_attention: q [T, H, Dh] are the last T of the S positions of
/// k, v [S, Hkv, Dh]. K/V whose head_dim rows are not contiguous are copied first.
template <HostTensorOfRank<3> Q, HostTensorOfRank<3> K, HostTensorOfRank<3> V>
  requires cpu_attention_dtype<dtype_of<Q>> && same_dtype_no_implicit_cast<dtype_of<Q>, dtype_of<K>> &&
           same_dtype_no_implicit_cast<dtype_of<Q>, dtype_of<V>>
[[nodiscard]] Tensor<dtype_of<Q>, 3> attention(const Q& q, const K& k, const V& v, const AttentionConfig& cfg,
                                               std::optional<TensorView<const f32, 1>> sinks = std::nullopt) {
  using E = dtype_of<Q>;
  const TensorView<const E, 3> kv = as_const_view(k), vv = as_const_view(v);
  PRECIS_CHECK(kv.extents() == vv.extents(), shape_error, "[cpu::attention] k ", format_extents(kv.extents()),
               " and v ", format_extents(vv.extents()), " differ");
  if (kv.stride(2) != 1 || vv.stride(2) != 1) {
    const Tensor<E, 3> kc = materialize(kv), vc = materialize(vv);
    return attention(q, kc, vc, cfg, sinks);
  }
  const KvSequenceView<E> seq = KvSequenceView<E>::whole(kv, vv);
  if (as_const_view(q).extent(0) == 1) return attention_decode(q, std::span<const KvSequenceView<E>>(&seq, 1), cfg, sinks);
  return attention_prefill(q, seq, cfg, sinks);
}

}  // namespace precis::backends::cpu
