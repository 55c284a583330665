#include "api/http_server.h"

#include <pthread.h>
#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>
#include <vector>

#include "api/api.h"
#include "api/gathering_stream.h"
#include "api/metrics.h"
#include "api/stream_hub.h"
#include "domain/text.h"

namespace ticketd::api {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

// A connection lives on one io_context, which one thread runs: its handlers never run at the
// same time, the implicit strand of Asio's documentation, so it needs no strand object of its own
// (whose queue, lock and shared state every operation went through). The types say so:
// beast::tcp_stream holds the executor type-erased (any_io_executor), which cost a virtual
// dispatch on every operation and handler (4% of the io threads under submit load).
using Executor = net::io_context::executor_type;
using Socket = net::basic_stream_socket<tcp, Executor>;
using Stream = beast::basic_stream<tcp, Executor>;
using Timer = net::basic_waitable_timer<std::chrono::steady_clock,
                                        net::wait_traits<std::chrono::steady_clock>, Executor>;
// With --tls-cert, a connection that opens with a TLS handshake is served over TLS on the same
// port (Beast's advanced_server_flex): the sessions below are written once for either stream.
using TlsStream = beast::ssl_stream<Stream>;
// A connection's read buffer. Beast reads what the buffer has room for, at least 512 bytes, and
// grows it only by what the unparsed bytes need: left empty, it stayed near 512 bytes, and a
// request of 2 KB (a browser's headers and a ticket's description) took four recvmsg calls on a
// connection that had served a hundred. Room for most requests in one read; 8 MB at 2,000 idle
// connections.
constexpr size_t kRequestReadBuffer = 4096;

// The socket's remote address as text, an IPv4 client of a dual-stack listener as plain IPv4 (so
// that --trusted-proxies and the access log name it one way); "" when the peer is already gone.
std::string peer_address(const Socket& socket) {
  beast::error_code ec;
  auto address = socket.remote_endpoint(ec).address();
  if (ec) return "";
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6()).to_string();
  }
  return address.to_string();
}

// What shutdown needs of every open connection, whatever its stream.
class Session {
 public:
  virtual ~Session() = default;
  // Closes the connection if it is waiting for a request; a busy one closes after answering.
  virtual void close_if_idle() = 0;
};
class StreamSession {
 public:
  virtual ~StreamSession() = default;
  // Server shutdown: a clean close with "going away".
  virtual void going_away() = 0;
  // The token is asked about now (HttpServer::recheck_streams).
  virtual void recheck_now() = 0;
};

// One io_context per io thread, each connection on one of them (round robin). Sharing one
// io_context between threads made them contend for its scheduler and timer queue locks on every
// operation: half the futex calls of the server under submit load.
std::vector<std::unique_ptr<net::io_context>> make_contexts(int threads) {
  std::vector<std::unique_ptr<net::io_context>> contexts;
  for (int i = 0; i < std::max(1, threads); ++i) {
    contexts.push_back(std::make_unique<net::io_context>(1));
  }
  return contexts;
}

struct ServerState {
  Api& api;
  Metrics& metrics;
  StreamHub& hub;
  HttpServerOptions options;
  std::vector<std::unique_ptr<net::io_context>> contexts;  // [0] also accepts
  size_t next_context = 0;                                 // accepting thread only
  net::io_context& ioc;
  tcp::acceptor acceptor{ioc};
  net::steady_timer accept_retry{ioc};
  std::atomic<bool> shutting_down{false};
  std::atomic<uint64_t> next_request{1};
  std::mutex sessions_mu;
  std::unordered_set<std::shared_ptr<Session>> sessions;  // HTTP, and TLS not yet detected
  std::unordered_set<std::shared_ptr<StreamSession>> streams;
  // With --tls-cert and --tls-key: the context new TLS connections take. A reload (SIGHUP)
  // replaces it; each open connection's SSL holds a reference to the SSL_CTX it was made from
  // (SSL_new), so it goes on with the certificate it started with.
  std::shared_ptr<net::ssl::context> tls;  // under tls_mu once serving
  std::mutex tls_mu;
  std::string tls_cert, tls_key;

  std::shared_ptr<net::ssl::context> tls_context() {
    std::lock_guard lk(tls_mu);
    return tls;
  }

  ServerState(Api& a, Metrics& m, StreamHub& h, HttpServerOptions o)
      : api(a),
        metrics(m),
        hub(h),
        options(std::move(o)),
        contexts(make_contexts(options.threads)),
        ioc(*contexts[0]) {}
  void accept();
  void refuse(Socket socket);
};

