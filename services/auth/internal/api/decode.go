package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// decode reads c's body as exactly one JSON object into dst, a pointer to
// a struct, strictly: the media type must be JSON, the body at most limit
// bytes, field names exactly as in dst's json tags (encoding/json alone
// would match them in any case), each at most once, string values valid
// UTF-8 (encoding/json alone would silently turn bad bytes and unpaired
// surrogates into U+FFFD), and no unknown fields or trailing data.
// Errors say what to fix.
func decode(c *gin.Context, limit int64, dst any) error {
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || mt != "application/json" {
		return errMediaType
	}
	if c.Request.ContentLength > limit {
		return fmt.Errorf("%w: limit is %d bytes", errTooLarge, limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return fmt.Errorf("%w: limit is %d bytes", errTooLarge, limit)
		}
		return fmt.Errorf("%w: reading the body: %w", errBadRequest, err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: unexpected data after the JSON object", errBadRequest)
	}
	return checkFields(body, jsonFields(dst))
}

// checkFields walks the top-level object of body, which encoding/json has
// already accepted, for what encoding/json lets through.
func checkFields(body []byte, known map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // '{'
		return fmt.Errorf("%w: malformed JSON", errBadRequest)
	}
	seen := make(map[string]bool, len(known))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: malformed JSON", errBadRequest)
		}
		name, _ := tok.(string)
		if !known[name] {
			return fmt.Errorf("%w: unknown field %q (names are case-sensitive)", errBadRequest, name)
		}
		if seen[name] {
			return fmt.Errorf("%w: duplicate field %q", errBadRequest, name)
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("%w: malformed JSON", errBadRequest)
		}
		if !validString(raw) {
			return fmt.Errorf("%w: field %q must be valid UTF-8", errBadRequest, name)
		}
	}
	return nil
}

// validString reports whether raw, a JSON value, is free of invalid UTF-8
// and of \u escapes that encode unpaired UTF-16 surrogates. Non-string
// values pass; their types are checked by encoding/json.
func validString(raw []byte) bool {
	if !utf8.Valid(raw) {
		return false
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' || i+1 >= len(raw) {
			continue
		}
		i++ // the escaped character
		if raw[i] != 'u' {
			continue
		}
		r, ok := hex4(raw, i+1)
		if !ok {
			return false
		}
		i += 4
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return false // low surrogate without a high one
		case r >= 0xD800 && r <= 0xDBFF:
			if i+2 >= len(raw) || raw[i+1] != '\\' || raw[i+2] != 'u' {
				return false
			}
			lo, ok := hex4(raw, i+3)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return false
			}
			i += 6
		}
	}
	return true
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[at:at+4]), 16, 16)
	return rune(n), err == nil
}

// jsonFields returns the JSON names of the fields of the struct dst points to.
func jsonFields(dst any) map[string]bool {
	t := reflect.TypeOf(dst).Elem()
	out := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
}

func decodeError(err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: body is empty", errBadRequest)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: malformed JSON: unexpected end of input", errBadRequest)
	case errors.As(err, &syntax):
		return fmt.Errorf("%w: malformed JSON at byte %d", errBadRequest, syntax.Offset)
	case errors.As(err, &typ) && typ.Field == "":
		return fmt.Errorf("%w: body must be a JSON object", errBadRequest)
	case errors.As(err, &typ):
		return fmt.Errorf("%w: field %q must be a %s", errBadRequest, typ.Field, typ.Type)
	default:
		return fmt.Errorf("%w: malformed JSON", errBadRequest)
	}
}
