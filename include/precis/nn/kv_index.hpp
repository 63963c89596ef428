// precis/nn/kv_index.hpp — KvIndex: the host-side bookkeeping of every KV cache (which layers
// slide, which sequences are live, each sequence's length and block table, the free pages), kept
// apart from the K/V storage so that a host pool (nn/kv_cache.hpp) and a device pool (the CUDA
// backend) share one ring and one page logic.
//
// One mechanism for the three layouts. The storage of layer l is `blocks(l)` blocks of
// `block_slots(l)` slots; the index maps an absolute position to (block, slot):
//   full layer     blocks are pages of P = page_size positions taken from a pool of n_pages that
//                  every live sequence shares; position p of sequence s is in block
//                  page_table(s)[p / P], slot p mod P (vLLM's PagedAttention block table). One
//                  table serves every full layer: layer 0's append takes the pages, the other full
//                  layers write the same pages of their own storage.
//   sliding layer  one block per sequence slot, a ring of C = window − 1 + max_append slots, position
//                  p in slot p mod C. Key j is visible to query i iff i − window < j ≤ i (the window
//                  counts the current token, model-semantics §1a), so after T ≤ max_append new
//                  tokens at positions L.. the first of them needs keys from L − window + 1 on, and
//                  the ring still holds every position from L + T − C = L − window + 1 −
//                  (max_append − T) on. Memory is bounded by the window, not by the sequence
//                  (llama.cpp's SWA cache sizes its ring as window + ubatch the same way).
//   contiguous     a single sequence with one page of max_seq positions: KvCache<Store>.
//
// Readers and writers see runs (KvRun): consecutive positions stored in consecutive slots of one
// block — one run per page for a full layer, at most two for a ring. Nothing here touches K/V
// memory, so every check (layer range, live sequence, ring overrun, pool exhaustion) happens before
// a byte is written.
#pragma once

#include <algorithm>  // std::max, std::min, std::fill
#include <concepts>   // std::same_as
#include <cstddef>    // std::size_t
#include <cstdint>    // std::uint64_t
#include <span>       // std::span
#include <utility>    // std::move
#include <vector>     // std::vector

#include <precis/core/error.hpp>  // precis::range_error, config_error, PRECIS_CHECK
#include <precis/core/config.hpp>  // precis::index_t

namespace precis {

// ---------------------------------------------------------------------------------------------
// Which layers slide: KvLayerPlan
// ---------------------------------------------------------------------------------------------

/// A named rule giving each layer's attention window (0: full causal attention).
template <class P>
concept LayerWindowPattern = requires(const P& p, index_t layer) {
  { p.window_of(layer) } -> std::same_as<index_t>;
};

/// Every layer attends to the whole prefix (Llama, Qwen3-MoE: `use_sliding_window false`, §1b).
struct full_attention_layers {
  [[nodiscard]] constexpr index_t window_of(index_t) const noexcept { return 0; }
};

/// Every layer slides with one window.
struct sliding_attention_layers {
  index_t window = 0;
  [[nodiscard]] constexpr index_t window_of(index_t) const noexcept { return window; }
};

/// gpt-oss (§1a): even layers slide with a 128-token window, odd layers are full
/// (OAI `sliding_window = 128 if layer_idx % 2 == 0 else 0`; HF `layer_types`).
struct gpt_oss_alternating_layers {
  index_t window = 128;
  [[nodiscard]] constexpr index_t window_of(index_t layer) const noexcept { return layer % 2 == 0 ? window : 0; }
};

/// The window of every layer of a model, as the cache needs it: 0 = full, w > 0 = sliding.
class KvLayerPlan {
 public:
  template <LayerWindowPattern P>
  KvLayerPlan(const P& pattern, index_t n_layers) {
    PRECIS_CHECK(n_layers >= 0, config_error, "[KvLayerPlan] negative layer count ", n_layers);
    windows_.reserve(static_cast<std::size_t>(n_layers));
    for (index_t l = 0; l < n_layers; ++l) windows_.push_back(pattern.window_of(l));
    check();
  }
  /// One window per layer, e.g. from config.json `layer_types` + `sliding_window`.
  explicit KvLayerPlan(std::vector<index_t> windows) : windows_(std::move(windows)) { check(); }

