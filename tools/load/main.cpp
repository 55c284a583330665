// ticketd-load: an HTTP load generator for ticketd, on Asio and Beast. Keep-alive connections on
// one thread, each sending its next request as soon as the answer to the last one is in (closed
// loop), for a fixed time; every latency is kept, so percentiles are exact.
//
//   ticketd-load submit|read --url http://127.0.0.1:8080 --user li --password demo-li
//                [--connections 64] [--seconds 10] [--tickets 1000] [--peer]
//
// submit: POST /api/v1/tickets of the reference form (validation, flow, rules, durable before the
//         answer). read: GET /api/v1/tickets/{id} over --tickets tickets submitted first.
// Prints name=value lines; --peer also runs the PostgreSQL peer (../shared/bench) in the same run
// and prints the ratio. tools/bench-load.sh starts a server on a scratch directory and runs this.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

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

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string op;
  std::string host = "127.0.0.1", port = "8080";
  std::string user = "li", password = "demo-li";
  int connections = 64;
  double seconds = 10;
  int tickets = 1000;
  bool peer = false;
};

struct Results {
  std::vector<double> latencies_ms;
  uint64_t errors = 0;
  std::map<unsigned, uint64_t> statuses;
};

std::string submission(uint64_t n) {
  return R"({"form":"service_ticket","flow":"service_flow","fields":{"customer_name":"负载测试客户)" +
         std::to_string(n) +
         R"(","customer_phone":"+86 138 0000 0000","channel":"电话","problem_type":"功能故障",)"
         R"("description":"打印机卡纸,需要工程师上门检修。"}})";
}

// One keep-alive connection sending requests made by `next` until the deadline.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using Next = std::function<http::request<http::string_body>()>;
  Connection(net::io_context& ioc, tcp::resolver::results_type endpoints, Next next,
             Clock::time_point deadline, Results& results)
      : stream_(ioc),
        endpoints_(std::move(endpoints)),
        next_(std::move(next)),
        deadline_(deadline),
        results_(results) {}

  void start() {
    stream_.async_connect(endpoints_, [self = shared_from_this()](beast::error_code ec, auto) {
      if (ec) return self->fail(ec);
      self->send();
    });
  }

 private:
  void send() {
    if (Clock::now() >= deadline_) return close();
    request_ = next_();
    started_ = Clock::now();
    http::async_write(stream_, request_, [self = shared_from_this()](beast::error_code ec, size_t) {
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
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  beast::tcp_stream stream_;
  tcp::resolver::results_type endpoints_;
  Next next_;
  Clock::time_point deadline_;
  Results& results_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  beast::flat_buffer buffer_;
  Clock::time_point started_;
};

http::request<http::string_body> make_request(http::verb verb, const std::string& target,
                                              const std::string& host, const std::string& token,
                                              std::string body = "") {
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, host);
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
  }
  req.keep_alive(true);
  req.prepare_payload();
  return req;
}

// One blocking request (setup only: sign-in, seeding tickets).
std::string blocking(net::io_context& ioc, const tcp::resolver::results_type& endpoints,
                     http::request<http::string_body> req, unsigned* status) {
  beast::tcp_stream s(ioc);
  s.connect(endpoints);
  http::write(s, req);
  beast::flat_buffer b;
  http::response<http::string_body> res;
  http::read(s, b, res);
  *status = res.result_int();
  return res.body();
}

std::string json_string_member(const std::string& body, const std::string& key) {
  auto k = body.find("\"" + key + "\":\"");
  if (k == std::string::npos) return "";
  auto start = k + key.size() + 4;
  return body.substr(start, body.find('"', start) - start);
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

int usage() {
  std::cerr << "usage: ticketd-load submit|read [--url http://HOST:PORT] [--user U] "
               "[--password P] [--connections N] [--seconds S] [--tickets N] [--peer]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (argc < 2) return usage();
  o.op = argv[1];
  if (o.op != "submit" && o.op != "read") return usage();
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
    } else if (a == "--peer") {
      o.peer = true;
    } else {
      return usage();
    }
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
    std::string body =
        blocking(ioc, endpoints,
                 make_request(http::verb::post, "/api/v1/sessions", host, "",
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
      http::write(s, make_request(http::verb::post, "/api/v1/tickets", host, token,
                                  submission(static_cast<uint64_t>(i))));
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

  Results results;
  uint64_t sent = 0;
  std::mt19937_64 rng(42);
  Connection::Next next = [&]() {
    ++sent;
    if (o.op == "submit") {
      return make_request(http::verb::post, "/api/v1/tickets", host, token, submission(sent));
    }
    return make_request(http::verb::get, "/api/v1/tickets/" + ids[rng() % ids.size()], host, token);
  };
  auto started = Clock::now();
  auto deadline = started + std::chrono::microseconds(static_cast<int64_t>(o.seconds * 1e6));
  for (int i = 0; i < o.connections; ++i) {
    std::make_shared<Connection>(ioc, endpoints, next, deadline, results)->start();
  }
  ioc.run();
  double elapsed = std::chrono::duration<double>(Clock::now() - started).count();

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
  for (auto [name, p] : {std::pair{"p50", 0.5}, std::pair{"p90", 0.9}, std::pair{"p99", 0.99},
                         std::pair{"p999", 0.999}, std::pair{"max", 1.0}}) {
    std::printf("%s_ms=%.3f\n", name, percentile(l, p));
  }
  if (o.peer) {
    double peer = ticketd::tools::run_postgres_peer();
    std::printf("peer_postgres_appends_per_s=%.0f\n", peer);
    if (peer > 0) std::printf("ratio_vs_postgres=%.2f\n", rate / peer);
  }
  return results.errors ? 1 : 0;
}
