package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// decode reads c's body as exactly one JSON object into dst, strictly:
// the media type must be JSON, the body at most limit bytes, and no
// unknown fields or trailing data are allowed. Errors say what to fix.
func decode(c *gin.Context, limit int64, dst any) error {
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || mt != "application/json" {
		return errMediaType
	}
	if c.Request.ContentLength > limit {
		return fmt.Errorf("%w: limit is %d bytes", errTooLarge, limit)
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, limit)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return fmt.Errorf("%w: limit is %d bytes", errTooLarge, limit)
		}
		return fmt.Errorf("%w: unexpected data after the JSON object", errBadRequest)
	}
	return nil
}

func decodeError(err error, limit int64) error {
	var (
		tooLarge *http.MaxBytesError
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return fmt.Errorf("%w: limit is %d bytes", errTooLarge, limit)
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
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this; the field name is
		// the rest of the message, already quoted.
		return fmt.Errorf("%w: unknown field %s", errBadRequest, strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		return fmt.Errorf("%w: malformed JSON", errBadRequest)
	}
}