  [[nodiscard]] index_t n_layers() const noexcept { return static_cast<index_t>(windows_.size()); }
  [[nodiscard]] index_t window(index_t layer) const {
    PRECIS_CHECK(layer >= 0 && layer < n_layers(), range_error, "[KvLayerPlan::window] layer ", layer,
                 " outside [0, ", n_layers(), ")");
    return windows_[static_cast<std::size_t>(layer)];
  }

 private:
  void check() const {
    for (std::size_t l = 0; l < windows_.size(); ++l)
      PRECIS_CHECK(windows_[l] >= 0, config_error, "[KvLayerPlan] layer ", l, ": negative window ", windows_[l]);
  }
  std::vector<index_t> windows_;  // [n_layers]
};

// ---------------------------------------------------------------------------------------------
// KvIndex
// ---------------------------------------------------------------------------------------------

/// A live sequence of a cache. The generation makes an id stale once its sequence is removed, so a
/// freed id cannot read or write the slot's next owner.
struct KvSeqId {
  index_t slot = -1;
  std::uint64_t generation = 0;
  friend bool operator==(const KvSeqId&, const KvSeqId&) = default;
};

/// Sizes of a paged KV cache.
struct PagedKvSize {
  index_t n_kv_heads = 0;
  index_t head_dim = 0;
  index_t page_size = 16;     ///< positions per page
  index_t n_pages = 0;        ///< pages in the pool the full-attention layers of all sequences share
  index_t max_sequences = 1;  ///< sequences alive at once (each sliding layer keeps a ring per sequence)
  index_t max_append = 1;     ///< most tokens one append brings (sizes the sliding-layer rings)
};

/// Positions [position, position + n) of one sequence, stored in slots [slot, slot + n) of `block`.
struct KvRun {
  index_t position = 0;
  index_t block = 0;
  index_t slot = 0;
  index_t n = 0;
  friend bool operator==(const KvRun&, const KvRun&) = default;
};

namespace detail {
/// After truncating a layer to `new_length`, the next query (position new_length) attends to
/// max(0, new_length − w + 1) on; those positions must still be held (oldest retained ≤ them).
[[nodiscard]] inline bool kv_truncation_keeps_window(index_t new_length, index_t window, index_t oldest) noexcept {
  if (new_length == 0 || window == 0) return true;
  return std::max<index_t>(0, new_length - window + 1) >= oldest;
}
}  // namespace detail

class KvIndex {
 public:
  /// `owner` names the cache in error messages ("PagedKvCache", "KvCache", "CudaKvCache").
  KvIndex(const KvLayerPlan& plan, const PagedKvSize& size, const char* owner = "PagedKvCache")
      : size_(size), owner_(owner) {
    PRECIS_CHECK(plan.n_layers() > 0 && size.n_kv_heads > 0 && size.head_dim > 0 && size.page_size > 0 &&
                     size.max_sequences > 0 && size.max_append > 0 && size.n_pages >= 0,
                 config_error, "[", owner_,
                 "] layers, n_kv_heads, head_dim, page_size, max_sequences and max_append must be positive and "
                 "n_pages ≥ 0, got ",
                 plan.n_layers(), ", ", size.n_kv_heads, ", ", size.head_dim, ", ", size.page_size, ", ",
                 size.max_sequences, ", ", size.max_append, ", ", size.n_pages);
    windows_.reserve(static_cast<std::size_t>(plan.n_layers()));
    for (index_t l = 0; l < plan.n_layers(); ++l) windows_.push_back(plan.window(l));
    slots_.resize(static_cast<std::size_t>(size.max_sequences));
    for (auto& s : slots_) {
      s.length.assign(windows_.size(), 0);
      s.oldest.assign(windows_.size(), 0);
    }
    // Pages never handed out are counted, not listed: a pool sized for a long context and many
    // sequences costs nothing here until used (a list of 2^30 page ids was 8 GB before any work).
    fresh_ = 0;
  }

