package chatload

import (
	"bytes"
	"encoding/json"
	"strings"
)

// WebSocket frames are the protojson form of ChatResponse. As on gRPC,
// receivers do not decode them into Go structs (protojson.Unmarshal of
// every frame would cost the generator more CPU than the service spends
// on the delivery); walkJSONFrame scans the few fields it needs in place.
// It accepts any valid JSON layout (protojson varies its whitespace on
// purpose) and both the JSON and the proto names of fields.

// walkJSONFrame calls onMessage with the clientMessageId and body of every
// message event in a protojson ChatResponse frame and reports whether the
// frame held an opened event. id and body alias frame unless they held
// escapes.
func walkJSONFrame(frame []byte, onMessage func(id, body []byte)) (opened bool, err error) {
	s := jsonScanner{b: frame}
	err = s.object(func(key []byte) error {
		if string(key) != "events" {
			return s.skip()
		}
		return s.array(func() error {
			return s.object(func(kind []byte) error {
				switch string(kind) {
				case "opened":
					opened = true
				case "message":
					var id, body []byte
					err := s.object(func(field []byte) error {
						var err error
						switch string(field) {
						case "body":
							body, err = s.str()
						case "clientMessageId", "client_message_id":
							id, err = s.str()
						default:
							err = s.skip()
						}
						return err
					})
					if err != nil {
						return err
					}
					onMessage(id, body)
					return nil
				}
				return s.skip()
			})
		})
	})
	if err != nil {
		return opened, err
	}
	if s.ws(); s.i != len(s.b) {
		return opened, errMalformed
	}
	return opened, nil
}

// jsonScanner reads a JSON document left to right without allocating,
// except to unescape a string that holds escapes.
type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte, 0 at the end.
func (s *jsonScanner) peek() byte {
	s.ws()
	if s.i == len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *jsonScanner) expect(c byte) error {
	if s.peek() != c {
		return errMalformed
	}
	s.i++
	return nil
}

// object reads an object, calling member for each key with the scanner
// at the key's value, which member must consume.
func (s *jsonScanner) object(member func(key []byte) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		key, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := member(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errMalformed
		}
	}
}

// array reads an array, calling elem with the scanner at each element,
// which elem must consume.
func (s *jsonScanner) array(elem func() error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return errMalformed
		}
	}
}

// str reads a string and returns its contents: a slice of the document,
// or an unescaped copy when it holds escapes.
func (s *jsonScanner) str() ([]byte, error) {
	if err := s.expect('"'); err != nil {
		return nil, err
	}
	start, escaped := s.i, false
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			raw := s.b[start:s.i]
			s.i++
			if !escaped {
				return raw, nil
			}
			var v string
			if err := json.Unmarshal(s.b[start-1:s.i], &v); err != nil {
				return nil, errMalformed
			}
			return []byte(v), nil
		case c == '\\':
			escaped = true
			s.i += 2
		case c < 0x20:
			return nil, errMalformed
		default:
			s.i++
		}
	}
	return nil, errMalformed
}

// skip consumes one value of any kind.
func (s *jsonScanner) skip() error {
	switch c := s.peek(); c {
	case '{':
		return s.object(func([]byte) error { return s.skip() })
	case '[':
		return s.array(s.skip)
	case '"':
		_, err := s.str()
		return err
	case 't', 'f', 'n':
		for _, lit := range [...]string{"true", "false", "null"} {
			if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
				s.i += len(lit)
				return nil
			}
		}
		return errMalformed
	default:
		start := s.i
		for s.i < len(s.b) && strings.IndexByte("+-.0123456789eE", s.b[s.i]) >= 0 {
			s.i++
		}
		if s.i == start {
			return errMalformed
		}
		return nil
	}
}
