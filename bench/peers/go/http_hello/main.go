// The Go peer of bench/http_hello: an HTTP/1.1 keep-alive "Hello, World!" server with a
// goroutine per connection, the same parsing and reply as the weft program.
// Usage: http_hello [-port N] [-workers N]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
)

var reply = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!")
var terminator = []byte("\r\n\r\n")

func serve(c net.Conn) {
	defer c.Close()
	in := make([]byte, 8192)
	out := make([]byte, 0, 1024)
	have := 0
	for {
		n, err := c.Read(in[have:])
		if err != nil || n == 0 {
			return
		}
		have += n
		pending := in[:have]
		for {
			end := bytes.Index(pending, terminator)
			if end < 0 {
				break
			}
			out = append(out, reply...)
			pending = pending[end+4:]
		}
		if len(pending) == len(in) {
			return
		}
		have = copy(in, pending)
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
			out = out[:0]
		}
	}
}

func main() {
	port := flag.Int("port", 8080, "port (0: any)")
	workers := flag.Int("workers", 0, "GOMAXPROCS (0: all cores)")
	flag.Parse()
	if *workers > 0 {
		runtime.GOMAXPROCS(*workers)
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %d\n", l.Addr().(*net.TCPAddr).Port)
	for {
		c, err := l.Accept()
		if err != nil {
			continue
		}
		go serve(c)
	}
}
