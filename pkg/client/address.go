package client

import (
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// balancing is the Client's gRPC load-balancing policy: pick_first, which
// keeps one connection, to the first address in its list that answers,
// with the list shuffled (gRFC A62) so that many clients spread over the
// chat instances. Round robin would spread one client's calls instead, at
// the price of a connection to every instance per client; a chat client
// makes one long-lived stream and few other calls, so it gains nothing.
const balancing = `{"loadBalancingConfig":[{"pick_first":{"shuffleAddressList":true}}]}`

// addressScheme names the resolver that hands gRPC the list of addresses
// given to WithChatAddress. It is registered with the Client's connection
// only, not globally.
const addressScheme = "grpcchatter-addresses"

// chatTarget returns the gRPC target for the chat addresses, and the dial
// options it needs. One address is a gRPC target as it stands (host:port
// goes through gRPC's DNS resolver, which returns every A and AAAA record);
// several are host:port each, handed to gRPC as one resolved list.
func chatTarget(addrs []string) (string, []grpc.DialOption, error) {
	if len(addrs) == 0 {
		return "", nil, &Error{Kind: ErrInvalidArgument, Message: "no chat address; want host:port"}
	}
	for i, a := range addrs {
		switch {
		case a == "":
			return "", nil, &Error{Kind: ErrInvalidArgument, Message: fmt.Sprintf("chat address %d of %d is empty", i+1, len(addrs))}
		case strings.Contains(a, ","):
			return "", nil, &Error{Kind: ErrInvalidArgument, Message: fmt.Sprintf("chat address %q: pass several addresses as separate arguments, not joined by commas", a)}
		}
	}
	if len(addrs) == 1 {
		return addrs[0], nil, nil
	}
	eps := make([]resolver.Endpoint, len(addrs))
	for i, a := range addrs {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" || strings.Contains(a, "/") {
			return "", nil, &Error{Kind: ErrInvalidArgument, Message: fmt.Sprintf("chat address %q: in a list of several, each must be host:port (a gRPC target such as dns:///name:port can only be given alone)", a)}
		}
		// ServerName makes each instance's TLS certificate checked against,
		// and its calls addressed to, its own host, as if it were dialled
		// alone; otherwise all would be taken for the first. The names are
		// the caller's own configuration, as trusted as a single target.
		eps[i] = resolver.Endpoint{Addresses: []resolver.Address{{Addr: a, ServerName: a}}}
	}
	r := manual.NewBuilderWithScheme(addressScheme)
	r.InitialState(resolver.State{Endpoints: eps})
	return addressScheme + ":///" + addrs[0], []grpc.DialOption{grpc.WithResolvers(r)}, nil
}
