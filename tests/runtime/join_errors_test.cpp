// A refused join says why (issue 16): a peer that closes the stream right after our
// message (another key or label), a service that is not memberlist, nothing listening, and
// a peer that never answers each give their own status and message.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <thread>

#include "helpers.h"
#include "wire/wire.h"

namespace memberlist::runtime::test {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

// A loopback TCP server on its own thread that accepts one connection, reads what arrives
// (briefly), then writes `answer` (nothing = stays silent until destroyed) and closes.
// Only its thread touches the acceptor until it is joined: the destructor wakes a pending
// accept by connecting, never by closing the acceptor under it (a data race in Asio).
class FakeServer {
 public:
  explicit FakeServer(std::string answer, bool silent = false)
      : acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        port_(acceptor_.local_endpoint().port()),
        answer_(std::move(answer)),
        silent_(silent) {
    thread_ = std::thread([this] {
      boost::system::error_code ec;
      tcp::socket sock(ioc_);
      acceptor_.accept(sock, ec);
      if (ec) return;
      {
        std::lock_guard<std::mutex> l(mu_);
        if (stop_) return;  // the destructor's wake-up call
      }
      std::array<char, 256> buf{};
      sock.read_some(asio::buffer(buf), ec);  // the join's first bytes
      if (silent_) {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [this] { return stop_; });
        return;
      }
      asio::write(sock, asio::buffer(answer_), ec);
      sock.shutdown(tcp::socket::shutdown_both, ec);
    });
  }
  ~FakeServer() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    asio::io_context ioc;
    tcp::socket wake(ioc);
    boost::system::error_code ec;
    wake.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
    thread_.join();
  }  // the acceptor closes after the join, freeing the port
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  uint16_t port_;
  std::string answer_;
  bool silent_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

class JoinErrors : public ::testing::Test {
 protected:
  std::shared_ptr<Runtime> rt = std::make_shared<Runtime>(2);

  // Joins a fresh node (options from `tweak`) to `address` and returns the status.
  Status join(const std::string& address, const std::function<void(Options&)>& tweak = {}) {
    auto o = fast_options("joiner-" + std::to_string(++count_));
    if (tweak) tweak(o);
    auto n = make_node(rt, o);
    if (!n) return Status::error(core::Errc::state, "no node");
    Status st;
    EXPECT_EQ(n->join({address}, st), 0);
    return st;
  }
  int count_ = 0;
};

bool has(const Status& st, const std::string& needle) { return st.message.find(needle) != std::string::npos; }

TEST_F(JoinErrors, WrongKeyIsARefusal) {
  auto o = fast_options("keyed");
  o.framing.keyring = std::make_shared<wire::Keyring>();
  ASSERT_TRUE(o.framing.keyring->install(std::vector<uint8_t>(16, 0xA1)).ok());
  auto seed = make_node(rt, o);
  ASSERT_TRUE(seed);
  Status st = join(addr_of(*seed), [](Options& j) {
    j.framing.keyring = std::make_shared<wire::Keyring>();
    ASSERT_TRUE(j.framing.keyring->install(std::vector<uint8_t>(16, 0x5E)).ok());
  });
  EXPECT_EQ(st.code, core::Errc::rejected) << st.message;
  EXPECT_TRUE(has(st, "closed the connection right after our message")) << st.message;
  EXPECT_TRUE(has(st, "key or label")) << st.message;
}

TEST_F(JoinErrors, WrongLabelIsARefusal) {
  auto o = fast_options("labelled");
  o.framing.label = "blue";
  auto seed = make_node(rt, o);
  ASSERT_TRUE(seed);
  Status st = join(addr_of(*seed), [](Options& j) { j.framing.label = "green"; });
  EXPECT_EQ(st.code, core::Errc::rejected) << st.message;
  EXPECT_TRUE(has(st, "closed the connection right after our message")) << st.message;
}

TEST_F(JoinErrors, OutsideTheAllowListIsARefusal) {
  auto o = fast_options("guarded");
  o.allowed_cidrs = {"10.0.0.0/8"};  // not loopback
  auto seed = make_node(rt, o);
  ASSERT_TRUE(seed);
  Status st = join(addr_of(*seed));
  EXPECT_EQ(st.code, core::Errc::rejected) << st.message;
  EXPECT_TRUE(has(st, "allow-list")) << st.message;
}

TEST_F(JoinErrors, NothingListening) {
  std::string address;
  {
    FakeServer gone("");  // takes a free port, then frees it
    address = gone.address();
  }
  Status st = join(address);
  EXPECT_EQ(st.code, core::Errc::io) << st.message;
  EXPECT_TRUE(has(st, "connection refused by")) << st.message;
  EXPECT_TRUE(has(st, "nothing listens")) << st.message;
}

TEST_F(JoinErrors, NotMemberlist) {
  FakeServer http("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  Status st = join(http.address());
  EXPECT_EQ(st.code, core::Errc::protocol) << st.message;
  EXPECT_TRUE(has(st, "not memberlist")) << st.message;
  EXPECT_TRUE(has(st, "\"HTTP\"")) << st.message;
}

TEST_F(JoinErrors, SilentPeerTimesOut) {
  FakeServer silent("", true);
  Status st = join(silent.address());  // tcp_timeout is 1 s in the Local preset
  EXPECT_EQ(st.code, core::Errc::timeout) << st.message;
  EXPECT_TRUE(has(st, "timed out")) << st.message;
  EXPECT_TRUE(has(st, "waiting for its reply")) << st.message;
}

}  // namespace
}  // namespace memberlist::runtime::test