namespace {

// Ends a stop that does not end by itself: whatever connection is still open after the grace is
// cut off by stopping the io_contexts (their pending handlers, and the sessions they hold, are
// destroyed with them).
class ShutdownWatchdog {
 public:
  void cut_off_after(ServerState& s) {
    std::unique_lock lk(mu_);
    if (cv_.wait_for(lk, s.options.shutdown_grace, [&] { return done_; })) return;
    size_t sessions = 0, streams = 0;
    {
      std::lock_guard sessions_lk(s.sessions_mu);
      sessions = s.sessions.size();
      streams = s.streams.size();
    }
    // The counts miss a stream that has finished but is still held by a handler on its way to it
    // (a recheck timer that re-armed after the end did so, and showed 0 and 0), so the message
    // does not call them all.
    spdlog::warn(
        "stopping: after {} s the io threads still have work ({} connections and {} streams not "
        "yet ended); cutting them off",
        s.options.shutdown_grace.count(), sessions, streams);
    for (auto& context : s.contexts) context->stop();
  }
  void done() {
    {
      std::lock_guard lk(mu_);
      done_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

}  // namespace

struct HttpServer::Impl : ServerState {
  using ServerState::ServerState;

  // The other io_contexts are kept running until a stop, since they may have no connection yet.
  std::vector<net::executor_work_guard<net::io_context::executor_type>> keep_running;
  ShutdownWatchdog stopped;
  std::thread watchdog;  // started by the stop

  // On the accepting io_context: nothing new is taken, idle connections and streams are closed,
  // and what is left is cut off after the grace.
  void begin_stop() {
    if (shutting_down.exchange(true)) return;
    beast::error_code ignored;
    acceptor.close(ignored);
    accept_retry.cancel();
    std::vector<std::shared_ptr<Session>> open;
    std::vector<std::shared_ptr<StreamSession>> open_streams;
    {
      std::lock_guard lk(sessions_mu);
      open.assign(sessions.begin(), sessions.end());
      open_streams.assign(streams.begin(), streams.end());
    }
    for (auto& session : open) session->close_if_idle();
    for (auto& stream : open_streams) stream->going_away();
    for (auto& idle : keep_running) idle.reset();
    watchdog = std::thread([this] { stopped.cut_off_after(*this); });
  }
};

// One WebSocket client of /api/v1/stream. Messages from the hub go through a bounded queue on the
// connection's thread; a client that lets it fill up (it stopped reading) is closed with a reason
// rather than slowing anyone else, and torn down if even the close cannot be written.
template <class NextLayer>
class WebSocketSession : public StreamClient,
                         public StreamSession,
                         public std::enable_shared_from_this<WebSocketSession<NextLayer>> {
 public:
  static constexpr size_t kMaxQueued = 4096;
  static constexpr size_t kGatherBytes = 64 * 1024;
  static constexpr size_t kMaxMessage = 64 * 1024;  // a client's message, in bytes
  using std::enable_shared_from_this<WebSocketSession<NextLayer>>::shared_from_this;

  WebSocketSession(NextLayer&& stream, std::string token, Actor actor, ServerState& server)
      : ws_(std::move(stream)),
        token_(std::move(token)),
        actor_(std::move(actor)),
        server_(server),
        deadline_(ws_.get_executor()),
        recheck_(ws_.get_executor()),
        inbox_(ws_.get_executor()) {}

  void run(http::request<http::string_body> req) {
    // What one client may have in flight is the queue below plus this much in the kernel; without
    // a cap, loopback autotuning lets a stalled client pin megabytes before the queue even fills.
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().set_option(net::socket_base::send_buffer_size(256 * 1024),
                                                     ignored);
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));  // pings
    ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
      res.set(http::field::server, "ticketd");
      // A handshake Beast refuses (no Sec-WebSocket-Key, a version other than 13) it answers in
      // plain text: its reason goes out in API.md's error form like any other.
      if (res.result() != http::status::switching_protocols) {
        HttpResponse refusal = error_response(
            static_cast<int>(res.result_int()),
            res.result() == http::status::upgrade_required ? "upgrade_required" : "bad_request",
            res.body());
        res.set(http::field::content_type, refusal.content_type);
        res.body() = std::move(refusal.body);
        res.prepare_payload();
      }
    }));
    ws_.read_message_max(0);  // read() keeps to kMaxMessage
    ws_.async_accept(req, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->finish();
      self->accepted_ = true;
      self->read();
      self->recheck_later();
    });
  }

  using StreamClient::send;
  void send(std::vector<StreamMessage> messages) override {
    net::post(inbox_, [self = shared_from_this(), messages = std::move(messages)]() mutable {
      for (auto& m : messages) self->enqueue(std::move(m));
    });
  }
  const Actor& actor() const override { return actor_; }

  void going_away() override {
    net::post(inbox_, [self = shared_from_this()] {
      self->close_with(websocket::close_code::going_away, "server shutting down");
    });
  }

  void recheck_now() override {
    net::post(inbox_, [self = shared_from_this()] {
      if (self->accepted_ && !self->ended()) self->recheck();  // else the handshake's token
    });
  }

 private:
  // A message is read a piece at a time, never past the limit, so that one over it is closed with
  // a reason: Beast's own limit (read_message_max) closes with 1009 and says nothing.
  void read() {
    ws_.async_read_some(buffer_, kMaxMessage + 1 - buffer_.size(),
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                          if (ec) return self->finish();
                          if (self->buffer_.size() > kMaxMessage) {
                            return self->close_with(websocket::close_code::too_big,
                                                    "a message may be at most " +
                                                        std::to_string(kMaxMessage) + " bytes");
                          }
                          if (!self->ws_.is_message_done()) return self->read();
                          std::string text = beast::buffers_to_string(self->buffer_.data());
                          self->buffer_.consume(self->buffer_.size());
                          self->server_.hub.on_message(self, text);
                          self->read();
                        });
  }

  // The token is asked about again now and then: a user signed out, disabled or expired stops
  // receiving, and one whose roles changed reconnects to be shown what they now may read (the
  // hub reads actor() from its own thread, so it is never changed under it).
  // The periodic check stays for what no event says: a session's expiry.
  void recheck_later() {
    recheck_.expires_after(server_.options.stream_recheck);
    recheck_.async_wait([self = shared_from_this()](beast::error_code ec) {
      // A wait that had completed when finish() cancelled it still comes here, with no error.
      if (ec || self->ended()) return;
      if (self->recheck()) self->recheck_later();
    });
  }

  // Whether the token still stands for the account the stream opened with; closes it if not.
  bool recheck() {
    auto now = server_.api.actor_for_token(token_);
    if (!now) {
      close_with(websocket::close_code::policy_error, "the session has ended: sign in again");
      return false;
    }
    if (*now != actor_) {
      close_with(websocket::close_code::policy_error, "the account has changed: connect again");
      return false;
    }
    return true;
  }

  void enqueue(StreamMessage message) {
    if (ended()) return;
    if (queue_.size() >= kMaxQueued) {
      server_.metrics.stream_dropped_slow();
      spdlog::info("stream of {} dropped: its client stopped reading ({} messages queued)",
                   actor_.id, kMaxQueued);
      return close_with(websocket::close_code::policy_error,
                        "too slow: more than " + std::to_string(kMaxQueued) + " messages queued");
    }
    queue_.push_back(std::move(message));
    if (!writing_) write_next();
  }

  // The queued messages are framed into the gathering layer one by one and leave together, up to
  // kGatherBytes a send: one system call for a burst of events rather than one per event.
  void write_next() {
    writing_ = true;
    in_flight_ = std::move(queue_.front());
    queue_.pop_front();
    ws_.next_layer().gather();
    ws_.text(true);
    ws_.async_write(net::buffer(*in_flight_),
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      self->in_flight_.reset();
                      if (!ec && !self->closing_ && !self->queue_.empty() &&
                          self->ws_.next_layer().gathered() < kGatherBytes) {
                        return self->write_next();
                      }
                      self->flush(ec);
                    });
  }

  void flush(beast::error_code framing_error) {
    ws_.next_layer().flush([self = shared_from_this(), framing_error](beast::error_code ec) {
      self->writing_ = false;
      if (ec || framing_error) return self->finish();
      if (self->closing_) return self->send_close();
      if (!self->queue_.empty()) self->write_next();
    });
  }

  void close_with(websocket::close_code code, const std::string& reason) {
    if (ended()) return;
    closing_ = true;
    close_reason_ = websocket::close_reason(code, reason);
    queue_.clear();  // what is being written (and gathered) still goes
    // A client that reads nothing cannot take a close frame either: give it a few seconds.
    deadline_.expires_after(std::chrono::seconds(5));
    deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) beast::get_lowest_layer(self->ws_).close();
    });
    if (!writing_) send_close();
  }

  void send_close() {
    ws_.async_close(close_reason_,
                    [self = shared_from_this()](beast::error_code) { self->finish(); });
  }

  // Closing or finished: nothing more is sent, checked or scheduled. Whatever is still on its way
  // to this session (a timer's or the hub's handler) must end there, or it keeps the session, and
  // its connection, alive.
  bool ended() const { return closing_ || finished_; }

  void finish() {
    if (finished_) return;
    finished_ = true;
    queue_.clear();  // a flush still under way must not start another write
    deadline_.cancel();
    recheck_.cancel();
    // The connection ends now, whoever still holds the session for a moment.
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    server_.hub.on_close(this);
    server_.metrics.connection_closed();
    server_.metrics.stream_closed();
    std::lock_guard lk(server_.sessions_mu);
    server_.streams.erase(shared_from_this());
  }

  websocket::stream<GatheringStream<NextLayer>> ws_;
  std::string token_;
  bool accepted_ = false;  // the handshake is done: the stream can be closed
  Actor actor_;
  ServerState& server_;
  Timer deadline_;
  Timer recheck_;
  // What is handed to this session (messages, a shutdown, a recheck), from any thread, its own
  // included, runs in the order it was handed over. The io_context alone would not keep it: a
  // post from the thread that runs it waits in that thread's own queue until the handler making
  // it returns, behind posts other threads made meanwhile, and the "subscribed" a client's
  // message is answered with must come before the replay a thread starts right after it.
  net::strand<Executor> inbox_;
  beast::flat_buffer buffer_;
  std::deque<StreamMessage> queue_;  // shared with the other clients the hub sent them to
  StreamMessage in_flight_;          // being framed into the gathering layer
  bool writing_ = false;
  bool closing_ = false;
  bool finished_ = false;
  websocket::close_reason close_reason_;
};

