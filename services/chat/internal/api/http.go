package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/api/wire"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// The HTTP/JSON transport serves the unary calls to browsers the way the
// Connect protocol does for unary calls with the JSON codec: POST
// /grpcchatter.chat.v1.ChatService/<Method>, Content-Type
// application/json, the protojson request as the body and the protojson
// response as the answer; the token in `Authorization: Bearer <jwt>`; an
// error as {"code":"not_found","message":"..."} with the HTTP status of
// its code (httpStatusOf) and, for a refused call, its details (the
// ErrorInfo reason, the RetryInfo) and Retry-After. The
// handlers are the gRPC ones, behind the same access log and status
// table (finish), so both transports answer alike.

// HTTPPrefix is the path under which the HTTP handler serves the calls.
const HTTPPrefix = "/grpcchatter.chat.v1.ChatService/"

// bodyTimeout bounds the reading of a call's body.
const bodyTimeout = 10 * time.Second

// unaryJSON decodes a request from JSON and calls its handler.
type unaryJSON func(ctx context.Context, body []byte) (proto.Message, error)

// jsonCall adapts a unary handler to unaryJSON.
func jsonCall[Req any, PReq interface {
	*Req
	proto.Message
}, Resp proto.Message](call func(context.Context, PReq) (Resp, error)) unaryJSON {
	return func(ctx context.Context, body []byte) (proto.Message, error) {
		req := PReq(new(Req))
		if len(body) > 0 { // an empty body is the empty request, as in Connect
			if err := wire.DecodeJSON(body, req); err != nil {
				return nil, fmt.Errorf("%w: %v", rooms.ErrMalformed, err)
			}
		}
		return call(ctx, req)
	}
}

// HTTPCalls is the HTTP/JSON handler of the unary calls.
type HTTPCalls struct {
	s       *Server
	calls   map[string]unaryJSON
	origins []string // besides the page's own, whose pages may call (CORS)
}

// HTTP returns the unary calls' HTTP/JSON handler, to be served under
// HTTPPrefix. origins, as scheme://host[:port], are the other origins
// whose pages may call it (CORS); a page served by the same origin needs
// none.
func (s *Server) HTTP(origins []string) *HTTPCalls {
	return &HTTPCalls{s: s, origins: origins, calls: map[string]unaryJSON{
		chatv1.ChatService_CreateChatRoom_FullMethodName:    jsonCall(s.CreateChatRoom),
		chatv1.ChatService_JoinChatRoom_FullMethodName:      jsonCall(s.JoinChatRoom),
		chatv1.ChatService_ListChatRoomUsers_FullMethodName: jsonCall(s.ListChatRoomUsers),
		chatv1.ChatService_DeleteChatRoom_FullMethodName:    jsonCall(s.DeleteChatRoom),
	}}
}

