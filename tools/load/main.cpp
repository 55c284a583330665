// ticketd-load: an HTTP load generator for ticketd, on Asio and Beast. Keep-alive connections on
// one thread, each sending its next request as soon as the answer to the last one is in (closed
// loop), for a fixed time; every latency is kept, so percentiles are exact.
//
//   ticketd-load submit|read|fanout --url http://127.0.0.1:8080 --user li --password demo-li
//                [--connections 64] [--seconds 10] [--tickets 1000] [--peer]
//                [--subscribers 1000] [--rate 2000] [--acked FILE] [--server-pid PID]
//
// submit: POST /api/v1/tickets of the reference form (validation, flow, rules, durable before the
//         answer). read: GET /api/v1/tickets/{id} over --tickets tickets submitted first.
// fanout: --subscribers WebSocket clients on the `tickets` topic while submits run at --rate a
//         second; delivery latency is from an event's recording (the view's updated_at) to its
//         arrival, and every subscriber must get every event after all have subscribed.
// Prints name=value lines; --peer also runs the PostgreSQL peer (../shared/bench) in the same run
// and prints the ratio. tools/bench-load.sh starts a server on a scratch directory and runs this.
// --acked (submit): each acknowledged ticket's id and the customer name sent for it, a line each,
// written when the run ends (tests/blackbox/test_crash.py kills the server under this load and
// looks for every one of them). SIGINT or SIGTERM ends a submit or read run early, its figures
// and that file written as at the deadline.
// --server-pid (submit, read): the server's CPU a request over the timed run, in all and by
// thread name, from /proc (a server on this machine: tools/bench-load.sh passes its own).
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tools/bench_peer.h"
#include "tools/load/thread_cpu.h"

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
// One thread runs the one io_context: connections and timers are typed on its executor, not on
// Beast's type-erased any_io_executor (a virtual call per operation, in the load's own CPU).
using Stream = beast::basic_stream<tcp, net::io_context::executor_type>;
using Timer =
    net::basic_waitable_timer<Clock, net::wait_traits<Clock>, net::io_context::executor_type>;

namespace {

struct Options {
  std::string op;
  std::string host = "127.0.0.1", port = "8080";
  std::string user = "li", password = "demo-li";
  int connections = 64;
  double seconds = 10;
  int tickets = 1000;
  bool peer = false;
  int subscribers = 1000;
  double rate = 2000;
  std::string acked_file;
  int server_pid = 0;  // 0: the server's CPU is not read
};

struct Results {
  std::vector<double> latencies_ms;
  uint64_t errors = 0;
  std::map<unsigned, uint64_t> statuses;
  bool keep_acked = false;
  std::vector<std::pair<std::string, std::string>> acked;  // ticket id, customer name sent
  // SIGINT or SIGTERM: no connection sends again; the run ends as its answers come in.
  bool stopping = false;
  int open_connections = 0;
  std::function<void()> on_all_closed;
};

std::string submission(uint64_t n) {
  return R"({"form":"service_ticket","flow":"service_flow","fields":{"customer_name":"负载测试客户)" +
         std::to_string(n) +
         R"(","customer_phone":"+86 138 0000 0000","channel":"电话","problem_type":"功能故障",)"
         R"("description":"打印机卡纸,需要工程师上门检修。"}})";
}

std::string json_string_member(const std::string& body, const std::string& key) {
  auto k = body.find("\"" + key + "\":\"");
  if (k == std::string::npos) return "";
  auto start = k + key.size() + 4;
  return body.substr(start, body.find('"', start) - start);
}

// Room for a whole answer (a ticket's view is 1–2 KB) in one read.
constexpr size_t kReadBuffer = 16 << 10;

