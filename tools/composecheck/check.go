package main

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// check holds the project to the deployment's topology: PostgreSQL and
// auth as before; a JetStream cluster of at least three NATS nodes, routed
// to one another, each on a store volume of its own and with a
// healthcheck; and at least two chat instances that share the cluster and
// the rooms database, each with its own INSTANCE_ID and a healthcheck,
// started only once PostgreSQL and every node are healthy. It reports
// every broken rule, not only the first.
func check(p *types.Project) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	for _, want := range []string{"postgres", "auth"} {
		if _, err := p.GetService(want); err != nil {
			fail("service %q: %w", want, err)
		}
	}
	if pg, err := p.GetService("postgres"); err == nil && !hasHealthCheck(pg) {
		fail("postgres needs a healthcheck")
	}
	auth, _ := p.GetService("auth")
	if _, ok := auth.DependsOn["postgres"]; !ok {
		fail("auth must depend on postgres")
	}

	nodes := checkNATS(p, fail)
	checkChat(p, auth, nodes, fail)
	checkHostPorts(p, fail)
	return errors.Join(errs...)
}

// natsNode is what the chat instances need to know of a NATS service.
type natsNode struct {
	service     string
	clientPort  string
	clusterPort string
}

// natsTag is a pinned 2.x release of the official image's alpine variant:
// the healthcheck runs its busybox wget, which the default (scratch)
// variant lacks.
var natsTag = regexp.MustCompile(`^2\.\d+\.\d+-alpine[0-9.]*$`)

// checkNATS checks the services that run the official nats image and
// returns them, sorted by name.
func checkNATS(p *types.Project, fail func(string, ...any)) []natsNode {
	var nodes []natsNode
	clusterNames := map[string]bool{}
	serverNames := map[string]string{}
	stores := map[string]string{}
	routes := map[string][]string{}
	for _, name := range p.ServiceNames() {
		svc := p.Services[name]
		repo, tag, _ := strings.Cut(svc.Image, ":")
		if strings.TrimPrefix(strings.TrimPrefix(repo, "docker.io/"), "library/") != "nats" {
			continue
		}
		if !natsTag.MatchString(tag) {
			fail("%s: image %q: pin a 2.x release of the alpine variant, e.g. nats:2.15.3-alpine (the healthcheck needs its wget)", name, svc.Image)
		}
		flags := parseFlags(svc.Command)
		if !flags.has("jetstream", "js") {
			fail("%s: JetStream is off (add --jetstream)", name)
		}
		if dir := flags.get("store_dir", "sd"); dir == "" {
			fail("%s: --store_dir is missing", name)
		} else if vol := volumeAt(svc, dir); vol == "" {
			fail("%s: no named volume is mounted at the store directory %s", name, dir)
		} else if other, dup := stores[vol]; dup {
			fail("%s: store volume %q is also %s's", name, vol, other)
		} else {
			stores[vol] = name
		}
		if sn := flags.get("name", "n", "server_name"); sn == "" {
			fail("%s: --name is missing (JetStream clustering needs stable server names)", name)
		} else if other, dup := serverNames[sn]; dup {
			fail("%s: server name %q is also %s's", name, sn, other)
		} else {
			serverNames[sn] = name
		}
		clusterName := flags.get("cluster_name")
		if clusterName == "" {
			fail("%s: --cluster_name is missing", name)
		}
		clusterNames[clusterName] = true
		node := natsNode{service: name, clientPort: flags.get("port", "p"), clusterPort: portOf(flags.get("cluster"))}
		if node.clientPort == "" {
			node.clientPort = "4222"
		}
		if node.clusterPort == "" {
			fail("%s: --cluster nats://0.0.0.0:PORT is missing", name)
		}
		if mon := flags.get("http_port", "m"); mon == "" {
			fail("%s: --http_port is missing (the healthcheck asks the monitoring endpoint)", name)
		} else if test := healthTest(svc); !strings.Contains(test, ":"+mon+"/healthz") {
			fail("%s: needs a healthcheck on http://127.0.0.1:%s/healthz", name, mon)
		} else if strings.Contains(test, "js-enabled-only") || strings.Contains(test, "js-server-only") {
			// Either passes on a node that cannot serve JetStream yet.
			fail("%s: the healthcheck must wait for the meta leader and the streams: use /healthz without js-enabled-only or js-server-only", name)
		}
		routes[name] = splitList(flags.get("routes"))
		nodes = append(nodes, node)
	}
	if len(nodes) < 3 {
		fail("a JetStream cluster needs at least 3 nats services, found %d", len(nodes))
	}
	if len(clusterNames) > 1 {
		fail("the nats services disagree on --cluster_name")
	}
	for _, n := range nodes {
		for _, peer := range nodes {
			want := "nats://" + peer.service + ":" + peer.clusterPort
			if peer.service != n.service && !slices.Contains(routes[n.service], want) {
				fail("%s: --routes must name %s", n.service, want)
			}
		}
	}
	return nodes
}

