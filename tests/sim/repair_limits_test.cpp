// Broadcast repair between nodes with different max_repair_broadcasts: a peer allowed more than
// this node may send more repairs in one push/pull reply than this node takes. The excess is
// skipped and counted (it comes again at a later exchange while it is fresh), not taken for a
// malformed message.
#include <gtest/gtest.h>

#include "sim/simulator.h"

namespace memberlist::sim {
namespace {

using namespace std::chrono_literals;
using core::Config;

TEST(BroadcastRepair, APeerWithAHigherLimitIsNotABadMessage) {
  Options o;
  o.seed = 5;
  o.record_events = false;
  Simulator sim(o);
  Config big = Config::local(), small = Config::local();
  big.max_repair_broadcasts = 4096;
  small.max_repair_broadcasts = 4;
  sim.add_node(big);
  for (int i = 1; i < 6; ++i) sim.add_node(small);
  sim.seed_membership();
  sim.run_for(2 * big.push_pull_interval);
  // The small nodes' digests list at most 4 broadcasts, so node 0 finds them lacking the rest
  // of its 40 and sends those: more than 4 in one reply.
  for (int k = 0; k < 40; ++k) {
    EXPECT_TRUE(sim.queue_broadcast(0, "", core::Bytes{uint8_t(k)}).ok());
    sim.run_for(50ms);
  }
  sim.run_for(2 * big.push_pull_interval);
  double bad = 0, skipped = 0;
  for (NodeId i = 1; i < 6; ++i) {
    bad += sim.core(i).metrics().counter("memberlist.bad_messages", {{"reason", "too_many_repairs"}});
    skipped += sim.core(i).metrics().counter("memberlist.user.broadcasts.repairs_skipped");
  }
  EXPECT_EQ(bad, 0);
  EXPECT_GT(skipped, 0);
  std::printf("repairs over the small nodes' limit of 4: %g skipped, %g bad messages\n", skipped, bad);
}

}  // namespace
}  // namespace memberlist::sim
