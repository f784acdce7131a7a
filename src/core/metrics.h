// A small metrics registry (reference §4): counters, gauges and timers, keyed by name and
// labels. The core records what it knows (message counts, probe/gossip/push-pull timings in
// virtual time, degraded probes and timeouts, health score, queue depth, members by state,
// bad input by reason); the driver adds transport metrics (memberlist.udp.sent/received,
// memberlist.tcp.accept/connect/sent) through Core::metrics().
//
// Names are the reference's ("memberlist.msg.alive"); prometheus() renders them in the
// Prometheus text exposition format with dots turned into underscores. A listener, if set,
// sees every sample as it is recorded (it runs inside the call that records it, so it must
// not call back into the Core). Not thread-safe: it lives inside the Core and shares its
// serialization.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace memberlist::core {

struct MetricLabel {
  std::string name;
  std::string value;
  friend auto operator<=>(const MetricLabel&, const MetricLabel&) = default;
};
using MetricLabels = std::vector<MetricLabel>;

enum class MetricKind : uint8_t { Counter = 0, Gauge = 1, Timer = 2 };
const char* to_string(MetricKind k);

// A timer's summary, in milliseconds.
struct TimerStats {
  uint64_t count = 0;
  double sum = 0, min = 0, max = 0;
};

// One recorded observation: a counter increment, a gauge value or a timer duration (ms).
struct MetricSample {
  MetricKind kind = MetricKind::Counter;
  std::string name;
  MetricLabels labels;  // common labels included
  double value = 0;
};

// The current value of one series.
struct MetricValue {
  MetricKind kind = MetricKind::Counter;
  std::string name;
  MetricLabels labels;  // common labels included
  double value = 0;     // counter total or last gauge value; timers: see `timer`
  TimerStats timer;
};

class Metrics {
 public:
  using Listener = std::function<void(const MetricSample&)>;

  // Each name has one kind, fixed by its first use; a sample of another kind for the same
  // name is ignored (Prometheus allows one type per family).
  void incr(std::string_view name, double by = 1, MetricLabels labels = {});
  void set_gauge(std::string_view name, double value, MetricLabels labels = {});
  void observe_ms(std::string_view name, double ms, MetricLabels labels = {});

  // An unlabeled series for a hot path, looked up at its first record and remembered
  // (series never move or go away): the same effect as incr()/observe_ms() by name,
  // without the lookup. Belongs to one registry.
  struct Cached {
    std::string_view name;
    MetricValue* series = nullptr;
  };
  void incr(Cached& c, double by = 1);
  void observe_ms(Cached& c, double ms);

  // Current values; 0 / empty if never recorded. `labels` exclude the common labels.
  double counter(std::string_view name, const MetricLabels& labels = {}) const;
  double gauge(std::string_view name, const MetricLabels& labels = {}) const;
  TimerStats timer(std::string_view name, const MetricLabels& labels = {}) const;

  // Every series, ordered by name then labels.
  std::vector<MetricValue> snapshot() const;
  // Prometheus text format (version 0.0.4): one "# TYPE" line per family; counters and
  // gauges as `name{labels} value`; timers as summaries with quantile 0 (min) and 1 (max),
  // `_sum` and `_count`.
  std::string prometheus() const;

  void set_listener(Listener listener) { listener_ = std::move(listener); }
  // Added to every series and sample (the reference's Config.MetricLabels).
  void set_common_labels(MetricLabels labels);

 private:
  MetricValue* series(MetricKind kind, std::string_view name, MetricLabels labels);
  const MetricValue* find(std::string_view name, const MetricLabels& labels) const;
  void notify(MetricKind kind, const MetricValue& v, double value);
  void add(MetricValue& v, double by);
  void observe(MetricValue& v, double ms);

  std::map<std::pair<std::string, MetricLabels>, MetricValue, std::less<>> series_;
  // Series without labels by name, looked up without building a key (the hot path: the
  // core records per message); pointers into series_, whose nodes never move.
  std::map<std::string, MetricValue*, std::less<>> unlabeled_;
  // The same by the address of the caller's name (the core passes string literals): a hit
  // is confirmed by comparing the name, so a reused address can only miss. Bounded.
  std::unordered_map<const char*, MetricValue*> by_address_;
  std::map<std::string, MetricKind, std::less<>> kinds_;
  MetricLabels common_;
  Listener listener_;
};

// Prometheus exposition of a snapshot (what Metrics::prometheus() returns).
std::string to_prometheus(const std::vector<MetricValue>& values);
// A name or label name made valid for Prometheus: '.' and other invalid characters become
// '_', and a leading digit gets a '_' in front.
std::string prometheus_name(std::string_view name);

}  // namespace memberlist::core
