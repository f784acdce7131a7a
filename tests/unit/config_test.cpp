// Config presets (reference §1.3), validation, Vsn, Address helpers.
#include <gtest/gtest.h>

#include "core/config.h"

namespace memberlist::core {
namespace {

TEST(Config, LanDefaults) {
  Config c = Config::lan();
  EXPECT_EQ(c.tcp_timeout, 10s);
  EXPECT_EQ(c.indirect_checks, 3);
  EXPECT_EQ(c.retransmit_mult, 4);
  EXPECT_EQ(c.suspicion_mult, 4);
  EXPECT_EQ(c.suspicion_max_timeout_mult, 6);
  EXPECT_EQ(c.push_pull_interval, 30s);
  EXPECT_EQ(c.probe_interval, 1s);
  EXPECT_EQ(c.probe_timeout, 500ms);
  EXPECT_EQ(c.awareness_max_multiplier, 8);
  EXPECT_EQ(c.gossip_interval, 200ms);
  EXPECT_EQ(c.gossip_nodes, 3);
  EXPECT_EQ(c.gossip_to_the_dead_time, 30s);
  EXPECT_EQ(c.udp_buffer_size, 1400u);
  EXPECT_EQ(c.protocol_version, 2);
}

TEST(Config, WanOverrides) {
  Config c = Config::wan();
  EXPECT_EQ(c.tcp_timeout, 30s);
  EXPECT_EQ(c.suspicion_mult, 6);
  EXPECT_EQ(c.push_pull_interval, 60s);
  EXPECT_EQ(c.probe_interval, 5s);
  EXPECT_EQ(c.probe_timeout, 3s);
  EXPECT_EQ(c.gossip_interval, 500ms);
  EXPECT_EQ(c.gossip_nodes, 4);
  EXPECT_EQ(c.gossip_to_the_dead_time, 60s);
  EXPECT_EQ(c.indirect_checks, 3);
}

TEST(Config, LocalOverrides) {
  Config c = Config::local();
  EXPECT_EQ(c.tcp_timeout, 1s);
  EXPECT_EQ(c.indirect_checks, 1);
  EXPECT_EQ(c.retransmit_mult, 2);
  EXPECT_EQ(c.suspicion_mult, 3);
  EXPECT_EQ(c.push_pull_interval, 15s);
  EXPECT_EQ(c.probe_interval, 1s);
  EXPECT_EQ(c.probe_timeout, 200ms);
  EXPECT_EQ(c.gossip_interval, 100ms);
  EXPECT_EQ(c.gossip_nodes, 3);
  EXPECT_EQ(c.gossip_to_the_dead_time, 15s);
}

TEST(Config, Validate) {
  Config c = Config::lan();
  EXPECT_EQ(c.validate().code, Errc::invalid);  // no name
  c.name = "n1";
  EXPECT_TRUE(c.validate().ok());

  Config v = c;
  v.protocol_version = 6;
  EXPECT_NE(v.validate().message.find("protocol_version"), std::string::npos);
  v = c;
  v.protocol_version = 0;
  EXPECT_FALSE(v.validate().ok());

  v = c;
  v.meta = Bytes(513, 'x');
  Status s = v.validate();
  EXPECT_EQ(s.code, Errc::invalid);
  EXPECT_NE(s.message.find("meta"), std::string::npos);
  v.meta_max_size = 1024;
  EXPECT_TRUE(v.validate().ok());

  v = c;
  v.probe_timeout = 0s;
  EXPECT_FALSE(v.validate().ok());
  v = c;
  v.udp_buffer_size = 10;
  EXPECT_FALSE(v.validate().ok());
  v = c;
  v.indirect_checks = -1;
  EXPECT_FALSE(v.validate().ok());
}

TEST(Config, ApplicationDataKnobs) {
  Config c;
  c.name = "n1";
  EXPECT_EQ(c.max_best_effort_size, 65000u);
  EXPECT_EQ(c.max_user_msg_size, 20u << 20);
  EXPECT_EQ(c.queue_check_interval, Duration(30s));
  EXPECT_EQ(c.meta_max_size, 512u);
  EXPECT_EQ(c.delegate, nullptr);
  Config v = c;
  v.max_best_effort_size = 65508;
  EXPECT_NE(v.validate().message.find("max_best_effort_size"), std::string::npos);
  v.max_best_effort_size = 63;
  EXPECT_FALSE(v.validate().ok());
  v = c;
  v.max_user_msg_size = 0;
  EXPECT_NE(v.validate().message.find("max_user_msg_size"), std::string::npos);
  v = c;
  v.queue_check_interval = -1s;
  EXPECT_NE(v.validate().message.find("queue_check_interval"), std::string::npos);
  v.queue_check_interval = 0s;  // off
  EXPECT_TRUE(v.validate().ok());
  EXPECT_EQ(c.max_broadcast_origins, 4096u);
  v = c;
  v.max_broadcast_origins = 0;
  EXPECT_NE(v.validate().message.find("max_broadcast_origins"), std::string::npos);
  v.max_broadcast_origins = 1;
  EXPECT_TRUE(v.validate().ok());
}

TEST(Config, VsnVector) {
  Config c;
  c.protocol_version = 3;
  c.delegate_protocol_min = 1;
  c.delegate_protocol_max = 4;
  c.delegate_protocol_version = 2;
  EXPECT_EQ(c.vsn(), (Vsn{1, 5, 3, 1, 4, 2}));
}

TEST(Address, Helpers) {
  Address a = Address::v4(10, 0, 0, 1, 7946);
  EXPECT_TRUE(a.is_v4());
  EXPECT_EQ(a.to_string(), "10.0.0.1:7946");
  EXPECT_EQ(a.host_string(), "10.0.0.1");
  EXPECT_FALSE(a.empty());
  EXPECT_TRUE(Address{}.empty());

  Address v6;
  v6.ip[15] = 1;
  v6.port = 80;
  EXPECT_FALSE(v6.is_v4());
  EXPECT_EQ(v6.to_string(), "[::1]:80");
  EXPECT_LT(Address::v4(10, 0, 0, 1, 1), Address::v4(10, 0, 0, 2, 1));
  EXPECT_STREQ(to_string(NodeState::Suspect), "suspect");
}

}  // namespace
}  // namespace memberlist::core
