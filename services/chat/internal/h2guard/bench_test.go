package h2guard

import (
	"bytes"
	"net"
	"testing"

	"golang.org/x/net/http2"
)

// discardConn is a net.Conn whose writes go nowhere and whose reads
// return the same bytes again, so that a benchmark measures the guard.
type discardConn struct {
	net.Conn
	in []byte
}

func (d *discardConn) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardConn) Read(p []byte) (int, error)  { return copy(p, d.in), nil }

// deliveries is what the server writes in a fan-out: about 8 KiB (gRPC's
// write buffer) of DATA frames of one 120-byte chat line each. Each
// write ends with a whole frame, so that repeating it keeps the frames
// in step.
func deliveries(b *testing.B) ([]byte, int) {
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	n := 0
	for buf.Len() < 8<<10-169 {
		if err := fr.WriteData(uint32(2*n+1), false, make([]byte, 160)); err != nil {
			b.Fatal(err)
		}
		n++
	}
	return buf.Bytes(), n
}

// BenchmarkWrite is the guard's cost on the server's writes, per frame.
func BenchmarkWrite(b *testing.B) {
	p, frames := deliveries(b)
	c := Wrap(&discardConn{}, Config{})
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if _, err := c.Write(p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*frames), "ns/frame")
}

// BenchmarkWriteUnguarded is the same writes on the bare connection.
func BenchmarkWriteUnguarded(b *testing.B) {
	p, frames := deliveries(b)
	var c net.Conn = &discardConn{}
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if _, err := c.Write(p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*frames), "ns/frame")
}

// BenchmarkRead is the guard's cost on the server's reads, per frame: a
// client's WINDOW_UPDATE frames, 13 bytes each, 8 KiB (gRPC's read
// buffer) at a time.
func BenchmarkRead(b *testing.B) {
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	for buf.Len() < 8<<10-13 {
		if err := fr.WriteWindowUpdate(1, 1000); err != nil {
			b.Fatal(err)
		}
	}
	in := buf.Bytes()
	c := Wrap(&discardConn{in: in}, Config{})
	c.in.skip = 0 // no preface
	p := make([]byte, len(in))
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := c.Read(p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(in)/13), "ns/frame")
}