// One connection: read a request (headers first, so the body limit can depend on the route), hand
// it to Api, write the answer, repeat. Everything runs on the connection's thread; requests are
// answered in order, one at a time, so pipelined requests are safe.
template <class AsyncStream>
class HttpSession : public Session, public std::enable_shared_from_this<HttpSession<AsyncStream>> {
 public:
  using std::enable_shared_from_this<HttpSession<AsyncStream>>::shared_from_this;

  // `buffer`: what was read already (the bytes TLS detection looked at).
  HttpSession(Stream&& stream, ServerState& server,
              beast::flat_buffer buffer) requires std::is_same_v<AsyncStream, Stream>
      : stream_(std::move(stream)), server_(server), buffer_(std::move(buffer)) {
    buffer_.reserve(kRequestReadBuffer);
  }
  HttpSession(Stream&& stream, ServerState& server,
              beast::flat_buffer buffer) requires std::is_same_v<AsyncStream, TlsStream>
      : stream_(std::move(stream), *server.tls_context()),
        server_(server),
        buffer_(std::move(buffer)) {
    buffer_.reserve(kRequestReadBuffer);
  }

  void run() {
    server_.metrics.connection_opened();
    peer_ = peer_address(tcp_stream().socket());
    if constexpr (std::is_same_v<AsyncStream, TlsStream>) {
      // The handshake gets the read timeout too: a client that opens TLS and stalls is closed.
      tcp_stream().expires_after(server_.options.read_timeout);
      stream_.async_handshake(net::ssl::stream_base::server, buffer_.data(),
                              [self = shared_from_this()](beast::error_code ec, size_t used) {
                                if (ec) return self->close();
                                self->buffer_.consume(used);
                                self->read_header();
                              });
    } else {
      beast::error_code ignored;  // if refused, every answer is written asynchronously
      tcp_stream().socket().non_blocking(true, ignored);
      net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_header(); });
    }
  }

  void close_if_idle() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (!self->busy_) self->close();
    });
  }

 private:
  Stream& tcp_stream() { return beast::get_lowest_layer(stream_); }

  void read_header() {
    if (server_.shutting_down.load()) return close();
    header_.emplace();
    header_->header_limit(64 * 1024);
    // The header parser would check Content-Length against its own default limit; the real,
    // per-route limit is applied in on_header. (Not boost::none: Beast 1.74 compares the length
    // with the optional itself, and every number is greater than none.)
    header_->body_limit(std::numeric_limits<std::uint64_t>::max());
    tcp_stream().expires_after(server_.options.read_timeout);
    http::async_read_header(
        stream_, buffer_, *header_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    busy_ = true;
    const auto& h = header_->get();
    // RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request without exactly one Host.
    if (h.version() == 11 && h.count(http::field::host) != 1) {
      keep_alive_ = false;  // the body is not read: the connection cannot be reused
      unread_body_ = true;
      return write(
          error_response(400, "bad_request", "an HTTP/1.1 request needs exactly one Host header"));
    }
    std::vector<std::string_view> codings;
    for (auto [f, end] = h.equal_range(http::field::transfer_encoding); f != end; ++f) {
      codings.emplace_back(f->value().data(), f->value().size());
    }
    if (auto refusal = refuse_transfer_coding(h.version(), codings)) {
      keep_alive_ = false;  // the body is not read: the connection cannot be reused
      unread_body_ = true;
      return write(error_response(refusal->status, refusal->code, refusal->message));
    }
    std::string target(h.target());
    size_t q = target.find('?');
    limit_ = server_.api.body_limit(std::string(h.method_string()), target.substr(0, q));
    keep_alive_ = h.keep_alive();
    auto length = header_->content_length();
    if (length && *length > limit_) {
      keep_alive_ = false;  // the body is not read: the connection cannot be reused
      unread_body_ = true;
      return write(error_response(413, "payload_too_large",
                                  "the body is larger than " + std::to_string(limit_) + " bytes"));
    }
    body_.emplace(std::move(*header_));
    body_->body_limit(limit_);
    if (beast::iequals(body_->get()[http::field::expect], "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      return http::async_write(stream_, *cont,
                               [self = shared_from_this(), cont](beast::error_code ec, size_t) {
                                 if (ec) return self->close();
                                 self->read_body();
                               });
    }
    read_body();
  }

  void read_body() {
    // A small body nearly always came in the header's read: parsed where it lies, the request
    // goes on at once rather than through the io_context, as an async read would go even with
    // nothing left to read.
    if (body_->is_done()) return on_body({});
    const auto length = body_->content_length();
    if (length && buffer_.size() >= *length) {
      beast::error_code ec;
      buffer_.consume(body_->put(buffer_.data(), ec));
      if (ec || body_->is_done()) return on_body(ec);
    }
    tcp_stream().expires_after(server_.options.read_timeout);
    http::async_read(
        stream_, buffer_, *body_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_body(ec); });
  }

  void on_read_error(beast::error_code ec) {
    // The peer left, went quiet, or we are closing: there is no one to answer.
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset ||
        ec == net::error::eof || ec == net::error::broken_pipe) {
      return close();
    }
    // A malformed or oversized request gets an answer, then the connection closes: the rest of
    // its bytes cannot be trusted to start a new request.
    keep_alive_ = false;
    busy_ = true;
    if (ec == http::error::body_limit) {
      unread_body_ = true;
      return write(error_response(413, "payload_too_large",
                                  "the body is larger than " + std::to_string(limit_) + " bytes"));
    }
    if (ec.category() == beast::error_code(http::error::end_of_stream).category()) {
      return write(error_response(400, "bad_request", "malformed HTTP request: " + ec.message()));
    }
    close();
  }

  void on_body(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    auto& msg = body_->get();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.request_id = std::to_string(server_.next_request.fetch_add(1));
    req.peer = peer_;
    std::string repeated;
    if (!parse_target(std::string_view(msg.target().data(), msg.target().size()), &req.path,
                      &req.query, &repeated)) {
      return write(repeated.empty()
                       ? error_response(400, "bad_request", "malformed URL")
                       : error_response(400, "bad_parameter",
                                        "the parameter \"" + repeated + "\" is given twice",
                                        repeated));
    }
    for (const auto& field : msg) {
      const auto name = field.name_string();
      req.headers.emplace_back(ascii_lowercase({name.data(), name.size()}),
                               std::string(field.value()));
    }
    if (websocket::is_upgrade(msg)) return upgrade(req);
    req.body = std::move(msg.body());
    req.resume = [self = shared_from_this()](std::function<void()> fn) {
      net::post(self->stream_.get_executor(), std::move(fn));
    };
    request_id_ = req.request_id;
    tcp_stream().expires_never();  // the answer may wait for the disk; reading resumes after it
    // An answer given on the connection's thread (a read, or a command's once it is applied and
    // resumed there) is written there and then; one from another thread is posted to it.
    server_.api.handle(std::move(req), [self = shared_from_this()](HttpResponse r) {
      net::dispatch(self->stream_.get_executor(),
                    [self, r = std::move(r)]() mutable { self->write(std::move(r)); });
    });
  }

  // GET /api/v1/stream with an Upgrade: the connection becomes a WebSocket session. The token
  // comes as ?token= (browsers cannot set headers on WebSockets) or as the Authorization header.
  void upgrade(const HttpRequest& req) {
    keep_alive_ = false;
    if (req.path != "/api/v1/stream") {
      server_.api.log_upgrade(req, "", 404);
      return write(error_response(404, "not_found", "WebSockets are served at /api/v1/stream"));
    }
    std::string token = req.param("token");
    std::string auth = req.header("authorization");
    if (token.empty() && auth.rfind("Bearer ", 0) == 0) token = auth.substr(7);
    auto actor = server_.api.actor_for_token(token);
    server_.api.log_upgrade(req, actor ? actor->id : "", actor ? 101 : 401);
    if (!actor) return write(error_response(401, "unauthorized", "a valid token is required"));
    tcp_stream().expires_never();  // the WebSocket session keeps its own time
    auto stream =
        std::make_shared<WebSocketSession<AsyncStream>>(std::move(stream_), token, *actor, server_);
    {
      std::lock_guard lk(server_.sessions_mu);
      server_.streams.insert(stream);
      server_.sessions.erase(shared_from_this());
    }
    server_.metrics.stream_opened();
    closed_ = true;  // the socket is the WebSocket session's now, and so is the connection count
    stream->run(body_->release());
  }

  void write(HttpResponse r) {
    response_.emplace(static_cast<http::status>(r.status), 11);
    auto& res = *response_;
    res.set(http::field::server, "ticketd");
    if (!r.content_type.empty()) res.set(http::field::content_type, r.content_type);
    if (!request_id_.empty()) res.set("X-Request-Id", request_id_);
    for (const auto& [k, v] : r.headers) res.set(k, v);
    res.keep_alive(keep_alive_ && !server_.shutting_down.load());
    if (r.head) {
      res.content_length(r.body.size());  // what a GET would send; the body stays empty
    } else {
      res.body() = std::move(r.body);
      res.prepare_payload();
    }
    serializer_.emplace(res);
    if constexpr (std::is_same_v<AsyncStream, Stream>) {
      // An answer nearly always fits in the socket's buffer: written at once, it needs no timer
      // and no pass through the io_context. One system call at most, so that a large answer to a
      // quick client does not keep the thread from its other connections: what is left (or what
      // the socket would not take) goes on asynchronously, with the timeout.
      if (tcp_stream().socket().non_blocking()) {  // see run()
        beast::error_code ec;
        http::write_some(tcp_stream().socket(), *serializer_, ec);
        const bool socket_full = ec == net::error::would_block || ec == net::error::try_again;
        if (!socket_full && (ec || serializer_->is_done())) return written(ec, /*at_once=*/true);
      }
    }
    tcp_stream().expires_after(server_.options.read_timeout);
    http::async_write(stream_, *serializer_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        self->written(ec, /*at_once=*/false);
                      });
  }

  void written(beast::error_code ec, bool at_once) {
    busy_ = false;
    request_id_.clear();
    const bool keep_alive = response_->keep_alive();
    serializer_.reset();
    response_.reset();
    if (!ec && unread_body_) return linger();
    if (ec || !keep_alive) return close();
    if (!at_once) return read_header();
    // The next request is read after what else waits on this thread, not now: the client has
    // then usually sent it and Asio's first attempt finds it, where now it would find nothing and
    // wait for the thread's next poll of epoll, behind everything queued (p99 of reads +0.5 ms).
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->read_header(); });
  }

  // After refusing a request whose body we did not read: stop sending, and read (and drop) what
  // the client is still sending for a bounded while, so it gets to read our answer instead of a
  // connection reset. Bounded in bytes and time: a 1 GB upload is not waited for.
  void linger() {
    beast::error_code ec;
    tcp_stream().socket().shutdown(tcp::socket::shutdown_send, ec);
    tcp_stream().expires_after(std::chrono::seconds(5));
    drain_ = std::make_shared<std::array<char, 65536>>();
    drain_next();
  }

  void drain_next() {
    stream_.async_read_some(net::buffer(*drain_),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > (64u << 20)) return self->close();
                              self->drain_next();
                            });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    tcp_stream().socket().shutdown(tcp::socket::shutdown_both, ec);
    tcp_stream().close();
    server_.metrics.connection_closed();
    std::lock_guard lk(server_.sessions_mu);
    server_.sessions.erase(shared_from_this());
  }

  std::string peer_;  // the remote address, as HttpRequest::peer
  AsyncStream stream_;
  ServerState& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> header_;
  std::optional<http::request_parser<http::string_body>> body_;
  size_t limit_ = 0;
  bool keep_alive_ = true;
  bool busy_ = false;
  bool closed_ = false;
  bool unread_body_ = false;
  std::shared_ptr<std::array<char, 65536>> drain_;
  size_t drained_ = 0;
  std::string request_id_;
  // The answer being written: one at a time, as requests are answered in order.
  std::optional<http::response<http::string_body>> response_;
  std::optional<http::serializer<false, http::string_body>> serializer_;
};

