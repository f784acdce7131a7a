// The keyring's rules (the reference's AddKey / UseKey / RemoveKey / GetKeys) and its
// thread safety while frames are sealed and opened with it.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "test_util.h"
#include "wire/keyring.h"

namespace memberlist::wire::test {
namespace {

Bytes key_of(size_t n, uint8_t seed) { return bytes_of(n, seed); }

TEST(WireKeyring, ValidatesKeySizes) {
  for (size_t n : {16u, 24u, 32u}) EXPECT_TRUE(Keyring::validate_key(key_of(n, 1)).ok()) << n;
  for (size_t n : {0u, 1u, 15u, 17u, 31u, 33u, 64u}) {
    const Status s = Keyring::validate_key(key_of(n, 1));
    EXPECT_EQ(s.code, Errc::invalid) << n;
    EXPECT_NE(s.message.find("16, 24 or 32"), std::string::npos) << s.message;
    Keyring k;
    EXPECT_EQ(k.install(key_of(n, 1)).code, Errc::invalid);
    EXPECT_TRUE(k.empty());
  }
}

TEST(WireKeyring, FirstKeyIsPrimaryAndInstallIsIdempotent) {
  Keyring k;
  EXPECT_TRUE(k.empty());
  EXPECT_TRUE(k.primary().empty());
  const Bytes a = key_of(16, 1), b = key_of(24, 2), c = key_of(32, 3);
  ASSERT_TRUE(k.install(a).ok());
  ASSERT_TRUE(k.install(b).ok());
  ASSERT_TRUE(k.install(c).ok());
  ASSERT_TRUE(k.install(b).ok());  // already there: nothing changes
  EXPECT_EQ(k.size(), 3u);
  EXPECT_EQ(k.primary(), a);
  EXPECT_EQ(k.keys(), (std::vector<Bytes>{a, b, c}));
}

TEST(WireKeyring, UseMakesPrimaryAndKeepsTheOthersInOrder) {
  Keyring k;
  const Bytes a = key_of(16, 1), b = key_of(16, 2), c = key_of(16, 3);
  for (const Bytes& key : {a, b, c}) ASSERT_TRUE(k.install(key).ok());
  ASSERT_TRUE(k.use(c).ok());
  EXPECT_EQ(k.keys(), (std::vector<Bytes>{c, a, b}));
  ASSERT_TRUE(k.use(c).ok());  // already primary
  EXPECT_EQ(k.keys(), (std::vector<Bytes>{c, a, b}));
  const Status s = k.use(key_of(16, 9));
  EXPECT_EQ(s.code, Errc::not_found);
  EXPECT_NE(s.message.find("not installed"), std::string::npos) << s.message;
  EXPECT_EQ(k.primary(), c);
}

TEST(WireKeyring, RemoveRefusesThePrimary) {
  Keyring k;
  const Bytes a = key_of(32, 1), b = key_of(32, 2);
  ASSERT_TRUE(k.install(a).ok());
  ASSERT_TRUE(k.install(b).ok());
  const Status s = k.remove(a);
  EXPECT_EQ(s.code, Errc::rejected);
  EXPECT_NE(s.message.find("primary"), std::string::npos) << s.message;
  EXPECT_EQ(k.size(), 2u);
  EXPECT_TRUE(k.remove(key_of(32, 7)).ok());  // absent: fine
  EXPECT_TRUE(k.remove(b).ok());
  EXPECT_EQ(k.keys(), std::vector<Bytes>{a});
  // The last key is the primary: it cannot go either.
  EXPECT_EQ(k.remove(a).code, Errc::rejected);
}

TEST(WireKeyring, KeysAreCopies) {
  Keyring k;
  ASSERT_TRUE(k.install(key_of(16, 1)).ok());
  std::vector<Bytes> keys = k.keys();
  keys[0][0] ^= 0xff;
  Bytes primary = k.primary();
  primary[1] ^= 0xff;
  EXPECT_EQ(k.primary(), key_of(16, 1));
  // A snapshot taken before a change does not see it.
  const Keyring::Snapshot before = k.snapshot();
  ASSERT_TRUE(k.install(key_of(16, 2)).ok());
  EXPECT_EQ(before->size(), 1u);
  EXPECT_EQ(k.snapshot()->size(), 2u);
}

// One thread rotates keys while another seals and opens with the same keyring: every frame
// opens (the key it was sealed with is never removed while in use here), and ASan/TSan
// builds see no race.
TEST(WireKeyring, ConcurrentRotationWhileFraming) {
  auto ring = std::make_shared<Keyring>();
  const Bytes a = key_of(32, 1), b = key_of(32, 2);
  ASSERT_TRUE(ring->install(a).ok());
  ASSERT_TRUE(ring->install(b).ok());
  FramingOptions opt;
  opt.keyring = ring;
  std::atomic<bool> stop{false};
  std::thread rotator([&] {
    for (int i = 0; !stop; ++i) {
      ASSERT_TRUE(ring->use(i % 2 ? a : b).ok());
      ASSERT_TRUE(ring->install(key_of(16, 50)).ok());
      ASSERT_TRUE(ring->remove(key_of(16, 50)).ok());
      (void)ring->keys();
    }
  });
  const Bytes payload = bytes_of(300);
  for (int i = 0; i < 2000; ++i) {
    Bytes sealed, opened;
    ASSERT_TRUE(seal_packet(opt, payload, sealed).ok());
    const Status s = open_packet(opt, sealed, opened);
    ASSERT_TRUE(s.ok()) << s.message;
    ASSERT_EQ(opened, payload);
  }
  stop = true;
  rotator.join();
}

}  // namespace
}  // namespace memberlist::wire::test
