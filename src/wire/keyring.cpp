#include "wire/keyring.h"

#include <algorithm>
#include <string>

namespace memberlist::wire {
namespace {

bool same_key(const Keyring::Key& a, std::span<const uint8_t> b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

}  // namespace

core::Status Keyring::validate_key(std::span<const uint8_t> key) {
  if (key.size() == 16 || key.size() == 24 || key.size() == 32) return {};
  return core::Status::error(core::Errc::invalid, "key size must be 16, 24 or 32 bytes (got " +
                                                      std::to_string(key.size()) + ")");
}

Keyring::Keyring() : keys_(std::make_shared<const std::vector<Key>>()) {}

core::Status Keyring::install(std::span<const uint8_t> key) {
  if (auto s = validate_key(key); !s.ok()) return s;
  std::lock_guard lock(mu_);
  if (std::any_of(keys_->begin(), keys_->end(), [&](const Key& k) { return same_key(k, key); })) return {};
  auto next = std::make_shared<std::vector<Key>>(*keys_);
  next->emplace_back(key.begin(), key.end());
  keys_ = std::move(next);
  return {};
}

core::Status Keyring::use(std::span<const uint8_t> key) {
  std::lock_guard lock(mu_);
  auto it = std::find_if(keys_->begin(), keys_->end(), [&](const Key& k) { return same_key(k, key); });
  if (it == keys_->end()) {
    return core::Status::error(core::Errc::not_found, "cannot use a key that is not installed");
  }
  auto next = std::make_shared<std::vector<Key>>(*keys_);
  std::rotate(next->begin(), next->begin() + (it - keys_->begin()), next->begin() + (it - keys_->begin()) + 1);
  keys_ = std::move(next);
  return {};
}

core::Status Keyring::remove(std::span<const uint8_t> key) {
  std::lock_guard lock(mu_);
  auto it = std::find_if(keys_->begin(), keys_->end(), [&](const Key& k) { return same_key(k, key); });
  if (it == keys_->end()) return {};
  if (it == keys_->begin()) {
    return core::Status::error(core::Errc::rejected,
                               "cannot remove the primary key: make another key primary first");
  }
  auto next = std::make_shared<std::vector<Key>>(*keys_);
  next->erase(next->begin() + (it - keys_->begin()));
  keys_ = std::move(next);
  return {};
}

std::vector<Keyring::Key> Keyring::keys() const { return *snapshot(); }

Keyring::Key Keyring::primary() const {
  Snapshot s = snapshot();
  return s->empty() ? Key{} : s->front();
}

bool Keyring::empty() const { return snapshot()->empty(); }
size_t Keyring::size() const { return snapshot()->size(); }

Keyring::Snapshot Keyring::snapshot() const {
  std::lock_guard lock(mu_);
  return keys_;
}

}  // namespace memberlist::wire