// With TLS configured: reads the first bytes of a connection to tell a TLS handshake from plain
// HTTP, then hands the connection (and the bytes) to the session for it. Counted among the open
// connections meanwhile, so idle sockets that never say anything still meet the limit.
class DetectSession : public Session, public std::enable_shared_from_this<DetectSession> {
 public:
  DetectSession(Socket&& socket, ServerState& server)
      : stream_(std::move(socket)), server_(server) {}

  void run() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->stream_.expires_after(self->server_.options.read_timeout);
      beast::async_detect_ssl(self->stream_, self->buffer_,
                              [self](beast::error_code ec, bool tls) { self->on_detect(ec, tls); });
    });
  }

  void close_if_idle() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      beast::error_code ignored;
      self->stream_.socket().close(ignored);
    });
  }

 private:
  void on_detect(beast::error_code ec, bool tls) {
    std::shared_ptr<Session> next;
    if (!ec && !server_.shutting_down.load()) {
      if (tls) {
        next = start(std::make_shared<HttpSession<TlsStream>>(std::move(stream_), server_,
                                                              std::move(buffer_)));
      } else {
        next = start(
            std::make_shared<HttpSession<Stream>>(std::move(stream_), server_, std::move(buffer_)));
      }
    }
    std::lock_guard lk(server_.sessions_mu);
    server_.sessions.erase(shared_from_this());
    if (next) server_.sessions.insert(next);
  }

  template <class S>
  std::shared_ptr<Session> start(std::shared_ptr<HttpSession<S>> session) {
    session->run();
    return session;
  }

  Stream stream_;
  ServerState& server_;
  beast::flat_buffer buffer_;
};

