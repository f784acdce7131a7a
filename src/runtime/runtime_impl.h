// Runtime::Impl, shared by runtime.cpp and node.cpp.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <thread>
#include <vector>

#include "runtime/node.h"

namespace memberlist::runtime {

struct Runtime::Impl {
  // Heap-allocated so that a Runtime destroyed from one of its own threads can leak it
  // instead of destroying an io_context a handler is still running on.
  std::unique_ptr<boost::asio::io_context> ioc = std::make_unique<boost::asio::io_context>();
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{ioc->get_executor()};
  std::vector<std::thread> threads;

  bool on_pool_thread() const;
};

}  // namespace memberlist::runtime
