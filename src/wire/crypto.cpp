#include "wire/crypto.h"

#include <climits>
#include <memory>

#include <openssl/evp.h>
#include <openssl/rand.h>

namespace memberlist::wire::detail {
namespace {

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

const EVP_CIPHER* cipher_for(size_t key_size) {
  switch (key_size) {
    case 16: return EVP_aes_128_gcm();
    case 24: return EVP_aes_192_gcm();
    case 32: return EVP_aes_256_gcm();
    default: return nullptr;
  }
}

core::Status openssl_error(const char* step) {
  return core::Status::error(core::Errc::io, std::string("encryption failed in OpenSSL (") + step + ")");
}

// Tries one key; the context is re-initialised for each call.
bool open_with(EVP_CIPHER_CTX* ctx, const core::Bytes& key, std::span<const uint8_t> aad,
               std::span<const uint8_t> nonce, std::span<const uint8_t> ct, std::span<const uint8_t> tag,
               core::Bytes& out) {
  const EVP_CIPHER* cipher = cipher_for(key.size());
  if (cipher == nullptr) return false;
  int len = 0;
  if (EVP_DecryptInit_ex(ctx, cipher, nullptr, key.data(), nonce.data()) != 1) return false;
  if (!aad.empty() && EVP_DecryptUpdate(ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) {
    return false;
  }
  out.resize(ct.size());
  int written = 0;
  if (!ct.empty()) {
    if (EVP_DecryptUpdate(ctx, out.data(), &len, ct.data(), static_cast<int>(ct.size())) != 1) return false;
    written = len;
  }
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag.size()),
                          const_cast<uint8_t*>(tag.data())) != 1) {
    return false;
  }
  // Final is where GCM checks the tag; it writes nothing.
  if (EVP_DecryptFinal_ex(ctx, out.data() + written, &len) != 1) return false;
  out.resize(static_cast<size_t>(written + len));
  return true;
}

}  // namespace

core::Status aes_gcm_seal(std::span<const uint8_t> key, std::span<const uint8_t> aad,
                          std::span<const uint8_t> plaintext, core::Bytes& out) {
  const EVP_CIPHER* cipher = cipher_for(key.size());
  if (cipher == nullptr) return core::Status::error(core::Errc::invalid, "key size must be 16, 24 or 32 bytes");
  if (plaintext.size() > INT_MAX / 2 || aad.size() > INT_MAX / 2) {
    return core::Status::error(core::Errc::too_large, "message too large to encrypt");
  }
  Ctx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return openssl_error("context");
  const size_t start = out.size();
  out.resize(start + kGcmNonceSize + plaintext.size() + kGcmTagSize);
  uint8_t* nonce = out.data() + start;
  uint8_t* ct = nonce + kGcmNonceSize;
  if (RAND_bytes(nonce, static_cast<int>(kGcmNonceSize)) != 1) return openssl_error("RAND_bytes");
  int len = 0;
  if (EVP_EncryptInit_ex(ctx.get(), cipher, nullptr, key.data(), nonce) != 1) return openssl_error("init");
  if (!aad.empty() && EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) {
    return openssl_error("aad");
  }
  int written = 0;
  if (!plaintext.empty()) {
    if (EVP_EncryptUpdate(ctx.get(), ct, &len, plaintext.data(), static_cast<int>(plaintext.size())) != 1) {
      return openssl_error("update");
    }
    written = len;
  }
  if (EVP_EncryptFinal_ex(ctx.get(), ct + written, &len) != 1) return openssl_error("final");
  written += len;
  if (static_cast<size_t>(written) != plaintext.size()) return openssl_error("length");
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kGcmTagSize), ct + written) != 1) {
    return openssl_error("tag");
  }
  return {};
}

bool aes_gcm_open(std::span<const core::Bytes> keys, std::span<const uint8_t> aad,
                  std::span<const uint8_t> sealed, core::Bytes& plaintext) {
  if (sealed.size() < kGcmNonceSize + kGcmTagSize || sealed.size() > INT_MAX / 2 || aad.size() > INT_MAX / 2) {
    return false;
  }
  const auto nonce = sealed.first(kGcmNonceSize);
  const auto ct = sealed.subspan(kGcmNonceSize, sealed.size() - kGcmNonceSize - kGcmTagSize);
  const auto tag = sealed.last(kGcmTagSize);
  Ctx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return false;
  for (const core::Bytes& key : keys) {
    if (open_with(ctx.get(), key, aad, nonce, ct, tag, plaintext)) return true;
  }
  plaintext.clear();
  return false;
}

}  // namespace memberlist::wire::detail
