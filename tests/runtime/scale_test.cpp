// 200 nodes sharing one Runtime of 2 threads join one seed.
#include <iostream>

#include "helpers.h"

namespace memberlist::runtime::test {
namespace {

TEST(Scale, TwoHundredNodesOnTwoThreads) {
#if defined(__SANITIZE_THREAD__)
  // TSan slows the pool ~15x: 200 nodes then miss their probe deadlines and mark each
  // other dead. The threading it would check is covered by the smaller tests.
  GTEST_SKIP() << "too slow under ThreadSanitizer";
#endif
  constexpr int kNodes = 200;
  auto rt = std::make_shared<Runtime>(2);
  std::vector<std::shared_ptr<Node>> nodes;
  for (int i = 0; i < kNodes; ++i) {
    auto o = fast_options("s" + std::to_string(i));
    // Gentler timers: 200 nodes share two cores with the rest of the machine.
    o.core.probe_interval = std::chrono::seconds(1);
    o.core.probe_timeout = std::chrono::milliseconds(500);
    o.core.gossip_interval = std::chrono::milliseconds(200);
    // Push/pull (scaled up by the core with the cluster size) does most of the spreading.
    o.core.push_pull_interval = std::chrono::seconds(2);
    o.core.suspicion_mult = 4;
    o.core.tcp_timeout = std::chrono::seconds(5);
    auto n = make_node(rt, o);
    ASSERT_TRUE(n);
    nodes.push_back(n);
  }
  auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  };
  auto seed = addr_of(*nodes[0]);
  for (int i = 1; i < kNodes; ++i) {
    Status st;
    auto j0 = elapsed();
    // Retried: on a loaded machine (or under sanitizers) one push/pull may time out.
    ASSERT_TRUE(eventually([&] { return nodes[i]->join({seed}, st) == 1; }))
        << "node " << i << ": " << st.message;
    if (i % 20 == 1) std::cout << "join " << i << " took " << elapsed() - j0 << " ms\n";
  }
  EXPECT_TRUE(eventually([&] { return nodes[0]->num_members() == kNodes; }, std::chrono::seconds(60)))
      << nodes[0]->num_members();
  std::cout << "joined in " << elapsed() << " ms\n";
  // Gossip spreads the rest: everyone ends up knowing (nearly) everyone. Tolerant: the
  // last joiners know everyone from their push/pull, the first learn by gossip.
  EXPECT_TRUE(eventually([&] {
    for (auto& n : nodes) {
      if (n->num_members() < kNodes) return false;
    }
    return true;
  }, std::chrono::seconds(60)));
  std::cout << "converged in " << elapsed() << " ms\n";
  nodes.clear();
  std::cout << "destroyed in " << elapsed() << " ms\n";
}

}  // namespace
}  // namespace memberlist::runtime::test