// Over the connection limit: one fixed 503 and close, without reading the request.
void ServerState::refuse(Socket socket) {
  static const std::string kReply = [] {
    HttpResponse r = error_response(503, "unavailable", "too many open connections; retry shortly");
    return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
           "Retry-After: 1\r\nConnection: close\r\nContent-Length: " +
           std::to_string(r.body.size()) + "\r\n\r\n" + r.body;
  }();
  auto s = std::make_shared<Socket>(std::move(socket));
  net::async_write(*s, net::buffer(kReply), [s](beast::error_code, size_t) {
    beast::error_code ignored;
    s->shutdown(tcp::socket::shutdown_both, ignored);
    s->close(ignored);
  });
}

void ServerState::accept() {
  net::io_context& home = *contexts[next_context++ % contexts.size()];
  acceptor.async_accept(home.get_executor(), [this](beast::error_code ec, Socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
      // E.g. out of file descriptors: the connections we have keep being served, and accepting
      // resumes shortly, without spinning on the same error.
      spdlog::warn("accept: {}; retrying in 100 ms", ec.message());
      accept_retry.expires_after(std::chrono::milliseconds(100));
      accept_retry.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec && !shutting_down.load()) accept();
      });
      return;
    } else {
      bool full;
      {
        std::lock_guard lk(sessions_mu);
        full = sessions.size() + streams.size() >= options.max_connections;
      }
      if (full) {
        refuse(std::move(socket));
      } else {
        // Every write is a whole response or WebSocket message: send it now. With Nagle's
        // algorithm a second message waits for the client's (delayed) ACK of the first, and
        // live events queued for a subscriber trickled out tens of milliseconds apart.
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        if (tls_context()) {
          auto detect = std::make_shared<DetectSession>(std::move(socket), *this);
          {
            std::lock_guard lk(sessions_mu);
            sessions.insert(detect);
          }
          detect->run();
        } else {
          auto session = std::make_shared<HttpSession<Stream>>(Stream(std::move(socket)), *this,
                                                               beast::flat_buffer());
          {
            std::lock_guard lk(sessions_mu);
            sessions.insert(session);
          }
          session->run();
        }
      }
    }
    if (!shutting_down.load()) accept();
  });
}

