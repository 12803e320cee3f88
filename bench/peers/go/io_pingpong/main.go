// The Go peer of bench/io_pingpong.cpp: a UDP echo over loopback and a Unix-stream ping-pong,
// two goroutines taking turns with 64-byte messages (Unix ones read into a 4 KiB buffer), printed as
// "<shape> workers=<n> ns_per_op=<x>" lines, one per run.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

const messageSize = 64

// Messages are read the way a server reads requests: into a buffer larger than any message, as
// much as has arrived, until the whole message is there.
const readBufferSize = 4096

func readMessage(c net.Conn, b []byte) {
	for got := 0; got < messageSize; {
		n, err := c.Read(b[got:])
		check(err)
		got += n
	}
}

func udpEcho(roundTrips int) time.Duration {
	server, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	check(err)
	defer server.Close()
	client, err := net.DialUDP("udp", nil, server.LocalAddr().(*net.UDPAddr))
	check(err)
	defer client.Close()
	done := make(chan struct{})
	go func() {
		b := make([]byte, messageSize)
		for i := 0; i < roundTrips; i++ {
			n, from, err := server.ReadFromUDPAddrPort(b)
			check(err)
			_, err = server.WriteToUDPAddrPort(b[:n], from)
			check(err)
		}
		close(done)
	}()
	out := make([]byte, messageSize)
	in := make([]byte, messageSize)
	t0 := time.Now()
	for i := 0; i < roundTrips; i++ {
		out[0] = byte(i)
		_, err := client.Write(out)
		check(err)
		n, err := client.Read(in)
		check(err)
		if n != messageSize || in[0] != out[0] {
			panic("udp echo: wrong datagram back")
		}
	}
	d := time.Since(t0)
	<-done
	return d
}

func unixPingPong(roundTrips int) time.Duration {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("go-io-pingpong-%d.sock", os.Getpid()))
	os.Remove(path)
	listener, err := net.Listen("unix", path)
	check(err)
	defer listener.Close()
	done := make(chan struct{})
	go func() {
		s, err := listener.Accept()
		check(err)
		defer s.Close()
		b := make([]byte, readBufferSize)
		for i := 0; i < roundTrips; i++ {
			readMessage(s, b)
			_, err = s.Write(b[:messageSize])
			check(err)
		}
		close(done)
	}()
	ping, err := net.Dial("unix", path)
	check(err)
	defer ping.Close()
	out := make([]byte, messageSize)
	in := make([]byte, readBufferSize)
	t0 := time.Now()
	for i := 0; i < roundTrips; i++ {
		out[0] = byte(i)
		_, err := ping.Write(out)
		check(err)
		readMessage(ping, in)
		if in[0] != out[0] {
			panic("unix ping-pong: wrong message back")
		}
	}
	d := time.Since(t0)
	<-done
	return d
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}

func main() {
	workers := flag.Int("workers", runtime.NumCPU(), "GOMAXPROCS")
	runs := flag.Int("runs", 5, "runs of each shape")
	roundTrips := flag.Int("round-trips", 100000, "round trips per run")
	flag.Parse()
	runtime.GOMAXPROCS(*workers)
	udpEcho(*roundTrips / 10) // warm-up, as the weft side does
	unixPingPong(*roundTrips / 10)
	perOp := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(*roundTrips) }
	for r := 0; r < *runs; r++ {
		fmt.Printf("udp_echo workers=%d ns_per_op=%.1f\n", *workers, perOp(udpEcho(*roundTrips)))
		fmt.Printf("unix_pingpong workers=%d ns_per_op=%.1f\n", *workers, perOp(unixPingPong(*roundTrips)))
	}
}
