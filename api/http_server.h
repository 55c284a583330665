#pragma once
// The HTTP/1.1 server: a listener and one session per connection, each connection on one of the
// io threads (an io_context apiece).
// Beast and Asio stay inside http_server.cpp; this header is free of them.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace ticketd::api {

class Api;
class Metrics;
class StreamHub;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0: any free port (see HttpServer::port)
  int threads = 2;
  // A connection that sends nothing for this long is closed (slowloris, idle keep-alive).
  std::chrono::seconds read_timeout{30};
  // Open connections (HTTP and WebSocket) beyond this are answered 503 and closed at once, so a
  // flood of sockets cannot take every file descriptor and the memory behind them.
  size_t max_connections = 10000;
  // After SIGINT or SIGTERM, run() waits this long for in-flight requests and closing streams
  // (each bounded by read_timeout, or a stream's 5 s to take its close frame); what is still
  // open then is cut off, so that a stop always ends. Nothing acknowledged is in it.
  std::chrono::seconds shutdown_grace{40};
  // Each open stream asks this often whether its session still stands, so an expired one stops
  // receiving (a sign-out, a disabled account or changed roles are applied at once anyway).
  std::chrono::milliseconds stream_recheck{5000};
};

class HttpServer {
 public:
  HttpServer(Api& api, Metrics& metrics, StreamHub& hub, HttpServerOptions options);
  ~HttpServer();

  // Serves TLS (1.2 and 1.3) besides plain HTTP on the same port, each connection as it opens:
  // a PEM certificate chain and its private key. False with a message when they cannot be used.
  bool use_tls(const std::string& cert_file, const std::string& key_file, std::string* error);
  // Reads the same two files again (ticketd does it on SIGHUP): new connections get the new
  // certificate, open ones keep theirs. False with a message, the previous one still served, when
  // they cannot be used. Any thread.
  bool reload_tls(std::string* error);
  // Binds and listens. False with a message when the address cannot be used.
  bool listen(std::string* error);
  uint16_t port() const;
  // Serves until stop(), then stops accepting, lets every in-flight request finish, closes idle
  // connections and returns (at the latest after options.shutdown_grace).
  void run();
  // Ends run() as it says. Any thread, before run() or during it; a second call does nothing.
  void stop();
  // Every open stream asks about its token again now (ReadModel::on_access_change): a user
  // signed out or disabled stops receiving at once, not at the next periodic check. Any thread.
  void recheck_streams();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ticketd::api