// One keep-alive connection sending requests made by `next` until the deadline.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using Next = std::function<std::string()>;  // the next request's bytes
  // With an interval, `phase` delays this connection's slots: paced connections given phases
  // spread over the interval send evenly instead of all at once, interval after interval.
  Connection(net::io_context& ioc, tcp::resolver::results_type endpoints, Next next,
             Clock::time_point deadline, Results& results,
             Clock::duration interval = Clock::duration::zero(),
             Clock::duration phase = Clock::duration::zero())
      : stream_(ioc),
        endpoints_(std::move(endpoints)),
        next_(std::move(next)),
        deadline_(deadline),
        results_(results),
        interval_(interval),
        pace_(ioc),
        // send() moves the slot on by an interval before each request: the first is at `phase`.
        slot_(Clock::now() + phase - interval) {
    ++results_.open_connections;
    // Beast reads what the buffer has room for, at least 512 bytes: from an empty buffer an
    // answer took a recvmsg call for every 512 bytes (two for a ticket's view), and a poll of
    // the reactor between them, CPU this program takes from the server on a shared machine.
    buffer_.reserve(kReadBuffer);
  }

  void start() {
    stream_.async_connect(endpoints_, [self = shared_from_this()](beast::error_code ec, auto) {
      if (ec) return self->fail(ec);
      self->send();
    });
  }

 private:
  // With an interval, one request per interval (sent late when behind); else closed loop. No
  // request goes at or after the deadline, a slot's included: the rate is the one asked for.
  void send() {
    const auto now = Clock::now();
    if (interval_ > Clock::duration::zero()) slot_ += interval_;
    if (results_.stopping || std::max(now, slot_) >= deadline_) return close();
    if (slot_ > now) {
      pace_.expires_at(slot_);
      return pace_.async_wait([self = shared_from_this()](beast::error_code) { self->write(); });
    }
    write();
  }
  void write() {
    request_ = next_();
    started_ = Clock::now();
    net::async_write(stream_, net::buffer(request_),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->fail(ec);
                       self->receive();
                     });
  }
  void receive() {
    response_ = {};
    http::async_read(
        stream_, buffer_, response_, [self = shared_from_this()](beast::error_code ec, size_t) {
          if (ec) return self->fail(ec);
          auto took = std::chrono::duration<double, std::milli>(Clock::now() - self->started_);
          unsigned status = self->response_.result_int();
          ++self->results_.statuses[status];
          if (status >= 400) ++self->results_.errors;
          if (status == 201 && self->results_.keep_acked) {
            self->results_.acked.emplace_back(json_string_member(self->response_.body(), "id"),
                                              json_string_member(self->request_, "customer_name"));
          }
          self->results_.latencies_ms.push_back(took.count());
          self->send();
        });
  }
  void fail(beast::error_code ec) {
    ++results_.errors;
    std::cerr << "connection: " << ec.message() << "\n";
    close();
  }
  void close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    if (--results_.open_connections == 0 && results_.on_all_closed) results_.on_all_closed();
  }

  Stream stream_;
  tcp::resolver::results_type endpoints_;
  Next next_;
  Clock::time_point deadline_;
  Results& results_;
  std::string request_;
  http::response<http::string_body> response_;
  beast::flat_buffer buffer_;
  Clock::time_point started_;
  Clock::duration interval_;
  Timer pace_;
  Clock::time_point slot_;
  bool closed_ = false;
};

// This process's CPU time (user and system) so far.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(u.ru_utime) + seconds(u.ru_stime);
}

// An RFC 3339 UTC time ("2026-11-25T09:27:33.905835Z") in microseconds since the epoch, or 0.
int64_t parse_utc_us(const std::string& s) {
  std::tm tm{};
  if (s.size() < 20 || std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
                                   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6) {
    return 0;
  }
  int us = 0;
  if (s[19] == '.')
    us = std::atoi((s.substr(20, s.find('Z') - 20) + "000000").substr(0, 6).c_str());
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000000 + us;
}

