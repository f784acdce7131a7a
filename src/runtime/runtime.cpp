// Runtime: a fixed pool of threads running one io_context.
#include <algorithm>

#include "runtime/runtime_impl.h"

namespace memberlist::runtime {

bool Runtime::Impl::on_pool_thread() const {
  auto me = std::this_thread::get_id();
  return std::any_of(threads.begin(), threads.end(),
                     [&](const std::thread& t) { return t.get_id() == me; });
}

Runtime::Runtime(unsigned threads) : impl_(std::make_unique<Impl>()) {
  if (threads == 0) threads = 1;
  for (unsigned i = 0; i < threads; ++i) {
    impl_->threads.emplace_back([ioc = impl_->ioc.get()] {
      // A handler that throws must not take the pool (and the host) down: every handler of
      // ours catches its own errors, so this only guards against bugs.
      for (;;) {
        try {
          ioc->run();
          return;
        } catch (...) {
        }
      }
    });
  }
}

Runtime::~Runtime() {
  impl_->work.reset();
  impl_->ioc->stop();
  bool self = impl_->on_pool_thread();
  for (auto& t : impl_->threads) {
    if (t.get_id() == std::this_thread::get_id()) {
      t.detach();
    } else {
      t.join();
    }
  }
  // Destroyed from one of its own threads (the last Node released inside a handler): that
  // thread is still inside io_context::run, so the io_context must outlive it.
  if (self) (void)impl_->ioc.release();
}

}  // namespace memberlist::runtime
