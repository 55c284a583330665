#pragma once
// A stream layer under beast::websocket::stream that can hold what is written and send it in one
// write: a stream client's several messages of one burst leave in one send instead of one each.
// Only http_server.cpp includes it (Beast and Asio stay in a few translation units).

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace ticketd::api {

// Between gather() and flush(), every write is copied into a buffer and completes at once; flush()
// sends the buffer in one write. Writes made while a flush is under way (a pong or a close frame
// that Beast writes by itself) join the buffer and go out before the flush completes, so the
// bytes leave in the order they were written. Outside that, writes pass straight through.
//
// The websocket stream above serializes its own writes, and the owner calls flush() only after a
// write of its own has completed into the buffer, so no write passes through while a flush is
// under way. All of it runs on the connection's thread.
template <class NextLayer>
class GatheringStream {
 public:
  using executor_type = typename NextLayer::executor_type;
  using next_layer_type = NextLayer;

  explicit GatheringStream(NextLayer&& next) : next_(std::move(next)) {}

  executor_type get_executor() noexcept { return next_.get_executor(); }
  NextLayer& next_layer() noexcept { return next_; }
  const NextLayer& next_layer() const noexcept { return next_; }

  void gather() { gathering_ = true; }
  size_t gathered() const { return buffer_.size(); }

  // Sends what was gathered, then calls `done(ec)`; gathering ends. Called while a flush is under
  // way, `done` waits for it.
  void flush(std::function<void(boost::beast::error_code)> done) {
    gathering_ = false;
    waiting_.push_back(std::move(done));
    if (!flushing_) send_gathered();
  }

  template <class ConstBufferSequence, class ReadHandler>
  auto async_read_some(const ConstBufferSequence& buffers, ReadHandler&& handler) {
    return next_.async_read_some(buffers, std::forward<ReadHandler>(handler));
  }

  template <class ConstBufferSequence, class WriteHandler>
  auto async_write_some(const ConstBufferSequence& buffers, WriteHandler&& handler) {
    return boost::asio::async_initiate<WriteHandler, void(boost::beast::error_code, size_t)>(
        [this](auto handler, const ConstBufferSequence& buffers) {
          if (!gathering_ && !flushing_) return next_.async_write_some(buffers, std::move(handler));
          const size_t n = boost::asio::buffer_size(buffers);
          buffer_.commit(boost::asio::buffer_copy(buffer_.prepare(n), buffers));
          boost::asio::post(
              next_.get_executor(),
              boost::beast::bind_front_handler(std::move(handler), boost::beast::error_code{}, n));
        },
        handler, buffers);
  }

 private:
  void send_gathered() {
    flushing_ = true;
    boost::asio::async_write(next_, buffer_.data(), [this](boost::beast::error_code ec, size_t n) {
      buffer_.consume(n);
      if (!ec && buffer_.size() > 0) return send_gathered();
      flushing_ = false;
      if (ec) buffer_.clear();
      // A catch-up fills the buffer to the owner's limit once; a thousand idle subscribers should
      // not each keep that much.
      if (buffer_.capacity() > kKeptCapacity) buffer_.shrink_to_fit();
      auto waiting = std::move(waiting_);
      waiting_.clear();
      for (auto& done : waiting) done(ec);
    });
  }

  static constexpr size_t kKeptCapacity = 16 * 1024;

  NextLayer next_;
  boost::beast::flat_buffer buffer_;
  bool gathering_ = false;
  bool flushing_ = false;
  std::vector<std::function<void(boost::beast::error_code)>> waiting_;
};

// The websocket stream tears its connection down after the closing handshake: what is gathered
// (the close frame it answered with, say) is sent first.
template <class NextLayer, class TeardownHandler>
void async_teardown(boost::beast::role_type role, GatheringStream<NextLayer>& stream,
                    TeardownHandler&& handler) {
  auto pending =
      std::make_shared<std::decay_t<TeardownHandler>>(std::forward<TeardownHandler>(handler));
  auto tear_down = [role, &stream, pending](boost::beast::error_code) {
    using boost::beast::websocket::async_teardown;
    async_teardown(role, stream.next_layer(), std::move(*pending));
  };
  if (stream.gathered() == 0) return tear_down({});
  stream.flush(std::move(tear_down));
}

template <class NextLayer>
void teardown(boost::beast::role_type role, GatheringStream<NextLayer>& stream,
              boost::beast::error_code& ec) {
  using boost::beast::websocket::teardown;
  teardown(role, stream.next_layer(), ec);
}

}  // namespace ticketd::api