// One WebSocket subscriber of the `tickets` topic: what arrives, and how late.
class Subscriber : public std::enable_shared_from_this<Subscriber> {
 public:
  Subscriber(net::io_context& ioc, tcp::resolver::results_type endpoints, std::string host,
             std::string token, std::vector<double>* latencies)
      : ws_(ioc),
        endpoints_(std::move(endpoints)),
        host_(std::move(host)),
        token_(std::move(token)),
        latencies_(latencies) {}

  void start() {
    beast::get_lowest_layer(ws_).async_connect(
        endpoints_, [self = shared_from_this()](beast::error_code ec, auto) {
          if (ec) return self->fail(ec);
          self->ws_.async_handshake(self->host_, "/api/v1/stream?token=" + self->token_,
                                    [self](beast::error_code ec) {
                                      if (ec) return self->fail(ec);
                                      self->subscribe();
                                    });
        });
  }
  void stop() {
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

  bool subscribed = false, dropped = false, disordered = false;
  uint64_t subscribed_at = 0;  // the position the live stream starts after
  uint64_t received = 0, last = 0;

 private:
  void subscribe() {
    out_ = R"({"op":"subscribe","topic":"tickets"})";
    ws_.async_write(net::buffer(out_), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->fail(ec);
      self->read();
    });
  }
  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->fail(ec);
      auto data = self->buffer_.data();  // a flat_buffer: one contiguous piece
      self->on_message(std::string_view(static_cast<const char*>(data.data()), data.size()));
      self->buffer_.consume(self->buffer_.size());
      self->read();
    });
  }
  // Cheap for most subscribers (the position is near the start); the sampled ones also time it.
  void on_message(std::string_view m) {
    std::string_view head = m.substr(0, 96);
    auto k = head.find("\"position\":");
    uint64_t position =
        k == std::string_view::npos ? 0 : std::strtoull(head.data() + k + 11, nullptr, 10);
    if (head.find("\"op\":\"subscribed\"") != std::string_view::npos) {
      subscribed = true;
      subscribed_at = position;
      return;
    }
    ++received;
    disordered |= position <= last;
    last = position;
    if (!latencies_) return;
    int64_t at = parse_utc_us(json_string_member(std::string(m), "updated_at"));
    int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    if (at) latencies_->push_back(static_cast<double>(now - at) / 1000.0);
  }
  void fail(beast::error_code ec) {
    if (ec != net::error::operation_aborted && ec != net::error::bad_descriptor) dropped = true;
  }

  websocket::stream<Stream> ws_;
  tcp::resolver::results_type endpoints_;
  std::string host_, token_, out_;
  beast::flat_buffer buffer_;
  std::vector<double>* latencies_;
};

// The bytes of a keep-alive request, written out directly as load generators do (wrk sends one
// prepared buffer): through Beast's serializer, each request was a sequence of a dozen buffers
// walked again for every send, and its header fields allocated one by one.
std::string request_bytes(std::string_view method, std::string_view target, const std::string& host,
                          const std::string& token, std::string_view body = {}) {
  std::string r;
  r.reserve(192 + target.size() + token.size() + body.size());
  r.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: ").append(host);
  if (!token.empty()) r.append("\r\nAuthorization: Bearer ").append(token);
  if (!body.empty()) {
    r.append("\r\nContent-Type: application/json\r\nContent-Length: ")
        .append(std::to_string(body.size()));
  }
  return r.append("\r\n\r\n").append(body);
}

