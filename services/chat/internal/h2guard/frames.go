package h2guard

import "encoding/binary"

// headerLen is the length of an HTTP/2 frame header: 24 bits of payload
// length, the type, the flags, and a reserved bit with 31 bits of stream ID.
const headerLen = 9

// frames follows the frame boundaries in one direction of an HTTP/2
// connection's bytes, which arrive in pieces of any size. It looks at
// each frame's header and skips its payload without reading it, so a
// large DATA frame costs as little as a small one.
type frames struct {
	skip int             // bytes of the current payload (or of the preface) still to come
	hdr  [headerLen]byte // a frame header split across pieces
	n    int             // bytes of hdr gathered so far
}

// advance consumes p up to the end of the current payload or of the next
// frame header, whichever comes first, and returns how many bytes it
// consumed and, if it completed a header, the header (valid until the
// next call).
func (f *frames) advance(p []byte) (int, []byte) {
	if f.skip > 0 {
		k := min(f.skip, len(p))
		f.skip -= k
		return k, nil
	}
	if f.n == 0 && len(p) >= headerLen {
		h := p[:headerLen]
		f.skip = length(h)
		return headerLen, h
	}
	k := copy(f.hdr[f.n:], p)
	f.n += k
	if f.n < headerLen {
		return k, nil
	}
	f.n = 0
	f.skip = length(f.hdr[:])
	return k, f.hdr[:]
}

// atBoundary reports whether the bytes so far end with a whole frame.
func (f *frames) atBoundary() bool { return f.skip == 0 && f.n == 0 }

// toBoundary consumes p up to the end of the current frame and returns
// how many bytes that took: 0 at a boundary, len(p) if the frame goes on
// beyond p.
func (f *frames) toBoundary(p []byte) int {
	i := 0
	for i < len(p) && !f.atBoundary() {
		k, _ := f.advance(p[i:])
		i += k
	}
	return i
}

func length(h []byte) int { return int(h[0])<<16 | int(h[1])<<8 | int(h[2]) }

func putLength(h []byte, n int) { h[0], h[1], h[2] = byte(n>>16), byte(n>>8), byte(n) }

func streamID(h []byte) uint32 { return binary.BigEndian.Uint32(h[5:]) & (1<<31 - 1) }
