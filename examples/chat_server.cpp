// chat_server: a line-based chat room. Every client's lines go to everyone else. One green
// thread (the room) owns the list of members and is the only one to touch it: the others talk to
// it through channels, so there is no lock. Each member has an outbox channel drained by its own
// writer green thread; a member too slow to keep up is dropped rather than stalling the room.
//
//   chat_server [address]        then connect with: nc 127.0.0.1 7001
//   chat_server --selftest       runs three clients against itself and checks what they hear
#include <weft/weft.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

struct event {
  enum kind { join, leave, say } what;
  int member;
  weft::chan<std::string> outbox;  // for join
  std::string line;                // for say
};

// The room: the only owner of the member list.
void run_room(weft::chan<event> events) {
  std::map<int, weft::chan<std::string>> members;
  for (event e : events) {
    switch (e.what) {
      case event::join:
        members[e.member] = e.outbox;
        break;
      case event::leave:
        if (auto it = members.find(e.member); it != members.end()) {
          it->second.close();  // its writer sends what is queued, then ends
          members.erase(it);
        }
        break;
      case event::say:
        for (auto it = members.begin(); it != members.end();) {
          if (it->first == e.member || it->second.try_send(e.line)) {
            ++it;
            continue;
          }
          it->second.close();  // outbox full: this member cannot keep up
          it = members.erase(it);
        }
        break;
    }
  }
}

void serve_member(weft::net::tcp_stream conn, int id, weft::chan<event> events) {
  weft::chan<std::string> outbox(64);
  events.send({event::join, id, outbox, {}});
  weft::scope s;
  s.go([&] {  // the writer: everything the room sends this member
    std::error_code ec;
    for (std::string line : outbox)
      if (conn.write_all(line, ec), ec) break;
    try {
      conn.shutdown(weft::net::shutdown_how::both);  // wakes the reader below if still reading
    } catch (const std::system_error&) {
      // already reset by the client: the reader has seen it too
    }
  });
  std::string pending;
  std::error_code ec;
  char buf[1024];
  for (std::size_t n; (n = conn.read(std::span(buf), ec)) != 0 && !ec;) {
    pending.append(buf, n);
    for (std::size_t eol; (eol = pending.find('\n')) != std::string::npos;) {
      // Appended piece by piece: "[" + std::to_string(id) trips GCC 12's -Wrestrict at -O3.
      std::string line(1, '[');
      line += std::to_string(id);
      line += "] ";
      line.append(pending, 0, eol + 1);
      events.send({event::say, id, {}, std::move(line)});
      pending.erase(0, eol + 1);
    }
  }
  events.send({event::leave, id, {}, {}});
  s.wait();
}

// Three clients join, each says one line, and each must hear exactly the other two.
int selftest(const weft::net::address& server) {
  constexpr int clients = 3;
  std::vector<weft::net::tcp_stream> conns;
  for (int i = 0; i < clients; ++i) conns.push_back(weft::net::tcp_stream::connect(server));
  weft::sleep_for(std::chrono::milliseconds(100));  // all three have joined the room
  for (int i = 0; i < clients; ++i) conns[i].write_all("hello from " + std::to_string(i) + "\n");
  int heard = 0;
  for (auto& c : conns) {
    c.set_read_timeout(std::chrono::seconds(10));
    std::string got;
    char buf[256];
    while (std::count(got.begin(), got.end(), '\n') < clients - 1)
      got.append(buf, c.read(std::span(buf)));
    heard += static_cast<int>(std::count(got.begin(), got.end(), '\n'));
  }
  std::printf("selftest: %d clients, %d lines heard (expected %d)\n", clients, heard,
              clients * (clients - 1));
  return heard == clients * (clients - 1) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const bool test = argc > 1 && std::strcmp(argv[1], "--selftest") == 0;
  const std::string address = test ? "127.0.0.1:0" : argc > 1 ? argv[1] : "127.0.0.1:7001";
  return weft::run([&] {
    auto listener = weft::net::tcp_listener::bind(address);
    weft::chan<event> events(128);
    weft::go([events] { run_room(events); });
    // The accept loop uses the listener, so it must end before the listener goes: as a child
    // of a scope declared after it, it is cancelled and joined first when main returns.
    weft::scope accept_scope;
    accept_scope.go([&listener, events] {
      std::error_code ec;  // cancelled (operation_canceled) when main returns: the loop ends
      for (int id = 1;; ++id) {
        auto conn = listener.accept(ec);
        if (ec) break;
        weft::go([conn = std::move(conn), id, events]() mutable {
          serve_member(std::move(conn), id, events);
        });
      }
    });
    if (test) return selftest(listener.local_address());
    std::printf("chat room on %s\n", listener.local_address().to_string().c_str());
    std::fflush(stdout);
    for (;;) weft::sleep_for(std::chrono::hours(24));
  });
}