  [[nodiscard]] const PagedKvSize& size() const noexcept { return size_; }
  [[nodiscard]] const char* owner() const noexcept { return owner_; }
  [[nodiscard]] index_t n_layers() const noexcept { return static_cast<index_t>(windows_.size()); }
  [[nodiscard]] index_t n_kv_heads() const noexcept { return size_.n_kv_heads; }
  [[nodiscard]] index_t head_dim() const noexcept { return size_.head_dim; }
  [[nodiscard]] index_t page_size() const noexcept { return size_.page_size; }
  [[nodiscard]] index_t n_pages() const noexcept { return size_.n_pages; }
  [[nodiscard]] index_t max_sequences() const noexcept { return size_.max_sequences; }
  [[nodiscard]] index_t max_append() const noexcept { return size_.max_append; }
  [[nodiscard]] index_t free_pages() const noexcept {
    return static_cast<index_t>(free_.size()) + (size_.n_pages - fresh_);
  }
  /// The window `layer`'s storage was built for (0: full).
  [[nodiscard]] index_t window(index_t layer) const { return windows_[checked_layer("window", layer)]; }
  /// Blocks of `layer`'s storage: pool pages (full layer) or one ring per sequence slot.
  [[nodiscard]] index_t blocks(index_t layer) const { return window(layer) == 0 ? n_pages() : max_sequences(); }
  /// Slots per block: page_size, or a ring's window − 1 + max_append.
  [[nodiscard]] index_t block_slots(index_t layer) const {
    const index_t w = window(layer);
    return w == 0 ? page_size() : w - 1 + max_append();
  }
  [[nodiscard]] index_t live_sequences() const noexcept {
    index_t n = 0;
    for (const auto& s : slots_) n += s.live ? 1 : 0;
    return n;
  }

