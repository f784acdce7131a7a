#include "wire/hashicorp/lzw.h"

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace memberlist::wire::hashicorp {
namespace {

constexpr uint32_t kClear = 256;       // 1 << litWidth
constexpr uint32_t kEnd = kClear + 1;
constexpr unsigned kMinWidth = 9;      // litWidth + 1
constexpr unsigned kMaxWidth = 12;
constexpr uint32_t kMaxCode = (1u << kMaxWidth) - 1;

// Packs codes LSB first, `width` bits each.
class BitWriter {
 public:
  explicit BitWriter(core::Bytes& out) : out_(out) {}
  void put(uint32_t code, unsigned width) {
    bits_ |= code << nbits_;
    nbits_ += width;
    for (; nbits_ >= 8; nbits_ -= 8, bits_ >>= 8) out_.push_back(static_cast<uint8_t>(bits_));
  }
  void flush() {
    if (nbits_ > 0) out_.push_back(static_cast<uint8_t>(bits_));
  }

 private:
  core::Bytes& out_;
  uint32_t bits_ = 0;
  unsigned nbits_ = 0;
};

// The writer's dictionary: (prefix code, next byte) -> code, open addressing. Any map gives
// the same output (greedy longest match); this one needs no allocation per entry.
class Dictionary {
 public:
  // Slot layout: key (20 bits: prefix << 8 | byte) << 12 | code; 0 = empty (no entry has
  // code 0).
  static constexpr size_t kSlots = 1u << 13;
  void clear() { slots_.fill(0); }
  std::optional<uint32_t> find(uint32_t key) const {
    for (size_t h = hash(key);; h = (h + 1) & (kSlots - 1)) {
      const uint32_t s = slots_[h];
      if (s == 0) return std::nullopt;
      if ((s >> kMaxWidth) == key) return s & kMaxCode;
    }
  }
  void insert(uint32_t key, uint32_t code) {
    size_t h = hash(key);
    while (slots_[h] != 0) h = (h + 1) & (kSlots - 1);
    slots_[h] = key << kMaxWidth | code;
  }

 private:
  static size_t hash(uint32_t key) { return ((key >> 12) ^ key) & (kSlots - 1); }
  std::array<uint32_t, kSlots> slots_{};
};

}  // namespace

core::Bytes lzw_compress(std::span<const uint8_t> in) {
  core::Bytes out;
  out.reserve(in.size() / 2 + 8);
  BitWriter w(out);
  unsigned width = kMinWidth;
  uint32_t hi = kEnd;            // the last code assigned
  uint32_t overflow = 1u << kMinWidth;
  auto dict = std::make_unique<Dictionary>();

  // After each code written a table entry is due: hi advances (widening the codes when it
  // reaches 2^width). When it reaches kMaxCode, Go writes Clear and starts afresh instead
  // of assigning it; then the entry is not made. Returns false in that case.
  auto advance = [&]() {
    if (++hi == overflow) {
      ++width;
      overflow <<= 1;
    }
    if (hi != kMaxCode) return true;
    w.put(kClear, width);
    width = kMinWidth;
    hi = kEnd;
    overflow = 1u << kMinWidth;
    dict->clear();
    return false;
  };

  w.put(kClear, width);
  if (!in.empty()) {
    uint32_t code = in[0];
    for (size_t i = 1; i < in.size(); ++i) {
      const uint32_t key = code << 8 | in[i];
      if (auto found = dict->find(key)) {
        code = *found;
        continue;
      }
      w.put(code, width);
      code = in[i];
      if (advance()) dict->insert(key, hi);
    }
    w.put(code, width);
    advance();
  }
  w.put(kEnd, width);
  w.flush();
  return out;
}

core::Status lzw_decompress(std::span<const uint8_t> in, size_t limit, core::Bytes& out) {
  out.clear();
  constexpr uint16_t kNone = 0xffff;  // no previous code (start, or after Clear)
  struct Table {
    std::array<uint16_t, 1u << kMaxWidth> prefix{};
    std::array<uint8_t, 1u << kMaxWidth> suffix{};
    std::array<uint8_t, 1u << kMaxWidth> scratch{};  // one code's string, built back to front
  };
  auto t = std::make_unique<Table>();

  unsigned width = kMinWidth;
  uint32_t hi = kEnd, overflow = 1u << kMinWidth;
  uint16_t last = kNone;
  uint32_t bits = 0;
  unsigned nbits = 0;
  size_t pos = 0;

  for (;;) {
    while (nbits < width) {
      if (pos == in.size()) return core::Status::error(core::Errc::protocol, "lzw: stream ends before its end code");
      bits |= uint32_t{in[pos++]} << nbits;
      nbits += 8;
    }
    const uint32_t code = bits & ((1u << width) - 1);
    bits >>= width;
    nbits -= width;

    if (code == kClear) {
      width = kMinWidth;
      hi = kEnd;
      overflow = 1u << kMinWidth;
      last = kNone;
      continue;
    }
    if (code == kEnd) return core::Status::success();
    if (code > hi) return core::Status::error(core::Errc::protocol, "lzw: invalid code " + std::to_string(code));

    // The string for `code`, back to front. Every entry's prefix is a smaller code, so the
    // walk ends at a literal within 4096 steps.
    size_t i = t->scratch.size();
    uint32_t c = code;
    if (code == hi && last != kNone) {
      // Not in the table yet (the KwKwK case): last's string plus its own first byte.
      c = last;
      while (c >= kClear) c = t->prefix[c];
      t->scratch[--i] = static_cast<uint8_t>(c);
      c = last;
    }
    while (c >= kClear) {
      if (i <= 1) return core::Status::error(core::Errc::protocol, "lzw: corrupt table");
      t->scratch[--i] = t->suffix[c];
      c = t->prefix[c];
    }
    t->scratch[--i] = static_cast<uint8_t>(c);
    const size_t n = t->scratch.size() - i;
    if (n > limit - out.size())
      return core::Status::error(core::Errc::too_large,
                                 "lzw: output larger than the limit of " + std::to_string(limit) + " bytes");
    out.insert(out.end(), t->scratch.begin() + static_cast<std::ptrdiff_t>(i), t->scratch.end());

    if (last != kNone) {  // the entry the writer made after writing `last`
      t->suffix[hi] = static_cast<uint8_t>(c);
      t->prefix[hi] = last;
    }
    last = static_cast<uint16_t>(code);
    if (++hi >= overflow) {
      if (width == kMaxWidth) {
        // Table full and no Clear: keep 12-bit codes, add no entries (as Go's reader).
        last = kNone;
        --hi;
      } else {
        ++width;
        overflow <<= 1;
      }
    }
  }
}

}  // namespace memberlist::wire::hashicorp
