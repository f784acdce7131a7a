// The metrics registry and its Prometheus rendering.
#include "core/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace memberlist::core {

const char* to_string(MetricKind k) {
  switch (k) {
    case MetricKind::Counter: return "counter";
    case MetricKind::Gauge: return "gauge";
    case MetricKind::Timer: return "timer";
  }
  return "unknown";
}

namespace {

// Series are stored without the common labels, which are added when handed out.
MetricLabels with(const MetricLabels& common, const MetricLabels& own) {
  MetricLabels out = common;
  out.insert(out.end(), own.begin(), own.end());
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string label_set(const MetricLabels& labels, const char* extra_name = nullptr,
                      const char* extra_value = nullptr) {
  if (labels.empty() && extra_name == nullptr) return "";
  std::string out = "{";
  bool first = true;
  auto add = [&](std::string_view n, std::string_view v) {
    if (!first) out += ",";
    first = false;
    out += prometheus_name(n);
    out += "=\"";
    out += escape_label_value(v);
    out += "\"";
  };
  for (const auto& l : labels) add(l.name, l.value);
  if (extra_name != nullptr) add(extra_name, extra_value);
  out += "}";
  return out;
}

}  // namespace

std::string prometheus_name(std::string_view name) {
  std::string out;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == ':';
    out += ok ? c : '_';
  }
  if (out.empty() || (out[0] >= '0' && out[0] <= '9')) out.insert(out.begin(), '_');
  return out;
}

MetricValue* Metrics::series(MetricKind kind, std::string_view name, MetricLabels labels) {
  if (labels.empty()) {
    if (auto a = by_address_.find(name.data()); a != by_address_.end() && a->second->name == name)
      return a->second->kind == kind ? a->second : nullptr;
    if (auto u = unlabeled_.find(name); u != unlabeled_.end()) {
      if (by_address_.size() < 256) by_address_[name.data()] = u->second;
      return u->second->kind == kind ? u->second : nullptr;
    }
  }
  auto k = kinds_.find(name);
  if (k == kinds_.end()) {
    kinds_.emplace(std::string(name), kind);
  } else if (k->second != kind) {
    return nullptr;
  }
  auto key = std::make_pair(std::string(name), std::move(labels));
  auto it = series_.find(key);
  if (it == series_.end()) {
    MetricValue v;
    v.kind = kind;
    v.name = key.first;
    v.labels = key.second;
    it = series_.emplace(std::move(key), std::move(v)).first;
  }
  if (it->first.second.empty()) unlabeled_.emplace(it->first.first, &it->second);
  return &it->second;
}

void Metrics::notify(MetricKind kind, const MetricValue& v, double value) {
  if (!listener_) return;
  listener_(MetricSample{kind, v.name, with(common_, v.labels), value});
}

void Metrics::add(MetricValue& v, double by) {
  v.value += by;
  notify(MetricKind::Counter, v, by);
}

void Metrics::incr(std::string_view name, double by, MetricLabels labels) {
  if (MetricValue* v = series(MetricKind::Counter, name, std::move(labels))) add(*v, by);
}

void Metrics::incr(Cached& c, double by) {
  if (c.series == nullptr) c.series = series(MetricKind::Counter, c.name, {});
  if (c.series != nullptr) add(*c.series, by);
}

void Metrics::set_gauge(std::string_view name, double value, MetricLabels labels) {
  MetricValue* v = series(MetricKind::Gauge, name, std::move(labels));
  if (v == nullptr) return;
  v->value = value;
  notify(MetricKind::Gauge, *v, value);
}

void Metrics::observe(MetricValue& v, double ms) {
  TimerStats& t = v.timer;
  t.min = t.count == 0 ? ms : std::min(t.min, ms);
  t.max = t.count == 0 ? ms : std::max(t.max, ms);
  t.count++;
  t.sum += ms;
  notify(MetricKind::Timer, v, ms);
}

void Metrics::observe_ms(std::string_view name, double ms, MetricLabels labels) {
  if (MetricValue* v = series(MetricKind::Timer, name, std::move(labels))) observe(*v, ms);
}

void Metrics::observe_ms(Cached& c, double ms) {
  if (c.series == nullptr) c.series = series(MetricKind::Timer, c.name, {});
  if (c.series != nullptr) observe(*c.series, ms);
}

const MetricValue* Metrics::find(std::string_view name, const MetricLabels& labels) const {
  auto it = series_.find(std::make_pair(std::string(name), labels));
  return it == series_.end() ? nullptr : &it->second;
}

double Metrics::counter(std::string_view name, const MetricLabels& labels) const {
  const MetricValue* v = find(name, labels);
  return v && v->kind == MetricKind::Counter ? v->value : 0;
}

double Metrics::gauge(std::string_view name, const MetricLabels& labels) const {
  const MetricValue* v = find(name, labels);
  return v && v->kind == MetricKind::Gauge ? v->value : 0;
}

TimerStats Metrics::timer(std::string_view name, const MetricLabels& labels) const {
  const MetricValue* v = find(name, labels);
  return v && v->kind == MetricKind::Timer ? v->timer : TimerStats{};
}

std::vector<MetricValue> Metrics::snapshot() const {
  std::vector<MetricValue> out;
  out.reserve(series_.size());
  for (const auto& [key, v] : series_) {
    out.push_back(v);
    out.back().labels = with(common_, v.labels);
  }
  return out;
}

std::string Metrics::prometheus() const { return to_prometheus(snapshot()); }

void Metrics::set_common_labels(MetricLabels labels) { common_ = std::move(labels); }

std::string to_prometheus(const std::vector<MetricValue>& values) {
  // Group by family (exposed name); one TYPE line each, first kind wins.
  std::map<std::string, std::vector<const MetricValue*>> families;
  for (const auto& v : values) families[prometheus_name(v.name)].push_back(&v);
  std::string out;
  for (const auto& [name, series] : families) {
    const MetricKind kind = series.front()->kind;
    const char* type = kind == MetricKind::Counter ? "counter" : kind == MetricKind::Gauge ? "gauge" : "summary";
    out += "# TYPE " + name + " " + type + "\n";
    for (const MetricValue* v : series) {
      if (v->kind != kind) continue;
      if (kind != MetricKind::Timer) {
        out += name + label_set(v->labels) + " " + format_value(v->value) + "\n";
        continue;
      }
      const TimerStats& t = v->timer;
      if (t.count > 0) {
        out += name + label_set(v->labels, "quantile", "0") + " " + format_value(t.min) + "\n";
        out += name + label_set(v->labels, "quantile", "1") + " " + format_value(t.max) + "\n";
      }
      out += name + "_sum" + label_set(v->labels) + " " + format_value(t.sum) + "\n";
      out += name + "_count" + label_set(v->labels) + " " + format_value(static_cast<double>(t.count)) + "\n";
    }
  }
  return out;
}

}  // namespace memberlist::core