  /// A new, empty sequence; range_error when max_sequences are live.
  [[nodiscard]] KvSeqId add_sequence() {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].live) continue;
      slots_[i].live = true;
      return KvSeqId{static_cast<index_t>(i), slots_[i].generation};
    }
    fail<range_error>("[", owner_, "::add_sequence] all ", size_.max_sequences, " sequence slots are live");
  }

  /// Frees `seq`: its pages return to the pool and its id becomes stale.
  void remove_sequence(KvSeqId seq) {
    slot_state& s = live("remove_sequence", seq);
    release(s);
    s.live = false;
    ++s.generation;
  }
  /// Forgets every position of `seq` in every layer and returns its pages; the id stays live.
  void clear(KvSeqId seq) { release(live("clear", seq)); }

  /// Tokens cached so far for `seq` in `layer` (the position of the next one).
  [[nodiscard]] index_t length(KvSeqId seq, index_t layer) const {
    return live("length", seq).length[checked_layer("length", layer)];
  }
  /// The oldest position `layer` still holds for `seq` (0 unless a ring has wrapped).
  [[nodiscard]] index_t first(KvSeqId seq, index_t layer) const {
    return live("first", seq).oldest[checked_layer("first", layer)];
  }
  /// Pool pages of `seq` in position order (its block table, shared by the full layers).
  [[nodiscard]] std::span<const index_t> page_table(KvSeqId seq) const { return live("page_table", seq).pages; }

  /// Positions [length, length + n_new) of `seq` in `layer`: checks that they fit (a ring takes at
  /// most max_append at once, a full layer takes the pages it lacks from the pool — all or none),
  /// calls write(run) for each run of slots they go to, then records them.
  template <class F>
  void append(KvSeqId seq, index_t layer, index_t n_new, F&& write) {
    slot_state& s = live("append", seq);
    const std::size_t l = checked_layer("append", layer);
    const index_t w = windows_[l], start = s.length[l], end = start + n_new;
    PRECIS_CHECK(n_new >= 0, range_error, "[", owner_, "::append] negative token count ", n_new);
    if (w == 0) {
      const index_t need = (end + page_size() - 1) / page_size();
      const index_t more = need - static_cast<index_t>(s.pages.size());
      PRECIS_CHECK(more <= free_pages(), range_error, "[", owner_, "::append] page pool exhausted: sequence ",
                   seq.slot, ", layer ", layer, " needs ", more, " more page(s) of ", page_size(),
                   " positions for positions [", start, ", ", end, "), ", free_pages(), " of ", n_pages(), " free");
      for (index_t i = 0; i < more; ++i) {
        if (!free_.empty()) {  // returned pages first, then fresh ones in order (page 0 first)
          s.pages.push_back(free_.back());
          free_.pop_back();
        } else {
          s.pages.push_back(fresh_++);
        }
      }
    } else {
      PRECIS_CHECK(n_new <= max_append(), range_error, "[", owner_, "::append] sequence ", seq.slot, ", layer ",
                   layer, " (sliding window ", w, ", ring of ", block_slots(layer), " positions): ", n_new,
                   " new tokens in one append exceed max_append ", max_append(),
                   " — the first of them attends to keys the ring would overwrite");
    }
    runs(s, seq, l, start, end, write);
    s.length[l] = end;
    if (w != 0) s.oldest[l] = std::max(s.oldest[l], end - block_slots(layer));
  }

  /// Calls f(run) for the positions [first, length) `layer` holds for `seq`, in position order.
  template <class F>
  void for_each_run(KvSeqId seq, index_t layer, F&& f) const {
    const slot_state& s = live("sequence", seq);
    const std::size_t l = checked_layer("sequence", layer);
    runs(s, seq, l, s.oldest[l], s.length[l], f);
  }

  /// Drops positions [new_length, length) of `seq` in `layer` (e.g. rejected speculative tokens).
  /// A ring can go back only as far as it still holds the window of the next query. Pages stay
  /// with the sequence (the other full layers share them) until clear or remove_sequence.
  void truncate(KvSeqId seq, index_t layer, index_t new_length) {
    slot_state& s = live("truncate", seq);
    const std::size_t l = checked_layer("truncate", layer);
    PRECIS_CHECK(new_length >= 0 && new_length <= s.length[l], range_error, "[", owner_, "::truncate] layer ", layer,
                 ": new length ", new_length, " outside [0, ", s.length[l], "]");
    PRECIS_CHECK(detail::kv_truncation_keeps_window(new_length, windows_[l], s.oldest[l]), range_error, "[", owner_,
                 "::truncate] layer ", layer, " (window ", windows_[l], "): the ring no longer holds position ",
                 new_length - windows_[l] + 1, " that position ", new_length,
                 " attends to (oldest held: ", s.oldest[l], ")");
    s.length[l] = new_length;
    if (new_length == 0) s.oldest[l] = 0;
  }

 private:
  struct slot_state {
    bool live = false;
    std::uint64_t generation = 0;
    std::vector<index_t> pages;   // block table of the full layers: page i holds positions [i·P, (i+1)·P)
    std::vector<index_t> length;  // [n_layers]
    std::vector<index_t> oldest;  // [n_layers] oldest position a sliding layer's ring still holds
  };

  /// The runs of positions [begin, end) of one sequence in layer l.
  template <class F>
  void runs(const slot_state& s, KvSeqId seq, std::size_t l, index_t begin, index_t end, F& f) const {
    const bool full = windows_[l] == 0;
    const index_t cap = full ? page_size() : windows_[l] - 1 + max_append();
    for (index_t p = begin; p < end;) {
      const index_t slot = p % cap, n = std::min(end - p, cap - slot);
      const index_t block = full ? s.pages[static_cast<std::size_t>(p / cap)] : seq.slot;
      f(KvRun{p, block, slot, n});
      p += n;
    }
  }

  void release(slot_state& s) {
    for (auto it = s.pages.rbegin(); it != s.pages.rend(); ++it) free_.push_back(*it);
    s.pages.clear();
    std::fill(s.length.begin(), s.length.end(), 0);
    std::fill(s.oldest.begin(), s.oldest.end(), 0);
  }

  std::size_t checked_layer(const char* op, index_t layer) const {
    PRECIS_CHECK(layer >= 0 && layer < n_layers(), range_error, "[", owner_, "::", op, "] layer ", layer,
                 " outside [0, ", n_layers(), ")");
    return static_cast<std::size_t>(layer);
  }
  const slot_state& live(const char* op, KvSeqId seq) const {
    PRECIS_CHECK(seq.slot >= 0 && seq.slot < size_.max_sequences &&
                     slots_[static_cast<std::size_t>(seq.slot)].live &&
                     slots_[static_cast<std::size_t>(seq.slot)].generation == seq.generation,
                 range_error, "[", owner_, "::", op, "] sequence (slot ", seq.slot, ", generation ", seq.generation,
                 ") is not live: removed, or never added");
    return slots_[static_cast<std::size_t>(seq.slot)];
  }
  slot_state& live(const char* op, KvSeqId seq) {
    return const_cast<slot_state&>(static_cast<const KvIndex&>(*this).live(op, seq));
  }

  PagedKvSize size_;
  const char* owner_;
  std::vector<index_t> windows_;   // [n_layers]
  std::vector<slot_state> slots_;  // [max_sequences]
  std::vector<index_t> free_;      // pool pages returned by released sequences (a stack)
  index_t fresh_ = 0;              // pages [fresh_, n_pages) were never handed out
};

}  // namespace precis