// One blocking request (setup only: sign-in, seeding tickets).
std::string blocking(net::io_context& ioc, const tcp::resolver::results_type& endpoints,
                     const std::string& request, unsigned* status) {
  beast::tcp_stream s(ioc);
  s.connect(endpoints);
  net::write(s, net::buffer(request));
  beast::flat_buffer b;
  http::response<http::string_body> res;
  http::read(s, b, res);
  *status = res.result_int();
  return res.body();
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

// Subscribers first (all of them, acknowledged), then paced submits; then every subscriber must
// have received the same events, in order.
int fanout(const Options& o, net::io_context& ioc, const tcp::resolver::results_type& endpoints,
           const std::string& host, const std::string& token) {
  std::vector<double> delivery;
  std::vector<std::shared_ptr<Subscriber>> subs;
  for (int i = 0; i < o.subscribers; ++i) {
    subs.push_back(std::make_shared<Subscriber>(ioc, endpoints, host, token,
                                                i % 20 == 0 ? &delivery : nullptr));
    subs.back()->start();
  }
  auto ready = [&] {
    return std::all_of(subs.begin(), subs.end(),
                       [](const auto& s) { return s->subscribed || s->dropped; });
  };
  for (auto give_up = Clock::now() + std::chrono::seconds(60); !ready() && Clock::now() < give_up;)
    ioc.run_for(std::chrono::milliseconds(10));
  Results results;
  uint64_t sent = 0;
  auto started = Clock::now();
  auto deadline = started + std::chrono::microseconds(static_cast<int64_t>(o.seconds * 1e6));
  auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(o.connections / o.rate));
  for (int i = 0; i < o.connections; ++i) {
    auto next = [&] {
      return request_bytes("POST", "/api/v1/tickets", host, token, submission(++sent));
    };
    std::make_shared<Connection>(ioc, endpoints, next, deadline, results, interval,
                                 interval * i / o.connections)
        ->start();
  }
  // The submits, then up to 10 s for the last deliveries to arrive everywhere.
  while (Clock::now() < deadline) ioc.run_for(std::chrono::milliseconds(50));
  double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  auto everyone_caught_up = [&] {
    uint64_t most = 0;
    for (const auto& s : subs) most = std::max(most, s->received);
    return std::all_of(subs.begin(), subs.end(),
                       [&](const auto& s) { return s->dropped || s->received == most; });
  };
  for (auto give_up = Clock::now() + std::chrono::seconds(10);
       !everyone_caught_up() && Clock::now() < give_up;) {
    ioc.run_for(std::chrono::milliseconds(50));
  }
  uint64_t most = 0, least = UINT64_MAX, dropped = 0, disordered = 0, unsubscribed = 0;
  for (const auto& s : subs) {
    most = std::max(most, s->received);
    least = std::min(least, s->received);
    dropped += s->dropped;
    disordered += s->disordered;
    unsubscribed += !s->subscribed;
    s->stop();
  }
  ioc.run_for(std::chrono::milliseconds(200));
  std::sort(delivery.begin(), delivery.end());
  std::printf(
      "op=fanout\nsubscribers=%d\nsubscribed=%llu\nseconds=%.2f\nsubmits=%zu\n"
      "submit_errors=%llu\nsubmits_per_s=%.0f\nevents_per_subscriber=%llu\n"
      "fewest_received=%llu\ndropped=%llu\nout_of_order=%llu\ndelivery_samples=%zu\n",
      o.subscribers, static_cast<unsigned long long>(subs.size() - unsubscribed), elapsed,
      results.latencies_ms.size(), static_cast<unsigned long long>(results.errors),
      static_cast<double>(results.latencies_ms.size()) / elapsed,
      static_cast<unsigned long long>(most), static_cast<unsigned long long>(least),
      static_cast<unsigned long long>(dropped), static_cast<unsigned long long>(disordered),
      delivery.size());
  for (auto [name, p] : {std::pair{"p50", 0.5}, std::pair{"p99", 0.99}, std::pair{"max", 1.0}}) {
    std::printf("delivery_%s_ms=%.3f\n", name, percentile(delivery, p));
  }
  bool complete = least == most && dropped == 0 && disordered == 0 && unsubscribed == 0;
  std::printf("every_subscriber_got_every_event=%s\n", complete ? "yes" : "no");
  return complete && results.errors == 0 ? 0 : 1;
}