// checkChat checks the services built from chat.Dockerfile against the
// NATS nodes and the auth service.
func checkChat(p *types.Project, auth types.ServiceConfig, nodes []natsNode, fail func(string, ...any)) {
	var instances []string
	ids := map[string]string{}
	databases := map[string]bool{}
	for _, name := range p.ServiceNames() {
		svc := p.Services[name]
		if svc.Build == nil || filepath.Base(svc.Build.Dockerfile) != "chat.Dockerfile" {
			continue
		}
		instances = append(instances, name)
		env := func(key string) string {
			if v := svc.Environment[key]; v != nil {
				return *v
			}
			return ""
		}
		urls := splitList(env("NATS_URL"))
		for _, n := range nodes {
			if want := "nats://" + n.service + ":" + n.clientPort; !slices.Contains(urls, want) {
				fail("%s: NATS_URL must name every node, %s among them", name, want)
			}
		}
		if r, err := strconv.Atoi(env("NATS_REPLICAS")); err != nil || r < 3 || r > len(nodes) {
			fail("%s: NATS_REPLICAS must be 3 (at most the %d nodes), so that the loss of a node loses nothing", name, len(nodes))
		}
		id := env("INSTANCE_ID")
		if !validInstanceID(id) {
			fail("%s: INSTANCE_ID %q must be 1-64 letters, digits, '-' or '_'", name, id)
		} else if other, dup := ids[id]; dup {
			fail("%s: INSTANCE_ID %q is also %s's", name, id, other)
		} else {
			ids[id] = name
		}
		db := env("DATABASE_URL")
		databases[db] = true
		u, err := url.Parse(db)
		if err != nil || u.Hostname() == "" {
			fail("%s: DATABASE_URL must name the shared PostgreSQL database", name)
		} else {
			if _, ok := p.Services[u.Hostname()]; !ok {
				fail("%s: DATABASE_URL names %q, which is no service here", name, u.Hostname())
			}
			if a := auth.Environment["DATABASE_URL"]; a != nil && sameDatabase(*a, db) {
				fail("%s: DATABASE_URL must be chat's own database, not auth's", name)
			}
		}
		for _, key := range []string{"SECRET", "SECRET_PREVIOUS"} {
			if a := auth.Environment[key]; a == nil || *a != env(key) {
				fail("%s: %s must be auth's, which signs the tokens chat checks", name, key)
			}
		}
		if !hasHealthCheck(svc) {
			fail("%s: needs a healthcheck", name)
		}
		deps := []string{}
		if u != nil && u.Hostname() != "" {
			deps = append(deps, u.Hostname())
		}
		for _, n := range nodes {
			deps = append(deps, n.service)
		}
		for _, dep := range deps {
			if d, ok := svc.DependsOn[dep]; !ok || d.Condition != types.ServiceConditionHealthy {
				fail("%s: must depend on %s with condition service_healthy", name, dep)
			}
		}
	}
	if len(instances) < 2 {
		fail("the shared deployment needs at least 2 chat services, found %d", len(instances))
	}
	if len(databases) > 1 {
		fail("the chat services must share one DATABASE_URL: the rooms registry")
	}
}

// checkHostPorts fails on two services publishing the same host port,
// which docker compose only finds when it starts the second one.
func checkHostPorts(p *types.Project, fail func(string, ...any)) {
	used := map[string]string{}
	for _, name := range p.ServiceNames() {
		for _, port := range p.Services[name].Ports {
			if port.Published == "" {
				continue
			}
			key := port.HostIP + ":" + port.Published + "/" + port.Protocol
			if other, dup := used[key]; dup && other != name {
				fail("%s: host port %s is also published by %s", name, port.Published, other)
			}
			used[key] = name
		}
	}
}

func hasHealthCheck(svc types.ServiceConfig) bool {
	h := svc.HealthCheck
	return h != nil && !h.Disable && len(h.Test) > 1 && h.Test[0] != "NONE"
}

// healthTest is the healthcheck's command as one string, empty without one.
func healthTest(svc types.ServiceConfig) string {
	if !hasHealthCheck(svc) {
		return ""
	}
	return strings.Join(svc.HealthCheck.Test, " ")
}

// volumeAt returns the named volume mounted at target, if any.
func volumeAt(svc types.ServiceConfig, target string) string {
	for _, v := range svc.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Target == target {
			return v.Source
		}
	}
	return ""
}

// sameDatabase reports whether two PostgreSQL URLs name one database on
// one host.
func sameDatabase(a, b string) bool {
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	return errA == nil && errB == nil && ua.Host == ub.Host && ua.Path == ub.Path
}

// portOf returns the port of a URL such as nats://0.0.0.0:6222.
func portOf(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return u.Port()
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// validInstanceID is the chat service's rule for INSTANCE_ID.
func validInstanceID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// flags are a command line's options: -x, --x, --x=v and --x v alike.
type flags map[string]string

// parseFlags reads nats-server style options; an option followed by an
// argument that does not start with '-' takes it as its value.
func parseFlags(args []string) flags {
	f := flags{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !hasValue && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			value = args[i+1]
			i++
		}
		f[name] = value
	}
	return f
}

// has reports whether any of the names, aliases of one option, was given.
func (f flags) has(names ...string) bool {
	for _, n := range names {
		if _, ok := f[n]; ok {
			return true
		}
	}
	return false
}

// get returns the value of the first of the names that was given.
func (f flags) get(names ...string) string {
	for _, n := range names {
		if v, ok := f[n]; ok {
			return v
		}
	}
	return ""
}
