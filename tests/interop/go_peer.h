// A Go memberlist 0.2.2 node in a child process (tests/interop/peer/main.go), driven by JSON
// lines: commands to its stdin, events from its stdout. Its events are flat JSON objects,
// parsed here into string maps (numbers and booleans as their text).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace memberlist::interop {

using Event = std::map<std::string, std::string>;

// {"k":"v","n":1,"b":true} -> {k: v, n: 1, b: true}; nullopt if it is not such an object.
inline std::optional<Event> parse_flat_json(const std::string& s) {
  Event ev;
  size_t i = 0;
  auto ws = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) ++i;
  };
  auto str = [&]() -> std::optional<std::string> {
    if (i >= s.size() || s[i] != '"') return std::nullopt;
    std::string out;
    for (++i; i < s.size(); ++i) {
      char c = s[i];
      if (c == '"') {
        ++i;
        return out;
      }
      if (c != '\\') {
        out += c;
        continue;
      }
      if (++i >= s.size()) return std::nullopt;
      switch (s[i]) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'u': {
          if (i + 4 >= s.size()) return std::nullopt;
          unsigned v = std::stoul(s.substr(i + 1, 4), nullptr, 16);
          i += 4;
          if (v < 0x80) {
            out += static_cast<char>(v);
          } else if (v < 0x800) {
            out += static_cast<char>(0xc0 | (v >> 6));
            out += static_cast<char>(0x80 | (v & 0x3f));
          } else {
            out += static_cast<char>(0xe0 | (v >> 12));
            out += static_cast<char>(0x80 | ((v >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (v & 0x3f));
          }
          break;
        }
        default: out += s[i];
      }
    }
    return std::nullopt;
  };
  ws();
  if (i >= s.size() || s[i++] != '{') return std::nullopt;
  ws();
  if (i < s.size() && s[i] == '}') return ev;
  for (;;) {
    ws();
    auto k = str();
    if (!k) return std::nullopt;
    ws();
    if (i >= s.size() || s[i++] != ':') return std::nullopt;
    ws();
    if (i < s.size() && s[i] == '"') {
      auto v = str();
      if (!v) return std::nullopt;
      ev[*k] = *v;
    } else {
      size_t start = i;
      while (i < s.size() && s[i] != ',' && s[i] != '}') ++i;
      std::string v = s.substr(start, i - start);
      while (!v.empty() && v.back() == ' ') v.pop_back();
      ev[*k] = v;
    }
    ws();
    if (i >= s.size()) return std::nullopt;
    if (s[i] == '}') return ev;
    if (s[i++] != ',') return std::nullopt;
  }
}

// A JSON string literal.
inline std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

class GoPeer {
 public:
  // Starts the peer process; its stderr (Go memberlist's log) goes to `log_path`.
  GoPeer(const std::string& binary, const std::string& log_path) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      int err = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err >= 0) dup2(err, 2);
      execl(binary.c_str(), binary.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_ = in[1];
    from_ = fdopen(out[0], "r");
    reader_ = std::thread([this] { read_loop(); });
  }
  ~GoPeer() {
    if (to_ >= 0) close(to_);  // EOF: the peer shuts down and exits
    reap(std::chrono::seconds(10));
    if (reader_.joinable()) reader_.join();
    if (from_) fclose(from_);
  }
  GoPeer(const GoPeer&) = delete;
  GoPeer& operator=(const GoPeer&) = delete;

  bool running() const { return pid_ > 0; }

  // Sends {"cmd": cmd, "req": n, <fields>} (fields: already-JSON `"k":v` pairs joined by
  // commas) and waits for the reply event `reply` with the same req.
  std::optional<Event> call(const std::string& cmd, const std::string& fields, const std::string& reply,
                            std::chrono::milliseconds limit = std::chrono::seconds(60)) {
    int req = send(cmd, fields);
    return wait_for([&](const Event& e) { return get(e, "ev") == reply && get(e, "req") == std::to_string(req); },
                    limit);
  }
  int send(const std::string& cmd, const std::string& fields) {
    int req;
    {
      std::lock_guard<std::mutex> l(mu_);
      req = ++next_req_;
    }
    std::string line = "{\"cmd\":" + quote(cmd) + ",\"req\":" + std::to_string(req) + (fields.empty() ? "" : ",") +
                       fields + "}\n";
    for (size_t off = 0; off < line.size();) {
      ssize_t n = write(to_, line.data() + off, line.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    return req;
  }

  // The first event (ever received) matching `pred`, waiting up to `limit` for it.
  std::optional<Event> wait_for(const std::function<bool(const Event&)>& pred,
                                std::chrono::milliseconds limit = std::chrono::seconds(60)) {
    std::unique_lock<std::mutex> l(mu_);
    std::optional<Event> found;
    cv_.wait_for(l, limit, [&] {
      for (const auto& e : events_)
        if (pred(e)) {
          found = e;
          return true;
        }
      return eof_;
    });
    return found;
  }
  bool saw(const std::function<bool(const Event&)>& pred) {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& e : events_)
      if (pred(e)) return true;
    return false;
  }

  // The members as Go lists them (name -> member event with inc, meta, state, addr).
  std::map<std::string, Event> members() {
    int req = send("members", "");
    auto end = wait_for([&](const Event& e) { return get(e, "ev") == "members_end" && get(e, "req") == std::to_string(req); });
    std::map<std::string, Event> out;
    if (!end) return out;
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& e : events_)
      if (get(e, "ev") == "member" && get(e, "req") == std::to_string(req)) out[get(e, "name")] = e;
    return out;
  }

  // Waits for the process to end (after "crash" or EOF); kills it past `limit`.
  void reap(std::chrono::milliseconds limit) {
    if (pid_ <= 0) return;
    auto end = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > end) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
  }

  static std::string get(const Event& e, const std::string& k) {
    auto it = e.find(k);
    return it == e.end() ? std::string() : it->second;
  }

 private:
  void read_loop() {
    std::string line;
    int c;
    while ((c = fgetc(from_)) != EOF) {
      if (c != '\n') {
        line += static_cast<char>(c);
        continue;
      }
      auto ev = parse_flat_json(line);
      line.clear();
      if (!ev) continue;
      std::lock_guard<std::mutex> l(mu_);
      events_.push_back(std::move(*ev));
      cv_.notify_all();
    }
    std::lock_guard<std::mutex> l(mu_);
    eof_ = true;
    cv_.notify_all();
  }

  pid_t pid_ = -1;
  int to_ = -1;
  FILE* from_ = nullptr;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Event> events_;
  bool eof_ = false;
  int next_req_ = 0;
};

}  // namespace memberlist::interop