// ServeHTTP answers one call.
func (h *HTTPCalls) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(h.origins) > 0 {
		w.Header().Add("Vary", "Origin")
	}
	if origin := r.Header.Get("Origin"); origin != "" && slices.Contains(h.origins, origin) {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Access-Control-Expose-Headers", "Retry-After, X-Request-Id")
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "POST")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Connect-Protocol-Version, X-Request-Id")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	method := r.URL.Path
	call, ok := h.calls[method]
	switch {
	case !ok:
		writeHTTPError(w, status.Newf(codes.NotFound, "no method %q: the methods are ChatService's unary ones", method))
		return
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", "POST")
		writeHTTPErrorStatus(w, http.StatusMethodNotAllowed, status.New(codes.InvalidArgument, "use POST"))
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeHTTPErrorStatus(w, http.StatusUnsupportedMediaType,
			status.New(codes.InvalidArgument, "Content-Type must be application/json"))
		return
	}
	// The listener has no read timeout (its WebSockets live long): a body
	// must come within bodyTimeout.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyTimeout))
	limit := int64(MaxRecvMsgSize(h.s.cfg.MaxMessageBytes))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeHTTPError(w, status.Newf(codes.InvalidArgument, "%v: body over %d bytes", rooms.ErrMalformed, limit))
		} else {
			// A broken or late body; if the client is gone, nobody reads this.
			writeHTTPError(w, status.Newf(codes.InvalidArgument, "%v: reading the body: %v", rooms.ErrMalformed, err))
		}
		return
	}
	ci := callWithID(r.Header.Get(requestIDKey))
	w.Header().Set(requestIDKey, ci.requestID)
	ctx := context.WithValue(r.Context(), callInfoKey{}, ci)
	if a := r.Header.Get("Authorization"); a != "" {
		ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", a))
	}
	start := time.Now()
	resp, err := h.call(ctx, call, body)
	if err := h.s.finish(method, ci, start, err); err != nil {
		writeHTTPError(w, status.Convert(err))
		return
	}
	b, err := protojson.Marshal(resp)
	if err != nil { // a response of validated values always marshals
		h.s.cfg.Logger.Error("encode response", zap.Error(err))
		writeHTTPError(w, status.New(codes.Internal, "internal error"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// call runs a handler, turning a panic into errPanic as the gRPC
// transport's recovery interceptor does.
func (h *HTTPCalls) call(ctx context.Context, call unaryJSON, body []byte) (resp proto.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = h.s.recovered(ctx, p, debug.Stack())
		}
	}()
	return call(ctx, body)
}

// httpStatusOf is the HTTP status of each code, as the Connect protocol
// maps them.
var httpStatusOf = map[codes.Code]int{
	codes.Canceled:           499,
	codes.Unknown:            http.StatusInternalServerError,
	codes.InvalidArgument:    http.StatusBadRequest,
	codes.DeadlineExceeded:   http.StatusGatewayTimeout,
	codes.NotFound:           http.StatusNotFound,
	codes.AlreadyExists:      http.StatusConflict,
	codes.PermissionDenied:   http.StatusForbidden,
	codes.ResourceExhausted:  http.StatusTooManyRequests,
	codes.FailedPrecondition: http.StatusBadRequest,
	codes.Aborted:            http.StatusConflict,
	codes.OutOfRange:         http.StatusBadRequest,
	codes.Unimplemented:      http.StatusNotImplemented,
	codes.Internal:           http.StatusInternalServerError,
	codes.Unavailable:        http.StatusServiceUnavailable,
	codes.DataLoss:           http.StatusInternalServerError,
	codes.Unauthenticated:    http.StatusUnauthorized,
}

// writeHTTPError answers with st as a Connect error, at its code's status.
func writeHTTPError(w http.ResponseWriter, st *status.Status) {
	writeHTTPErrorStatus(w, httpStatusOf[st.Code()], st)
}

// writeHTTPErrorStatus answers with st as a Connect error at an HTTP
// status of the caller's choosing, with the status's details (the
// ErrorInfo reason a client acts on, the RetryInfo) and a RetryInfo as
// Retry-After too.
func writeHTTPErrorStatus(w http.ResponseWriter, httpStatus int, st *status.Status) {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			secs := math.Ceil(ri.GetRetryDelay().AsDuration().Seconds())
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(secs))))
		}
	}
	body, _ := json.Marshal(struct {
		Code    string          `json:"code"`
		Message string          `json:"message,omitempty"`
		Details []connectDetail `json:"details,omitempty"`
	}{connectCode(st.Code()), st.Message(), connectDetails(st)}) // strings and raw JSON always marshal
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	_, _ = w.Write(body)
}

// connectDetail is an error detail as the Connect protocol carries it:
// the message's full name, its protobuf encoding in unpadded base64, and
// its JSON form in debug, which a page can read without protobuf
// (details[].debug.reason).
type connectDetail struct {
	Type  string          `json:"type"`
	Value string          `json:"value"`
	Debug json.RawMessage `json:"debug,omitempty"`
}

// connectDetails converts a status's details; one that cannot be decoded
// is passed on without its debug form.
func connectDetails(st *status.Status) []connectDetail {
	var out []connectDetail
	for _, a := range st.Proto().GetDetails() {
		d := connectDetail{
			Type:  strings.TrimPrefix(a.GetTypeUrl(), "type.googleapis.com/"),
			Value: base64.RawStdEncoding.EncodeToString(a.GetValue()),
		}
		if m, err := a.UnmarshalNew(); err == nil {
			if js, err := protojson.Marshal(m); err == nil {
				d.Debug = js
			}
		}
		out = append(out, d)
	}
	return out
}

// connectCode names a code as the Connect protocol does: "not_found".
func connectCode(c codes.Code) string {
	if c == codes.Canceled {
		return "canceled" // codes.Code's String spells it "Canceled" too
	}
	var b strings.Builder
	for i, r := range c.String() {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
