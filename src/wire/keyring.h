// The keyring: the AES keys a node encrypts and decrypts with (the reference's Keyring).
// The primary key (index 0) encrypts; every installed key is tried to decrypt, so a
// cluster can rotate keys without anyone losing membership: install the new key
// everywhere, make it primary everywhere, then remove the old one.
//
// Thread-safe: one mutex guards the key list. The list itself is immutable once built
// (copy-on-write), so the framing takes a snapshot per message without copying keys and
// without holding the lock while it encrypts or decrypts.
#pragma once

#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "core/types.h"

namespace memberlist::wire {

class Keyring {
 public:
  using Key = core::Bytes;
  using Snapshot = std::shared_ptr<const std::vector<Key>>;

  // AES-128/192/256: a key must be 16, 24 or 32 bytes.
  static core::Status validate_key(std::span<const uint8_t> key);

  Keyring();

  // Adds a key; the first one installed becomes primary. Installing a present key is a
  // no-op. Errc::invalid if the key has a wrong size.
  core::Status install(std::span<const uint8_t> key);
  // Makes an installed key primary. Errc::not_found if it is not installed.
  core::Status use(std::span<const uint8_t> key);
  // Removes a key. Errc::rejected for the primary key (use another one first); removing
  // an absent key is not an error.
  core::Status remove(std::span<const uint8_t> key);

  // Copies of the keys, primary first.
  std::vector<Key> keys() const;
  // A copy of the primary key; empty if no key is installed.
  Key primary() const;
  bool empty() const;
  size_t size() const;

  // The current keys, primary first, for one encryption or decryption.
  Snapshot snapshot() const;

 private:
  mutable std::mutex mu_;
  Snapshot keys_;  // never null
};

}  // namespace memberlist::wire