HttpServer::HttpServer(Api& api, Metrics& metrics, StreamHub& hub, HttpServerOptions options)
    : impl_(std::make_unique<Impl>(api, metrics, hub, std::move(options))) {}

HttpServer::~HttpServer() = default;

bool HttpServer::listen(std::string* error) {
  beast::error_code ec;
  auto address = net::ip::make_address(impl_->options.host, ec);
  if (ec) {
    *error = "bad listen address " + impl_->options.host + ": " + ec.message();
    return false;
  }
  tcp::endpoint endpoint{address, impl_->options.port};
  auto& a = impl_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    *error = "cannot listen on " + impl_->options.host + ":" + std::to_string(impl_->options.port) +
             ": " + ec.message();
    return false;
  }
  return true;
}

namespace {

// A server context for the certificate chain and key in these PEM files, or null with `error`.
std::shared_ptr<net::ssl::context> make_tls_context(const std::string& cert_file,
                                                    const std::string& key_file,
                                                    std::string* error) {
  for (const auto& file : {cert_file, key_file}) {
    if (!std::ifstream(file)) {
      *error = "cannot read " + file + ": " + std::strerror(errno);
      return nullptr;
    }
  }
  try {
    auto ctx = std::make_shared<net::ssl::context>(net::ssl::context::tls_server);
    // TLS 1.2 and 1.3 only; the certificate file may hold the chain after the server's own.
    ctx->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                     net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                     net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use);
    ctx->use_certificate_chain_file(cert_file);
    ctx->use_private_key_file(key_file, net::ssl::context::pem);
    return ctx;
  } catch (const boost::system::system_error& e) {
    *error = "cannot use the TLS certificate " + cert_file + " and key " + key_file + ": " +
             e.code().message();
    return nullptr;
  }
}

}  // namespace

