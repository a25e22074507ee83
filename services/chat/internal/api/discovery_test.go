package api

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
)

// TestReflectionListsChatService is what `grpcurl list` does: tools that
// have no .proto files discover the API through server reflection.
func TestReflectionListsChatService(t *testing.T) {
	h := newHarness(t, opts{tcp: true})
	ctx := h.ctx("", 5*time.Second)

	stream, err := reflectionpb.NewServerReflectionClient(h.conn).ServerReflectionInfo(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}))
	res, err := stream.Recv()
	require.NoError(t, err)
	var names []string
	for _, s := range res.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	assert.Contains(t, names, chatv1.ChatService_ServiceDesc.ServiceName)
	assert.Contains(t, names, healthpb.Health_ServiceDesc.ServiceName)

	// The descriptor of the service is served too, so calls can be built.
	require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{
			FileContainingSymbol: chatv1.ChatService_ServiceDesc.ServiceName,
		},
	}))
	res, err = stream.Recv()
	require.NoError(t, err)
	assert.NotEmpty(t, res.GetFileDescriptorResponse().GetFileDescriptorProto())
	require.NoError(t, stream.CloseSend())
}

func TestHealthReportsServing(t *testing.T) {
	h := newHarness(t, opts{})
	hc := healthpb.NewHealthClient(h.conn)
	for _, svc := range []string{"", chatv1.ChatService_ServiceDesc.ServiceName} {
		res, err := hc.Check(h.ctx("", 5*time.Second), &healthpb.HealthCheckRequest{Service: svc})
		require.NoError(t, err, "service %q", svc)
		assert.Equal(t, healthpb.HealthCheckResponse_SERVING, res.GetStatus(), "service %q", svc)
	}
	_, err := hc.Check(h.ctx("", 5*time.Second), &healthpb.HealthCheckRequest{Service: "no.such.Service"})
	assert.Error(t, err, "an unknown service is not reported healthy")
}