int usage() {
  std::cerr << "usage: ticketd-load submit|read|fanout [--url http://HOST:PORT] [--user U] "
               "[--password P] [--connections N] [--seconds S] [--tickets N] [--peer] "
               "[--subscribers N] [--rate R] [--acked FILE] [--server-pid PID]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (argc < 2) return usage();
  o.op = argv[1];
  if (o.op != "submit" && o.op != "read" && o.op != "fanout") return usage();
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--url") {
      std::string url = value();
      if (url.rfind("http://", 0) != 0) return usage();
      url = url.substr(7);
      auto colon = url.rfind(':');
      o.host = url.substr(0, colon);
      o.port = colon == std::string::npos ? "80" : url.substr(colon + 1);
    } else if (a == "--user") {
      o.user = value();
    } else if (a == "--password") {
      o.password = value();
    } else if (a == "--connections") {
      o.connections = std::max(1, std::atoi(value().c_str()));
    } else if (a == "--seconds") {
      o.seconds = std::max(0.5, std::atof(value().c_str()));
    } else if (a == "--tickets") {
      o.tickets = std::max(1, std::atoi(value().c_str()));
    } else if (a == "--subscribers") {
      o.subscribers = std::max(1, std::atoi(value().c_str()));
    } else if (a == "--rate") {
      o.rate = std::max(1.0, std::atof(value().c_str()));
    } else if (a == "--peer") {
      o.peer = true;
    } else if (a == "--acked") {
      o.acked_file = value();
      if (o.acked_file.empty()) return usage();
    } else if (a == "--server-pid") {
      o.server_pid = std::atoi(value().c_str());
      if (o.server_pid <= 0) return usage();
    } else {
      return usage();
    }
  }

  if (!o.acked_file.empty() && o.op != "submit") return usage();
  if (o.server_pid && o.op == "fanout") return usage();
  std::map<std::string, double> server_cpu_before, server_cpu_after;
  std::string cpu_error;
  // Read once here, so that a wrong pid is said before any load is sent (or tickets seeded), and
  // again as the timed run starts.
  if (o.server_pid &&
      !ticketd::tools::thread_cpu_seconds(o.server_pid, &server_cpu_before, &cpu_error)) {
    std::cerr << "--server-pid: " << cpu_error << "\n";
    return 2;
  }

  net::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto endpoints = resolver.resolve(o.host, o.port, ec);
  if (ec) {
    std::cerr << "resolve " << o.host << ":" << o.port << ": " << ec.message() << "\n";
    return 1;
  }
  std::string host = o.host + ":" + o.port;
  unsigned status = 0;
  std::string token;
  try {
    std::string body = blocking(
        ioc, endpoints,
        request_bytes("POST", "/api/v1/sessions", host, "",
                      R"({"user":")" + o.user + R"(","password":")" + o.password + R"("})"),
        &status);
    token = json_string_member(body, "token");
    if (status != 201 || token.empty()) {
      std::cerr << "sign-in as " << o.user << " failed: " << status << " " << body << "\n";
      return 1;
    }
  } catch (const std::exception& e) {
    std::cerr << "cannot reach ticketd at " << host << ": " << e.what() << "\n";
    return 1;
  }

  std::vector<std::string> ids;
  if (o.op == "read") {  // the tickets to read, submitted first
    beast::tcp_stream s(ioc);
    s.connect(endpoints);
    for (int i = 0; i < o.tickets; ++i) {
      net::write(s, net::buffer(request_bytes("POST", "/api/v1/tickets", host, token,
                                              submission(static_cast<uint64_t>(i)))));
      beast::flat_buffer b;
      http::response<http::string_body> res;
      http::read(s, b, res);
      if (res.result_int() != 201) {
        std::cerr << "seeding ticket " << i << ": " << res.result_int() << " " << res.body()
                  << "\n";
        return 1;
      }
      ids.push_back(json_string_member(res.body(), "id"));
    }
  }

  if (o.op == "fanout") return fanout(o, ioc, endpoints, host, token);

  Results results;
  results.keep_acked = !o.acked_file.empty();
  uint64_t sent = 0;
  std::mt19937_64 rng(42);
  Connection::Next next = [&]() {
    ++sent;
    if (o.op == "submit") {
      return request_bytes("POST", "/api/v1/tickets", host, token, submission(sent));
    }
    return request_bytes("GET", "/api/v1/tickets/" + ids[rng() % ids.size()], host, token);
  };
  const double cpu_before = cpu_seconds();
  if (o.server_pid)
    ticketd::tools::thread_cpu_seconds(o.server_pid, &server_cpu_before, &cpu_error);
  auto started = Clock::now();
  auto deadline = started + std::chrono::microseconds(static_cast<int64_t>(o.seconds * 1e6));
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](beast::error_code ec, int) { results.stopping = !ec; });
  results.on_all_closed = [&] { signals.cancel(); };
  for (int i = 0; i < o.connections; ++i) {
    std::make_shared<Connection>(ioc, endpoints, next, deadline, results)->start();
  }
  ioc.run();
  double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  const double cpu_used = cpu_seconds() - cpu_before;
  const bool server_cpu_read = o.server_pid && ticketd::tools::thread_cpu_seconds(
                                                   o.server_pid, &server_cpu_after, &cpu_error);

  auto& l = results.latencies_ms;
  std::sort(l.begin(), l.end());
  double rate =
      static_cast<double>(l.size() - std::min<size_t>(l.size(), results.errors)) / elapsed;
  std::printf("op=%s\nconnections=%d\nseconds=%.2f\nrequests=%zu\nerrors=%llu\n", o.op.c_str(),
              o.connections, elapsed, l.size(), static_cast<unsigned long long>(results.errors));
  for (const auto& [code, n] : results.statuses) {
    std::printf("status_%u=%llu\n", code, static_cast<unsigned long long>(n));
  }
  std::printf("%s_per_s=%.0f\n", o.op.c_str(), rate);
  // On a machine it shares with the server, this is CPU the server under test did not get.
  std::printf("load_cpu_us_per_request=%.1f\n",
              l.empty() ? 0.0 : cpu_used * 1e6 / static_cast<double>(l.size()));
  for (auto [name, p] : {std::pair{"p50", 0.5}, std::pair{"p90", 0.9}, std::pair{"p99", 0.99},
                         std::pair{"p999", 0.999}, std::pair{"max", 1.0}}) {
    std::printf("%s_ms=%.3f\n", name, percentile(l, p));
  }
  if (o.server_pid && !server_cpu_read) {
    std::cerr << "--server-pid: " << cpu_error << "\n";  // the server ended during the run
  } else if (o.server_pid && !l.empty()) {
    // Threads of one name (the io threads) are summed; one that ended in the run counts nothing.
    const double per_request_us = 1e6 / static_cast<double>(l.size());
    double total = 0;
    for (const auto& [name, after] : server_cpu_after) {
      auto before = server_cpu_before.find(name);
      const double used =
          std::max(0.0, after - (before == server_cpu_before.end() ? 0.0 : before->second));
      total += used;
      std::printf("server_cpu_us_per_request{%s}=%.1f\n", name.c_str(), used * per_request_us);
    }
    std::printf("server_cpu_us_per_request=%.1f\n", total * per_request_us);
  }
  if (results.keep_acked) {
    std::FILE* f = std::fopen(o.acked_file.c_str(), "w");
    if (!f) {
      std::cerr << "cannot write " << o.acked_file << "\n";
      return 1;
    }
    for (const auto& [id, name] : results.acked)
      std::fprintf(f, "%s %s\n", id.c_str(), name.c_str());
    if (std::fclose(f) != 0) {
      std::cerr << "cannot write " << o.acked_file << "\n";
      return 1;
    }
    std::printf("acked=%zu\n", results.acked.size());
  }
  if (o.peer) {
    double peer = ticketd::tools::run_postgres_peer();
    std::printf("peer_postgres_appends_per_s=%.0f\n", peer);
    if (peer > 0) std::printf("ratio_vs_postgres=%.2f\n", rate / peer);
  }
  return results.errors ? 1 : 0;
}