bool HttpServer::use_tls(const std::string& cert_file, const std::string& key_file,
                         std::string* error) {
  auto ctx = make_tls_context(cert_file, key_file, error);
  if (!ctx) return false;
  std::lock_guard lk(impl_->tls_mu);
  impl_->tls = std::move(ctx);
  impl_->tls_cert = cert_file;
  impl_->tls_key = key_file;
  return true;
}

bool HttpServer::reload_tls(std::string* error) {
  std::string cert, key;
  {
    std::lock_guard lk(impl_->tls_mu);
    if (!impl_->tls) {
      *error = "TLS is not served (no --tls-cert and --tls-key)";
      return false;
    }
    cert = impl_->tls_cert;
    key = impl_->tls_key;
  }
  auto ctx = make_tls_context(cert, key, error);
  if (!ctx) return false;
  std::lock_guard lk(impl_->tls_mu);
  impl_->tls = std::move(ctx);
  return true;
}

uint16_t HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

void HttpServer::recheck_streams() {
  std::vector<std::shared_ptr<StreamSession>> streams;
  {
    std::lock_guard lk(impl_->sessions_mu);
    streams.assign(impl_->streams.begin(), impl_->streams.end());
  }
  for (auto& stream : streams) stream->recheck_now();
}

void HttpServer::stop() {
  net::post(impl_->ioc, [s = impl_.get()] { s->begin_stop(); });
}

void HttpServer::run() {
  Impl& s = *impl_;
  for (size_t i = 1; i < s.contexts.size(); ++i) {
    s.keep_running.push_back(net::make_work_guard(*s.contexts[i]));
  }
  s.accept();
  std::vector<std::thread> threads;
  for (size_t i = 1; i < s.contexts.size(); ++i) {
    threads.emplace_back([&s, i] {
      pthread_setname_np(pthread_self(), "http-io");
      s.contexts[i]->run();
    });
  }
  // Each returns when its sessions are done (and the first when the acceptor is closed).
  s.ioc.run();
  for (auto& t : threads) t.join();
  s.stopped.done();
  if (s.watchdog.joinable()) s.watchdog.join();
}

}  // namespace ticketd::api
