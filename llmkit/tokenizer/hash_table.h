// Small open-addressing hash tables for the tokenizer's hot paths: PairMap (a pair of token ids
// packed in 64 bits -> a 64-bit value) and StringIndex (a byte string -> an int32, keys kept in
// one arena). Linear probing over power-of-two slots, no deletion, no per-entry allocation;
// several times faster than std::unordered_map here. Not thread-safe for writes; concurrent
// reads of an unchanging table are fine.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace llmkit::tokenizer {

// A fast 64-bit hash of a short byte string (8 bytes per step, then a final mix).
inline uint64_t hash_bytes(std::string_view s) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (s.size() * 0xFF51AFD7ED558CCDull);
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
  }
  if (i < s.size()) {
    uint64_t w = 0;
    std::memcpy(&w, s.data() + i, s.size() - i);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
  }
  h ^= h >> 32;
  h *= 0xFF51AFD7ED558CCDull;
  return h ^ (h >> 29);
}

inline uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

// uint64 key -> uint64 value. The key ~0 is reserved (pair_key never makes it).
class PairMap {
 public:
  static constexpr uint64_t kEmpty = ~uint64_t{0};

  explicit PairMap(size_t expected = 16) { rehash(expected * 2); }

  // Pointer to the value of key, or nullptr.
  const uint64_t* find(uint64_t key) const {
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      if (keys_[i] == key) return &values_[i];
      if (keys_[i] == kEmpty) return nullptr;
    }
  }
  // The value of key, inserted as 0 when absent.
  uint64_t& operator[](uint64_t key) {
    if ((size_ + 1) * 4 > keys_.size() * 3) rehash(keys_.size() * 2);
    size_t i = slot(key);
    while (keys_[i] != key && keys_[i] != kEmpty) i = (i + 1) & mask_;
    if (keys_[i] == kEmpty) keys_[i] = key, values_[i] = 0, ++size_;
    return values_[i];
  }
  size_t size() const { return size_; }
  // Calls fn(key, value) for every entry.
  template <typename Fn>
  void for_each(Fn&& fn) const {
    for (size_t i = 0; i < keys_.size(); ++i)
      if (keys_[i] != kEmpty) fn(keys_[i], values_[i]);
  }

 private:
  size_t slot(uint64_t key) const {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (h ^ (h >> 31)) & mask_;
  }
  void rehash(size_t n) {
    size_t cap = 16;
    while (cap < n) cap *= 2;
    std::vector<uint64_t> old_keys(cap, kEmpty), old_values(cap);
    old_keys.swap(keys_);
    old_values.swap(values_);
    mask_ = cap - 1;
    size_ = 0;
    for (size_t i = 0; i < old_keys.size(); ++i)
      if (old_keys[i] != kEmpty) (*this)[old_keys[i]] = old_values[i];
  }
  std::vector<uint64_t> keys_, values_;
  size_t mask_ = 0, size_ = 0;
};

// Byte string -> int32 value (values >= 0). Keys are copied into an arena.
class StringIndex {
 public:
  explicit StringIndex(size_t expected = 16) { rehash(expected * 2); }

  // The value stored for key, or -1.
  int32_t find(std::string_view key) const { return find(key, hash_bytes(key)); }
  int32_t find(std::string_view key, uint64_t h) const {
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.value < 0) return -1;
      if (s.hash == h && s.len == key.size() &&
          std::memcmp(arena_.data() + s.offset, key.data(), key.size()) == 0)
        return s.value;
    }
  }
  // Stores key -> value (value >= 0); an existing key keeps its first value.
  void insert(std::string_view key, int32_t value) { insert(key, hash_bytes(key), value); }
  void insert(std::string_view key, uint64_t h, int32_t value) {
    if ((size_ + 1) * 4 > slots_.size() * 3) rehash(slots_.size() * 2);
    size_t i = h & mask_;
    for (;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.value < 0) break;
      if (s.hash == h && s.len == key.size() &&
          std::memcmp(arena_.data() + s.offset, key.data(), key.size()) == 0)
        return;
    }
    slots_[i] = Slot{h, arena_.size(), static_cast<uint32_t>(key.size()), value};
    arena_.append(key);
    ++size_;
  }
  size_t size() const { return size_; }
  size_t arena_bytes() const { return arena_.size(); }
  void clear() {
    for (Slot& s : slots_) s.value = -1;
    arena_.clear();
    size_ = 0;
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    size_t offset = 0;
    uint32_t len = 0;
    int32_t value = -1;
  };
  void rehash(size_t n) {
    size_t cap = 16;
    while (cap < n) cap *= 2;
    std::vector<Slot> old(cap);
    old.swap(slots_);
    mask_ = cap - 1;
    for (const Slot& s : old) {
      if (s.value < 0) continue;
      size_t i = s.hash & mask_;
      while (slots_[i].value >= 0) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_;
  std::string arena_;
  size_t mask_ = 0, size_ = 0;
};

}  // namespace llmkit::tokenizer
