// The Go peer of bench/http_hello: an HTTP/1.1 keep-alive "Hello, World!" server with a
// goroutine per connection, the same parsing and reply as the weft program.
// Usage: http_hello [-port N] [-workers N] [-adversary] [-parked N]
// With -adversary it carries the same hostile load as the weft program (bench/adversary.hpp):
// parked goroutines holding 1 KiB each, a 64 KiB allocation churn and two greedy
// producer/consumer pairs whose channel operations never block; "adversary ready" goes to
// stderr once it is in place.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
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

var sink uint64

func startAdversary(parked int) {
	t0 := time.Now()
	never := make(chan int)
	var holding sync.WaitGroup
	holding.Add(parked)
	for i := 0; i < parked; i++ {
		go func() {
			buf := make([]byte, 1024)
			for j := range buf {
				buf[j] = 1
			}
			holding.Done()
			<-never
			atomic.AddUint64(&sink, uint64(buf[0]))
		}()
	}
	holding.Wait()
	go func() { // the allocation churn
		const block = 64 * 1024
		var ring [16][]byte
		for i := uint64(0); ; i++ {
			b := make([]byte, block)
			for off := 0; off < block; off += 4096 {
				b[off] = byte(i)
			}
			ring[i%16] = b
			atomic.AddUint64(&sink, uint64(b[i%block]))
		}
	}()
	for pair := 0; pair < 2; pair++ {
		ch := make(chan uint64, 1024)
		go func() { // greedy producer: never blocks
			for i := uint64(0); ; i++ {
				select {
				case ch <- i:
				default:
				}
			}
		}()
		go func() { // greedy consumer: never blocks
			for {
				select {
				case v := <-ch:
					atomic.AddUint64(&sink, v)
				default:
				}
			}
		}()
	}
	fmt.Fprintf(os.Stderr, "adversary ready: %d parked goroutines in %.1f s\n", parked,
		time.Since(t0).Seconds())
}

func main() {
	port := flag.Int("port", 8080, "port (0: any)")
	workers := flag.Int("workers", 0, "GOMAXPROCS (0: all cores)")
	adversary := flag.Bool("adversary", false, "carry the hostile load in-process")
	parked := flag.Int("parked", 1000000, "the adversary's parked goroutines")
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
	if *adversary {
		startAdversary(*parked)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			continue
		}
		go serve(c)
	}
}
